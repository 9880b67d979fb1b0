"""What killed Spark writes leave in the warehouse, and what is removed (api/core/dbt/spark_warehouse.py). The
leftovers are laid out as Spark leaves them; tests/dbt/test_spark_kill.py kills a real seed mid-write."""

from __future__ import annotations

from api.core.dbt.spark_warehouse import clean_killed_writes, local_path


def test_killed_writes_are_removed_and_finished_tables_are_kept(tmp_path):
    warehouse = tmp_path / "warehouse"
    kept = warehouse / "raw.db" / "users"  # a finished table: data files, no _temporary
    kept.mkdir(parents=True)
    (kept / "part-00000.parquet").write_bytes(b"PAR1")
    orphan = warehouse / "raw.db" / "compounds" / "_temporary" / "0" / "_temporary"  # an old seed, killed
    orphan.mkdir(parents=True)
    work = warehouse / "raw.db" / "users__seeding"  # a seed's work table, killed (or registered: dropped later)
    work.mkdir()
    (work / "part-00000.parquet").write_bytes(b"PAR1")
    model = warehouse / "marts.db" / "user_features"  # a model killed while Spark replaced some of its files
    (model / "_temporary" / "0").mkdir(parents=True)
    (model / "part-00000.parquet").write_bytes(b"PAR1")

    removed = clean_killed_writes(str(warehouse))
    assert sorted(removed) == sorted([warehouse / "raw.db" / "compounds" / "_temporary", work, model / "_temporary"])
    assert not (warehouse / "raw.db" / "compounds").exists(), "an empty table folder blocks a new table too"
    assert (kept / "part-00000.parquet").exists() and (model / "part-00000.parquet").exists()
    assert clean_killed_writes(str(warehouse)) == [], "nothing left to remove"


def test_only_local_warehouses_are_cleaned(tmp_path):
    assert local_path("file:///srv/warehouse") == local_path("/srv/warehouse")
    assert local_path("hdfs://nn:8020/warehouse") is None and local_path("s3a://bucket/wh") is None
    assert clean_killed_writes("hdfs://nn:8020/warehouse") == []
    assert clean_killed_writes(str(tmp_path / "missing")) == []
