"""Moving the mart from Spark's CSV export into Postgres (no Spark needed: the export files are written here
the way the export macro makes Spark write them; tests/dbt/test_spark.py runs the real export)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from api.core.db import locks
from api.core.mart import spark as spark_mart
from api.core.mart.publish import BUILD_SCHEMAS, BUILD_SUFFIX, publish
from tests.conftest import mart_rows

PART_1 = (
    '1,Alice,alice@example.com,2023-01-01,2,0.181818181818181818,1.1,12.5,25,2,"Compound, B",C21H30O2,2,"{2}"\n'
    '2,,"",2023-01-02,0,0,1.1,,0,,,,0,{}\n'
)
PART_2 = '3,"Carol ""C""","multi\nline",2023-01-03,1,0.5,1.1,7,7,1,A,,1,"{1,3}"\n'


def export(tmp_path, *parts: str, complete: bool = True):
    folder = tmp_path / "export"
    folder.mkdir()
    for i, text in enumerate(parts):
        (folder / f"part-0000{i}-abc-c000.csv").write_text(text, encoding="utf-8")
    if complete:
        (folder / "_SUCCESS").write_text("")
    return folder


def test_export_is_copied_into_the_build_schema_with_nulls_quotes_and_arrays(database, tmp_path):
    folder = export(tmp_path, PART_1, PART_2)
    with database.connect() as conn:
        assert spark_mart.load_into_postgres(conn, folder, "__r7", 3) == 3
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
    assert {s + "__r7" for s in BUILD_SCHEMAS} <= schemas, "publish needs every build schema"
    rows = mart_rows(database, "marts__r7")
    assert [r["user_id"] for r in rows] == [1, 2, 3]
    alice, nobody, carol = rows
    assert alice["most_common_compound_name"] == "Compound, B"
    assert alice["experiment_share"] == Decimal("0.181818181818181818") and alice["tied_compound_ids"] == [2]
    assert (nobody["name"], nobody["email"], nobody["avg_experiment_run_time"]) == (None, "", None)
    assert nobody["tied_compound_ids"] == [] and nobody["most_common_compound_id"] is None
    assert (carol["name"], carol["email"], carol["tied_compound_ids"]) == ('Carol "C"', "multi\nline", [1, 3])
    assert str(carol["experiment_share"]) == "0.5", "values arrive as written (no trailing zeros)"


def test_a_second_load_replaces_the_table_and_publish_swaps_it_in(database, tmp_path):
    with database.connect() as conn:
        spark_mart.load_into_postgres(conn, export(tmp_path, PART_1, PART_2), BUILD_SUFFIX, 3)
        (tmp_path / "again").mkdir()
        again = export(tmp_path / "again", PART_2)
        assert spark_mart.load_into_postgres(conn, again, BUILD_SUFFIX, 1) == 1
        conn.execute("select pg_advisory_lock(%s, %s)", (locks.LOCK_CLASS, locks.RUN_LOCK))  # as a run holds it
        publish(conn, BUILD_SUFFIX, "r8")
        comment = conn.execute("select obj_description('raw'::regnamespace)").fetchone()[0]
    assert [r["user_id"] for r in mart_rows(database)] == [3]
    assert "Spark" in comment


def test_an_incomplete_export_is_refused_and_loads_nothing(database, tmp_path):
    folder = export(tmp_path, PART_1, complete=False)
    with database.connect(row_factory=dict_row) as conn:
        with pytest.raises(spark_mart.ExportError, match="incomplete"):
            spark_mart.load_into_postgres(conn, folder, "__r9", 2)
        assert conn.execute("select to_regclass('marts__r9.user_features') as t").fetchone()["t"] is None


def test_a_malformed_export_rolls_back(database, tmp_path):
    folder = export(tmp_path, PART_1 + "4,Dave,not-a-date\n")
    with database.connect(row_factory=dict_row) as conn:
        with pytest.raises(psycopg.errors.DataError):
            spark_mart.load_into_postgres(conn, folder, "__r10", 3)
        assert conn.execute("select to_regclass('marts__r10.user_features') as t").fetchone()["t"] is None


def test_an_export_without_part_files_is_refused_when_the_mart_has_rows(database, tmp_path):
    """What a cluster whose executors write on their own disks leaves on the driver's side: `_SUCCESS` only."""
    folder = export(tmp_path)
    with database.connect(row_factory=dict_row) as conn:
        with pytest.raises(spark_mart.ExportError, match=r"has 40 rows on Spark, but .* holds no part file"):
            spark_mart.load_into_postgres(conn, folder, "__r11", 40)
        assert conn.execute("select to_regclass('marts__r11.user_features') as t").fetchone()["t"] is None
        assert spark_mart.load_into_postgres(conn, folder, "__r12", 0) == 0, "an empty mart exports no part file"


def test_a_partial_export_is_refused_and_rolled_back(database, tmp_path):
    folder = export(tmp_path, PART_1, PART_2)
    (folder / "part-00001-abc-c000.csv").unlink()  # one executor's part lost
    with database.connect(row_factory=dict_row) as conn:
        with pytest.raises(spark_mart.ExportError, match=r"has 3 rows on Spark, but .* \(1 part files\) holds 2"):
            spark_mart.load_into_postgres(conn, folder, "__r13", 3)
        assert conn.execute("select to_regclass('marts__r13.user_features') as t").fetchone()["t"] is None
        assert conn.execute("select to_regnamespace('raw__r13') as s").fetchone()["s"] is None


def test_the_export_macros_count_is_read_from_its_message():
    assert spark_mart.exported_rows("exported 40 rows of `marts`.`user_features` as CSV to /x") == 40
    assert spark_mart.exported_rows("exported 0 rows of `marts`.`user_features` as CSV to /x") == 0
    assert spark_mart.exported_rows("Running with dbt=1.11.0") is None
