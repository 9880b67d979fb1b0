"""scripts/trigger.sh against a served API (uvicorn on the test database): it follows the run through the
event stream, Ctrl-C cancels the run it started, and --cancel cancels any run."""

from __future__ import annotations

import signal
import subprocess

import pytest

from api.config import REPO_ROOT
from api.core.job.steps import step_names
from api.core.runs import lock
from tests.conftest import get_json as get
from tests.conftest import python_env

pytestmark = pytest.mark.slow


def trigger_sh(*args: str, env: dict, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(REPO_ROOT / "scripts" / "trigger.sh"), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def test_trigger_sh_follows_the_event_stream_and_ctrl_c_cancels_its_run(served_api, settings):
    """Needs the job side of cancel (the run ends 'cancelled' within 15 s)."""
    api, env = served_api, python_env(settings)
    proc = trigger_sh(api, env=env)
    started = proc.stdout.readline()
    assert started.startswith("trigger: started run"), started + proc.stderr.read()
    run_id = int(started.split()[3])
    while "nodes" not in (line := proc.stdout.readline()):  # a progress line from the stream
        assert line, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert f"Ctrl-C: cancelling run {run_id}" in out, out + err
    assert proc.returncode == 130 and f"run {run_id} CANCELLED" in out, out + err
    after = out.split(f"Ctrl-C: cancelling run {run_id}", 1)[1]
    assert f"run {run_id}: queued" not in after, "a stale state after the cancel"
    steps = [line.split() for line in after.splitlines() if line.startswith("  ")][: len(step_names("default"))]
    assert not [s for s in steps if s[1:2] == ["failed"]], f"a cancelled run's steps are not failed: {steps}"
    assert "0/0 nodes" not in out
    run = get(f"{api}/runs/{run_id}")
    assert run["status"] == "cancelled" and "Ctrl-C in scripts/trigger.sh" in run["error"]


def test_trigger_sh_cancel_any_run(served_api, settings, database):
    api, env = served_api, python_env(settings)
    handle = lock.start_run(database, {"source": "elsewhere"}, step_names("default"))  # a run of another process
    try:
        done = trigger_sh("--cancel", str(handle.run_id), api, env=env)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0 and f"cancelling run {handle.run_id}" in out, out + err
        assert get(f"{api}/runs/{handle.run_id}")["cancel_reason"].endswith("scripts/trigger.sh --cancel")
    finally:
        handle.update(status="failed")
        handle.release()
    ended = trigger_sh("--cancel", str(handle.run_id), api, env=env)
    out, err = ended.communicate(timeout=60)
    assert ended.returncode == 1 and "already finished" in err
    unknown = trigger_sh("--cancel", "424242", api, env=env)
    assert unknown.wait(60) == 1
    assert trigger_sh("--cancel", "abc", api, env=env).wait(60) == 2


def test_trigger_sh_follows_a_run_that_is_already_going_and_exits_with_its_outcome(served_api, settings):
    import urllib.request

    api, env = served_api, python_env(settings)
    request = urllib.request.Request(f"{api}/trigger", method="POST")  # noqa: S310 - the test's own server
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        run_id = int(__import__("json").loads(answer.read())["run_id"])
    proc = trigger_sh(api, env=env)
    out, err = proc.communicate(timeout=600)
    assert f"trigger: run {run_id} is already in progress: following it" in out, out + err
    assert proc.returncode == 0 and f"run {run_id} SUCCESS" in out, out + err
    assert "0/0 nodes" not in out
