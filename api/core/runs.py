"""Run history in Postgres (schema `ops`) and the lock that lets only one run execute at a time.

One run at a time, across any number of API processes on one database, is enforced with a session-level
advisory lock (RUN_LOCK) held for the whole run by a connection dedicated to that run. Triggers serialise on
a transaction-level lock (TRIGGER_LOCK), so "is a run active?" and "insert the new run" are one step, and a
refused trigger always sees the run that holds the lock. A run row left `queued`/`running` while nobody
holds RUN_LOCK belongs to a dead process: it is marked failed ("interrupted").
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
STEP_NAMES = ("seed", "run", "test", "publish", "docs")
#: How long a run keeps trying to reach Postgres again to record its state (e.g. across a restart).
RECONNECT_TIMEOUT = 60.0

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
create index if not exists runs_active on ops.runs (status) where status in ('queued', 'running');
-- added after the first release: cancelling (columns, and the 'cancelled' status)
alter table ops.runs add column if not exists cancel_requested_at timestamptz;
alter table ops.runs add column if not exists cancel_reason text;
alter table ops.runs drop constraint if exists runs_status_check;
alter table ops.runs add constraint runs_status_check
    check (status in ('queued', 'running', 'success', 'failed', 'cancelled'));
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


def get_run(db: Database, run_id: int) -> dict[str, Any] | None:
    with _connect(db) as conn:
        return conn.execute(f"select {_COLUMNS} from ops.runs where run_id = %s", (run_id,)).fetchone()  # noqa: S608


def list_runs(db: Database, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    with _connect(db) as conn:
        rows = conn.execute(
            f"select {_COLUMNS} from ops.runs order by run_id desc limit %s offset %s",  # noqa: S608
            (limit, offset),
        ).fetchall()
        total = conn.execute("select count(*) as n from ops.runs").fetchone()["n"]
    return rows, total


def active_run_id(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "select run_id from ops.runs where status in ('queued', 'running') order by run_id desc limit 1"
    ).fetchone()
    return None if row is None else row["run_id"]


class RunNotFound(Exception):
    """No run has this id."""


class RunFinished(Exception):
    """The run has already ended; `status` says how."""

    def __init__(self, run_id: int, status: str) -> None:
        super().__init__(f"run {run_id} has already finished ({status}); only a queued or running run can be cancelled")
        self.status = status


def request_cancel(db: Database, run_id: int, reason: str) -> dict[str, Any]:
    """Ask for an active run to be cancelled (from any process; the one running it acts within a second).
    The first request's reason is kept. Raises RunNotFound, or RunFinished for a run that has ended."""
    with _connect(db) as conn:
        row = conn.execute(
            "update ops.runs set cancel_requested_at = coalesce(cancel_requested_at, now()),"
            " cancel_reason = coalesce(cancel_reason, %s)"
            " where run_id = %s and status in ('queued', 'running') returning run_id",
            (reason, run_id),
        ).fetchone()
    if row is None:
        found = get_run(db, run_id)
        if found is None:
            raise RunNotFound(f"run {run_id} not found")
        raise RunFinished(run_id, found["status"])
    return get_run(db, run_id)


def cancel_reason(conn: psycopg.Connection, run_id: int) -> str | None:
    """Why the run was asked to stop, or None while nobody asked."""
    row = conn.execute(
        "select cancel_reason from ops.runs where run_id = %s and cancel_requested_at is not null", (run_id,)
    ).fetchone()
    return None if row is None else (row[0] if isinstance(row, tuple) else row["cancel_reason"])


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


class RunHandle:
    """A run that this process owns: it holds RUN_LOCK on `conn` until `release()`."""

    def __init__(self, db: Database, conn: psycopg.Connection, run_id: int) -> None:
        self.db = db
        self.conn = conn
        self.run_id = run_id

    def update(self, *, retry_for: float = RECONNECT_TIMEOUT, **fields: Any) -> None:
        """Write fields of the run row. Survives a lost connection (e.g. Postgres restarted mid-run) by
        reconnecting, for up to `retry_for` seconds, so the outcome of the run is still recorded."""
        if not fields:
            return
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
                self.conn = _connect(self.db)
                break
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        # Take the lock again if it is free, so no other run starts while this one records its end.
        self.conn.execute("select pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, RUN_LOCK))

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
    conn = _connect(db)
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
