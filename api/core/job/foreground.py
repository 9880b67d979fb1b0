"""A run of the job in the calling process, in the foreground: `scripts/dbt.sh build --publish`.

It is the API's run, started another way: the same steps (api/core/job/steps.py), the same run lock, the same
write-audit-publish, recorded in `ops.runs` like any run (trigger source `cli`), so the API serves it (its runs
page, `GET /runs/{id}`, `X-Mart-Run-Id`) and never has its mart replaced behind its back.

The one rule: the caller sees the run through its row in `ops.runs`, exactly as any other process would; a
Ctrl-C or SIGTERM stops the run (recorded as interrupted, nothing published) before this returns.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import Callable
from typing import Any

from api.config import Settings
from api.core.db.database import Database
from api.core.db.migrations import migrate
from api.core.job.runner import JobRunner
from api.core.runs import history

#: How often the caller's report is refreshed from the run's row.
POLL_SECONDS = 0.5
CANCEL_REASON = "cancelled from the command line (Ctrl-C or SIGTERM)"


def cli_trigger(command: str) -> dict[str, Any]:
    """The `trigger` recorded for a run started from the command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        user = None
    return {"source": "cli", "command": command, "user": user, "host": socket.gethostname()}


def step_lines(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """One line per step whose status changed between two readings of a run's `steps`."""
    old = {s["name"]: s["status"] for s in before}
    lines = []
    for step in after:
        if old.get(step["name"]) != step["status"] and step["status"] != "pending":
            code = "" if step.get("exit_code") in (None, 0) else f" (exit {step['exit_code']})"
            lines.append(f"  {step['name']:<9}{step['status']}{code}")
    return lines


def run_in_foreground(
    settings: Settings, db: Database, trigger: dict[str, Any], report: Callable[[str], None]
) -> dict[str, Any]:
    """Run the job here, recorded with `trigger`, reporting each step's change through `report`; returns the
    finished run's row. Raises RunBusy (naming the active run) when a run is going already."""
    migrate(db)  # a database the API never started on has no ops schema yet
    runner = JobRunner(settings, db)
    try:
        run_id = runner.trigger(trigger)
        report(f"run {run_id} started ({trigger['source']}): it builds into raw__build, ... and publishes if it passes")
        steps: list[dict[str, Any]] = []
        cancelled = False
        while True:
            try:
                finished = runner.wait(run_id, POLL_SECONDS)
            except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: cancel, as POST /runs/{id}/cancel does
                if cancelled:
                    raise  # a second one: stop waiting; `finally` still stops the run's dbt
                cancelled = True
                report(f"cancelling run {run_id} (again to leave at once)")
                with contextlib.suppress(history.RunFinished):
                    history.request_cancel(db, run_id, CANCEL_REASON)
                continue
            row = history.get_run(db, run_id)
            assert row is not None, f"run {run_id} has no row"
            for line in step_lines(steps, row["steps"]):
                report(line)
            steps = row["steps"]
            if finished:
                return row
    finally:
        runner.shutdown()  # stops the run's dbt if it still runs; the run records itself interrupted
        db.close_pool()
