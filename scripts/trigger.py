"""Client for scripts/trigger.sh: standard library only, so it runs anywhere python3 does.

Follows a run through its event stream (GET /runs/{id}/events), falling back to polling GET /runs/{id}; when a
run is going already, follows that one and exits with its outcome. Ctrl-C cancels the run it started (POST
/runs/{id}/cancel) and says so, then reports the run's recorded final state; a second Ctrl-C leaves at once."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

POLL_SECONDS = 1.0
EXIT_CANCELLED = 130  # the run was cancelled by Ctrl-C here


def request(base: str, method: str, path: str, body: dict | None = None, accept: str = "application/json"):
    url = base.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {base}")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Accept": accept})  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    token = os.environ.get("API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return req


def call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = request(base, method, path, body)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - scheme checked above
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body or b"{}")
        except ValueError:
            return err.code, {"detail": body.decode(errors="replace")}


def progress_line(run: dict) -> str:
    p = run.get("progress") or {}
    if run["status"] != "running" or not p:
        return f"run {run['run_id']}: {run['status']}"
    if not p.get("nodes_total"):  # a step without dbt nodes (publish), or one that has not counted them yet
        return f"run {run['run_id']}: {p['step']}"
    node = f"  {p['current_node']}" if p.get("current_node") else ""
    return f"run {run['run_id']}: {p['step']:<7} {p['nodes_done']}/{p['nodes_total']} nodes{node}"


def summary(run: dict, base: str) -> str:
    lines = [f"run {run['run_id']} {run['status'].upper()} in {run.get('duration_seconds') or 0:.1f}s"]
    for step in run["steps"]:
        code = "" if step.get("exit_code") is None else f" (exit {step['exit_code']})"
        lines.append(f"  {step['name']:<8} {step['status']}{code}")
    if run.get("error"):
        lines.append("error:")
        lines.extend("  " + line for line in run["error"].splitlines()[:25])
    lines.append(f"logs: {base.rstrip('/')}/runs/{run['run_id']}/logs")
    if run["status"] == "success":
        lines.append(f"features: {base.rstrip('/')}/features   docs: {base.rstrip('/')}/dbt-docs/")
    return "\n".join(lines)


def events(base: str, run_id: int):
    """(event, data) pairs of the run's Server-Sent Events stream, until the server closes it."""
    req = request(base, "GET", f"/runs/{run_id}/events", accept="text/event-stream")
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - scheme checked; the server pings every 15 s
        name, data = None, []
        for raw in resp:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                yield name or "message", "\n".join(data)
                name, data = None, []


def follow(base: str, run: dict) -> dict:
    """Print progress until the run has ended; return the finished run."""
    last = progress_line(run)
    print(last, flush=True)
    try:
        for name, data in events(base, run["run_id"]):
            if name == "progress":
                line = progress_line({**run, "status": "running", "progress": json.loads(data)})
            elif name == "status":
                return json.loads(data)
            else:
                continue
            if line != last:
                print(line, flush=True)
                last = line
    except urllib.error.HTTPError as err:
        if err.code not in (404, 405):  # an older API without the stream: poll instead
            raise
    except (TimeoutError, ConnectionError) as exc:
        print(f"trigger: the event stream broke ({exc}); polling instead", file=sys.stderr)
    while run["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
        _, run = call(base, "GET", f"/runs/{run['run_id']}")
        line = progress_line(run)
        if line != last:
            print(line, flush=True)
            last = line
    return run


def cancel(base: str, run_id: int, reason: str) -> tuple[int, dict]:
    return call(base, "POST", f"/runs/{run_id}/cancel", {"reason": reason})


def cancel_main(base: str, run_id: str) -> int:
    """`trigger.sh --cancel RUN_ID [URL]`: 0 when the cancel was accepted, 1 when the run has ended or does
    not exist, 2 when the API cannot be reached or refuses the token."""
    if not run_id.isdigit():
        print(f"trigger: --cancel needs a run id (a number), not {run_id!r}", file=sys.stderr)
        return 2
    try:
        code, body = cancel(base, int(run_id), "scripts/trigger.sh --cancel")
    except (urllib.error.URLError, OSError) as exc:
        print(f"trigger: cannot reach {base} ({exc}); is the API running (scripts/run.sh)?", file=sys.stderr)
        return 2
    if code == 202:
        print(
            f"trigger: cancelling run {run_id} (it ends 'cancelled' in a few seconds: {base.rstrip('/')}/runs/{run_id})"
        )
        return 0
    if code in (404, 409):
        print(f"trigger: {body.get('detail')}", file=sys.stderr)
        return 1
    print(f"trigger: unexpected answer {code}: {body}", file=sys.stderr)
    return 2


def final_state(base: str, run: dict) -> dict:
    """The run as the API recorded it once it has ended (polled until then)."""
    while True:
        code, fresh = call(base, "GET", f"/runs/{run['run_id']}")
        if code != 200:
            return run
        if fresh["status"] not in ("queued", "running"):
            return fresh
        time.sleep(POLL_SECONDS)


def follow_active(base: str, run_id: int) -> int:
    """A run is already going: follow it instead, and exit with its outcome (Ctrl-C stops following only: this
    command did not start it, so it does not cancel it)."""
    print(f"trigger: run {run_id} is already in progress: following it (Ctrl-C stops following)", flush=True)
    try:
        code, run = call(base, "GET", f"/runs/{run_id}")
        if code != 200:
            print(f"trigger: could not read run {run_id}: {run.get('detail')}", file=sys.stderr)
            return 2
        run = final_state(base, follow(base, run))
    except KeyboardInterrupt:
        print(f"trigger: stopped following run {run_id}; it goes on", file=sys.stderr)
        return EXIT_CANCELLED
    except (urllib.error.URLError, OSError) as exc:
        print(f"trigger: lost the API at {base} ({exc})", file=sys.stderr)
        return 2
    print(summary(run, base))
    return 0 if run["status"] == "success" else 1


def main(argv: list[str]) -> int:
    args = argv[1:]
    if args and args[0] == "--cancel":
        if len(args) < 2:
            print("usage: scripts/trigger.sh --cancel RUN_ID [URL]", file=sys.stderr)
            return 2
        return cancel_main(args[2] if len(args) > 2 else os.environ.get("API_URL", "http://localhost:8000"), args[1])
    base = args[0] if args else os.environ.get("API_URL", "http://localhost:8000")
    try:
        code, body = call(base, "POST", "/trigger")
    except (urllib.error.URLError, OSError) as exc:
        print(f"trigger: cannot reach {base} ({exc}); is the API running (scripts/run.sh)?", file=sys.stderr)
        return 2
    if code == 409 and body.get("active_run_id") is None:  # a scripts/dbt.sh command holds the lock: no run
        print(f"trigger: {body.get('detail')}; try again when it has finished", file=sys.stderr)
        return 75
    if code == 409:
        return follow_active(base, int(body["active_run_id"]))
    if code == 401:
        print("trigger: 401 unauthorized: set API_TOKEN to the server's token", file=sys.stderr)
        return 2
    if code not in (200, 202):
        print(f"trigger: unexpected answer {code}: {body}", file=sys.stderr)
        return 2
    run, cancelled = body, False
    print(f"trigger: started run {run['run_id']} (Ctrl-C cancels it)", flush=True)
    while True:
        try:
            run = follow(base, run)
            break
        except KeyboardInterrupt:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                run = call(base, "GET", f"/runs/{run['run_id']}")[1] or run  # follow on from its state now
            if cancelled:
                print(f"trigger: stopped following; run {run['run_id']} is being cancelled", file=sys.stderr)
                return EXIT_CANCELLED
            cancelled = True
            code, answer = cancel(base, run["run_id"], "Ctrl-C in scripts/trigger.sh")
            if code == 202:
                print(f"trigger: Ctrl-C: cancelling run {run['run_id']} (Ctrl-C again to stop waiting)", flush=True)
            else:
                print(f"trigger: Ctrl-C: could not cancel run {run['run_id']}: {answer.get('detail')}", flush=True)
        except (urllib.error.URLError, OSError) as exc:
            print(f"trigger: lost the API at {base} ({exc})", file=sys.stderr)
            return 2
    run = final_state(base, run)  # what the API recorded, not the last event seen
    print(summary(run, base))
    if cancelled and run["status"] == "cancelled":
        return EXIT_CANCELLED
    return 0 if run["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
