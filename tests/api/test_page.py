"""The operator's pages (api/routes/page.py): the runs page (GET /) and a run's page (GET /run/{id}), static files
with no CDN and no inline script. The browser tests drive the system's Chromium with Playwright against the API
served by uvicorn on a real Postgres, running the real dbt job: a successful run's page lists its nodes with
their times, a rejected run's page every input problem, a failed test's page its failing rows, a running run's
page follows it live; the runs page triggers, cancels and lists runs. Each browser test checks the text
contrast of what it shows and takes a screenshot (in the test's tmp_path)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.core.job.steps import step_names
from api.core.runs import history, lock
from api.core.seeds import DataError, prepare_seeds
from api.main import create_app
from api.routes.page import ASSETS
from tests.conftest import LOCAL, RUN_TIMEOUT, wait_for_run, wait_until
from tests.datasets import edit_text, random_dataset
from tests.reliability.conftest import ApiServers, current_step, dbt_blocked_on, run_row, trigger, trigger_and_wait

TOKEN = "page-test-token-long-enough-to-be-accepted"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: The dbt resource types a run executes (its test step leaves the unit tests out): every node of these in the
#: run's manifest is one row of its page.
EXECUTED = {"seed": "seed", "model": "run", "test": "test"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text += data


def test_pages_are_static_files_with_no_cdn_and_no_inline_script(client):
    """What a Content-Security-Policy of 'self' allows: scripts and styles from /static/ only, no inline
    script, style or event-handler attribute; and the scripts build the page from data as text, never HTML."""
    for path in ("/", "/run/1"):  # no run 1: its page still comes (404), saying so
        answer = client.get(path)
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.status_code == (200 if path == "/" else 404)
        parsed = _Tags()
        parsed.feed(answer.text)
        scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
        sheets = [attrs for tag, attrs in parsed.tags if tag == "link"]
        assert scripts and all((a.get("src") or "").startswith("/static/") for a in scripts), scripts
        assert not parsed.script_text.strip(), "no inline script"
        assert sheets and all(a.get("href", "").startswith("/static/") for a in sheets), sheets
        for tag, attrs in parsed.tags:
            assert not [k for k in attrs if k.startswith("on") or k == "style"], (tag, attrs)
        for asset in [a["src"] for a in scripts] + [a["href"] for a in sheets]:
            served = client.get(asset)
            assert served.status_code == 200 and served.headers["content-type"].split(";")[0] in (
                "text/javascript",
                "text/css",
            )
    for name in ASSETS:
        text = client.get(f"/static/{name}").text
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{name} loads something from elsewhere"
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert unsafe not in text, f"{name} uses {unsafe}"
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/..%2Fmain.py").status_code == 404


def test_each_run_has_a_page_behind_the_browser_login(settings, client, database):
    with history.connect(database) as conn:
        run_id = history.insert_run(conn, {"source": "test"}, step_names("default"))
    assert client.get(f"/run/{run_id}").status_code == 200
    missing = client.get(f"/run/{run_id + 1}")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert client.get("/run/0").status_code == 422 and client.get("/run/x").status_code == 422
    assert client.get(f"/runs/{run_id}").json()["links"]["page"] == f"/run/{run_id}"

    locked_settings = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with TestClient(create_app(locked_settings), base_url=LOCAL) as locked:
        for path in ("/", f"/run/{run_id}", "/static/run.js", "/static/pages.css"):
            assert locked.get(path).status_code == 401, path
            assert locked.get(path, headers=BEARER).status_code == 200, path
        browser = locked.get(f"/run/{run_id}", headers={"Accept": "text/html"}, follow_redirects=False)
        assert browser.status_code == 303 and browser.headers["location"] == f"/login?next=/run/{run_id}"
        login = locked.post("/login", data={"token": TOKEN, "next": f"/run/{run_id}"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == f"/run/{run_id}"
        assert locked.get(f"/run/{run_id}").status_code == 200  # the login cookie
        assert locked.get("/static/run.js").status_code == 200


# --------------------------------------------------------------------------- in Chromium

#: Every visible text's contrast with what is behind it (WCAG AA: 4.5:1); SVG text against white. Disabled
#: controls are exempt (as WCAG exempts inactive components).
CONTRAST = """() => {
  const parse = (c) => { const m = /rgba?\\(([^)]+)\\)/.exec(c || ""); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const behind = (e) => { for (; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255 }; };
  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e.getClientRects().length || e.closest("button:disabled")) continue;
    const style = getComputedStyle(e);
    const inSvg = !!e.closest("svg");
    const fg = parse(inSvg ? style.fill : style.color), bg = inSvg ? { r: 255, g: 255, b: 255 } : behind(e);
    const r = ratio(fg, bg);
    if (r < 4.5) low.push(`${n.textContent.trim().slice(0, 40)}: ${r.toFixed(2)}`);
  }
  return low;
}"""


@pytest.fixture
def servers(settings, tmp_path) -> Iterator[ApiServers]:
    """API subprocesses (uvicorn), stopped at the end."""
    started = ApiServers(settings, tmp_path)
    try:
        yield started
    finally:
        started.close()


def open_page(browser, url: str, errors: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-loaded=true]")
    return page


def tab_to(page, condition: str, presses: int = 80) -> None:
    """Press Tab until `condition` (JS, about document.activeElement) holds: the page is usable by keyboard."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const e = document.activeElement; return !!({condition}); }}"):
            return
    raise AssertionError(f"Tab never reached: {condition}")


def check_page(page, errors: list[str], shot) -> None:
    page.screenshot(path=str(shot), full_page=True)
    assert page.evaluate(CONTRAST) == [], "text below 4.5:1 contrast"
    assert errors == [], errors


def table_cells(page, selector: str) -> list[list[str]]:
    return page.locator(f"{selector} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_a_successful_runs_page_lists_every_node_with_its_time(servers, chromium, tmp_path):
    api = servers()
    run = trigger_and_wait(api.client)
    assert run["status"] == "success", run["error"]
    run_id = run["run_id"]
    manifest = api.client.get(f"/runs/{run_id}/artifacts/manifest.json").json()
    executed = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] in EXECUTED}
    first_result: dict[str, dict] = {}
    for result in api.client.get(f"/runs/{run_id}/artifacts/run_results.json").json()["results"]:
        first_result.setdefault(result["unique_id"], result)  # the docs step compiles them all again later
    errors: list[str] = []
    page = open_page(chromium, f"{api.base_url}/run/{run_id}", errors)
    page.wait_for_selector("body[data-nodes]")

    assert page.locator("h1 .status").inner_text() == "success"
    shown = page.locator("#nodes tbody tr").evaluate_all(
        "rows => rows.map(r => ({uid: r.dataset.node, status: r.dataset.status, step: r.cells[2].textContent,"
        " started: r.cells[4].textContent, seconds: r.cells[5].dataset.seconds, took: r.cells[5].textContent,"
        " href: r.querySelector('a').getAttribute('href')}))"
    )
    assert sorted(row["uid"] for row in shown) == sorted(executed), "every node the run executed, once"
    for row in shown:
        kind = row["uid"].split(".")[0]
        assert float(row["seconds"]) == pytest.approx(first_result[row["uid"]]["execution_time"]), row
        assert re.fullmatch(r"\d+\.\d+ s", row["took"]) and re.fullmatch(r"\+\d+\.\d+ s", row["started"]), row
        assert row["step"] == EXECUTED[kind] and row["status"] in ("success", "pass"), row
        assert row["href"] == f"/dbt-docs/#!/{kind}/{row['uid']}"
    starts = [float(row["started"][1:-2]) for row in shown]
    assert starts == sorted(starts), "in the order they started"

    # the timing chart: a bar per node on the run's time axis, each with its words; a summary for the chart
    bars = page.locator("#timing rect[data-node]")
    assert bars.count() == len(executed)
    assert all(w > 0 for w in bars.evaluate_all("bars => bars.map(b => b.width.baseVal.value)"))
    assert bars.evaluate_all("bars => bars.every(b => b.querySelector('title').textContent.includes(' s'))")
    assert f"{len(executed)} nodes" in page.locator("#timing-summary").inner_text()
    assert page.locator("#timing").get_attribute("aria-labelledby") == "timing-title timing-summary"
    assert page.locator("#problem").is_hidden()
    trigger_facts = page.locator("#trigger-facts").inner_text()
    assert "api" in trigger_facts and "POST /trigger from 127.0.0.1" in trigger_facts

    # the artifacts answer; a node's docs link opens its page in the docs site
    for href in page.locator("#artifacts a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert page.request.get(api.base_url + href).status == 200, href

    # the logs, searched from the keyboard: every line holding the text, in the steps that have it
    tab_to(page, "e.id === 'log-search'")
    page.keyboard.type("user_features")
    page.wait_for_function("() => document.getElementById('search-result').textContent.includes('matching')")
    whole = api.client.get(f"/runs/{run_id}/logs").text
    matching = sum("user_features" in line.lower() for line in whole.split("\n"))
    assert page.locator("#search-result").inner_text().startswith(f"{matching} matching line"), matching
    marks = page.locator("details.step[open] mark").all_inner_texts()
    assert len(marks) >= matching and {m.lower() for m in marks} == {"user_features"}
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.wait_for_function("() => document.getElementById('search-result').textContent === ''")
    tab_to(page, "e.tagName === 'SUMMARY' && e.parentElement.dataset.step === 'seed'")
    page.keyboard.press("Enter")
    seed_log = page.locator("details[data-step=seed] pre.step-log[data-loaded=true]")
    seed_log.wait_for()
    assert seed_log.text_content() == api.client.get(f"/runs/{run_id}/logs?step=seed").text
    check_page(page, errors, tmp_path / "run-success.png")

    page.click("#nodes a[href='/dbt-docs/#!/model/model.features_mart.user_features']")
    page.wait_for_url("**/dbt-docs/**")
    page.wait_for_function("() => document.body.innerText.includes('user_features') && document.title.includes('dbt')")


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_a_rejected_runs_page_shows_every_problem_in_full_after_the_browser_login(
    servers, chromium, settings, tmp_path
):
    """More problems than the validator keeps (it keeps 50): the page lists those, with file, line, column and
    value, and says how many more there are; the runs page shows the first one whole."""
    shutil.rmtree(settings.data_dir)
    random_dataset(settings.data_dir, seed=19, users=60, experiments=40)
    edit_text("users.csv", lambda text: re.sub(r"2024-(\d\d)-\d\d", r"2024-\1-32", text))(settings.data_dir)
    attack = "<img src=x onerror=window.pwned=1>"  # data is shown as text, never run as HTML
    edit_text("users.csv", lambda text: re.sub(r"\n(\d+),User", f"\n{attack},User", text, count=1))(settings.data_dir)
    with pytest.raises(DataError) as rejected:
        prepare_seeds(settings.data_dir, tmp_path / "validated")
    problems = rejected.value.problems
    assert rejected.value.total > len(problems) == 50, "a data set with more problems than are kept"

    api = servers(API_TOKEN=TOKEN)
    run = api.client.post("/trigger", params={"wait": "true"}, headers=BEARER, timeout=RUN_TIMEOUT).json()
    assert run["status"] == "failed"
    errors: list[str] = []
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.base_url}/run/{run['run_id']}")
    page.wait_for_url(f"**/login?next=/run/{run['run_id']}")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/run/{run['run_id']}")
    page.wait_for_selector("body[data-loaded=true]")

    assert page.locator("h1 .status").inner_text() == "failed"
    expected = [
        [p.file, "" if p.line is None else str(p.line), p.key or "", p.column or "", p.value or "", p.message]
        for p in problems
    ]
    assert table_cells(page, "#input-problems") == expected
    details = page.locator("#problem-details").inner_text()
    assert f"{rejected.value.total} problems, the first 50 listed" in details
    assert f"and {rejected.value.total - 50} more" in details
    assert page.locator("#whole-error").inner_text() == run["error"]
    assert attack in details and page.locator("#problem img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.locator("details[data-step=seed]").get_attribute("data-status") == "failed"
    assert page.locator("details[data-step=run]").get_attribute("data-status") == "skipped"
    check_page(page, errors, tmp_path / "run-rejected.png")

    page.goto(f"{api.base_url}/")  # the runs page, with the login cookie: the first problem, whole
    page.wait_for_selector("body[data-loaded=true]")
    cell = page.locator(f"tr[data-run-id='{run['run_id']}'] .problem")
    first = problems[0]
    text = cell.inner_text()
    assert text.startswith(f"{first.file}, line {first.line}") and first.message in text, text
    assert f"(and {rejected.value.total - 1} more problems)" in text
    assert cell.evaluate("c => c.scrollWidth <= c.clientWidth && c.scrollHeight <= c.clientHeight"), "clipped"
    assert page.locator("#runs img").count() == 0 and page.evaluate("window.pwned") is None
    check_page(page, errors, tmp_path / "runs-rejected.png")


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_a_failed_tests_page_shows_its_failing_rows(servers, chromium, database, tmp_path):
    """The data changes under a run (a user duplicated in its seeded table while `dbt run` waits for it): the
    run's tests fail, and its page shows each failed test with its first failing rows."""
    api = servers()
    run_id = trigger(api.client)

    def in_run_step() -> bool:
        row = run_row(database, run_id)
        assert row["status"] in history.ACTIVE, row["error"]
        return current_step(row) == "run"

    wait_until(in_run_step, RUN_TIMEOUT, "the run step")
    with database.connect(autocommit=False) as conn:  # one transaction: lock, wait for dbt, duplicate, commit
        conn.execute("set local lock_timeout = '10s'")
        conn.execute("lock table raw__build.users in access exclusive mode")

        def dbt_waits() -> bool:
            with database.connect() as watcher:
                return watcher.execute(
                    "select count(*) from pg_locks where relation = 'raw__build.users'::regclass and not granted"
                ).fetchone()[0]

        wait_until(dbt_waits, 60, "dbt to wait for raw__build.users")
        conn.execute("insert into raw__build.users select * from raw__build.users order by user_id limit 1")
        conn.commit()
    run = wait_for_run(api.client, run_id)
    assert run["status"] == "failed" and run["failures"], run
    assert any(f["rows"] for f in run["failures"]), run["failures"]

    errors: list[str] = []
    page = open_page(chromium, f"{api.base_url}/run/{run_id}", errors)
    page.wait_for_selector("body[data-nodes]")
    for failure in run["failures"]:
        block = page.locator(f".failure[data-node='{failure['node']}']")
        heading = block.locator("h3").inner_text()
        assert failure["name"] in heading and f"failed on {failure['failing_rows']} row(s)" in heading
        assert block.locator("a").first.get_attribute("href") == f"/dbt-docs/#!/test/{failure['node']}"
        if failure["rows"]:
            columns = list(failure["rows"][0])
            expected = [["null" if r[c] is None else str(r[c]) for c in columns] for r in failure["rows"]]
            assert table_cells(page, f".failure[data-node='{failure['node']}'] .failing-rows") == expected
        status = page.locator(f"#nodes tr[data-node='{failure['node']}']").get_attribute("data-status")
        assert status == failure["status"]
        assert page.locator(f"#timing rect[data-node='{failure['node']}']").get_attribute("class") == failure["status"]
    assert page.locator("#whole-error").inner_text() == run["error"]
    check_page(page, errors, tmp_path / "run-test-failed.png")


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_a_running_runs_page_updates_live(servers, chromium, database, tmp_path):
    """The page is opened while the run is young; `dbt run` is then held on a lock: the page shows the seed
    step done, the run step running, its log's tail and the seeds' timings, all without a reload; once the lock
    goes, the same page ends showing the run's success and every node."""
    api = servers()
    run_id = trigger(api.client)
    errors: list[str] = []
    page = open_page(chromium, f"{api.base_url}/run/{run_id}", errors)
    page.evaluate("window.sameDocument = true")
    with dbt_blocked_on(database, run_id, "run", "raw__build.users") as pid:
        servers.watch_dbt(pid)
        page.wait_for_selector("details[data-step=seed][data-status=success]")
        page.wait_for_selector("details[data-step=run][data-status=running]")
        page.wait_for_function("() => document.getElementById('live-log').textContent.includes('$ dbt run')")
        page.wait_for_function("() => document.body.dataset.nodes === '3'")  # the seed step's three seeds
        assert page.locator("#live").is_visible() and page.locator("body").get_attribute("data-status") == "running"
        assert page.locator("details[data-step=test]").get_attribute("data-status") == "pending"
        assert page.locator("h1 .status").inner_text() == "running"
        check_page(page, errors, tmp_path / "run-live.png")

        # the runs page redraws the active run's row every refresh: the keyboard focus stays on its link
        runs = open_page(chromium, f"{api.base_url}/", errors)
        tab_to(runs, f"e.classList.contains('run-link') && e.getAttribute('href') === '/run/{run_id}'")
        runs.evaluate("document.querySelector('#runs tr').dataset.drawn = 'before'")
        seen = int(runs.locator("body").get_attribute("data-refreshes"))
        runs.wait_for_function(f"() => Number(document.body.dataset.refreshes) >= {seen + 2}", timeout=60_000)
        assert runs.locator("#runs tr").first.get_attribute("data-drawn") is None, "the row was redrawn"
        assert runs.evaluate("document.activeElement.getAttribute('href')") == f"/run/{run_id}", "focus lost"
        runs.close()
    page.wait_for_selector("body[data-ended=success]", timeout=RUN_TIMEOUT * 1000)
    assert page.evaluate("window.sameDocument === true"), "updated in place, not reloaded"
    assert page.locator("h1 .status").inner_text() == "success"
    statuses = page.locator("details.step").evaluate_all("ds => ds.map(d => d.dataset.status)")
    assert statuses == ["success"] * 5
    manifest = api.client.get(f"/runs/{run_id}/artifacts/manifest.json").json()
    executed = [uid for uid, node in manifest["nodes"].items() if node["resource_type"] in EXECUTED]
    page.wait_for_function(f"() => document.body.dataset.nodes === '{len(executed)}'")
    assert page.locator("#live-progress").inner_text().startswith("ended: success")
    check_page(page, errors, tmp_path / "run-live-ended.png")


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_runs_page_triggers_cancels_and_lists_runs_in_chromium(served_api, chromium, tmp_path):
    """Trigger, follow, Cancel, Trigger again: each run's row links to its page, a cancelled run is told apart
    from a failed one, the live panel ends in the run's real final state, dates fit their cells."""
    errors: list[str] = []
    page = open_page(chromium, served_api + "/", errors)
    assert page.locator("tr[data-run-id]").count() == 0
    legend = page.locator(".legend li").evaluate_all("items => items.map(i => i.dataset.status)")
    assert legend == ["success", "failed", "cancelled", "running", "pending", "skipped"]

    page.click("#trigger")
    first = page.wait_for_selector("tr[data-run-id]")
    run_id = int(first.get_attribute("data-run-id"))
    # live progress of the active run, from the event stream
    page.wait_for_function("() => document.getElementById('active-step').textContent.includes('nodes')")
    page.wait_for_function("() => !document.getElementById('cancel').disabled")
    page.click("#cancel")
    page.wait_for_selector("body[data-followed=cancelled]", timeout=60_000)
    assert page.locator("#active-title").inner_text() == f"run #{run_id} cancelled"
    assert page.locator("#active-meter-box").get_attribute("class") == "meter cancelled"
    assert "cancelled in" in page.locator("#active-step").inner_text()
    page.wait_for_selector(f"tr[data-run-id='{run_id}'][data-status='cancelled']", timeout=60_000)
    check_page(page, errors, tmp_path / "runs-cancelled.png")

    page.click("#trigger")
    page.wait_for_selector("body[data-followed=success]", timeout=RUN_TIMEOUT * 1000)
    assert page.locator("#active-title").inner_text() == f"run #{run_id + 1} success"
    assert page.locator("#active-meter-box").get_attribute("class") == "meter success"
    assert page.evaluate("document.getElementById('active-meter').style.width") == "100%"
    assert "0/0" not in page.locator("#active").inner_text()
    page.wait_for_selector(f"tr[data-run-id='{run_id + 1}'][data-status='success']", timeout=60_000)
    rows = page.locator("tr[data-run-id]")
    assert [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())] == [
        str(run_id + 1),
        str(run_id),
    ], "newest first"
    assert page.locator(f"tr[data-run-id='{run_id}'] .source").inner_text() == "api"
    cancelled = page.locator(f"tr[data-run-id='{run_id}'] .problem").inner_text()
    assert "Cancel button on the runs page" in cancelled, cancelled
    stopped = page.locator(f"tr[data-run-id='{run_id}'] .seg").evaluate_all("s => s.map(x => x.className)")
    assert "seg cancelled" in stopped and "seg failed" not in stopped, stopped
    segments = page.locator(f"tr[data-run-id='{run_id + 1}'] .seg")
    assert [segments.nth(i).get_attribute("class") for i in range(5)] == ["seg success"] * 5
    assert page.locator("#chart rect").count() == 2  # one bar per finished run
    for time in page.locator("td.created time").all():  # one line, inside its cell, the full date on hover
        cell = "t.parentElement"
        assert time.evaluate(f"t => t.getClientRects().length === 1 && {cell}.scrollWidth <= {cell}.clientWidth")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", time.get_attribute("title"))
    check_page(page, errors, tmp_path / "runs.png")

    # from the keyboard: Tab to a run's link, Enter opens its page
    page.evaluate("document.activeElement && document.activeElement.blur()")
    tab_to(page, f"e.getAttribute('href') === '/run/{run_id}' && e.classList.contains('run-link')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/run/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("h1 .status").inner_text() == "cancelled"
    statuses = page.locator("details.step").evaluate_all("ds => ds.map(d => d.dataset.status)")
    assert "cancelled" in statuses and "failed" not in statuses, statuses
    assert "Cancel button on the runs page" in page.locator("#trigger-facts").inner_text()
    page.wait_for_selector("body[data-nodes]")
    nodes = page.locator("#nodes tbody tr").evaluate_all("rows => rows.map(r => r.dataset.node)")
    assert len(nodes) == len(set(nodes)), f"each node once, whichever step was stopped: {nodes}"
    check_page(page, errors, tmp_path / "run-cancelled.png")


@pytest.mark.slow
def test_the_cause_given_to_the_dbt_cloud_api_shows_on_the_runs_page_and_the_run_page(
    servers, chromium, database, tmp_path
):
    """A run asked for through the dbt Cloud-compatible API with a `cause`, queued behind another process's run
    (no dbt runs): the runs page's source column and the run's page show the cause."""
    api = servers()
    holder = lock.start_run(database, {"source": "another process"}, step_names("default"))
    try:
        answer = api.client.post("/api/v2/accounts/1/jobs/1/run/", json={"cause": "nightly from Airflow"})
        run_id = answer.json()["data"]["id"]
        errors: list[str] = []
        runs = open_page(chromium, f"{api.base_url}/", errors)
        cell = runs.wait_for_selector(f"tr[data-run-id='{run_id}'] .source")
        assert cell.inner_text() == "dbt-cloud-api: nightly from Airflow"
        page = open_page(chromium, f"{api.base_url}/run/{run_id}", errors)
        facts = page.locator("#trigger-facts").inner_text()
        assert facts.count("nightly from Airflow") == 1, facts
        assert not errors, errors
        api.client.post(f"/runs/{run_id}/cancel")
    finally:
        holder.release()
