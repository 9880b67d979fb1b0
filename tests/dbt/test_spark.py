"""The same dbt project on Apache Spark (DBT_TARGET=spark, dbt-spark session method, local mode).

One Spark session serves every test here: dbt runs in this process (dbtRunner), where the session method
keeps its SparkSession, so the JVM and the metastore start once. Each data set is one `dbt build` (seeds,
models, data tests and unit tests on Spark), and its mart is compared with the mart dbt builds on Postgres
from the same files and with the independent Python model in tests/expected.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from psycopg.rows import tuple_row

from api.config import DBT_PROJECT_DIR, Settings
from api.core.dbt.env import dbt_env
from api.core.mart import spark as spark_mart
from api.core.mart.contract import mart_columns
from api.core.seeds import prepare_seeds
from tests.conftest import mart_rows, run_cli
from tests.datasets import chain, random_dataset, set_cell
from tests.expected import CANONICAL, assert_rows_match, compute

pytestmark = pytest.mark.spark

#: Spark keeps 18 decimal places (13 for the mean run time); Postgres about 20 significant digits.
NUMERIC_TOLERANCE = Decimal("1e-12")


class SparkDbt:
    """dbt on the spark target, in this process: every call shares one SparkSession (and its metastore)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        settings = Settings(
            state_dir=state, dbt_target="spark", dbt_threads=4, spark_master="local[2]", spark_shuffle_partitions=4
        )
        self.env = dbt_env(settings, None, seeds_dir=None, suffix="")

    @contextmanager
    def _environment(self, extra: dict[str, str]) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in {**self.env, **extra}}
        os.environ.update({**self.env, **extra})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def invoke(self, args: list[str], seeds: Path, name: str, messages: list[str] | None = None) -> Any:
        """Run `dbt ARGS`; the text of each of its events is appended to `messages`, if given."""
        from dbt.cli.main import dbtRunner

        target = self.state / name
        callbacks = [] if messages is None else [lambda event: messages.append(event.info.msg)]
        with self._environment({"DBT_SEEDS_DIR": str(seeds)}):
            result = dbtRunner(callbacks=callbacks).invoke(
                [
                    *args,
                    "--project-dir", str(DBT_PROJECT_DIR),
                    "--profiles-dir", str(DBT_PROJECT_DIR),
                    "--target-path", str(target),
                    "--log-path", str(target / "logs"),
                ]
            )  # fmt: skip
        assert result.success, f"dbt {' '.join(args)} failed on Spark: {result.exception or result.result}"
        return result.result


@pytest.fixture(scope="session")
def spark_dbt(tmp_path_factory) -> SparkDbt:
    pytest.importorskip("pyspark", reason="requirements-spark.txt is not installed (scripts/bootstrap.sh --spark)")
    if shutil.which("java") is None:
        pytest.skip("Java is missing: Spark needs a Java runtime (scripts/bootstrap.sh --spark installs one as root)")
    return SparkDbt(tmp_path_factory.mktemp("spark"))


def _plain(column: str, value: Any) -> Any:
    """A mart value from either engine, as comparable Python: ints, Decimals, ISO dates, lists."""
    if value is None:
        return [] if column == "tied_compound_ids" else None
    if column == "tied_compound_ids":
        return [int(v) for v in (json.loads(value) if isinstance(value, str) else value)]
    if column == "signup_date":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    if isinstance(value, (Decimal, float)) or column.endswith(("_share", "_per_user", "_run_time")):
        return Decimal(str(value))
    return value


def assert_same_mart(spark: list[dict[str, Any]], postgres: list[dict[str, Any]]) -> None:
    """Row by row, column by column; numerics within NUMERIC_TOLERANCE. Reports every mismatch."""
    assert [r["user_id"] for r in spark] == [r["user_id"] for r in postgres], "different users"
    problems = []
    for s_row, p_row in zip(spark, postgres, strict=True):
        assert set(s_row) == set(p_row), (sorted(s_row), sorted(p_row))
        for column in p_row:
            a, b = _plain(column, s_row[column]), _plain(column, p_row[column])
            same = abs(a - b) <= NUMERIC_TOLERANCE if isinstance(a, Decimal) and isinstance(b, Decimal) else a == b
            if not same:
                problems.append((p_row["user_id"], column, s_row[column], p_row[column]))
    assert not problems, f"{len(problems)} differences (user, column, spark, postgres): {problems[:20]}"


def postgres_mart(settings: Settings) -> list[dict[str, Any]]:
    done = run_cli(settings, "dbt", "build")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from api.core.db.database import Database

    return mart_rows(Database(settings.database_url.get_secret_value()), "marts__dev")


def test_canonical_mart_on_spark_is_the_issues_and_equals_postgres(spark_dbt, settings, tmp_path):
    seeds = tmp_path / "seeds"
    prepare_seeds(settings.data_dir, seeds)  # the same validated, normalised files the scripts seed
    spark_dbt.invoke(["build"], seeds, "canonical")
    shown = spark_dbt.invoke(
        ["show", "--select", "user_features", "--limit", "-1", "--output", "json"], seeds, "canonical"
    )
    table = shown.results[0].agate_table
    rows = sorted(
        ({name: _plain(name, value) for name, value in zip(table.column_names, row, strict=True)} for row in table),
        key=lambda r: r["user_id"],
    )
    assert len(rows) == 10
    for row in rows:
        name, n, _share, avg_time, top, top_name, top_n, tied = CANONICAL[row["user_id"]]
        got = (row["name"], row["total_experiments"], row["avg_experiment_run_time"], row["most_common_compound_id"])
        assert got == (name, n, Decimal(str(avg_time)), top)
        assert (row["most_common_compound_name"], row["most_common_compound_experiments"]) == (top_name, top_n)
        assert row["tied_compound_ids"] == tied
    assert_rows_match(rows, compute(settings.data_dir, tmp_path / "expected"))
    assert_same_mart(rows, postgres_mart(settings))


def test_random_data_on_spark_moves_to_postgres_with_the_same_types_and_values(spark_dbt, settings, database, tmp_path):
    """Unseen data with empty names (NULL, never 'None') and quoted commas, quotes and newlines: built on
    Spark, exported by Spark as CSV, COPYed into Postgres, equal to the Postgres build and to expected.py."""
    shutil.rmtree(settings.data_dir)
    random_dataset(settings.data_dir, 2024)
    chain(
        set_cell("users.csv", 3, "name", ""),
        set_cell("users.csv", 4, "email", '"a ""quoted"", comma, address"'),
        set_cell("compounds.csv", 2, "compound_name", '"Compound\nwith, newline"'),
        set_cell("compounds.csv", 3, "compound_structure", ""),
    )(settings.data_dir)
    seeds = tmp_path / "seeds"
    prepare_seeds(settings.data_dir, seeds)
    spark_dbt.invoke(["build"], seeds, "random")
    export = tmp_path / "export"
    messages: list[str] = []
    spark_dbt.invoke(spark_mart.export_args(export), seeds, "random", messages)
    counted = [n for n in map(spark_mart.exported_rows, messages) if n is not None]
    assert counted == [40], messages
    parts = sorted(export.glob("part-*"))
    assert parts, "the export wrote no part file"
    kept = parts[0].read_bytes()
    parts[0].write_bytes(b"")  # a part file that did not arrive: the count no longer matches, nothing is loaded
    with database.connect() as conn:
        with pytest.raises(spark_mart.ExportError, match="has 40 rows on Spark"):
            spark_mart.load_into_postgres(conn, export, "__spark", counted[0])
        assert conn.execute("select to_regclass('marts__spark.user_features')").fetchone()[0] is None
    parts[0].write_bytes(kept)
    with database.connect() as conn:
        rows = spark_mart.load_into_postgres(conn, export, "__spark", counted[0])
    assert not list(export.glob("part-*.csv.*")), "the export must be plain CSV"

    spark_rows = mart_rows(database, "marts__spark")
    assert rows == len(spark_rows) == 40
    assert any(r["total_experiments"] == 0 for r in spark_rows), "users without experiments must be kept"
    assert sum(r["name"] is None for r in spark_rows) == 1, "an empty name is NULL on Spark too (no 'None')"
    assert not any(isinstance(v, str) and "None" in v for r in spark_rows for v in r.values())
    assert_rows_match(spark_rows, compute(settings.data_dir, tmp_path / "expected"))
    postgres_rows = postgres_mart(settings)
    assert_same_mart(spark_rows, postgres_rows)

    def column_types(schema: str) -> list[tuple[str, str]]:
        with database.connect(row_factory=tuple_row) as conn:
            return conn.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = to_regclass(%s) and attnum > 0 and not attisdropped order by attnum",
                (f"{schema}.user_features",),
            ).fetchall()

    contract = [(c.name, c.pg_type) for c in mart_columns()]
    assert column_types("marts__spark") == column_types("marts__dev") == contract
