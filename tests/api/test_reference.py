"""The API's reference pages (api/routes/reference.py): Swagger UI at /docs and ReDoc at /redoc load every asset
from this API, so they work with no internet; in Chromium they render the API's operations, and the browser
makes no request to any other host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from api.routes.reference import ASSETS


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_reference_pages_load_their_assets_from_this_api_only(client, path):
    answer = client.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", answer.text) + re.findall(
        r"""url: ?["']([^"']+)""", answer.text
    )
    assert urls, answer.text
    assert all(u.startswith(("/docs-assets/", "/openapi.json")) for u in urls), urls
    assert not re.search(r"https?://", answer.text), "a page names another host"
    for url in urls:
        served = client.get(url)
        assert served.status_code == 200, url
    assert client.get("/docs-assets/../config.py").status_code == 404


def test_every_asset_is_served_with_its_type_and_names_no_font_host(client):
    for name, media in ASSETS.items():
        answer = client.get(f"/docs-assets/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].split(";")[0] == media, name
    assert client.get("/docs-assets/swagger-ui.css").text.count("fonts.googleapis") == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .opblock-summary-path"), ("/redoc", "[data-section-id^='operation/']")],
)
def test_the_reference_pages_render_in_chromium_with_no_request_elsewhere(
    served_api, chromium, path, rendered, tmp_path
):
    """Offline as a browser sees it: any request to another host is recorded and refused (as without internet);
    the page must still render the API's operations, `/trigger` among them."""
    own = urlsplit(served_api).netloc
    elsewhere: list[str] = []
    errors: list[str] = []
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("http", "https") and parts.netloc != own:
            elsewhere.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.goto(served_api + path)
    page.wait_for_selector(rendered, timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert "/trigger" in page.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / f"{path.strip('/')}.png"), full_page=False)
    assert elsewhere == [], f"{path} asked other hosts for {elsewhere}"
    assert errors == [], errors
    assert page.title() == "features-mart API"
