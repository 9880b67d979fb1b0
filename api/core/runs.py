"""Run history in Postgres (schema `ops`) and the lock that lets only one run execute at a time.

One run at a time, across any number of API processes on one database, is enforced with a session-level
advisory lock (RUN_LOCK) held for the whole run by a connection dedicated to that run. Triggers serialise on
a transaction-level lock (TRIGGER_LOCK), so "is a run active?" and "insert the new run" are one step, and a
refused trigger always sees the run that holds the lock. A run row left `queued`/`running` while nobody
holds RUN_LOCK belongs to a dead process: it is marked failed ("interrupted").

Cancelling is a request written to the run's row (`cancel_requested_at`, `cancel_reason`), so any process on
the database can cancel any run; the process executing the run notices it and ends the run `cancelled`.
A run whose connection broke reconnects and takes RUN_LOCK back; if another session took it meanwhile, the
run has lost it for good (LockLost): it stops, publishes nothing, and is recorded failed. The lock's
connection has TCP keepalives (both ends) so that the lock of a vanished host is freed within about a minute.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.core.database import Database

LOCK_CLASS = 0x46454154  # "FEAT": the advisory-lock namespace of this product
TRIGGER_LOCK = 1
RUN_LOCK = 2
ACTIVE = ("queued", "running")  # the statuses of a run that holds, or is about to hold, RUN_LOCK
STATUSES = (*ACTIVE, "success", "failed", "cancelled")
STEP_NAMES = ("seed", "run", "test", "publish", "docs")
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

_DDL = """
create schema if not exists ops;
create table if not exists ops.runs (
    run_id bigint generated always as identity primary key,
    status text not null,
    trigger jsonb not null default '{}',
    created_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz,
    steps jsonb not null default '[]',
    progress jsonb,
    error text,
    failures jsonb,
    log_path text,
    dbt_pid integer,
    worker text
);
-- Added after the first release: existing databases get them here.
alter table ops.runs add column if not exists cancel_requested_at timestamptz;
alter table ops.runs add column if not exists cancel_reason text;
do $$
begin
    if not exists (select from pg_constraint where conrelid = 'ops.runs'::regclass and conname = 'runs_status_check'
                   and pg_get_constraintdef(oid) like '%cancelled%') then
        alter table ops.runs drop constraint if exists runs_status_check;
        alter table ops.runs add constraint runs_status_check
            check (status in ('queued', 'running', 'success', 'failed', 'cancelled'));
    end if;
end $$;
create index if not exists runs_active on ops.runs (status) where status in ('queued', 'running');
comment on table ops.runs is 'One row per triggered run of the features-mart job (written by the API).';
"""

_COLUMNS = (
    "run_id, status, trigger, created_at, started_at, finished_at, steps, progress, error, failures, "
    "log_path, dbt_pid, worker, cancel_requested_at, cancel_reason"
)


def ensure_schema(db: Database) -> None:
    with db.connect() as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
        conn.execute(_DDL)


def _connect(db: Database) -> psycopg.Connection:
    return db.connect(row_factory=dict_row)


def _lock_connect(db: Database) -> psycopg.Connection:
    """A connection to hold RUN_LOCK on: keepalives on both ends."""
    conn = db.connect(row_factory=dict_row, **LOCK_KEEPALIVES)
    conn.execute(_SERVER_KEEPALIVES)
    return conn


def holds_run_lock(conn: psycopg.Connection) -> bool:
    """True when this connection's session holds RUN_LOCK (asked of the server, not remembered)."""
    row = conn.execute(
        "select exists (select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() "
        "and granted and classid::bigint = %s and objid::bigint = %s and objsubid = 2)",
        (LOCK_CLASS, RUN_LOCK),
    ).fetchone()
    return bool(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def get_run(db: Database, run_id: int) -> dict[str, Any] | None:
    with db.reading() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select {_COLUMNS} from ops.runs where run_id = %s", (run_id,)).fetchone()  # noqa: S608


def list_runs(db: Database, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    with db.reading() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"select {_COLUMNS} from ops.runs order by run_id desc limit %s offset %s",  # noqa: S608
            (limit, offset),
        ).fetchall()
        total = cur.execute("select count(*) as n from ops.runs").fetchone()["n"]
    return rows, total


class RunNotFound(Exception):
    """No run has this id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} not found")
        self.run_id = run_id


class RunFinished(Exception):
    """The run has already ended: there is nothing to cancel."""

    def __init__(self, run_id: int, status: str) -> None:
        super().__init__(f"run {run_id} has already finished ({status}): only a queued or running run can be cancelled")
        self.run_id = run_id
        self.status = status


def request_cancel(db: Database, run_id: int, reason: str) -> dict[str, Any]:
    """Ask for an active run to be cancelled (from any process); returns the run row.

    The first request wins: a second one keeps the first reason. The process executing the run polls the row,
    stops dbt and records the run `cancelled` with `cancel_reason` as its error."""
    with _connect(db) as conn, conn.transaction():
        row = conn.execute("select status from ops.runs where run_id = %s for update", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        if row["status"] not in ACTIVE:
            raise RunFinished(run_id, row["status"])
        conn.execute(
            "update ops.runs set cancel_requested_at = now(), cancel_reason = %s "
            "where run_id = %s and cancel_requested_at is null",
            (reason, run_id),
        )
        return conn.execute(f"select {_COLUMNS} from ops.runs where run_id = %s", (run_id,)).fetchone()  # noqa: S608


def prune(db: Database, keep: int) -> int | None:
    """Delete finished runs older than the newest `keep`; returns the oldest run id kept (None: nothing to do)."""
    with _connect(db) as conn:
        row = conn.execute(
            "select run_id from ops.runs order by run_id desc offset %s limit 1", (max(keep, 1) - 1,)
        ).fetchone()
        if row is None:
            return None
        conn.execute("delete from ops.runs where run_id < %s and status not in ('queued', 'running')", (row["run_id"],))
        return row["run_id"]


def active_run_id(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "select run_id from ops.runs where status in ('queued', 'running') order by run_id desc limit 1"
    ).fetchone()
    return None if row is None else row["run_id"]


def cancel_reason(conn: psycopg.Connection, run_id: int) -> str | None:
    """Why the run was asked to stop, or None while nobody asked (`conn` returns tuples, as Database.connect)."""
    row = conn.execute(
        "select cancel_reason from ops.runs where run_id = %s and cancel_requested_at is not null", (run_id,)
    ).fetchone()
    return None if row is None else row[0]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunBusy(Exception):
    """Another run is queued or running."""

    def __init__(self, active_run_id: int | None) -> None:
        super().__init__(
            f"run {active_run_id} is already in progress"
            if active_run_id is not None
            else "a dbt command (scripts/dbt.sh) is writing to the database"
        )
        self.active_run_id = active_run_id


class LockLost(Exception):
    """This run's connection broke and another session took RUN_LOCK meanwhile: the run must stop."""


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
            self._write(retry_for, fields)
        if self.lock_lost and not final:
            raise LockLost(self.lock_lost)

    def _write(self, retry_for: float, fields: dict[str, Any]) -> None:
        sets = ", ".join(f"{k} = %s" for k in fields)
        values = [json.dumps(v) if k in ("steps", "progress", "trigger", "failures") else v for k, v in fields.items()]
        sql = f"update ops.runs set {sets} where run_id = %s"  # noqa: S608 - keys are our own column names
        try:
            self.conn.execute(sql, (*values, self.run_id))
        except psycopg.OperationalError:
            self._reconnect(retry_for)
            self.conn.execute(sql, (*values, self.run_id))

    def _reconnect(self, retry_for: float) -> None:
        with suppress(psycopg.Error):
            self.conn.close()
        deadline = time.monotonic() + retry_for
        while True:  # a restarting server refuses connections for a moment
            try:
                self.conn = _lock_connect(self.db)
                break
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        # Take the lock back. If another session holds it now, a second run may be on its way: this one stops.
        got = self.conn.execute("select pg_try_advisory_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()
        if not got["got"] and self.lock_lost is None:
            holder = active_run_id(self.conn)
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


#: How long a refused trigger waits for the lock holder's run row to show (a run that has just recorded its
#: end holds the lock for a moment more; a direct dbt command holds it with no row at all).
BUSY_GRACE = 1.0


def start_run(db: Database, trigger: dict[str, Any]) -> RunHandle:
    """Insert a new `queued` run and take RUN_LOCK for it, or raise RunBusy naming the active run."""
    deadline = time.monotonic() + BUSY_GRACE
    while True:
        try:
            return _start_run(db, trigger)
        except RunBusy as busy:
            if busy.active_run_id is not None or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _start_run(db: Database, trigger: dict[str, Any]) -> RunHandle:
    conn = _lock_connect(db)
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
            got = conn.execute("select pg_try_advisory_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()["got"]
            if not got:
                raise RunBusy(active_run_id(conn))
            active = active_run_id(conn)
            if active is not None:  # left behind by a dead process: nobody held the lock
                _mark_interrupted(conn)
            run_id = conn.execute(
                "insert into ops.runs (status, trigger, steps, worker) values ('queued', %s, %s, %s) returning run_id",
                (json.dumps(trigger), json.dumps(initial_steps()), worker_name()),
            ).fetchone()["run_id"]
    except BaseException:
        conn.close()
        raise
    return RunHandle(db, conn, run_id)


def initial_steps(names: tuple[str, ...] = STEP_NAMES) -> list[dict[str, Any]]:
    return [{"name": n, "status": "pending", "started_at": None, "finished_at": None, "exit_code": None} for n in names]


def _mark_interrupted(conn: psycopg.Connection) -> list[int]:
    rows = conn.execute(
        """
        update ops.runs
        set status = 'failed', finished_at = now(),
            error = 'interrupted: the process running it stopped before it finished'
                    || coalesce(' (' || worker || ')', ''),
            steps = (
                select coalesce(jsonb_agg(
                    case when s->>'status' in ('running', 'pending')
                         then s || jsonb_build_object('status', case when s->>'status' = 'running'
                                                              then 'failed' else 'skipped' end)
                         else s end order by ord), '[]'::jsonb)
                from jsonb_array_elements(steps) with ordinality as t(s, ord)
            )
        where status in ('queued', 'running')
        returning run_id
        """
    ).fetchall()
    return [r["run_id"] for r in rows]


def recover_interrupted(db: Database) -> list[int]:
    """Mark runs orphaned by a dead process as failed. Runs of live processes (lock held) are left alone."""
    with _connect(db) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, TRIGGER_LOCK))
        if not conn.execute("select pg_try_advisory_xact_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()[
            "got"
        ]:
            return []
        return _mark_interrupted(conn)


@contextmanager
def run_lock(db: Database) -> Iterator[psycopg.Connection]:
    """Hold RUN_LOCK for work outside the API (scripts/dbt.sh), or raise RunBusy."""
    with _connect(db) as conn:
        if not conn.execute("select pg_try_advisory_lock(%s, %s) as got", (LOCK_CLASS, RUN_LOCK)).fetchone()["got"]:
            raise RunBusy(active_run_id(conn) if _ops_exists(conn) else None)
        try:
            yield conn
        finally:
            conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, RUN_LOCK))


def _ops_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('ops.runs') is not null as ok").fetchone()["ok"]
