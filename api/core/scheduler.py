"""Scheduled runs: SCHEDULE (a 5-field cron expression, read by croniter) in SCHEDULE_TZ triggers the job like
an API call, with trigger `{"source": "schedule", "scheduled_for": <tick time>}`.

The one rule: each tick fires exactly once, however many API processes share the database. Every process
computes the same tick times; at a tick each one inserts the tick time into `ops.schedule_ticks` (its primary
key) with `on conflict do nothing`, and only the process whose insert went in triggers. A tick that finds a run
active is skipped and logged (and its row says so), never queued. Ticks missed while no process ran are not
made up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from psycopg.rows import dict_row

from api.core.db.database import Database
from api.core.runs import history
from api.core.runs.lock import RunBusy

log = logging.getLogger(__name__)

#: Longest sleep between two looks at the clock (so a changed wall clock is noticed).
MAX_SLEEP = 30.0


def next_times(expression: str, tz: str, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next `count` tick times after `after` (default now), as aware datetimes in `tz`."""
    start = (after or datetime.now(timezone.utc)).astimezone(ZoneInfo(tz))
    it = croniter(expression, start)
    return [it.get_next(datetime) for _ in range(count)]


def recent_ticks(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    with db.connect(row_factory=dict_row) as conn:
        return conn.execute(
            "select scheduled_for, fired_at, worker, run_id, outcome from ops.schedule_ticks "
            "order by scheduled_for desc limit %s",
            (limit,),
        ).fetchall()


class Scheduler:
    """A thread that fires `trigger(info) -> run_id` at each tick of `expression` (raises RunBusy when
    a run is active)."""

    def __init__(self, db: Database, expression: str, tz: str, trigger: Callable[[dict[str, Any]], int]) -> None:
        self.db = db
        self.expression = expression
        self.tz = tz
        self.trigger = trigger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        log.info(
            "schedule %r (%s): next runs at %s",
            self.expression, self.tz, ", ".join(t.isoformat() for t in next_times(self.expression, self.tz, 3)),
        )  # fmt: skip

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        tick = next_times(self.expression, self.tz, 1)[0]
        while not self._stop.is_set():
            remaining = (tick - datetime.now(timezone.utc)).total_seconds()
            if remaining > 0:
                self._stop.wait(min(remaining, MAX_SLEEP))
                continue
            try:
                self.fire(tick)
            except Exception:
                log.exception("schedule: the tick of %s failed", tick.isoformat())
            tick = next_times(self.expression, self.tz, 1, after=max(tick, datetime.now(timezone.utc)))[0]

    def fire(self, tick: datetime) -> int | None:
        """Claim `tick` and trigger a run; returns the run id, or None when another process claimed the tick
        or a run was active."""
        with self.db.connect() as conn:
            claimed = conn.execute(
                "insert into ops.schedule_ticks (scheduled_for, schedule, worker) values (%s, %s, %s) "
                "on conflict (scheduled_for) do nothing returning scheduled_for",
                (tick, self.expression, history.worker_name()),
            ).fetchone()
            conn.commit()
            if claimed is None:
                log.debug("schedule: tick %s was fired by another process", tick.isoformat())
                return None
            run_id, outcome = None, None
            try:
                run_id = self.trigger({"source": "schedule", "scheduled_for": tick.isoformat()})
                outcome = f"started run {run_id}"
                log.info("schedule: tick %s started run %s", tick.isoformat(), run_id)
            except RunBusy as busy:
                outcome = f"skipped: {busy}"
                log.warning("schedule: tick %s skipped: %s", tick.isoformat(), busy)
            except Exception as exc:
                outcome = f"error: {type(exc).__name__}: {exc}"
                raise
            finally:
                conn.execute(
                    "update ops.schedule_ticks set run_id = %s, outcome = %s where scheduled_for = %s",
                    (run_id, outcome, tick),
                )
                conn.commit()
            return run_id
