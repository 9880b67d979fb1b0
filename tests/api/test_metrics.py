"""GET /metrics, parsed with Prometheus's own parser."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.core.job.steps import step_names
from api.core.runs import lock
from api.main import create_app
from tests.conftest import LOCAL


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """{sample name: {labels as sorted tuple: value}}"""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_runs_from_the_history_of_every_process(client, settings, database):
    before = scrape(client)
    assert before["features_mart_runs_total"][(("status", "success"),)] == 0
    assert "features_mart_mart_rows" not in before and before["features_mart_run_active"][()] == 0

    ok = client.post("/trigger?wait=true").json()
    assert ok["status"] == "success"
    (settings.data_dir / "users.csv").write_text("user_id,name,email,signup_date\nx,Bad,b@x,2020-01-01\n")
    bad = client.post("/trigger?wait=true").json()
    assert bad["status"] == "failed"
    # a run recorded by "another API process" on the same database is counted too
    handle = lock.start_run(database, {"source": "elsewhere"}, step_names("default"))
    try:
        m = scrape(client)
        assert m["features_mart_run_active"][()] == 1
    finally:
        handle.update(status="failed", started_at=ok["started_at"], finished_at=ok["finished_at"])
        handle.release()

    with TestClient(create_app(settings), base_url=LOCAL) as other:  # a second process: the same run numbers
        for metrics in (scrape(client), scrape(other)):
            total = metrics["features_mart_runs_total"]
            assert total[(("status", "success"),)] == 1 and total[(("status", "failed"),)] == 2
            assert total[(("status", "cancelled"),)] == 0
            assert metrics["features_mart_run_active"][()] == 0
            assert metrics["features_mart_run_duration_seconds_count"][()] == 3
            assert metrics["features_mart_run_duration_seconds_bucket"][(("le", "+Inf"),)] == 3
            assert metrics["features_mart_run_duration_seconds_sum"][()] >= ok["duration_seconds"]
            steps = metrics["features_mart_step_duration_seconds_count"]
            assert steps[(("step", "docs"),)] == 1 and steps[(("step", "seed"),)] == 2
            assert metrics["features_mart_mart_rows"][()] == 10
            last = metrics["features_mart_last_success_timestamp_seconds"][()]
            assert abs(last - _epoch(ok["finished_at"])) < 0.01
            assert metrics["features_mart_database_up"][()] == 1

    requests = scrape(client)["features_mart_http_requests_total"]
    assert (
        requests[(("method", "GET"), ("route", "/metrics"), ("status", "200"))] == 3
    )  # this scrape is counted when it ends
    assert requests[(("method", "POST"), ("route", "/trigger"), ("status", "200"))] == 2
    client.get("/runs/12345")
    client.get("/no/such/path")
    latency = scrape(client)["features_mart_http_request_duration_seconds_count"]
    assert latency[(("method", "GET"), ("route", "/runs/{run_id}"))] >= 1  # the template, not /runs/12345
    assert not any("12345" in str(k) or "/no/such" in str(k) for k in latency)
    assert latency[(("method", "GET"), ("route", "<unmatched>"))] >= 1


def test_metrics_need_the_token_when_one_is_set(settings):
    locked = create_app(
        settings.model_copy(update={"api_token": SecretStr("metrics-token-long-enough-to-be-accepted")})
    )
    with TestClient(locked, base_url=LOCAL) as client:
        assert client.get("/metrics").status_code == 401
        assert "features_mart_runs_total" in scrape(
            client, Authorization="Bearer metrics-token-long-enough-to-be-accepted"
        )


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_made_up_methods_do_not_grow_the_label_set(client):
    """The attack: each invented method name (no token needed: /health) used to become a new series for good."""
    for i in range(50):
        client.request(f"X{i}", "/health")
    client.request("PATCH", "/health")
    series = scrape(client)["features_mart_http_requests_total"]
    methods = {dict(labels)["method"] for labels in series}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other"}
    assert series[(("method", "other"), ("route", "/health"), ("status", "405"))] == 50
    assert series[(("method", "PATCH"), ("route", "/health"), ("status", "405"))] == 1
