"""An API run with DBT_TARGET=spark: validate, seed/run/test on Spark, transfer the mart into Postgres, publish
by the same swap, docs; `/features` serves the result (tests/dbt/test_spark.py compares the engines in depth)."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from api.core.job.steps import step_names
from api.main import create_app
from tests.conftest import LOCAL, mart_rows, wait_for_run
from tests.datasets import random_dataset
from tests.expected import assert_rows_match, compute

pytestmark = [pytest.mark.spark, pytest.mark.timeout(1200)]  # SPARK_RUN_TIMEOUT, and the rest

SPARK_RUN_TIMEOUT = 900  # five dbt commands, each starting its own Spark (about 30-45 s each on two cores)


def test_a_run_on_spark_publishes_the_mart_to_postgres_and_features_serves_it(settings, database, tmp_path):
    pytest.importorskip("pyspark", reason="requirements-spark.txt is not installed (scripts/bootstrap.sh --spark)")
    if shutil.which("java") is None:
        pytest.skip("Java is missing: Spark needs a Java runtime")
    shutil.rmtree(settings.data_dir)
    random_dataset(settings.data_dir, 7)
    spark_settings = settings.model_copy(
        update={"dbt_target": "spark", "spark_master": "local[2]", "spark_shuffle_partitions": 4}
    )
    with TestClient(create_app(spark_settings), base_url=LOCAL) as client:
        run = client.post("/trigger").json()
        assert [s["name"] for s in run["steps"]] == list(step_names("spark"))
        done = wait_for_run(client, run["run_id"], timeout=SPARK_RUN_TIMEOUT)
        assert done["status"] == "success", done["error"]
        assert done["error"] is None, done["error"]
        assert [(s["name"], s["status"]) for s in done["steps"]] == [(n, "success") for n in step_names("spark")]
        log = client.get(f"/runs/{run['run_id']}/logs").text
        assert "target='spark'" in log and "mart rows from Spark" in log

        expected = compute(settings.data_dir, tmp_path / "expected")
        published = mart_rows(database)
        assert_rows_match(published, expected)
        served = client.get("/features", params={"limit": 1000}).json()
        assert served["total"] == len(expected)
        assert [r["user_id"] for r in served["items"]] == sorted(expected)
        assert client.get("/dbt-docs/").status_code == 200

    with database.connect() as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
    assert {"raw", "staging", "intermediate", "marts"} <= schemas
    assert not [s for s in schemas if s.endswith("__build")], f"build schemas left behind: {schemas}"
