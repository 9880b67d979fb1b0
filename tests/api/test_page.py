"""The runs page (GET /) in headless Chromium (Playwright driving the system's chromium): the Trigger button
starts a run, its live progress shows, the Cancel button cancels it, and the page lists both runs."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from tests.conftest import LOCAL


def test_page_is_one_self_contained_html_file(client, settings):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for link in ('href="/dbt-docs/"', 'href="/docs"', 'href="/features?format=csv"'):
        assert link in html
    assert (
        "<script src" not in html
        and "<link " not in html
        and "http://" not in html.replace('"http://www.w3.org/2000/svg"', "")
    )
    with TestClient(create_app(settings.model_copy(update={"api_token": SecretStr("t0k")})), base_url=LOCAL) as locked:
        assert locked.get("/").status_code == 401
        assert locked.get("/", headers={"Authorization": "Bearer t0k"}).status_code == 200


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_page_triggers_cancels_and_lists_runs_in_chromium(served_api):
    """Needs the job side of cancel (the run ends 'cancelled')."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium is not installed (scripts/test.sh installs it as root)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(served_api + "/")
            page.wait_for_selector("body[data-loaded=true]")
            assert page.locator("tr[data-run-id]").count() == 0

            page.click("#trigger")
            first = page.wait_for_selector("tr[data-run-id]")
            run_id = int(first.get_attribute("data-run-id"))
            # live progress of the active run, from the event stream
            page.wait_for_function("document.getElementById('active-step').textContent.includes('nodes')")
            page.wait_for_function("!document.getElementById('cancel').disabled")
            page.click("#cancel")
            page.wait_for_selector(f"tr[data-run-id='{run_id}'][data-status='cancelled']", timeout=60_000)

            page.click("#trigger")
            page.wait_for_selector(f"tr[data-run-id='{run_id + 1}'][data-status='success']", timeout=300_000)
            rows = page.locator("tr[data-run-id]")
            assert [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())] == [
                str(run_id + 1),
                str(run_id),
            ], "newest first"
            assert page.locator(f"tr[data-run-id='{run_id}'] .source").inner_text() == "api"
            cancelled = page.locator(f"tr[data-run-id='{run_id}'] .err").get_attribute("title")
            assert "Cancel button on the runs page" in cancelled
            segments = page.locator(f"tr[data-run-id='{run_id + 1}'] .seg")
            assert [segments.nth(i).get_attribute("class") for i in range(5)] == ["seg success"] * 5
            assert page.locator("#chart rect").count() == 2  # one bar per finished run
        finally:
            browser.close()
