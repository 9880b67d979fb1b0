"""Run history: the rows of `ops.runs`, one per triggered run, read and written by any API process.

The one rule: the row is the truth about a run, for every process on the database. A cancel, too, is a request
written into the row (`cancel_requested_at`, `cancel_reason`), so that any process can cancel any run; only the
process executing it acts on it (api/core/job/control.py). Who may insert a run, and when, is the lock's
business (api/core/runs/lock.py).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.core.db.database import Database
from api.core.db.locks import LOCK_CLASS

ACTIVE = ("queued", "running")  # the statuses of a run that holds, or is about to hold, RUN_LOCK
STATUSES = (*ACTIVE, "success", "failed", "cancelled")
#: The columns written as JSON.
JSON_COLUMNS = frozenset({"steps", "progress", "trigger", "failures", "input_problems", "retry"})

_COLUMNS = (
    "run_id, status, trigger, created_at, started_at, finished_at, steps, progress, error, failures, "
    "log_path, dbt_pid, worker, cancel_requested_at, cancel_reason, input_problems, waiting, retry"
)


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


def connect(db: Database) -> psycopg.Connection:
    """A connection whose rows are dicts (the history's own writes)."""
    return db.connect(row_factory=dict_row)


def worker_name() -> str:
    """Who executes a run: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def initial_steps(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"name": n, "status": "pending", "started_at": None, "finished_at": None, "exit_code": None} for n in names]


def get_run(db: Database, run_id: int) -> dict[str, Any] | None:
    with db.reading() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select {_COLUMNS} from ops.runs where run_id = %s", (run_id,)).fetchone()  # noqa: S608


def list_runs(
    db: Database, limit: int, offset: int, *, statuses: tuple[str, ...] | None = None, oldest_first: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """A page of runs, newest first (or oldest first), only those with one of `statuses` if given; and how
    many there are in all."""
    where = "where status = any(%(statuses)s)" if statuses is not None else ""
    order = "asc" if oldest_first else "desc"
    params = {"statuses": list(statuses or ()), "limit": limit, "offset": offset}
    with db.reading() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"select {_COLUMNS} from ops.runs {where} order by run_id {order} limit %(limit)s offset %(offset)s",  # noqa: S608
            params,
        ).fetchall()
        total = cur.execute(f"select count(*) as n from ops.runs {where}", params).fetchone()["n"]  # noqa: S608
    return rows, total


def insert_run(
    conn: psycopg.Connection, trigger: dict[str, Any], step_names: tuple[str, ...], *, waiting: bool = False
) -> int:
    """A new `queued` run (on `conn`, a dict-row connection, in the caller's transaction); returns its id.
    `waiting`: it waits for the active run to end (api/core/runs/queue.py)."""
    return conn.execute(
        "insert into ops.runs (status, trigger, steps, worker, waiting) values ('queued', %s, %s, %s, %s) "
        "returning run_id",
        (json.dumps(trigger), json.dumps(initial_steps(step_names)), worker_name(), waiting),
    ).fetchone()["run_id"]


def update_run(conn: psycopg.Connection, run_id: int, fields: dict[str, Any]) -> None:
    """Write `fields` (column name -> value) of the run's row."""
    sets = ", ".join(f"{k} = %s" for k in fields)
    values = [json.dumps(v) if k in JSON_COLUMNS else v for k, v in fields.items()]
    conn.execute(f"update ops.runs set {sets} where run_id = %s", (*values, run_id))  # noqa: S608 - our column names


def request_cancel(db: Database, run_id: int, reason: str) -> dict[str, Any]:
    """Ask for an active run to be cancelled (from any process); returns the run row.

    The first request wins: a second one keeps the first reason. The process executing the run polls the row,
    stops dbt and records the run `cancelled` with `cancel_reason` as its error."""
    with connect(db) as conn, conn.transaction():
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


def cancel_reason(conn: psycopg.Connection, run_id: int) -> str | None:
    """Why the run was asked to stop, or None while nobody asked (`conn` returns tuples, as Database.connect)."""
    row = conn.execute(
        "select cancel_reason from ops.runs where run_id = %s and cancel_requested_at is not null", (run_id,)
    ).fetchone()
    return None if row is None else row[0]


def active_run_id(conn: psycopg.Connection) -> int | None:
    """The run that holds (or is about to hold) RUN_LOCK: not one waiting in the queue for it."""
    row = conn.execute(
        "select run_id from ops.runs where status in ('queued', 'running') and not waiting order by run_id desc limit 1"
    ).fetchone()
    return None if row is None else row["run_id"]


def mark_interrupted(conn: psycopg.Connection) -> list[int]:
    """Record every queued or running run as failed (`interrupted`): call only while nobody holds RUN_LOCK,
    when such runs belong to a process that died. Runs waiting in the queue are the queue's business."""
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
        where status in ('queued', 'running') and not waiting
        returning run_id
        """
    ).fetchall()
    return [r["run_id"] for r in rows]


def first_waiting(conn: psycopg.Connection) -> int | None:
    """The oldest run waiting in the queue (api/core/runs/queue.py), or None."""
    row = conn.execute(
        "select run_id from ops.runs where waiting and status = 'queued' order by run_id limit 1"
    ).fetchone()
    return None if row is None else row["run_id"]


def mark_dead_waiting(conn: psycopg.Connection, exclude: int | None = None) -> list[int]:
    """Record as failed (`interrupted`) every waiting run whose process died: nobody holds its queue lock
    (api/core/db/locks.py queue_key). `exclude`: the caller's own waiting run (its session holds that lock, and an
    advisory lock is re-entrant within a session). Call inside a transaction: the probing locks end with it."""
    rows = conn.execute(
        """
        update ops.runs
        set status = 'failed', waiting = false, finished_at = now(),
            error = 'interrupted: the process that queued it stopped before the run could start'
                    || coalesce(' (' || worker || ')', ''),
            steps = (
                select coalesce(jsonb_agg(s || '{"status": "skipped"}'::jsonb order by ord), '[]'::jsonb)
                from jsonb_array_elements(steps) with ordinality as t(s, ord)
            )
        where waiting and status = 'queued' and run_id is distinct from %s
          and pg_try_advisory_xact_lock((%s::bigint << 32) | run_id)
        returning run_id
        """,
        (exclude, LOCK_CLASS),
    ).fetchall()
    return [r["run_id"] for r in rows]


def finish_waiting(conn: psycopg.Connection, run_id: int, status: str, error: str) -> None:
    """A waiting run that ends before it started (cancelled, or its API stopped): every step skipped."""
    conn.execute(
        """
        update ops.runs
        set status = %s, error = %s, waiting = false, finished_at = now(),
            steps = (
                select coalesce(jsonb_agg(s || '{"status": "skipped"}'::jsonb order by ord), '[]'::jsonb)
                from jsonb_array_elements(steps) with ordinality as t(s, ord)
            )
        where run_id = %s and waiting
        """,
        (status, error, run_id),
    )


def prune(db: Database, keep: int) -> int | None:
    """Delete finished runs older than the newest `keep`; returns the oldest run id kept (None: nothing to do)."""
    with connect(db) as conn:
        row = conn.execute(
            "select run_id from ops.runs order by run_id desc offset %s limit 1", (max(keep, 1) - 1,)
        ).fetchone()
        if row is None:
            return None
        conn.execute("delete from ops.runs where run_id < %s and status not in ('queued', 'running')", (row["run_id"],))
        return row["run_id"]


def ops_exists(conn: psycopg.Connection) -> bool:
    """True once the `ops` schema has been created (by an API start-up) on this database."""
    row = conn.execute("select to_regclass('ops.runs') is not null as ok").fetchone()
    return bool(row[0] if isinstance(row, tuple) else row["ok"])
