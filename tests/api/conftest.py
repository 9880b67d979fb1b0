from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import LOCAL


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    """The real app (lifespan included) on the test's database; runs execute real dbt in threads."""
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        yield c
