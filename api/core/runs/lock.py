"""The run lock: one run at a time, across any number of API processes on one database.

A session-level advisory lock (RUN_LOCK) is held for the whole run by a connection dedicated to that run.
Triggers serialise on a transaction-level lock (TRIGGER_LOCK), so "is a run active?" and "insert the new run"
are one step, and a refused trigger always sees the run that holds the lock. A run row left `queued`/`running`
while nobody holds RUN_LOCK belongs to a dead process: it is marked failed ("interrupted").

The one rule: a run that lost its lock stops. A run whose connection broke reconnects and takes RUN_LOCK back;
if another session took it meanwhile, the run has lost it for good (LockLost): it stops, publishes nothing, and
is recorded failed. The lock's connection has TCP keepalives (both ends) so that the lock of a vanished host is
freed within about a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.core.db.database import Database
from api.core.db.locks import LOCK_CLASS, RUN_LOCK, TRIGGER_LOCK
from api.core.runs import history

#: How long a run keeps trying to reach Postgres again to record its state (e.g. across a restart).
RECONNECT_TIMEOUT = 60.0
#: The lock connection notices a dead peer within ~30 s, client side (libpq) and server side (these GUCs), so a
#: vanished API host's lock is released by the server in about a minute instead of the kernel's two hours.
LOCK_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
                   "tcp_user_timeout": 30000}  # fmt: skip
_SERVER_KEEPALIVES = (
    "set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 3; "
    "set tcp_user_timeout = 30000"
)
#: How long a refused trigger waits for the lock holder's run row to show (a run that has just recorded its
#: end holds the lock for a moment more; a direct dbt command holds it with no row at all).
BUSY_GRACE = 1.0


class RunBusy(Exception):
    """Another run is queued or running."""

    def __init__(self, active_run_id: int | None, *, queued: bool = False) -> None:
        super().__init__(
            f"run {active_run_id} is {'queued, to start before any new run' if queued else 'already in progress'}"
            if active_run_id is not None
            else "a dbt command (scripts/dbt.sh) is writing to the database"
        )
        self.active_run_id = active_run_id


class LockLost(Exception):
    """This run's connection broke and another session took RUN_LOCK meanwhile: the run must stop."""


def lock_connect(db: Database) -> psycopg.Connection:
    """A connection to hold RUN_LOCK on: keepalives on both ends."""
    conn = db.connect(row_factory=dict_row, **LOCK_KEEPALIVES)
    conn.execute(_SERVER_KEEPALIVES)
    return conn


def try_run_lock(conn: psycopg.Connection) -> bool:
    return conn.execute("select pg_try_advisory_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()["got"]


def holds_run_lock(conn: psycopg.Connection) -> bool:
    """True when this connection's session holds RUN_LOCK (asked of the server, not remembered)."""
    row = conn.execute(
        "select exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() "
        "and granted and classid::bigint = %s and objid::bigint = %s and objsubid = 2)",
        (LOCK_CLASS, RUN_LOCK),
    ).fetchone()
    return bool(row[0] if isinstance(row, tuple) else next(iter(row.values())))


class RunHandle:
    """A run that this process owns: it holds RUN_LOCK on `conn` until `release()`, unless `lock_lost` says
    why it lost it."""

    def __init__(self, db: Database, conn: psycopg.Connection, run_id: int) -> None:
        self.db = db
        self.conn = conn
        self.run_id = run_id
        self.lock_lost: str | None = None

    def update(self, *, retry_for: float = RECONNECT_TIMEOUT, final: bool = False, **fields: Any) -> None:
        """Write fields of the run row. Survives a lost connection (e.g. Postgres restarted mid-run) by
        reconnecting, for up to `retry_for` seconds, so the outcome of the run is still recorded.

        Raises LockLost (after writing) once the run has lost RUN_LOCK, unless `final` (recording the end)."""
        if fields:
            try:
                history.update_run(self.conn, self.run_id, fields)
            except psycopg.OperationalError:
                self._reconnect(retry_for)
                history.update_run(self.conn, self.run_id, fields)
        if self.lock_lost and not final:
            raise LockLost(self.lock_lost)

    def _reconnect(self, retry_for: float) -> None:
        with suppress(psycopg.Error):
            self.conn.close()
        deadline = time.monotonic() + retry_for
        while True:  # a restarting server refuses connections for a moment
            try:
                self.conn = lock_connect(self.db)
                break
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        # Take the lock back. If another session holds it now, a second run may be on its way: this one stops.
        if not try_run_lock(self.conn) and self.lock_lost is None:
            holder = history.active_run_id(self.conn)
            self.lock_lost = (
                f"run {self.run_id} lost the run lock: its database connection broke and "
                f"{f'run {holder}' if holder not in (None, self.run_id) else 'another session'} took the lock "
                "meanwhile; this run stopped and published nothing"
            )

    def release(self) -> None:
        try:
            self.conn.execute("select pg_advisory_unlock_all()")
        except psycopg.Error:
            pass  # a dead connection has released its locks already
        finally:
            self.conn.close()


def start_run(db: Database, trigger: dict[str, Any], step_names: tuple[str, ...]) -> RunHandle:
    """Insert a new `queued` run with these steps and take RUN_LOCK for it, or raise RunBusy naming the active
    run."""
    deadline = time.monotonic() + BUSY_GRACE
    while True:
        try:
            return _start_run(db, trigger, step_names)
        except RunBusy as busy:
            if busy.active_run_id is not None or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _start_run(db: Database, trigger: dict[str, Any], step_names: tuple[str, ...]) -> RunHandle:
    conn = lock_connect(db)
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
            if not try_run_lock(conn):
                raise RunBusy(history.active_run_id(conn))
            if history.active_run_id(conn) is not None:  # left behind by a dead process: nobody held the lock
                history.mark_interrupted(conn)
            history.mark_dead_waiting(conn)
            waiting = history.first_waiting(conn)
            if waiting is not None:  # queued runs go first (api/core/runs/queue.py); closing conn frees RUN_LOCK
                raise RunBusy(waiting, queued=True)
            run_id = history.insert_run(conn, trigger, step_names)
    except BaseException:
        conn.close()
        raise
    return RunHandle(db, conn, run_id)


def recover_interrupted(db: Database) -> list[int]:
    """Mark runs orphaned by a dead process as failed. Runs of live processes (lock held) are left alone."""
    with history.connect(db) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
        dead = history.mark_dead_waiting(conn)
        got = conn.execute("select pg_try_advisory_xact_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()
        if not got["got"]:
            return dead
        return dead + history.mark_interrupted(conn)


@contextmanager
def run_lock(db: Database) -> Iterator[psycopg.Connection]:
    """Hold RUN_LOCK for work outside the API (scripts/dbt.sh), or raise RunBusy."""
    with history.connect(db) as conn:
        if not try_run_lock(conn):
            raise RunBusy(history.active_run_id(conn) if history.ops_exists(conn) else None)
        try:
            yield conn
        finally:
            conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, RUN_LOCK))
