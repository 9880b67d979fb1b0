"""The mart on a Spark standalone cluster (tests/spark_cluster.py: a master and two workers started with pyspark's
`spark-class`, each in a mount namespace of its own where STATE_DIR is hidden, as on other machines).

dbt is the Spark driver (client mode) on this machine; the executors read the seeds from SPARK_SHARED_DIR and
write the warehouse (set in spark-defaults.conf, as an operator would) and the mart export there. Then:
`scripts/dbt.sh build` and `show`, an API run that publishes the mart (equal to tests/expected.py, as the
local-mode mart is in tests/dbt/test_spark.py), and an API run whose export the executors write where this
machine cannot see it (only `_SUCCESS` reaches it, as in the issue): it fails at `transfer`, saying why, and the
published mart stays as it was.
"""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import LOCAL, mart_rows, run_cli, wait_for_run
from tests.dbt.test_spark import _plain, assert_same_mart
from tests.expected import assert_rows_match, compute
from tests.spark_cluster import SparkCluster, can_hide_folders

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(2700)]

RUN_TIMEOUT = 1200  # five dbt commands, each starting a Spark driver and two executors


@pytest.fixture
def cluster(settings, tmp_path):
    pytest.importorskip("pyspark", reason="requirements-spark.txt is not installed (scripts/bootstrap.sh --spark)")
    if shutil.which("java") is None:
        pytest.skip("Java is missing: Spark needs a Java runtime")
    if why := can_hide_folders():
        pytest.skip(why)
    settings.state_dir.mkdir(parents=True)
    # the fault run's SPARK_SHARED_DIR: its seeds are shared, its export folder is not (the driver deletes and
    # recreates the export folder itself, so its parent is what the workers get their own of)
    unseen = tmp_path / "shared-b" / "build"
    (unseen / "seeds").mkdir(parents=True)
    cluster = SparkCluster(tmp_path / "cluster", hidden=[settings.state_dir, unseen], kept=[unseen / "seeds"]).start()
    yield cluster
    cluster.stop()


def test_the_mart_built_on_a_standalone_cluster_is_published_and_an_export_it_cannot_see_is_not(
    cluster, settings, database, tmp_path, monkeypatch
):
    shared, warehouse, conf = tmp_path / "shared", tmp_path / "warehouse", tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(
        "spark.driver.host 127.0.0.1\n"
        "spark.driver.bindAddress 127.0.0.1\n"
        "spark.executor.memory 512m\n"
        "spark.executor.cores 1\n"
        "spark.cores.max 2\n"
        f"spark.sql.warehouse.dir {warehouse}\n"
    )
    env = {
        "DBT_TARGET": "spark",
        "SPARK_MASTER": cluster.url,
        "SPARK_SHARED_DIR": str(shared),
        "SPARK_CONF_DIR": str(conf),
        "SPARK_DRIVER_MEMORY": "768m",
        "SPARK_SHUFFLE_PARTITIONS": "2",
    }
    expected = compute(settings.data_dir, tmp_path / "expected")

    built = run_cli(settings, "dbt", "build", **env)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    assert (warehouse / "marts.db" / "user_features").is_dir(), "the warehouse of spark-defaults.conf is used"
    apps = cluster.status()["completedapps"]
    assert apps and all(a["name"] == "features-mart-dbt" for a in apps), "the build did not run on the cluster"

    shown = run_cli(settings, "dbt", "show", "--select", "user_features", "--limit", "-1", "--output", "json", **env)
    assert shown.returncode == 0, shown.stdout[-4000:]
    table = json.loads(shown.stdout[shown.stdout.index('{\n  "node"') :].rsplit("}", 1)[0] + "}")["show"]
    shown_rows = sorted(({k: _plain(k, v) for k, v in row.items()} for row in table), key=lambda r: r["user_id"])
    assert_rows_match(shown_rows, expected)

    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the API's dbt worker reads spark-defaults.conf through SPARK_CONF_DIR
    spark = settings.model_copy(
        update={"dbt_target": "spark", "spark_master": cluster.url, "spark_shared_dir": shared,
                "spark_driver_memory": "768m", "spark_shuffle_partitions": 2, "run_timeout": RUN_TIMEOUT}
    )  # fmt: skip
    with TestClient(create_app(spark), base_url=LOCAL) as client:
        done = wait_for_run(client, client.post("/trigger").json()["run_id"], timeout=RUN_TIMEOUT)
        assert done["status"] == "success", done["error"]
    published = mart_rows(database)
    assert_rows_match(published, expected)
    assert_same_mart(published, shown_rows)

    # the export goes to a folder the workers do not share with this machine: never published
    unseen = spark.model_copy(update={"spark_shared_dir": tmp_path / "shared-b"})
    with TestClient(create_app(unseen), base_url=LOCAL) as client:
        run = wait_for_run(client, client.post("/trigger").json()["run_id"], timeout=RUN_TIMEOUT)
        log = client.get(f"/runs/{run['run_id']}/logs").text
    assert run["status"] == "failed", run
    assert [s["status"] for s in run["steps"] if s["name"] in ("transfer", "publish")] == ["failed", "skipped"]
    assert f"the mart has {len(expected)} rows on Spark" in run["error"], run["error"]
    assert "rows on Spark" in log
    assert mart_rows(database) == published, "the published mart changed"
