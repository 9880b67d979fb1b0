"""HEAD answers wherever GET does (api/middleware.py's HeadAsGet): the GET's status and headers, no body, and
never a state change (HEAD /trigger is 405 and starts no run); a streaming GET (a run's events) ends at once."""

from __future__ import annotations

import pytest

from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.runs import lock

PATHS = [
    "/", "/runs", "/runs/1", "/features", "/features/1", "/schedule", "/metrics", "/health", "/docs", "/redoc",
    "/openapi.json", "/dbt-docs/", "/login", "/docs-assets/swagger-ui.css", "/static/pages.css", "/nowhere",
]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_head_answers_as_get_without_a_body(client, path):
    got, head = client.get(path, follow_redirects=False), client.head(path, follow_redirects=False)
    assert head.status_code == got.status_code != 405, (path, head.status_code, got.status_code)
    assert head.content == b""
    assert head.headers.get("content-type") == got.headers.get("content-type")
    if path not in ("/metrics", "/health"):  # their body (hence length) changes from one request to the next
        assert head.headers.get("content-length") == got.headers.get("content-length")


def test_head_trigger_starts_no_run(client):
    answer = client.head("/trigger")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
    assert client.get("/runs").json()["total"] == 0


@pytest.mark.timeout(60)
def test_head_on_a_live_event_stream_answers_at_once(client, database):
    migrate(database)
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))  # active: the stream stays open
    try:
        answer = client.head(f"/runs/{handle.run_id}/events")
    finally:
        handle.release()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert answer.content == b""
