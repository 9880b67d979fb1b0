"""The dbt Cloud-compatible API v2 (api/routes/cloud_v2.py) against the real app and Postgres: the envelope on every
answer, errors too; both slash forms; Token and Bearer; the run object; the queue; steps_override; cause.

The quick tests need no dbt: the active run is a lock holder, as another API process's run would be, and runs in
every state are rows written as the job writes them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.runs import history, lock
from api.main import create_app
from tests.conftest import LOCAL, wait_until

V2 = "/api/v2/accounts/1"
TOKEN = "cloud-test-token-long-enough-to-be-accepted"  # API_TOKEN needs >= 32 characters
STEPS = step_names("default")


@pytest.fixture
def holder(database):
    """An active run of "another process": the queue's runs wait for it."""
    migrate(database)
    handle = lock.start_run(database, {"source": "another process"}, STEPS)
    yield handle
    handle.release()


@pytest.fixture
def secured(settings):
    app = create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)}))
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def _envelope_error(answer, code: int) -> str:
    """The answer is dbt Cloud's error envelope with this code; returns its message."""
    assert answer.status_code == code, answer.text
    body = answer.json()
    assert body["data"] is None and body["status"]["code"] == code and body["status"]["is_success"] is False, body
    assert body["status"]["user_message"], body
    return body["status"]["user_message"]


def _row(database, status: str, *, waiting: bool = False, error: str | None = None, steps=None) -> int:
    """A run row as the job leaves it in `status` (no dbt)."""
    with history.connect(database) as conn:
        run_id = history.insert_run(conn, {"source": "test", "cause": "a test"}, STEPS, waiting=waiting)
        now = datetime.now(timezone.utc)
        fields = {"status": status, "error": error}
        if status != "queued":
            fields["started_at"] = now - timedelta(seconds=75)
        if status in ("success", "failed", "cancelled"):
            fields["finished_at"] = now
        if steps is not None:
            fields["steps"] = steps
        history.update_run(conn, run_id, fields)
    return run_id


def test_the_token_is_accepted_as_token_and_as_bearer_and_refusals_are_enveloped(secured):
    for scheme in ("Token", "Bearer", "token"):
        answer = secured.get(f"{V2}/jobs/1/", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert answer.status_code == 200 and answer.json()["data"]["name"] == "features-mart", scheme
    assert secured.get("/runs", headers={"Authorization": f"Token {TOKEN}"}).status_code == 200  # one rule for all
    for headers in ({}, {"Authorization": "Token wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        assert "token" in _envelope_error(secured.get(f"{V2}/runs/", headers=headers), 401)
    assert secured.get("/runs").json() == {
        "detail": "missing or invalid token: send 'Authorization: Bearer <API_TOKEN>' (browsers: log in at /login)"
    }


@pytest.mark.parametrize(
    "path",
    ["", "/jobs", "/jobs/1", "/runs", "/runs/{run}", "/runs/{run}/artifacts"],
)
def test_every_path_answers_with_and_without_its_trailing_slash(client, database, path):
    run_id = _row(database, "failed", error="boom")
    url = f"{V2}{path.format(run=run_id)}"
    for form in (url, url + "/"):
        answer = client.get(form, follow_redirects=False)
        assert answer.status_code == 200, (form, answer.text)
        assert answer.json()["status"] == {
            "code": 200, "is_success": True, "user_message": None, "developer_message": None
        }  # fmt: skip


def test_errors_are_in_the_envelope_never_a_5xx(client, database):
    assert "run 999999 not found" in _envelope_error(client.get(f"{V2}/runs/999999/"), 404)
    assert "account 7 not found" in _envelope_error(client.get("/api/v2/accounts/7/runs/"), 404)
    assert "job 2 not found" in _envelope_error(client.get(f"{V2}/jobs/2/"), 404)
    assert "job 2 not found" in _envelope_error(client.post(f"{V2}/jobs/2/run/", json={}), 404)
    assert "run_id" in _envelope_error(client.get(f"{V2}/runs/abc/"), 422)
    assert "cause" in _envelope_error(client.post(f"{V2}/jobs/1/run/", json={"cause": "x" * 256}), 422)
    _envelope_error(
        client.post(f"{V2}/jobs/1/run/", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    _envelope_error(client.get(f"{V2}/no-such-thing/"), 404)
    _envelope_error(client.delete(f"{V2}/jobs/1/"), 405)
    assert "status '7'" in _envelope_error(client.get(f"{V2}/runs/?status__in=[7]"), 400)
    assert "order_by" in _envelope_error(client.get(f"{V2}/runs/?order_by=name"), 400)
    finished = _row(database, "success")
    assert "already finished" in _envelope_error(client.post(f"{V2}/runs/{finished}/cancel/"), 409)
    for name in ("..%2F..%2Fpg%2Fpassword", "target/manifest.json", "dbt.log"):
        assert "no artifact" in _envelope_error(client.get(f"{V2}/runs/{finished}/artifacts/{name}"), 404)
    assert "has no manifest.json" in _envelope_error(client.get(f"{V2}/runs/{finished}/artifacts/manifest.json"), 404)
    assert client.get("/runs/999999").json() == {"detail": "run 999999 not found"}  # the native API keeps its own


def test_the_run_object_maps_every_status_as_dbt_cloud_does(client, database):
    expected = {
        _row(database, "queued", waiting=True): (1, "Queued", True, False),
        _row(database, "queued"): (2, "Starting", True, False),
        _row(database, "running"): (3, "Running", True, False),
        _row(database, "success"): (10, "Success", False, True),
        _row(database, "failed", error="step test failed: 2 tests failed"): (20, "Error", False, True),
        _row(database, "cancelled", error="cancelled by a test"): (30, "Cancelled", False, True),
    }
    for run_id, (code, humanized, in_progress, complete) in expected.items():
        run = client.get(f"{V2}/runs/{run_id}/").json()["data"]
        assert (run["id"], run["status"], run["status_humanized"]) == (run_id, code, humanized)
        assert (run["in_progress"], run["is_complete"]) == (in_progress, complete)
        assert (run["is_success"], run["is_error"], run["is_cancelled"]) == (code == 10, code == 20, code == 30)
        assert run["href"] == f"{LOCAL}/run/{run_id}"
        assert (run["job_definition_id"], run["job_id"], run["account_id"]) == (1, 1, 1)
        assert (run["project_id"], run["environment_id"]) == (1, 1)
        assert run["status_message"] == (
            "step test failed: 2 tests failed" if code == 20 else "cancelled by a test" if code == 30 else None
        )
        assert run["run_steps"] == [] and run["trigger"] is None
        if code >= 10:
            assert run["run_duration"] == "00:01:15"


def test_include_related_in_every_form_clients_send(client, database):
    steps = history.initial_steps(STEPS)
    steps[0].update(status="success", started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:09+00:00")
    steps[1].update(status="failed")
    for s in steps[2:]:
        s["status"] = "skipped"
    run_id = _row(database, "failed", error="step run failed", steps=steps)
    url = f"{V2}/runs/{run_id}/"
    forms = [
        "?include_related=run_steps&include_related=trigger",
        "?include_related=run_steps,trigger",
        "?include_related=" + json.dumps(["run_steps", "trigger"]),
        "?include_related=['run_steps','trigger']",
    ]
    for form in forms:
        run = client.get(url + form).json()["data"]
        assert [(s["index"], s["name"], s["status"], s["status_humanized"]) for s in run["run_steps"]] == [
            (1, "Invoke dbt with `dbt seed`", 10, "Success"),
            (2, "Invoke dbt with `dbt run`", 20, "Error"),
            (3, "Invoke dbt with `dbt test`", 30, "Skipped"),
            (4, "Publish the build schemas (write-audit-publish)", 30, "Skipped"),
            (5, "Invoke dbt with `dbt docs generate`", 30, "Skipped"),
        ], form
        assert run["run_steps"][0]["duration"] == "00:00:09"
        assert run["trigger"]["cause"] == "a test", form
    empty = client.get(url + "?include_related=").json()["data"]
    assert empty["run_steps"] == [] and empty["trigger"] is None
    assert client.get(url + "?include_related=job").json()["data"]["job"]["name"] == "features-mart"


def test_runs_list_filters_orders_and_pages_as_clients_expect(client, database):
    done = [_row(database, "success"), _row(database, "failed", error="x"), _row(database, "success")]
    queued = _row(database, "queued", waiting=True)
    listed = client.get(f"{V2}/runs/").json()
    assert [r["id"] for r in listed["data"]] == [queued, *done[::-1]]
    assert listed["extra"]["pagination"] == {"count": 4, "total_count": 4}
    for status_in in ("[1,2,3]", "1,2,3", "[1, 2, 3]"):
        found = client.get(f"{V2}/runs/?job_definition_id=1&status__in={status_in}&order_by=-created_at").json()
        assert [r["id"] for r in found["data"]] == [queued], status_in
    assert [r["id"] for r in client.get(f"{V2}/runs/?status=10&order_by=id").json()["data"]] == [done[0], done[2]]
    assert client.get(f"{V2}/runs/?job_definition_id=2").json()["data"] == []
    first = client.get(f"{V2}/runs/?limit=2&order_by=id").json()
    assert [r["id"] for r in first["data"]] == done[:2]
    assert first["extra"]["filters"]["limit"] == 2
    assert first["extra"]["pagination"] == {"count": 2, "total_count": 4}
    second = client.get(f"{V2}/runs/?limit=2&offset=2&order_by=id").json()
    assert [r["id"] for r in second["data"]] == [done[2], queued]


def test_jobs_are_listed_with_filters_and_pages(client):
    listed = client.get(f"{V2}/jobs/?project_id=1&environment_id=1&name__icontains=FEATURES").json()
    assert [j["id"] for j in listed["data"]] == [1]
    assert listed["extra"] == {
        "filters": {"project_id": 1, "environment_id": 1, "name__icontains": "FEATURES", "limit": 100, "offset": 0},
        "order_by": None,
        "pagination": {"count": 1, "total_count": 1},
    }
    for miss in ("project_id=2", "environment_id=3", "name__icontains=other"):
        assert client.get(f"{V2}/jobs/?{miss}").json()["data"] == [], miss
    job = client.get(f"{V2}/jobs/1").json()["data"]
    assert (job["name"], job["project_id"], job["environment_id"], job["generate_docs"]) == (
        "features-mart", 1, 1, True
    )  # fmt: skip


def test_another_account_id_is_served_when_configured(settings):
    with TestClient(create_app(settings.model_copy(update={"dbt_cloud_account_id": 42})), base_url=LOCAL) as c:
        assert c.get("/api/v2/accounts/42/jobs/1/").json()["data"]["account_id"] == 42
        _envelope_error(c.get(f"{V2}/jobs/1/"), 404)


def test_steps_override_other_than_the_jobs_commands_is_refused_and_starts_nothing(client, database):
    message = _envelope_error(client.post(f"{V2}/jobs/1/run/", json={"steps_override": ["dbt run --select x"]}), 400)
    assert "dbt build, dbt seed, dbt run, dbt test" in message and "'dbt run --select x'" in message
    _envelope_error(client.post(f"{V2}/jobs/1/run/", json={"steps_override": ["dbt build", "rm -rf /"]}), 400)
    assert history.list_runs(database, 10, 0)[1] == 0


def test_a_run_asked_for_while_one_is_active_is_queued_with_its_cause_and_can_be_cancelled(client, holder, database):
    body = {"cause": "nightly from Airflow", "steps_override": ["dbt  build"], "schema_override": None, "x": 1}
    answer = client.post(f"{V2}/jobs/1/run/", json=body)
    assert answer.status_code == 200, answer.text
    run = answer.json()["data"]
    assert (run["status"], run["status_humanized"], run["in_progress"]) == (1, "Queued", True)
    assert client.post("/trigger").status_code == 409  # the native trigger still refuses
    native = client.get(f"/runs/{run['id']}").json()
    assert native["status"] == "queued"
    assert native["trigger"]["cause"] == "nightly from Airflow"
    assert native["trigger"]["steps_override"] == ["dbt build"]
    assert client.get(f"{V2}/runs/{run['id']}/?include_related=trigger").json()["data"]["trigger"]["cause"] == (
        "nightly from Airflow"
    )
    cancelled = client.post(f"{V2}/runs/{run['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["id"] == run["id"]

    def ended():
        return client.get(f"{V2}/runs/{run['id']}").json()["data"]["status"] == 30

    wait_until(ended, 30, "the queued run to be cancelled")
    assert history.get_run(database, holder.run_id)["status"] == "queued", "the active run was left alone"


@pytest.mark.slow
def test_a_run_triggered_during_a_run_waits_then_runs_the_whole_job_with_its_steps_and_artifacts(client, database):
    first = client.post(f"{V2}/jobs/1/run/", json={"cause": "first"}).json()["data"]
    second = client.post(f"{V2}/jobs/1/run", json={"cause": "second", "steps_override": ["dbt seed", "dbt run"]})
    second = second.json()["data"]
    assert first["status"] in (2, 3) and second["status"] == 1

    def finished(run_id: int):
        run = client.get(f"{V2}/runs/{run_id}?include_related=run_steps").json()["data"]
        return run if run["is_complete"] else None

    done_first = wait_until(lambda: finished(first["id"]), 300, "the first run")
    done_second = wait_until(lambda: finished(second["id"]), 300, "the queued run")
    assert done_first["status"] == done_second["status"] == 10, (done_first["status_message"], done_second)
    assert done_second["started_at"] >= done_first["finished_at"], "the queued run started before the first ended"
    assert [s["name"] for s in done_second["run_steps"]] == [
        "Invoke dbt with `dbt seed`", "Invoke dbt with `dbt run`", "Invoke dbt with `dbt test`",
        "Publish the build schemas (write-audit-publish)", "Invoke dbt with `dbt docs generate`",
    ]  # fmt: skip
    assert {s["status"] for s in done_second["run_steps"]} == {10}
    assert (
        "$ dbt seed" in done_second["run_steps"][0]["logs"] and "$ dbt run" not in done_second["run_steps"][0]["logs"]
    )
    assert done_second["has_docs_generated"] and done_second["artifacts_saved"]
    listed = client.get(f"{V2}/runs/{second['id']}/artifacts/").json()["data"]
    assert listed == ["catalog.json", "manifest.json", "run_results.json"]
    results = client.get(f"{V2}/runs/{second['id']}/artifacts/run_results.json?step=4")
    assert results.status_code == 200 and results.json()["results"]
    manifest = client.get(f"{V2}/runs/{second['id']}/artifacts/manifest.json").json()
    assert "model.features_mart.user_features" in manifest["nodes"]
