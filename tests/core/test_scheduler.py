"""SCHEDULE through the real app: a tick starts a run with source `schedule`; with two processes (two
schedulers on one database) a tick fires once; a tick during an active run is skipped, not queued."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.core import scheduler
from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.runs import lock
from api.main import create_app
from tests.conftest import LOCAL, wait_for_run, wait_until


@pytest.mark.timeout(400)
@pytest.mark.slow
def test_every_minute_schedule_starts_a_run_with_source_schedule(settings):
    every_minute = settings.model_copy(update={"schedule": "* * * * *"})
    with TestClient(create_app(every_minute), base_url=LOCAL) as client:
        shown = client.get("/schedule").json()
        assert shown["schedule"] == "* * * * *" and shown["timezone"] == "UTC" and len(shown["next"]) == 5
        first = datetime.fromisoformat(shown["next"][0])
        assert [datetime.fromisoformat(t) - first for t in shown["next"]] == [timedelta(minutes=m) for m in range(5)]

        def scheduled_run() -> dict | None:
            items = client.get("/runs").json()["items"]
            return items[-1] if items else None

        run = wait_until(scheduled_run, 75, "a scheduled run", interval=0.5)
        assert run["trigger"]["source"] == "schedule"
        assert datetime.fromisoformat(run["trigger"]["scheduled_for"]) == first
        assert wait_for_run(client, run["run_id"])["status"] == "success"
        ticks = client.get("/schedule").json()["recent_ticks"]
        assert ticks[-1]["run_id"] == run["run_id"] and ticks[-1]["outcome"] == f"started run {run['run_id']}"


def test_a_tick_fires_once_across_processes_and_is_skipped_while_a_run_is_active(database):
    migrate(database)
    started: list[dict] = []
    handles: list[lock.RunHandle] = []  # kept open: each holds the run lock like a running job

    def trigger(info: dict) -> int:
        handles.append(lock.start_run(database, info, step_names("default")))
        started.append({"run_id": handles[-1].run_id, **info})
        return handles[-1].run_id

    a = scheduler.Scheduler(database, "*/5 * * * *", "UTC", trigger)
    b = scheduler.Scheduler(database, "*/5 * * * *", "UTC", trigger)
    tick = datetime(2030, 1, 1, 12, 5, tzinfo=timezone.utc)
    first = a.fire(tick)
    assert first is not None and b.fire(tick) is None and a.fire(tick) is None
    assert len(started) == 1 and started[0]["source"] == "schedule"
    # the run of that tick is still active (its handle holds the lock): the next tick is skipped, not queued
    assert b.fire(tick + timedelta(minutes=5)) is None
    ticks = scheduler.recent_ticks(database)
    assert [t["outcome"] for t in ticks] == [f"skipped: run {first} is already in progress", f"started run {first}"]
    assert len(started) == 1
    for handle in handles:
        handle.release()


def test_schedule_off_and_time_zone(settings, database):
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        assert client.get("/schedule").json() == {"schedule": None, "timezone": "UTC", "next": [], "recent_ticks": []}
    after = datetime(2030, 3, 30, 12, 0, tzinfo=timezone.utc)
    berlin = scheduler.next_times("30 2 * * *", "Europe/Berlin", 2, after=after)
    # 02:30 does not exist on 2030-03-31 in Berlin (DST starts); croniter skips or shifts it, never invents UTC
    assert all(t.tzinfo is not None and str(t.tzinfo) == "Europe/Berlin" for t in berlin)
    assert berlin[0].hour in (2, 3) and berlin[0] > after


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "every minute", "* * * * * *"])
def test_a_bad_schedule_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="5-field cron expression"):
        Settings(schedule=bad)
    with pytest.raises(ValueError, match="not a known time zone"):
        Settings(schedule_tz="Mars/Olympus")
