"""api/core/lineage.py: the OpenLineage events of a run, built from a real run's own manifest.json and
run_results.json, each valid against the OpenLineage spec's JSON schemas (tests/lineage_receiver.py).
Sending them to a receiver, from a served run: tests/api/test_lineage_run.py."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from openlineage.client.serde import Serde

from api.config import Settings
from api.core import lineage
from api.main import create_app
from tests.conftest import LOCAL
from tests.lineage_receiver import problems


def as_json(event) -> dict:
    return json.loads(Serde.to_json(event))


@pytest.fixture
def real_run(settings):
    """A real run of the job (lineage off): its settings, database URL and folder."""
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        run = client.post("/trigger?wait=true").json()
    assert run["status"] == "success", run
    return settings, settings.database_url.get_secret_value(), settings.state_dir / "runs" / str(run["run_id"])


def test_a_real_runs_events_are_valid_and_name_what_each_node_read_and_wrote(real_run):
    settings, url, run_dir = real_run
    parent = str(uuid.uuid4())
    events = [as_json(e) for e in lineage.run_end_events(settings, run_dir, parent, "success", None, url, now())]
    assert [p for e in events for p in problems(e)] == []
    namespace, database = lineage.postgres_namespace(url)

    results = json.loads((run_dir / "artifacts" / "run_results.json").read_text())["results"]
    ran = {r["unique_id"] for r in results}
    by_job: dict[str, list[dict]] = {}
    for event in events[:-1]:
        by_job.setdefault(event["job"]["name"].removeprefix("features-mart."), []).append(event)
    assert set(by_job) == ran and len(ran) > 30  # every seed, model and test the run executed
    for node, (start, end) in ((n, evs) for n, evs in by_job.items()):
        assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE"), node
        assert start["run"]["runId"] == end["run"]["runId"] != parent
        assert end["run"]["facets"]["parent"]["run"]["runId"] == parent
        assert start["eventTime"] <= end["eventTime"]

    mart = by_job["model.features_mart.user_features"][1]
    assert mart["outputs"] == [{"namespace": namespace, "name": f"{database}.marts__build.user_features",
                                "facets": {}, "outputFacets": {}}]  # fmt: skip
    assert {d["name"] for d in mart["inputs"]} >= {
        f"{database}.staging__build.stg_lab__users", f"{database}.intermediate__build.int_users_most_common_compounds"
    }  # fmt: skip
    seed = by_job["seed.features_mart.users"][0]
    assert [d["name"] for d in seed["outputs"]] == [f"{database}.raw__build.users"]
    assert seed["inputs"][0]["namespace"] == "file" and seed["inputs"][0]["name"].endswith("/build/seeds/users.csv")
    test = by_job["test.features_mart.unique_user_features_user_id.4f1ede1f09"][0]
    assert [d["name"] for d in test["inputs"]] == [f"{database}.marts__build.user_features"] and not test["outputs"]

    job = events[-1]
    assert (job["job"]["name"], job["eventType"], job["run"]["runId"]) == ("features-mart", "COMPLETE", parent)
    assert job["outputs"] == [{"namespace": namespace, "name": f"{database}.marts.user_features",
                               "facets": {}, "outputFacets": {}}]  # fmt: skip
    assert sorted(d["name"].rsplit("/", 1)[1] for d in job["inputs"]) == [
        "compounds.csv", "user_experiments.csv", "users.csv"
    ]  # fmt: skip


def test_a_failed_node_ends_with_fail_and_its_message(real_run):
    """The same real artifacts with one node's result turned into dbt's error result."""
    settings, url, run_dir = real_run
    path = run_dir / "artifacts" / "run_results.json"
    results = json.loads(path.read_text())
    failed = next(r for r in results["results"] if r["unique_id"] == "model.features_mart.user_features")
    failed.update(status="error", message="Database Error in model user_features: boom")
    path.write_text(json.dumps(results))
    events = [as_json(e) for e in lineage.run_end_events(settings, run_dir, str(uuid.uuid4()), "failed",
                                                         "step run failed", url, now())]  # fmt: skip
    assert [p for e in events for p in problems(e)] == []
    mart = [e for e in events if e["job"]["name"] == "features-mart.model.features_mart.user_features"]
    assert [e["eventType"] for e in mart] == ["START", "FAIL"]
    assert mart[1]["run"]["facets"]["errorMessage"]["message"].endswith("boom")
    assert (events[-1]["eventType"], events[-1]["outputs"]) == ("FAIL", [])
    assert events[-1]["run"]["facets"]["errorMessage"]["message"] == "step run failed"


def test_a_run_that_stopped_before_dbt_sends_only_the_job_event(settings, tmp_path):
    url = "host=/var/run/postgresql port=5433 dbname=mart user=u password=secret"
    events = lineage.run_end_events(
        settings, tmp_path / "no-run", str(uuid.uuid4()), "cancelled", "cancelled", url, now()
    )
    assert [(e["eventType"], e["job"]["name"]) for e in map(as_json, events)] == [("ABORT", "features-mart")]
    assert problems(as_json(events[0])) == []
    started = as_json(lineage.job_event(settings, lineage.RunState.START, str(uuid.uuid4()), now(), url))
    assert problems(started) == [] and started["outputs"] == []


def test_dataset_namespaces_hold_no_credentials():
    assert lineage.postgres_namespace("postgresql://u:secret@db.example:6543/mart") == (
        "postgres://db.example:6543",
        "mart",
    )
    assert lineage.postgres_namespace("host=/tmp/sock dbname=x password=secret") == ("postgres://localhost:5432", "x")


def test_the_validator_rejects_what_the_spec_rejects():
    """The schema check is not vacuous: a missing field, a bad event type, a malformed facet, an unknown facet."""
    event = as_json(
        lineage.job_event(
            Settings(database_url="dbname=x"), lineage.RunState.START, str(uuid.uuid4()), now(), "dbname=x"
        )
    )
    assert problems(event) == []
    assert problems({k: v for k, v in event.items() if k != "eventTime"})
    assert problems({**event, "eventType": "DONE"})
    bad_facet = json.loads(json.dumps(event))
    bad_facet["job"]["facets"]["jobType"]["processingType"] = 7
    assert any("jobType" in p for p in problems(bad_facet)), problems(bad_facet)
    unknown = json.loads(json.dumps(event))
    unknown["run"]["facets"] = {"madeUp": {"_producer": "x", "_schemaURL": "https://example.com/x.json"}}
    assert problems(unknown) == ["run: facet 'madeUp' has no schema in the spec"]


def test_lineage_is_off_without_a_url_or_config(settings, tmp_path):
    assert lineage.job_started(settings, 1, "dbname=x") is None
    on = settings.model_copy(update={"openlineage_url": "http://127.0.0.1:9"})
    assert lineage.enabled(on) and not lineage.enabled(settings)
    config = tmp_path / "openlineage.yml"
    config.write_text("transport:\n  type: console\n")
    from_file = settings.model_copy(update={"openlineage_config": config})
    assert lineage.make_client(from_file).transport.kind == "console"
    assert lineage.make_client(on).transport.kind == "http"


def now() -> datetime:
    return datetime.now(timezone.utc)
