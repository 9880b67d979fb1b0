"""No page of ours may be framed, and each loads only what its Content-Security-Policy allows (api/csp.py): the
headers on every HTML answer, then in Chromium: a cross-origin page that frames the runs page gets an empty
frame, and the runs page, a run's page, the OpenAPI page and the dbt docs site report no CSP violation."""

from __future__ import annotations

import pytest

from api.csp import inline_script_hashes
from tests.api.test_page import servers  # noqa: F401 - a fixture
from tests.reliability.conftest import trigger_and_wait


def _directives(header: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in (p.strip() for p in header.split(";")) if " " in d}


@pytest.mark.parametrize("path", ["/", "/run/1", "/docs", "/redoc", "/login", "/login?next=/docs"])
def test_every_html_answer_forbids_framing_and_has_a_policy(client, path):
    answer = client.get(path)
    assert answer.headers["content-type"].startswith("text/html"), path
    assert answer.headers["x-frame-options"] == "DENY"
    policy = _directives(answer.headers["content-security-policy"])
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'", policy
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", policy
    assert "'unsafe-inline'" not in policy.get("script-src", ""), policy
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_openapi_page_allows_its_own_inline_script_only(client):
    answer = client.get("/docs")
    scripts = _directives(answer.headers["content-security-policy"])["script-src"].split()
    hashes = inline_script_hashes(answer.text)
    assert hashes and set(hashes) <= set(scripts)
    assert [s for s in scripts if s.startswith("'sha256-")] == hashes


def test_json_answers_keep_their_headers(client):
    answer = client.get("/runs")
    assert "x-frame-options" not in answer.headers and "content-security-policy" not in answer.headers
    assert answer.headers["x-content-type-options"] == "nosniff"


_WATCH = """document.addEventListener('securitypolicyviolation',
  e => { (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI); });"""


def _violations(page) -> list[str]:
    return page.evaluate("() => window.__csp || []")


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_pages_cannot_be_framed_and_report_no_csp_violation_in_chromium(servers, chromium, tmp_path):  # noqa: F811 - servers
    api = servers()
    run = trigger_and_wait(api.client)
    assert run["status"] == "success", run["error"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(_WATCH)
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
        # the attack: another origin frames the runs page (as clickjacking does, at any opacity)
        page.goto(f"{api.base_url}/health")
        attacker = api.base_url.replace("127.0.0.1", "localhost")  # another origin for the browser
        page.goto(f"{attacker}/health")
        page.set_content(
            f'<iframe id="f" src="{api.base_url}/" width="800" height="600" onload="this.dataset.done=1"></iframe>'
        )
        page.wait_for_selector("iframe[data-done]")
        frame = page.frame_locator("#f")
        assert frame.locator("body[data-loaded=true]").count() == 0, "the runs page rendered inside a frame"
        assert page.frames[1].url in ("", "about:blank", "chrome-error://chromewebdata/"), page.frames[1].url

        console.clear()
        for path, ready in (
            ("/", "body[data-loaded=true]"),
            (f"/run/{run['run_id']}", "body[data-loaded=true]"),
            ("/dbt-docs/#!/model/model.features_mart.user_features", None),
            ("/docs", ".swagger-ui .info"),  # Swagger UI rendered, from this API's own files
        ):
            view = context.new_page()
            view.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
            view.goto(api.base_url + path)
            if ready:
                view.wait_for_selector(ready)
            elif path.startswith("/dbt-docs/"):
                view.wait_for_function("() => document.body.innerText.includes('tied_compound_ids')")
            assert _violations(view) == [], (path, _violations(view))
            view.close()
        assert console == [], console
    finally:
        context.close()
