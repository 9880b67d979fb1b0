"""Retry from failure: a new run that redoes only what a failed run did not finish, over that run's build schemas,
then tests and publishes as usual (`POST /runs/{id}/retry`, dbt Cloud's `POST jobs/{id}/rerun/`).

A failed run leaves its build schemas (`*__build`) in place, and each of its dbt steps keeps dbt's own state
(`runs/<id>/state/<step>/`: run_results.json, manifest.json). Its retry validates and prepares the input as any
run does, then decides, holding the run lock (nothing can change the build schemas meanwhile):

* reuse: the failed step runs as `dbt retry --state <its state>` (dbt's own semantics: the nodes that failed
  or were skipped run again, the others are reused; without a run_results.json, dbt was killed: the step runs
  again whole); the steps before it are reused, the steps after it run as usual;
* the whole job, saying why: the failure was in the seed step (validation or loading), or at publish; the input
  files changed since the failed run; its build schemas are gone (another run, or an API start-up, dropped them).

The one rule: a retry publishes only what a whole run would: the same models over the same input, then every
test, then publish as a whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from api.config import Settings
from api.core.db.database import Database
from api.core.job.files import runs_dir
from api.core.mart import publish
from api.core.runs import history

log = logging.getLogger(__name__)

#: The steps whose failure a retry can resume from (their dbt state is kept); any other means the whole job.
RESUMABLE = ("run", "test")


class NotRetryable(Exception):
    """The run did not fail: there is nothing to retry."""


@dataclass
class Retry:
    """What a retry run knows of the run it retries, and what it decided (recorded in `ops.runs.retry`)."""

    of: int
    failed_step: str | None
    input_sha256: str | None
    mode: str = "pending"
    reason: str | None = None
    reused: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"of": self.of, "mode": self.mode, "reason": self.reason, "reused": self.reused}

    @property
    def resumes(self) -> bool:
        return self.mode == "failed nodes"

    def decide(self, conn: psycopg.Connection, prepared_input: Path, this_run: int, settings: Settings) -> None:
        """Reuse the failed run's work, or run the whole job (with the reason): fills mode, reason, reused.
        Call holding the run lock, after the input was validated and prepared into `prepared_input`."""
        if self.failed_step not in RESUMABLE:
            where = f"in its {self.failed_step} step" if self.failed_step else "before any step ran"
            self.mode, self.reason = "whole job", f"run {self.of} failed {where}: only a failure in run or test resumes"
        elif self.input_sha256 is None or input_digest(prepared_input) != self.input_sha256:
            self.mode, self.reason = "whole job", f"the input files changed since run {self.of}"
        elif not _build_schemas_kept(conn, self.of, this_run):
            self.mode = "whole job"
            self.reason = f"the build schemas of run {self.of} are gone (another run or an API start-up dropped them)"
        else:
            self.mode, self.reason = "failed nodes", None
            self.reused = reused_nodes(settings, self.of, self.failed_step)


def plan(db: Database, run_id: int) -> Retry:
    """The retry of run `run_id`; raises RunNotFound, or NotRetryable when it did not fail."""
    row = history.get_run(db, run_id)
    if row is None:
        raise history.RunNotFound(run_id)
    if row["status"] != "failed":
        raise NotRetryable(f"run {run_id} is {row['status']}: only a failed run can be retried")
    steps = row["steps"] or []
    failed = next((s["name"] for s in steps if s["status"] == "failed"), None)
    seed = next((s for s in steps if s["name"] == "seed"), {})
    return Retry(of=run_id, failed_step=failed, input_sha256=seed.get("input_sha256"))


def latest_failed(db: Database) -> int | None:
    """The newest run, if it failed (dbt Cloud's rerun retries the job's last run)."""
    rows, _ = history.list_runs(db, 1, 0)
    return rows[0]["run_id"] if rows and rows[0]["status"] == "failed" else None


def input_digest(folder: Path) -> str:
    """sha256 over the prepared input files (names and contents), in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.csv")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def state_dir(settings: Settings, run_id: int, step: str) -> Path:
    return runs_dir(settings) / str(run_id) / "state" / step


def keep_state(settings: Settings, run_id: int, step: str, target_path: Path) -> None:
    """Keep dbt's state of one step (what `dbt retry --state` reads); never fails the run."""
    folder = state_dir(settings, run_id, step)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("run_results.json", "manifest.json"):
            if (target_path / name).is_file():
                shutil.copyfile(target_path / name, folder / name)
    except OSError:
        log.warning("run %s: could not keep dbt's state of step %s", run_id, step, exc_info=True)


def _build_schemas_kept(conn: psycopg.Connection, failed_run: int, this_run: int) -> bool:
    """The failed run's build schemas are still there and no other run has used them since."""
    schemas = [s + publish.BUILD_SUFFIX for s in publish.BUILD_SCHEMAS]
    found = conn.execute("select count(*) from pg_namespace where nspname = any(%s)", (schemas,)).fetchone()
    later = conn.execute(
        "select count(*) from ops.runs where run_id > %s and run_id <> %s and started_at is not null",
        (failed_run, this_run),
    ).fetchone()
    return _first(found) == len(schemas) and _first(later) == 0


def _first(row: Any) -> int:
    return int(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def reused_nodes(settings: Settings, failed_run: int, upto: str) -> list[str]:
    """The nodes the failed run finished in its steps up to `upto` (state kept): what the retry does not redo."""
    found: list[str] = []
    for step in ("seed", "run", "test"):
        path = state_dir(settings, failed_run, step) / "run_results.json"
        if path.is_file():
            results = json.loads(path.read_text()).get("results", [])
            found += [r["unique_id"] for r in results if r.get("status") in ("success", "pass")]
        if step == upto:
            break
    return sorted(set(found))
