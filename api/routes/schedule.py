from __future__ import annotations

from fastapi import APIRouter

from api.core import scheduler
from api.deps import Authorized, DatabaseDep, SettingsDep
from api.schemas import Schedule

router = APIRouter(prefix="/schedule", tags=["schedule"], dependencies=Authorized)


@router.get("", response_model=Schedule)
def get_schedule(settings: SettingsDep, db: DatabaseDep) -> Schedule:
    """SCHEDULE and SCHEDULE_TZ, the next five tick times, and what the last ticks did."""
    upcoming = scheduler.next_times(settings.schedule, settings.schedule_tz) if settings.schedule else []
    return Schedule(
        schedule=settings.schedule,
        timezone=settings.schedule_tz,
        next=upcoming,
        recent_ticks=scheduler.recent_ticks(db),
    )
