"""Write-audit-publish: a run builds into schemas of its own (`raw__build`, `marts__build`, ...), and only a run
whose every step passed is published, by renaming its schemas over the published ones in one transaction.

The publishing transaction also writes the run id into the comment of `marts.user_features` (PUBLISHED_BY, as
its last line, after dbt's description of the table: `persist_docs`), so readers can tell which run built what
they read (the API's ETag and `X-Mart-Run-Id`, see read.py).

Readers of `marts.user_features` never see a missing or half-built table: until the commit they resolve the
old schema, after it the new one. Views keep pointing at the right tables because they bind to tables, not
names. The replaced schemas (`marts__retired_r42`, ...) are dropped afterwards, in the background, each try
with a short lock_timeout: a reader still inside a transaction on the old mart is never waited on (nor made
to wait); what cannot be dropped now is dropped at the next publish or start-up.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from api.core.db.database import Database
from api.core.mart.contract import MART, MART_SCHEMA, MART_TABLE
from api.core.runs.lock import LockLost, holds_run_lock

log = logging.getLogger(__name__)

#: The schemas dbt builds per run, and which a publish swaps in together (dependency order).
BUILD_SCHEMAS = ("raw", "staging", "intermediate", "marts")
#: Every run builds into `raw__build`, ...: one suffix, so that one parsed dbt manifest serves every run.
BUILD_SUFFIX = "__build"
#: The comment of the mart table, naming the run that published it.
PUBLISHED_BY = "published by features-mart run {run_id}"
#: The PUBLISHED_BY line at the end of a comment (its run id in group 1).
PUBLISHED_LINE = re.compile(r"(?:^|\n+)published by features-mart run (\d+)\s*$")
_LEFTOVER = re.compile(r"^(raw|staging|intermediate|marts)__(r\d+|build|retired_\w+)$")
_RETIRED = re.compile(r"^(raw|staging|intermediate|marts)__retired_\w+$")
#: How long one drop of a replaced schema may wait for a reader's lock before it gives up (and retries later).
DROP_LOCK_TIMEOUT = "1s"
DROP_RETRY_SECONDS = 5.0
DROP_ATTEMPTS = 60  # then the next publish, or start-up, takes over


def _existing(conn: psycopg.Connection) -> set[str]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return {r[0] for r in cur.execute("select nspname from pg_namespace").fetchall()}


def publish(
    conn: psycopg.Connection, suffix: str, retired_tag: str | None = None, run_id: int | None = None
) -> list[str]:
    """Make the `*{suffix}` schemas the published ones, atomically, on the connection that holds the run lock
    (checked inside the transaction). The replaced ones are renamed `*__retired_{retired_tag}` (unique per
    run) and returned: drop them with `drop_retired_later`, never inline. With `run_id`, the mart table's
    comment names that run (in the same transaction)."""
    retired = f"__retired_{retired_tag or suffix.lstrip('_')}"
    with conn.transaction():
        conn.execute("set local lock_timeout = '60s'")
        if not holds_run_lock(conn):
            raise LockLost("cannot publish: this run does not hold the run lock (its connection was lost)")
        existing = _existing(conn)
        missing = [s + suffix for s in BUILD_SCHEMAS if s + suffix not in existing]
        if missing:
            raise RuntimeError(f"cannot publish: build schemas {', '.join(missing)} do not exist")
        for schema in BUILD_SCHEMAS:
            if schema in existing:
                conn.execute(
                    sql.SQL("alter schema {} rename to {}").format(
                        sql.Identifier(schema), sql.Identifier(schema + retired)
                    )
                )
            conn.execute(
                sql.SQL("alter schema {} rename to {}").format(sql.Identifier(schema + suffix), sql.Identifier(schema))
            )
        if run_id is not None:
            with conn.cursor(row_factory=tuple_row) as cur:
                described = cur.execute("select obj_description(%s::regclass, 'pg_class')", (MART,)).fetchone()
            comment = published_comment(described[0] if described else None, run_id)
            conn.execute(
                sql.SQL("comment on table {} is {}").format(
                    sql.Identifier(MART_SCHEMA, MART_TABLE), sql.Literal(comment)
                )
            )
    return [s + retired for s in BUILD_SCHEMAS if s in existing]


def published_comment(description: str | None, run_id: int) -> str:
    """The mart table's comment: dbt's description (persist_docs), then the line naming the publishing run."""
    kept = PUBLISHED_LINE.sub("", description or "").rstrip()
    marker = PUBLISHED_BY.format(run_id=run_id)
    return f"{kept}\n\n{marker}" if kept else marker


def drop_schemas(conn: psycopg.Connection, names: list[str]) -> None:
    for name in names:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


def try_drop_schemas(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Drop each schema unless a reader holds a lock on it (waiting DROP_LOCK_TIMEOUT at most); returns the
    names left for later."""
    left = []
    for name in names:
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = '{DROP_LOCK_TIMEOUT}'")
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            left.append(name)
    return left


def retired_schemas(conn: psycopg.Connection) -> list[str]:
    return sorted(n for n in _existing(conn) if _RETIRED.match(n))


def drop_retired_later(db: Database) -> threading.Thread:
    """In a background thread, drop every retired schema (this run's and any left before), retrying every
    DROP_RETRY_SECONDS while a reader holds one, DROP_ATTEMPTS times."""
    attempts, interval = DROP_ATTEMPTS, DROP_RETRY_SECONDS

    def work() -> None:
        for attempt in range(attempts):
            try:
                with db.connect() as conn:
                    left = try_drop_schemas(conn, retired_schemas(conn))
            except psycopg.Error as exc:  # the database is away, or being dropped (tests): try later
                log.info("could not drop retired schemas yet: %s", exc)
                left = ["?"]
            if not left:
                return
            if attempt + 1 < attempts:
                time.sleep(interval)
        log.warning("retired schemas %s are still in use; the next publish or start-up drops them", left)

    thread = threading.Thread(target=work, name="drop-retired", daemon=True)
    thread.start()
    return thread


def drop_build(conn: psycopg.Connection, suffix: str) -> None:
    """Drop the build schemas; gives up (psycopg.errors.LockNotAvailable) rather than wait for long on a session
    that holds a lock in them."""
    with conn.transaction():
        conn.execute("set local lock_timeout = '5s'")
        drop_schemas(conn, [s + suffix for s in BUILD_SCHEMAS])


def drop_leftovers(conn: psycopg.Connection) -> list[str]:
    """Drop build and retired schemas left by runs that died (call only while holding the run lock); a schema
    a reader still holds is skipped. Returns the names dropped."""
    names = sorted(n for n in _existing(conn) if _LEFTOVER.match(n))
    left = try_drop_schemas(conn, names)
    return [n for n in names if n not in left]
