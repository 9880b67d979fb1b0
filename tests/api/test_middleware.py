"""The ASGI middlewares (api/middleware.py): the body limit, before authentication, on every route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from api.middleware import MAX_BODY_BYTES
from tests.conftest import LOCAL

TOKEN = "body-limit-test-token-0123456789abcdef"


@pytest.fixture
def secured(settings):
    with TestClient(create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)})), base_url=LOCAL) as c:
        yield c


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path", ["/runs/1/cancel", "/login", "/trigger", "/health", "/no/such/route"])
def test_a_body_over_the_limit_is_refused_before_authentication(secured, path):
    """The attack: a big body with no token used to be read whole (the process grew by its size), then 401."""
    big = b"x" * (MAX_BODY_BYTES + 1)
    declared = secured.post(path, content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413, (path, declared.status_code, declared.text[:200])
    assert str(MAX_BODY_BYTES) in declared.json()["detail"]


@pytest.mark.parametrize("path", ["/runs/1/cancel", "/login"])
def test_a_chunked_body_is_refused_once_the_bytes_received_pass_the_limit(secured, path):
    """No Content-Length: the routes that read a body get a 413 as soon as it passes the limit (the routes that
    read none never take it in)."""
    chunked = secured.post(path, content=_chunks(4 * MAX_BODY_BYTES), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, (path, chunked.status_code, chunked.text[:200])


def test_a_body_within_the_limit_still_works(secured):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    reason = {"reason": "r" * 400}
    assert secured.post("/runs/999/cancel", json=reason, headers=bearer).status_code == 404  # read, no such run
    assert secured.post("/runs/999/cancel", json=reason).status_code == 401
    wrong = secured.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401
