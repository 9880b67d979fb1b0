from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    """The real app (lifespan included) on the test's database; runs execute real dbt in threads."""
    with TestClient(create_app(settings)) as c:
        yield c


def wait_for(client: TestClient, run_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in ("success", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout}s")
