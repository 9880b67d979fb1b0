"""The Spark engine (DBT_TARGET=spark): moving the tested mart from Spark to Postgres.

Spark does the heavy work (seed, run, test); Postgres stays the serving and run-history store. After the
Spark tests pass, `dbt run-operation export_user_features` makes Spark write the mart as CSV files, and
`load_into_postgres` COPYs them into the Postgres build schema, streaming file chunks: the mart is never
held in memory, neither here nor in dbt. The usual publish step then swaps the build schemas in.

The one rule it keeps: the Postgres copy has exactly the columns and types of the mart dbt builds on Postgres
(the dbt contract's columns, api/core/mart/contract.py; checked by tests/dbt/test_spark.py against a Postgres
build), so `/features`, SQL readers and the publish swap cannot tell which engine built it.

On Spark, dbt builds in place (no schema suffix): Spark is the work area, not a published store; the
write-audit-publish of the reliability section happens on the Postgres side. Postgres gets the mart only:
its raw, staging and intermediate build schemas are created empty (the publish swaps all four together),
with a comment saying where the tables are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from api.core.mart.contract import MART_SCHEMA, MART_TABLE, mart_columns
from api.core.mart.publish import BUILD_SCHEMAS

_CHUNK = 1 << 20


def export_args(export_dir: Path) -> list[str]:
    """The dbt command that makes Spark write the mart as CSV part files into `export_dir` (replaced)."""
    return ["run-operation", "export_user_features", "--args", json.dumps({"path": str(export_dir.resolve())})]


#: The line the export macro logs (dbt_project/macros/spark/export_user_features.sql): the mart's count(*) on
#: Spark, counted by the driver, so it does not depend on where the executors wrote the files.
EXPORTED = re.compile(r"^exported (\d+) rows of ")


class ExportError(RuntimeError):
    """The export cannot be trusted: missing, incomplete, or not the mart's row count. Nothing is loaded."""


def exported_rows(message: str) -> int | None:
    """The mart's row count on Spark, from one message of the export command (None: another message)."""
    found = EXPORTED.match(message)
    return int(found.group(1)) if found else None


def exported_files(export_dir: Path) -> list[Path]:
    """The CSV part files of a complete export (Spark writes `_SUCCESS` last)."""
    if not (export_dir / "_SUCCESS").exists():
        raise ExportError(f"the mart export in {export_dir} is incomplete (no _SUCCESS file from Spark)")
    return sorted(p for p in export_dir.iterdir() if p.name.startswith("part-"))


def _chunks(files: Iterable[Path]) -> Iterable[bytes]:
    for path in files:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


def load_into_postgres(conn: psycopg.Connection, export_dir: Path, suffix: str, expected_rows: int) -> int:
    """COPY the exported mart into `marts{suffix}.user_features` (created with the contract's columns and
    types), creating the other build schemas empty; one transaction. Returns the number of rows loaded.

    `expected_rows` is the mart's count(*) on Spark: unless the part files hold exactly that many rows, nothing
    is committed and ExportError says why (an export written where this machine cannot see it leaves only
    `_SUCCESS` here; an empty or partial mart must never be published)."""
    files = exported_files(export_dir)
    if expected_rows > 0 and not files:
        raise ExportError(
            f"the mart has {expected_rows} rows on Spark, but its export in {export_dir} holds no part file: "
            "Spark's executors wrote it where this machine cannot see it (SPARK_SHARED_DIR must be a folder "
            "every Spark node and this machine see at the same path; docs/spark.md)"
        )
    table = sql.Identifier(MART_SCHEMA + suffix, MART_TABLE)
    contract = mart_columns()
    columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in contract)
    with conn.transaction():
        for base in BUILD_SCHEMAS:
            schema = sql.Identifier(base + suffix)
            conn.execute(sql.SQL("create schema if not exists {}").format(schema))
            if base != MART_SCHEMA:
                note = f"Built on Spark (DBT_TARGET=spark): the {base} tables live in the Spark warehouse."
                conn.execute(sql.SQL("comment on schema {} is {}").format(schema, sql.Literal(note)))
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(
            sql.SQL("create table {} ({})").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in contract
                ),
            )
        )
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("copy {} ({}) from stdin (format csv)").format(table, columns)) as copy:
                for chunk in _chunks(files):
                    copy.write(chunk)
            rows = cur.rowcount
        if rows != expected_rows:
            raise ExportError(  # raised inside the transaction: the build schemas are rolled back
                f"the mart has {expected_rows} rows on Spark, but its export in {export_dir} ({len(files)} part "
                f"files) holds {rows}: a partial export (part files Spark wrote where this machine cannot see "
                "them, or files changed while they were read); nothing was loaded"
            )
        conn.execute(sql.SQL("analyze {}").format(table))
    return rows
