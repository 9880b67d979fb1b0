"""GET /runs/{id}/events (Server-Sent Events) and GET /runs/{id}/artifacts/{name}."""

from __future__ import annotations

import json

import pytest

from api.core.job.steps import step_names
from api.core.runs import lock
from tests.conftest import wait_for_run


def read_events(client, run_id: int) -> list[tuple[str, str]]:
    """The whole stream as (event, data) pairs; returns when the server closes it."""
    events, name, data = [], None, []
    with client.stream("GET", f"/runs/{run_id}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line == "" and data:
                events.append((name or "message", "\n".join(data)))
                name, data = None, []
    return events


def test_the_stream_follows_a_run_and_ends_with_its_final_status(client):
    run_id = client.post("/trigger").json()["run_id"]
    events = read_events(client, run_id)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "status" and kinds.count("status") == 1, kinds
    final = json.loads(events[-1][1])
    assert final["run_id"] == run_id and final["status"] == "success" and final["finished_at"]
    progress = [json.loads(d) for e, d in events if e == "progress"]
    assert {p["step"] for p in progress} >= {"seed", "run", "test"}, progress
    assert all({"nodes_done", "nodes_total", "current_node"} <= set(p) for p in progress)
    streamed_log = "\n".join(d for e, d in events if e == "log")
    # every line of the run's log came through, in order, once
    assert streamed_log + "\n" == client.get(f"/runs/{run_id}/logs").text

    # a finished run: the final status at once, nothing else
    again = read_events(client, run_id)
    assert [e for e, _ in again] == ["status"] and json.loads(again[0][1])["status"] == "success"
    assert client.get("/runs/999999/events").status_code == 404


@pytest.mark.slow
def test_artifacts_of_a_run_are_served_and_other_names_are_404(client):
    """Needs the job to keep its artifacts under STATE_DIR/runs/{id}/artifacts (the job rework does)."""
    run_id = client.post("/trigger?wait=true").json()["run_id"]
    manifest = client.get(f"/runs/{run_id}/artifacts/manifest.json")
    assert manifest.status_code == 200, manifest.text
    assert "model.features_mart.user_features" in manifest.json()["nodes"]
    results = client.get(f"/runs/{run_id}/artifacts/run_results.json").json()
    assert results["results"] and all(r["status"] in ("success", "pass") for r in results["results"])
    catalog = client.get(f"/runs/{run_id}/artifacts/catalog.json").json()
    assert "model.features_mart.user_features" in catalog["nodes"]
    for name in ("index.html", "secrets.json", "..%2F..%2Fdbt.log", "run_results.json.bak"):
        assert client.get(f"/runs/{run_id}/artifacts/{name}").status_code == 404, name
    assert client.get("/runs/999999/artifacts/manifest.json").status_code == 404


def test_artifact_route_reads_only_the_run_folder(client, settings, database):
    """The route alone, on files placed where the job keeps them."""
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))
    handle.update(status="failed")
    handle.release()
    folder = settings.state_dir / "runs" / str(handle.run_id) / "artifacts"
    folder.mkdir(parents=True)
    (folder / "run_results.json").write_text('{"results": []}')
    (folder / "other.json").write_text("{}")
    assert client.get(f"/runs/{handle.run_id}/artifacts/run_results.json").json() == {"results": []}
    missing = client.get(f"/runs/{handle.run_id}/artifacts/manifest.json")
    assert missing.status_code == 404 and "has no manifest.json" in missing.json()["detail"]
    assert client.get(f"/runs/{handle.run_id}/artifacts/other.json").status_code == 404
    assert wait_for_run(client, handle.run_id)["status"] == "failed"
