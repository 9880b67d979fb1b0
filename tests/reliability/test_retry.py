"""Retry from failure (api/core/job/retry.py): after a transient fault a retry redoes only the failed and skipped
dbt nodes over the failed run's build schemas, tests and publishes, and the published schemas are exactly those
a whole run publishes; a failure in validation, or changed input, runs the whole job and says so.

The transient fault is real and deterministic: an event trigger in the test's database refuses to create one
intermediate model, as a broken connection would, and is dropped before the retry."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_run
from tests.datasets import set_cell
from tests.reliability.conftest import dump_published

pytestmark = pytest.mark.slow

FAULTY = "int_experiment_compounds_unnested"


def _inject_fault(superuser) -> None:
    """`superuser`: the test's database as the superuser (event triggers are a superuser's; the app's role is not
    one)."""
    with superuser.connect() as conn:
        conn.execute(
            f"""
            create function ops.injected_fault() returns event_trigger language plpgsql as $$
            begin
                if exists (select 1 from pg_event_trigger_ddl_commands() where object_identity like '%{FAULTY}%')
                then raise exception 'injected fault: the connection broke while building {FAULTY}';
                end if;
            end $$;
            create event trigger injected_fault on ddl_command_end execute function ops.injected_fault();
            """  # noqa: S608 - FAULTY is this module's constant
        )


def _clear_fault(superuser) -> None:
    with superuser.connect() as conn:
        conn.execute("drop event trigger injected_fault; drop function ops.injected_fault()")


def _retry(client, run_id: int) -> dict:
    answer = client.post(f"/runs/{run_id}/retry")
    assert answer.status_code == 202, answer.text
    assert answer.json()["retry"]["of"] == run_id
    return wait_for_run(client, answer.json()["run_id"])


def test_a_retry_redoes_only_the_failed_nodes_and_publishes_what_a_whole_run_does(client, database, pg_server):
    client.get("/health")  # the app is up: the ops schema exists for the trigger's function
    _inject_fault(pg_server.as_superuser(database))
    failed = client.post("/trigger?wait=true").json()
    assert failed["status"] == "failed" and FAULTY in failed["error"]
    assert [(s["name"], s["status"]) for s in failed["steps"]][:3] == [
        ("seed", "success"), ("run", "failed"), ("test", "skipped")
    ]  # fmt: skip
    _clear_fault(pg_server.as_superuser(database))

    retried = _retry(client, failed["run_id"])
    assert retried["status"] == "success", retried["error"]
    assert retried["retry"]["mode"] == "failed nodes" and retried["retry"]["reason"] is None
    reused = retried["retry"]["reused"]
    assert "seed.features_mart.users" in reused and "model.features_mart.stg_lab__users" in reused
    assert f"model.features_mart.{FAULTY}" not in reused and "model.features_mart.user_features" not in reused
    log = client.get(f"/runs/{retried['run_id']}/logs").text
    assert "$ dbt retry --no-write-json --state" in log and "$ dbt seed" not in log and "$ dbt test" in log
    assert f"{FAULTY}" in client.get(f"/runs/{retried['run_id']}/logs?step=run").text
    rerun = client.get(f"/api/v2/accounts/1/runs/{retried['run_id']}/").json()["data"]
    assert rerun["retry"]["of"] == failed["run_id"] and rerun["status"] == 10
    after_retry = dump_published(database)

    whole = client.post("/trigger?wait=true").json()
    assert whole["status"] == "success", whole["error"]
    assert dump_published(database) == after_retry


def test_a_retry_after_a_validation_failure_or_changed_input_runs_the_whole_job_and_says_so(client, settings):
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    bad_input = client.post("/trigger?wait=true").json()
    assert bad_input["status"] == "failed"
    assert _retry(client, bad_input["run_id"])["status"] == "failed"  # still bad: validation refuses it again
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1;3")(settings.data_dir)
    retried = _retry(client, bad_input["run_id"])
    assert retried["status"] == "success", retried["error"]
    assert retried["retry"]["mode"] == "whole job" and retried["retry"]["reused"] == []
    assert retried["retry"]["reason"] == (
        f"run {bad_input['run_id']} failed in its seed step: only a failure in run or test resumes"
    )
    refused = client.post(f"/runs/{retried['run_id']}/retry")
    assert refused.status_code == 409 and "only a failed run can be retried" in refused.json()["detail"]
    assert client.post("/runs/999999/retry").status_code == 404


def test_changed_input_since_the_failed_run_runs_the_whole_job(client, database, settings, pg_server):
    client.get("/health")
    _inject_fault(pg_server.as_superuser(database))
    failed = client.post("/trigger?wait=true").json()
    assert failed["status"] == "failed"
    _clear_fault(pg_server.as_superuser(database))
    set_cell("users.csv", 2, "name", "Someone Else")(settings.data_dir)
    retried = _retry(client, failed["run_id"])
    assert retried["status"] == "success", retried["error"]
    assert retried["retry"] == {
        "of": failed["run_id"], "mode": "whole job", "reused": [],
        "reason": f"the input files changed since run {failed['run_id']}",
    }  # fmt: skip
    assert "$ dbt seed" in client.get(f"/runs/{retried['run_id']}/logs").text
