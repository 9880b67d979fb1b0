from __future__ import annotations

from api.core.db.database import Database


def test_health_ok(client):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}


def test_health_names_the_database_when_it_is_down(client):
    client.app.state.db = Database("postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "error" and answer.json()["database"].startswith("unreachable")


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {
        "/trigger",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/logs",
        "/features",
        "/features/{user_id}",
        "/dbt-docs/",
        "/health",
        "/",
        "/run/{run_id}",
        "/runs/{run_id}/cancel",
        "/runs/{run_id}/events",
        "/runs/{run_id}/artifacts/{name}",
        "/runs/{run_id}/webhooks",
        "/schedule",
        "/metrics",
    } <= set(spec["paths"])
    run = spec["components"]["schemas"]["Run"]["properties"]
    assert {
        "run_id",
        "status",
        "trigger",
        "created_at",
        "started_at",
        "finished_at",
        "steps",
        "progress",
        "error",
    } <= set(run)
    assert set(spec["paths"]["/trigger"]["post"]["responses"]) >= {"200", "202", "409"}
    # no endpoint takes a path, SQL or dbt argument: only these parameters exist
    params = {p["name"] for path in spec["paths"].values() for op in path.values() for p in op.get("parameters", [])}
    native = {"wait", "limit", "offset", "run_id", "user_id", "name", "tail", "step", "next", "format"}
    # the dbt Cloud-compatible API's (api/routes/cloud_v2.py, cloud_v3.py): ids, filters, and `path`, which is only
    # ever one of the three artifact names (tests/api/test_cloud_v2.py tries others)
    cloud = {
        "account_id", "job_id", "project_id", "environment_id", "job_definition_id", "status", "status__in",
        "order_by", "include_related", "name__icontains", "path",
    }  # fmt: skip
    assert params <= native | cloud, params - native - cloud
