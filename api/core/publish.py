"""Write-audit-publish: a run builds into schemas of its own (`raw__build`, `marts__build`, ...), and only a run
whose every step passed is published, by renaming its schemas over the published ones in one transaction.

Readers of `marts.user_features` never see a missing or half-built table: until the commit they resolve the
old schema, after it the new one, and the old tables are dropped afterwards (DROP waits for readers that still
hold them). Views keep pointing at the right tables because they bind to tables, not names.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

#: The schemas dbt builds per run, and which a publish swaps in together (dependency order).
BUILD_SCHEMAS = ("raw", "staging", "intermediate", "marts")
#: Every run builds into `raw__build`, ...: one suffix, so that one parsed dbt manifest serves every run.
BUILD_SUFFIX = "__build"
_LEFTOVER = re.compile(r"^(raw|staging|intermediate|marts)__(build|r\d+|retired_r\d+)$")


def retired_suffix(run_id: int) -> str:
    """What the schemas replaced by run `run_id`'s publish are renamed to, until they are dropped."""
    return f"__retired_r{run_id}"


def _existing(conn: psycopg.Connection) -> set[str]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return {r[0] for r in cur.execute("select nspname from pg_namespace").fetchall()}


def publish(conn: psycopg.Connection, suffix: str, retired: str) -> None:
    """Make the `*{suffix}` schemas the published ones, atomically, then drop what they replaced (renamed to
    `*{retired}` meanwhile)."""
    with conn.transaction():
        conn.execute("set local lock_timeout = '60s'")
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
    drop_schemas(conn, [s + retired for s in BUILD_SCHEMAS])


def drop_schemas(conn: psycopg.Connection, names: list[str]) -> None:
    for name in names:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


def drop_build(conn: psycopg.Connection, suffix: str) -> None:
    """Drop the build schemas; gives up (psycopg.errors.LockNotAvailable) rather than wait for long on a session
    that holds a lock in them."""
    with conn.transaction():
        conn.execute("set local lock_timeout = '5s'")
        drop_schemas(conn, [s + suffix for s in BUILD_SCHEMAS])


def drop_leftovers(conn: psycopg.Connection) -> list[str]:
    """Drop build and retired schemas left by runs that died (call only while holding the run lock)."""
    names = sorted(n for n in _existing(conn) if _LEFTOVER.match(n))
    drop_schemas(conn, names)
    return names
