"""POST/GET /trigger against the real app: real dbt, real Postgres."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for_run
from tests.datasets import set_cell


def test_post_trigger_answers_202_with_location_and_the_run_succeeds(client):
    answer = client.post("/trigger")
    assert answer.status_code == 202
    run = answer.json()
    assert answer.headers["location"] == f"/runs/{run['run_id']}"
    assert run["status"] in ("queued", "running")
    assert run["trigger"]["method"] == "POST" and run["trigger"]["source"] == "api"
    assert [s["name"] for s in run["steps"]] == ["seed", "run", "test", "publish", "docs"]

    seen_progress = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        current = client.get(f"/runs/{run['run_id']}").json()
        if current["progress"]:
            seen_progress.append(current["progress"])
        if current["status"] in ("success", "failed"):
            break
        time.sleep(0.05)
    assert current["status"] == "success", current["error"]
    assert current["progress"] is None
    assert all(s["status"] == "success" for s in current["steps"])
    assert [s["exit_code"] for s in current["steps"] if s["name"] != "publish"] == [0, 0, 0, 0]
    assert current["started_at"] <= current["finished_at"] and current["duration_seconds"] > 0
    assert any(p["nodes_total"] > 0 and p["nodes_done"] > 0 for p in seen_progress), seen_progress
    assert {p["step"] for p in seen_progress} >= {"seed", "run", "test"}


def test_get_trigger_with_wait_returns_the_final_run(client):
    answer = client.get("/trigger?wait=true")
    assert answer.status_code == 200
    run = answer.json()
    assert run["status"] == "success", run["error"]
    assert run["trigger"]["method"] == "GET"
    assert answer.headers["location"] == f"/runs/{run['run_id']}"
    logs = client.get(f"/runs/{run['run_id']}/logs")
    assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
    for line in ("$ dbt seed", "$ dbt run", "$ dbt test", "$ dbt docs generate", "Completed successfully"):
        assert line in logs.text
    lines = logs.text.splitlines(keepends=True)
    for n in (1, 3, len(lines), len(lines) + 5):
        tail = client.get(f"/runs/{run['run_id']}/logs?tail={n}")
        assert tail.status_code == 200 and tail.text == "".join(lines[-n:]), n


@pytest.mark.slow
def test_a_second_trigger_during_a_run_gets_409_naming_it(client):
    first = client.post("/trigger").json()
    second = client.post("/trigger")
    assert second.status_code == 409
    assert second.json()["active_run_id"] == first["run_id"]
    assert str(first["run_id"]) in second.json()["detail"]
    assert client.get("/trigger").status_code == 409
    assert wait_for_run(client, first["run_id"])["status"] == "success"
    assert client.post("/trigger?wait=true").json()["status"] == "success"


def test_a_failed_run_explains_itself(client, settings):
    set_cell("user_experiments.csv", 6, "experiment_compound_ids", "1:3")(settings.data_dir)
    answer = client.post("/trigger?wait=true")
    assert answer.status_code == 200
    run = answer.json()
    assert run["status"] == "failed"
    assert [(s["name"], s["status"]) for s in run["steps"]] == [
        ("seed", "failed"),
        ("run", "skipped"),
        ("test", "skipped"),
        ("publish", "skipped"),
        ("docs", "skipped"),
    ]
    assert "user_experiments.csv, line 6 (experiment_id 5)" in run["error"] and "'1:3'" in run["error"]
    assert "user_experiments.csv" in client.get(f"/runs/{run['run_id']}/logs").text


@pytest.mark.slow
def test_a_run_that_published_succeeds_even_if_its_docs_step_fails(client, settings, database):
    """Publishing is the point of no return: the mart is out, so the run is a success; the error says why the
    docs site is stale. (Here the docs folder is made unusable: a file stands where the folder should be.)"""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "docs").write_text("not a folder")
    run = client.post("/trigger?wait=true").json()
    assert run["status"] == "success"
    assert [(s["name"], s["status"]) for s in run["steps"]][-2:] == [("publish", "success"), ("docs", "failed")]
    assert run["error"].startswith("the mart was published, but the docs were not updated")
    with database.connect() as conn:
        assert conn.execute("select count(*) from marts.user_features").fetchone() == (10,)
