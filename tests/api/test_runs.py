from __future__ import annotations

from api.core import runs
from tests.api.conftest import wait_for


def test_history_is_newest_first_and_paginated(client):
    ids = []
    for _ in range(2):
        ids.append(client.post("/trigger?wait=true").json()["run_id"])
    page = client.get("/runs").json()
    assert page["total"] == 2 and page["limit"] == 20 and page["offset"] == 0
    assert [r["run_id"] for r in page["items"]] == ids[::-1]
    assert [r["run_id"] for r in client.get("/runs?limit=1&offset=1").json()["items"]] == [ids[0]]
    assert client.get("/runs?limit=0").status_code == 422
    assert client.get("/runs/999999").status_code == 404
    assert client.get("/runs/999999/logs").status_code == 404
    assert client.get(f"/runs/{ids[0]}").json()["links"] == {"self": f"/runs/{ids[0]}", "logs": f"/runs/{ids[0]}/logs"}


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(settings, database):
    """A run row whose process died (nobody holds the run lock) is failed at the next start-up."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    runs.ensure_schema(database)
    handle = runs.start_run(database, {"source": "test"})
    handle.update(status="running")
    handle.conn.close()  # the owner "dies": its connection, and so its lock, is gone
    with TestClient(create_app(settings)) as client:
        run = client.get(f"/runs/{handle.run_id}").json()
        assert run["status"] == "failed" and run["error"].startswith("interrupted")
        assert run["finished_at"] is not None
        assert wait_for(client, client.post("/trigger").json()["run_id"])["status"] == "success"


def test_history_survives_a_restart(settings, client):
    run_id = client.post("/trigger?wait=true").json()["run_id"]
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings)) as again:
        assert again.get(f"/runs/{run_id}").json()["status"] == "success"
