from __future__ import annotations

import shutil
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


@pytest.fixture
def chromium() -> Iterator:
    """The system Chromium driven by Playwright (the browser tests of the pages)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed (scripts/test.sh installs it as root)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
