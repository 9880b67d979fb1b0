from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app

TOKEN = "s3cret-test-token"


@pytest.fixture
def secured(settings):
    with TestClient(create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)}))) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/runs", "/runs/1", "/runs/1/logs", "/features", "/features/1", "/dbt-docs/", "/", "/schedule", "/metrics",
        "/runs/1/events", "/runs/1/webhooks", "/runs/1/artifacts/manifest.json", "/features?format=csv",
    ],
)  # fmt: skip
def test_every_endpoint_but_health_needs_the_token(secured, path):
    assert secured.get(path).status_code == 401
    assert secured.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = secured.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code != 401


def test_cancel_needs_the_token(secured):
    assert secured.post("/runs/1/cancel").status_code == 401
    assert secured.post("/runs/1/cancel", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_trigger_needs_the_token(secured):
    for method in (secured.post, secured.get):
        denied = method("/trigger")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert secured.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 0
    answer = secured.post("/trigger?wait=true", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.json()["status"] == "success"


def test_health_never_needs_the_token(secured):
    assert secured.get("/health").json() == {"status": "ok", "database": "ok"}


def test_docs_site_token_cookie_for_browsers(secured):
    first = secured.get(f"/dbt-docs/?token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303 and "features_mart_token" in first.headers["set-cookie"]
    assert secured.get("/dbt-docs/manifest.json").status_code == 404  # cookie accepted; no docs yet
    secured.cookies.clear()
    assert secured.get("/dbt-docs/?token=nope", follow_redirects=False).status_code == 401


def test_no_token_logs_a_warning(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="api"), TestClient(create_app(settings)):
        pass
    assert any("API_TOKEN is not set" in r.getMessage() for r in caplog.records)


def test_token_never_appears_in_logs_or_runs(secured, caplog):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with caplog.at_level(logging.DEBUG):
        run = secured.post("/trigger?wait=true", headers=headers).json()
    log = secured.get(f"/runs/{run['run_id']}/logs", headers=headers).text
    assert TOKEN not in log and TOKEN not in str(run) and TOKEN not in caplog.text
