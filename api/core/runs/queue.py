"""The run queue: a run asked for while another is active waits for it and starts when it ends (dbt Cloud's
semantics, for its API: api/routes/cloud_v2.py), instead of being refused as `POST /trigger` is.

A waiting run is a `queued` row of `ops.runs` with `waiting` set. The process that queued it holds the advisory
lock `queue_key(run_id)` (api/core/db/locks.py) on the run's own connection while it waits, and looks every
POLL_SECONDS: once its run is the oldest live waiting run and RUN_LOCK is free, it takes RUN_LOCK on that same
connection, clears `waiting`, and the run executes like any other (a RunHandle of api/core/runs/lock.py).

The one rule: waiting runs start in the order they were queued, before any new trigger (`start_run` refuses while
a live run waits), whichever API process queued them; a waiting run whose process died (nobody holds its queue
lock) is recorded failed by the next process that looks.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress
from typing import Any

import psycopg

from api.core.db.database import Database
from api.core.db.locks import LOCK_CLASS, TRIGGER_LOCK, queue_key
from api.core.runs import history
from api.core.runs.lock import RunHandle, lock_connect, try_run_lock

log = logging.getLogger(__name__)

#: How often a waiting run looks whether its turn has come (and whether it was cancelled).
POLL_SECONDS = 0.5
#: Its error when the API process that queued it stops first.
STOPPED = "interrupted: the API was stopped while the run waited in the queue"


class WaitingRun:
    """A run this process queued: `wait()` blocks until it may start (a RunHandle) or has ended before starting
    (None: cancelled, or this process is stopping)."""

    def __init__(self, db: Database, conn: psycopg.Connection, run_id: int) -> None:
        self.db = db
        self.conn = conn
        self.run_id = run_id
        self._stop = threading.Event()

    def stop(self) -> None:
        """The API is stopping: the run ends `failed` (interrupted) without starting."""
        self._stop.set()

    def wait(self) -> RunHandle | None:
        try:
            while True:
                if self._stop.is_set():
                    self._end("failed", STOPPED)
                    return None
                try:
                    handle = self._turn()
                except _Gone:
                    self._close()
                    return None
                except psycopg.OperationalError:
                    log.warning("run %s: the database went away while the run waited in the queue", self.run_id)
                    if not self._reconnect():
                        return None
                    continue
                if handle is not None:
                    return handle
                self._stop.wait(POLL_SECONDS)
        except BaseException:
            self._close()
            raise

    def _turn(self) -> RunHandle | None:
        """One look: cancelled (ends the run: _Gone), or its turn (takes RUN_LOCK: a handle), or not yet (None)."""
        with self.conn.transaction():  # committed before _Gone is raised: raising inside would roll the cancel back
            self.conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
            outcome = self._look()
        if outcome == "gone":
            raise _Gone
        if outcome == "wait":
            return None
        self.conn.execute("select pg_advisory_unlock(%s)", (queue_key(self.run_id),))
        return RunHandle(self.db, self.conn, self.run_id)

    def _look(self) -> str:
        """Inside the transaction holding TRIGGER_LOCK: `gone`, `wait`, or `start` (RUN_LOCK taken)."""
        row = self.conn.execute(
            "select status, waiting, cancel_reason from ops.runs where run_id = %s", (self.run_id,)
        ).fetchone()
        if row is None or row["status"] != "queued" or not row["waiting"]:
            return "gone"
        if row["cancel_reason"]:
            history.finish_waiting(self.conn, self.run_id, "cancelled", f"{row['cancel_reason']} (while queued)")
            return "gone"
        history.mark_dead_waiting(self.conn, exclude=self.run_id)
        if history.first_waiting(self.conn) != self.run_id or not try_run_lock(self.conn):
            return "wait"
        if history.active_run_id(self.conn) is not None:  # left behind by a dead process: nobody held the lock
            history.mark_interrupted(self.conn)
        history.update_run(self.conn, self.run_id, {"waiting": False})
        return "start"

    def _reconnect(self) -> bool:
        """After a broken connection: a new one holding the queue lock again, if the run still waits."""
        with suppress(psycopg.Error):
            self.conn.close()
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.conn = lock_connect(self.db)
                got = self.conn.execute("select pg_try_advisory_lock(%s) as got", (queue_key(self.run_id),))
                return bool(got.fetchone()["got"])
            except psycopg.OperationalError:
                continue
        return False

    def _end(self, status: str, error: str) -> None:
        try:
            with self.conn.transaction():
                history.finish_waiting(self.conn, self.run_id, status, error)
        except psycopg.Error:
            log.warning("run %s: could not record its end in the queue", self.run_id, exc_info=True)
        self._close()

    def _close(self) -> None:
        with suppress(psycopg.Error):
            self.conn.close()


class _Gone(Exception):
    """The waiting run ended (cancelled) or is no longer waiting."""


def enqueue(db: Database, trigger: dict[str, Any], step_names: tuple[str, ...]) -> WaitingRun:
    """Insert a run that waits for the active one (and those queued before it), holding its queue lock."""
    conn = lock_connect(db)
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
            run_id = history.insert_run(conn, trigger, step_names, waiting=True)
            conn.execute("select pg_advisory_lock(%s)", (queue_key(run_id),))
    except BaseException:
        conn.close()
        raise
    return WaitingRun(db, conn, run_id)
