from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DatabaseDep
from api.schemas import Health

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(db: DatabaseDep):
    """Liveness of the API and its database. Never needs a token."""
    try:
        db.ping()
    except psycopg.Error as exc:
        log.warning("health: database unreachable: %s", exc)
        body = Health(status="error", database=f"unreachable: {type(exc).__name__}")
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok", database="ok")
