"""The Spark engine (DBT_TARGET=spark): dbt's settings for it, and moving the tested mart to Postgres.

Spark does the heavy work (seed, run, test); Postgres stays the serving and run-history store. After the
Spark tests pass, `dbt run-operation export_user_features` makes Spark write the mart as CSV files, and
`load_into_postgres` COPYs them into the Postgres build schema, streaming file chunks: the mart is never
held in memory, neither here nor in dbt. The usual publish step then swaps the build schemas in.

The one rule it keeps: the Postgres copy has exactly the columns and types of the mart dbt builds on
Postgres (MART_COLUMNS, checked by tests/core/test_spark_mart.py against a Postgres build), so `/features`,
SQL readers and the publish swap cannot tell which engine built it.

On Spark, dbt builds in place (no schema suffix): Spark is the work area, not a published store; the
write-audit-publish of the reliability section happens on the Postgres side. Postgres gets the mart only:
its raw, staging and intermediate build schemas are created empty (the publish swaps all four together),
with a comment saying where the tables are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from api.config import Settings
from api.core.publish import BUILD_SCHEMAS

#: The steps of a run on Spark: the extra `transfer` moves the tested mart into Postgres before publish.
STEP_NAMES = ("seed", "run", "test", "transfer", "publish", "docs")
MART_TABLE = "user_features"
#: The mart's columns and their Postgres types, in the order Spark exports them (the dbt contract's order).
MART_COLUMNS = (
    ("user_id", "integer"),
    ("name", "text"),
    ("email", "text"),
    ("signup_date", "date"),
    ("total_experiments", "integer"),
    ("experiment_share", "numeric"),
    ("avg_experiments_per_user", "numeric"),
    ("avg_experiment_run_time", "numeric"),
    ("total_experiment_run_time", "numeric"),
    ("most_common_compound_id", "integer"),
    ("most_common_compound_name", "text"),
    ("most_common_compound_structure", "text"),
    ("most_common_compound_experiments", "integer"),
    ("tied_compound_ids", "integer[]"),
)
_CHUNK = 1 << 20


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt on the configured engine (dbt_project/profiles.yml reads it); empty for Postgres."""
    if settings.dbt_target != "spark":
        return {}
    return {
        "DBT_TARGET": "spark",
        "DBT_SCHEMA_SUFFIX": "",  # Spark builds in place; see the module docstring
        "DBT_SPARK_DIR": str(settings.state_dir / "spark"),
        "SPARK_MASTER": settings.spark_master,
        "SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "SPARK_SHUFFLE_PARTITIONS": str(settings.spark_shuffle_partitions),
        "SPARK_UI_ENABLED": str(settings.spark_ui_enabled).lower(),
    }


def export_args(export_dir: Path) -> list[str]:
    """The dbt command that makes Spark write the mart as CSV part files into `export_dir` (replaced)."""
    return ["run-operation", "export_user_features", "--args", json.dumps({"path": str(export_dir.resolve())})]


def exported_files(export_dir: Path) -> list[Path]:
    """The CSV part files of a complete export (Spark writes `_SUCCESS` last)."""
    if not (export_dir / "_SUCCESS").exists():
        raise RuntimeError(f"the mart export in {export_dir} is incomplete (no _SUCCESS file from Spark)")
    return sorted(p for p in export_dir.iterdir() if p.name.startswith("part-"))


def _chunks(files: Iterable[Path]) -> Iterable[bytes]:
    for path in files:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


def load_into_postgres(conn: psycopg.Connection, export_dir: Path, suffix: str) -> int:
    """COPY the exported mart into `marts{suffix}.user_features` (created with MART_COLUMNS), creating the
    other build schemas empty; one transaction. Returns the number of rows loaded."""
    files = exported_files(export_dir)
    marts = f"marts{suffix}"
    table = sql.Identifier(marts, MART_TABLE)
    columns = sql.SQL(", ").join(sql.Identifier(name) for name, _ in MART_COLUMNS)
    with conn.transaction():
        for base in BUILD_SCHEMAS:
            schema = sql.Identifier(base + suffix)
            conn.execute(sql.SQL("create schema if not exists {}").format(schema))
            if base != "marts":
                note = f"Built on Spark (DBT_TARGET=spark): the {base} tables live in the Spark warehouse."
                conn.execute(sql.SQL("comment on schema {} is {}").format(schema, sql.Literal(note)))
        conn.execute(sql.SQL("drop table if exists {}").format(table))
        conn.execute(
            sql.SQL("create table {} ({})").format(
                table,
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in MART_COLUMNS),
            )
        )
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("copy {} ({}) from stdin (format csv)").format(table, columns)) as copy:
                for chunk in _chunks(files):
                    copy.write(chunk)
            rows = cur.rowcount
        conn.execute(sql.SQL("analyze {}").format(table))
    return rows
