"""apache-airflow-providers-dbt-cloud 4.11.1 (with Airflow 3, its own venv) against the API over HTTPS, outside a
scheduler (tests/clients/airflow_driver.py): the job found by project, environment and job name; the operator
with wait_for_termination (success, then a failure it reports with the run's steps); the sensor; the artifact
operator; cancel_job_run; retry_from_failure (POST jobs/1/rerun/) after the failure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import TOKEN, client_env
from tests.datasets import set_cell

pytestmark = pytest.mark.clients
DRIVER = Path(__file__).with_name("airflow_driver.py")


def test_airflow_operator_sensor_artifacts_lookup_and_cancel(cloud_api, venvs, tls, tmp_path, settings):
    python = venvs("airflow") / "bin" / "python"
    connection = {"conn_type": "dbt_cloud", "login": "1", "password": TOKEN, "host": f"127.0.0.1:{cloud_api.port}"}
    env = client_env(
        cloud_api, tls.ca, tmp_path,
        AIRFLOW_CONN_DBT_CLOUD_DEFAULT=json.dumps(connection), AIRFLOW_HOME=str(tmp_path / "airflow"),
    )  # fmt: skip

    def airflow(*args: str) -> dict:
        done = subprocess.run(
            [str(python), str(DRIVER), *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert airflow("lookup") == {"job_id": 1, "name": "features-mart"}

    ran = airflow("run", "from Airflow")
    assert "error" not in ran, ran
    assert ran["url"] == f"{cloud_api.base_url}/run/{ran['run_id']}"
    run = cloud_api.client.get(f"/runs/{ran['run_id']}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert run["status"] == "success" and run["trigger"]["cause"] == "from Airflow"
    assert airflow("sense", str(ran["run_id"])) == {"done": True}
    out = tmp_path / "run_results.json"
    assert airflow("artifact", str(ran["run_id"]), "run_results.json", str(out))["file"] == str(out)
    assert {r["status"] for r in json.loads(out.read_text())["results"]} <= {"success", "pass"}

    cancelled = airflow("cancel")
    assert cancelled["cancelled"] is True, cancelled

    good = (settings.data_dir / "user_experiments.csv").read_bytes()
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    failed = airflow("run", "bad input")
    assert failed["error"] == (
        f"DbtCloudJobRunException: Job run {failed['run_id']} reached terminal status ERROR before reaching expected "
        "statuses (10,)"
    )
    assert failed["failed_steps"] == [[1, "Invoke dbt with `dbt seed`", "Error"]]

    (settings.data_dir / "user_experiments.csv").write_bytes(good)
    retried = airflow("retry", "a task retry")  # retry_from_failure on try 2: POST jobs/1/rerun/
    assert "error" not in retried, retried
    rerun = cloud_api.client.get(f"/runs/{retried['run_id']}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert rerun["status"] == "success" and rerun["retry"]["of"] == failed["run_id"]
    assert rerun["retry"]["mode"] == "whole job" and "failed in its seed step" in rerun["retry"]["reason"]
