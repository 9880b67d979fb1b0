"""dbt-cloud-cli 0.9.1 (its own venv) against the API over HTTPS: `job run --wait` (success, then a failure: exit
1 naming the run's page), `run get` with its steps, `run list-artifacts`, `run get-artifact`, `run cancel`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.clients.conftest import TOKEN, client_env
from tests.conftest import wait_until
from tests.datasets import set_cell

pytestmark = pytest.mark.clients


def test_dbt_cloud_cli_runs_waits_inspects_and_cancels(cloud_api, venvs, tls, tmp_path, settings):
    exe = venvs("dbt-cloud-cli") / "bin" / "dbt-cloud"
    env = client_env(
        cloud_api, tls.ca, tmp_path,
        DBT_CLOUD_HOST=f"127.0.0.1:{cloud_api.port}", DBT_CLOUD_API_TOKEN=TOKEN,
        DBT_CLOUD_ACCOUNT_ID="1", DBT_CLOUD_JOB_ID="1",
    )  # fmt: skip

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)

    ran = cli("job", "run", "--wait", "--cause", "from dbt-cloud-cli")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["data"]
    assert run["status"] == 10 and run["is_success"], run
    assert f"Job 1 run {run['id']}: SUCCESS" in ran.stderr

    got = cli(
        "run", "get", "--run-id", str(run["id"]), "--include-related", "run_steps", "--include-related", "trigger"
    )
    assert got.returncode == 0, got.stderr
    detail = json.loads(got.stdout)["data"]
    assert detail["trigger"]["cause"] == "from dbt-cloud-cli"
    assert [s["name"] for s in detail["run_steps"]][:3] == [
        "Invoke dbt with `dbt seed`", "Invoke dbt with `dbt run`", "Invoke dbt with `dbt test`"
    ]  # fmt: skip

    listed = cli("run", "list-artifacts", "--run-id", str(run["id"]))
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["data"] == ["catalog.json", "manifest.json", "run_results.json"]
    out = tmp_path / "manifest.json"
    fetched = cli("run", "get-artifact", "--run-id", str(run["id"]), "--path", "manifest.json", "-f", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert "model.features_mart.user_features" in json.loads(out.read_text())["nodes"]

    started = cli("job", "run", "--cause", "to be cancelled")
    assert started.returncode == 0, started.stderr
    to_cancel = json.loads(started.stdout)["data"]["id"]
    cancelled = cli("run", "cancel", "--run-id", str(to_cancel))
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr

    def status_of(run_id: int) -> int:
        return json.loads(cli("run", "get", "--run-id", str(run_id)).stdout)["data"]["status"]

    wait_until(lambda: status_of(to_cancel) == 30, 120, "the cancelled run to end")

    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    failed = cli("job", "run", "--wait", "--cause", "bad input")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failed_run = json.loads(failed.stdout)["data"]
    assert failed_run["status"] == 20 and "experiment_compound_ids '1:3'" in failed_run["status_message"]
    assert f"Job run failed with ERROR status. For more information, see {cloud_api.base_url}/run/" in failed.stderr
