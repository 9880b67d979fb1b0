"""Reading the published features mart (`marts.user_features`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from api.core.database import Database

MART = "marts.user_features"


class MartNotReady(Exception):
    """The mart has not been published yet."""


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _check(conn) -> None:
    if conn.execute("select to_regclass(%s) is not null", (MART,)).fetchone()[0] is False:
        raise MartNotReady(
            "the features mart has not been built yet: trigger a run (POST /trigger) and wait for it to succeed"
        )


def read_features(db: Database, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the mart ordered by user_id, and the total row count (from the same table)."""
    with db.connect() as conn:
        _check(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            # One statement, so the page and the total come from the same published table even if a run
            # publishes a new one in between.
            cur.execute(
                f"select *, count(*) over () as _total from {MART} order by user_id limit %s offset %s",  # noqa: S608
                (limit, offset),
            )
            rows = cur.fetchall()
            total = rows[0]["_total"] if rows else cur.execute(f"select count(*) as n from {MART}").fetchone()["n"]  # noqa: S608
    return [_plain({k: v for k, v in r.items() if k != "_total"}) for r in rows], total


def read_feature(db: Database, user_id: int) -> dict[str, Any] | None:
    with db.connect() as conn:
        _check(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"select * from {MART} where user_id = %s", (user_id,)).fetchone()  # noqa: S608
    return None if row is None else _plain(row)
