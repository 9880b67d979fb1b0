"""Reading the published features mart (`marts.user_features`), as JSON-ready rows or streamed as CSV.

Every read also says which version of the mart it read (MartVersion: the table's oid, which changes with every
build, and the run id that publish.py wrote into the table's comment), taken from the rows themselves
(`tableoid`), so an ETag never names a different table than the rows it comes with.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from api.core.db.database import Database
from api.core.mart.contract import MART
from api.core.mart.publish import PUBLISHED_LINE

#: Rows fetched per round trip when streaming (the server-side cursor keeps the rest).
CSV_BATCH = 1000


class MartNotReady(Exception):
    """The mart has not been published yet."""


@dataclass(frozen=True)
class MartVersion:
    table_oid: int
    run_id: int | None  # None: built outside an API run (e.g. scripts/dbt.sh build)

    @property
    def etag(self) -> str:
        return f'"mart-{self.run_id or 0}-{self.table_oid}"'


def _version_of(conn: psycopg.Connection, table_oid: int) -> MartVersion:
    comment = conn.execute("select obj_description(%s::oid, 'pg_class')", (table_oid,)).fetchone()[0]
    match = PUBLISHED_LINE.search(comment or "")
    return MartVersion(table_oid=table_oid, run_id=int(match[1]) if match else None)


def version(db: Database) -> MartVersion:
    """The version of the published mart, right now (raises MartNotReady)."""
    with db.reading() as conn:
        oid = conn.execute("select to_regclass(%s)::oid::bigint", (MART,)).fetchone()[0]
        if oid is None:
            _check(conn)
        return _version_of(conn, oid)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _check(conn) -> None:
    if conn.execute("select to_regclass(%s) is not null", (MART,)).fetchone()[0] is False:
        raise MartNotReady(
            "the features mart has not been built yet: trigger a run (POST /trigger) and wait for it to succeed"
        )


def read_features(db: Database, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the mart ordered by user_id, and the total row count (from the same table)."""
    rows, total, _ = read_features_page(db, limit, offset)
    return rows, total


def read_features_page(db: Database, limit: int, offset: int) -> tuple[list[dict[str, Any]], int, MartVersion]:
    """A page of the mart ordered by user_id, the total row count and the version, all from the same table."""
    with db.reading() as conn:
        _check(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            # One statement, so the page and the total come from the same published table even if a run
            # publishes a new one in between.
            cur.execute(
                f"select *, count(*) over () as _total, tableoid::bigint as _oid from {MART} "  # noqa: S608
                "order by user_id limit %s offset %s",
                (limit, offset),
            )
            rows = cur.fetchall()
            if rows:
                total, found = rows[0]["_total"], _version_of(conn, rows[0]["_oid"])
            else:
                counted = cur.execute(
                    f"select count(*) as n, %s::regclass::oid::bigint as oid from {MART}",  # noqa: S608
                    (MART,),
                ).fetchone()
                total, found = counted["n"], _version_of(conn, counted["oid"])
    return [_plain({k: v for k, v in r.items() if k not in ("_total", "_oid")}) for r in rows], total, found


def read_feature_versioned(db: Database, user_id: int) -> tuple[dict[str, Any] | None, MartVersion]:
    with db.reading() as conn:
        _check(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"select *, tableoid::bigint as _oid from {MART} where user_id = %s",  # noqa: S608
                (user_id,),
            ).fetchone()
            if row is None:
                return None, _version_of(conn, conn.execute("select %s::regclass::oid::bigint", (MART,)).fetchone()[0])
            found = _version_of(conn, row.pop("_oid"))
    return _plain(row), found


#: A text cell beginning with one of these is read as a formula by spreadsheets (`=HYPERLINK(...)`, `@SUM(...)`):
#: it is written with a leading `'` (OWASP's rule for CSV injection). Numbers and dates are never text here.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_value(value: Any) -> str:
    """How a mart value is written in CSV: as in the JSON (numbers the same), dates ISO, arrays `;`-separated
    (like experiment_compound_ids in the input), null empty; text that a spreadsheet would run as a formula
    gets a leading `'` (the JSON keeps the value as it is)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return repr(float(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(csv_value(v) for v in value)
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_STARTS) else text


def stream_csv(db: Database) -> tuple[MartVersion, Iterator[str]]:
    """The whole mart as CSV text chunks (header first, ordered by user_id), read through a server-side
    cursor CSV_BATCH rows at a time, so memory stays flat whatever the size. The first batch is read before
    returning, so the version (for the headers) is that of the rows streamed. Iterate the chunks to the end
    or close the iterator: it holds a connection."""
    conn = db.connect(autocommit=False)
    try:
        _check(conn)
        cur = conn.cursor(name="features_csv", row_factory=tuple_row)  # named: a server-side cursor
        cur.execute(f"select tableoid::bigint, * from {MART} order by user_id")  # noqa: S608
        first = cur.fetchmany(CSV_BATCH)
        header = [d.name for d in cur.description][1:]
        oid = first[0][0] if first else conn.execute("select %s::regclass::oid::bigint", (MART,)).fetchone()[0]
        found = _version_of(conn, oid)
    except BaseException:
        conn.close()
        raise

    def chunks() -> Iterator[str]:
        try:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            rows = first
            while rows:
                writer.writerows([csv_value(v) for v in row[1:]] for row in rows)
                yield out.getvalue()
                out.seek(0)
                out.truncate()
                rows = cur.fetchmany(CSV_BATCH)
            if out.tell():
                yield out.getvalue()
        finally:
            conn.close()

    return found, chunks()
