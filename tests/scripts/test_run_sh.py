"""scripts/run.sh as a user (and the container) starts it: embedded Postgres, the API, the main job through
scripts/trigger.sh and plain HTTP, scripts/query.sh, and a clean stop that leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from api.config import REPO_ROOT
from tests.conftest import free_port, python_env, wait_until

pytestmark = pytest.mark.slow


def leftovers(marker: str) -> list[str]:
    """Processes whose command line mentions `marker` (our state dir or port)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'])}")
        except psutil.Error:
            continue
    return found


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url)  # noqa: S310 - loopback http only (asserted)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def render(url: str, tmp: Path) -> str:
    """The DOM of `url` after headless Chromium ran its JavaScript."""
    done = subprocess.run(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp}", "--window-size=1400,900", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def trigger_sh(url: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "trigger.sh"), url], env=env, capture_output=True, text=True, timeout=timeout
    )


class Served:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc = subprocess.Popen(
            [str(REPO_ROOT / "scripts" / "run.sh")],
            env=env,
            stdout=open(log, "w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"run.sh exited early:\n{log.read_text()}")
            try:
                if get(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the API did not come up:\n{log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


@pytest.fixture
def embedded_env(pg_tmp, settings):
    """run.sh with DATABASE_URL unset: it must start (and later stop) its own Postgres."""
    port = free_port()
    env = python_env(settings, PORT=str(port), HOST="127.0.0.1")
    env.pop("DATABASE_URL")
    env["STATE_DIR"] = str(pg_tmp / "served-state")
    return env, port


def test_run_sh_serves_the_job_end_to_end_and_stops_cleanly(embedded_env, tmp_path):
    env, port = embedded_env
    served = Served(env, port, tmp_path / "run.log")
    try:
        assert get(served.url + "/health") == (200, {"status": "ok", "database": "ok"})
        trigger = trigger_sh(served.url, env, timeout=600)
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        assert "SUCCESS" in trigger.stdout and "nodes" in trigger.stdout
        for step in ("seed", "run", "test", "publish", "docs"):
            assert f"  {step}" in trigger.stdout

        # a plain `curl localhost:PORT/trigger` (GET) works too, and a second one gets 409
        curl = shutil.which("curl")
        if curl:
            first = subprocess.run([curl, "-s", "-i", served.url + "/trigger"], capture_output=True, text=True)
            assert " 202 " in first.stdout.splitlines()[0] and "location: /runs/" in first.stdout.lower()
            again = subprocess.run(
                [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", served.url + "/trigger"],
                capture_output=True,
                text=True,
            )
            assert again.stdout == "409"
        else:
            assert get(served.url + "/trigger")[0] == 202

        if shutil.which("chromium"):  # scripts/test.sh installs it where it can (root + apt)
            page = served.url + "/dbt-docs/#!/model/model.features_mart.user_features"
            dom = render(page, tmp_path / "chromium-1")
            # the app ran: the model's description (manifest.json) and column types (catalog.json) are shown
            assert "One row per user" in dom and "integer[]" in dom and "tied_compound_ids" in dom
            lineage = render(page + "?g_v=1", tmp_path / "chromium-2")
            assert "Lineage Graph" in lineage
            canvas = re.search(r'<canvas[^>]*data-id="layer2-node"[^>]*width="(\d+)" height="(\d+)"', lineage)
            assert canvas and int(canvas[1]) > 100 and int(canvas[2]) > 100, "the lineage graph was not drawn"

        query = subprocess.run(
            [str(REPO_ROOT / "scripts" / "query.sh")], env=env, capture_output=True, text=True, timeout=120
        )
        assert query.returncode == 0, query.stderr
        assert "Alice" in query.stdout and "Judy" in query.stdout and "most_common_compound_id" in query.stdout
    finally:
        code = served.stop(signal.SIGTERM)
    assert code in (0, 143), served.log.read_text()[-3000:]  # 143: re-raised SIGTERM, after a clean shutdown
    assert "Application shutdown complete" in served.log.read_text()
    time.sleep(0.5)
    assert leftovers(env["STATE_DIR"]) == [], "the embedded Postgres must stop with the API"
    assert leftovers(f"--port {port}") == [] and leftovers(f"{port}") == []


def test_ctrl_c_stops_api_and_embedded_postgres(embedded_env, tmp_path):
    """Ctrl-C during a run: the run is recorded, the API and its Postgres stop, and the terminal shows what the
    server did (its database without password, DATA_DIR, the dbt target, the run's start and end), with no
    traceback and no warning noise."""
    env, port = embedded_env
    served = Served(env, port, tmp_path / "run.log")
    request = urllib.request.Request(served.url + "/trigger", method="POST")  # noqa: S310 - loopback http
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the test's own server
        assert answer.status == 202
    wait_until(lambda: "run 1 started" in served.log.read_text(), 60, "the run's start line")
    code = served.stop(signal.SIGINT)
    time.sleep(0.5)
    assert leftovers(env["STATE_DIR"]) == []
    log = served.log.read_text()
    assert code == 130, log[-3000:]
    assert "Traceback" not in log and "Warning" not in log, log[-3000:]
    assert "database: postgresql://features_mart@127.0.0.1:" in log and "(embedded)" in log
    assert f"DATA_DIR {env['DATA_DIR']}; dbt target default" in log
    assert "run 1 started (trigger: api)" in log and re.search(r"run 1 (success|failed) in \d+\.\ds", log), log
    password = (Path(env["STATE_DIR"]) / "pg" / "password").read_text().strip()
    assert password not in log
    assert "serve: stopped (Ctrl-C)" in log


def test_trigger_sh_honours_api_token(embedded_env, tmp_path):
    env, port = embedded_env
    served = Served({**env, "API_TOKEN": "run-sh-token-long-enough-to-be-accepted"}, port, tmp_path / "run.log")
    try:
        client_env = {k: v for k, v in env.items() if k != "API_TOKEN"}
        denied = trigger_sh(served.url, client_env, timeout=60)
        assert denied.returncode == 2 and "401" in denied.stderr
        assert get(served.url + "/runs")[0] == 401
        assert get(served.url + "/health")[0] == 200
        ok = trigger_sh(served.url, {**client_env, "API_TOKEN": "run-sh-token-long-enough-to-be-accepted"}, timeout=600)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    finally:
        served.stop()
    assert "API_TOKEN is not set" not in served.log.read_text()


def test_trigger_sh_reports_an_unreachable_api():
    done = trigger_sh(f"http://127.0.0.1:{free_port()}", dict(os.environ), timeout=60)
    assert done.returncode == 2 and "cannot reach" in done.stderr
