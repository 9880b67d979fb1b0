"""Client for scripts/trigger.sh: standard library only, so it runs anywhere python3 does."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

POLL_SECONDS = 1.0


def call(base: str, method: str, path: str) -> tuple[int, dict]:
    url = base.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {base}")
    req = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})  # noqa: S310
    token = os.environ.get("API_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
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


def main(argv: list[str]) -> int:
    base = argv[1] if len(argv) > 1 else os.environ.get("API_URL", "http://localhost:8000")
    try:
        code, body = call(base, "POST", "/trigger")
    except (urllib.error.URLError, OSError) as exc:
        print(f"trigger: cannot reach {base} ({exc}); is the API running (scripts/run.sh)?", file=sys.stderr)
        return 2
    if code == 409:
        print(f"trigger: {body.get('detail')} (see {base.rstrip('/')}/runs/{body.get('active_run_id')})")
        return 75
    if code == 401:
        print("trigger: 401 unauthorized: set API_TOKEN to the server's token", file=sys.stderr)
        return 2
    if code not in (200, 202):
        print(f"trigger: unexpected answer {code}: {body}", file=sys.stderr)
        return 2
    run, last = body, ""
    print(f"trigger: started run {run['run_id']}")
    while run["status"] in ("queued", "running"):
        line = progress_line(run)
        if line != last:
            print(line, flush=True)
            last = line
        time.sleep(POLL_SECONDS)
        try:
            code, run = call(base, "GET", f"/runs/{body['run_id']}")
        except (urllib.error.URLError, OSError) as exc:
            print(f"trigger: lost the API at {base} ({exc})", file=sys.stderr)
            return 2
    print(summary(run, base))
    return 0 if run["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
