"""The job: prepare the input, `dbt seed`, `dbt run`, `dbt test` into the run's own schemas, publish them,
then `dbt docs generate`. Runs in a background thread of the process that triggered it; its state is written
to `ops.runs` as it goes, so any process can serve it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import psycopg

from api.config import Settings
from api.core import failures as failure_report
from api.core import publish, runs, spark_mart
from api.core.database import Database
from api.core.dbt import Progress, run_dbt
from api.core.seeds import DataError, prepare_seeds

log = logging.getLogger(__name__)

KEEP_RUN_DIRS = 30
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StepOutcome:
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)


class StepFailed(Exception):
    def __init__(self, outcome: StepOutcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def docs_dir(settings: Settings) -> Path:
    """The dbt docs site of the last successful run (a symlink switched atomically)."""
    return settings.state_dir / "docs" / "current"


class RunExecution:
    """One run, executed step by step in the calling thread."""

    def __init__(self, settings: Settings, db: Database, handle: runs.RunHandle) -> None:
        self.settings = settings
        self.db = db
        self.handle = handle
        self.run_id = handle.run_id
        self.run_dir = settings.state_dir / "runs" / str(self.run_id)
        self.suffix = publish.build_suffix(self.run_id)
        self.steps = runs.initial_steps(spark_mart.STEP_NAMES if settings.dbt_target == "spark" else runs.STEP_NAMES)
        self.dbt_pid: int | None = None
        self.stop_requested = False
        self._last_progress = 0.0

    # -- helpers -----------------------------------------------------------------------------------------
    def _dbt_env(self, suffix: str) -> dict[str, str]:
        return {
            **self.db.dbt_env(),
            "DBT_SEEDS_DIR": str(self.run_dir / "seeds"),
            "DBT_SCHEMA_SUFFIX": suffix,
            "DBT_THREADS": str(self.settings.dbt_threads),
            **spark_mart.dbt_env(self.settings),  # DBT_TARGET=spark: dbt's Spark settings
        }

    def _on_start(self, pid: int) -> None:
        self.dbt_pid = pid
        self.handle.update(dbt_pid=pid)

    def _progress(self, step: str):
        def report(p: Progress) -> None:
            t = time.monotonic()
            if t - self._last_progress >= 0.25 or p.nodes_done == p.nodes_total:
                self._last_progress = t
                try:
                    self.handle.update(retry_for=0, progress={"step": step, **p.as_dict()})
                except psycopg.Error:  # progress is for display: it must never fail or hold up the step
                    log.warning("run %s: could not record progress", self.run_id, exc_info=True)

        return report

    def _dbt(self, args: list[str], log_file: IO[str], step: str, suffix: str) -> StepOutcome:
        result = run_dbt(
            args,
            env=self._dbt_env(suffix),
            target_path=self.run_dir / "target",
            log=log_file,
            on_progress=self._progress(step),
            on_start=self._on_start,
        )
        self.dbt_pid = None
        self.handle.update(dbt_pid=None)  # the column names a running dbt only, never a finished one
        if result.ok:
            return StepOutcome(ok=True, exit_code=0)
        try:
            with self.db.connect() as conn:
                found = failure_report.collect(result, conn)
        except Exception:  # the database may be what failed; report without sample rows
            found = failure_report.collect(result, None)
        error = failure_report.summarize(" ".join(args), result, found)
        return StepOutcome(ok=False, exit_code=result.exit_code, error=error, failures=found)

    # -- steps -------------------------------------------------------------------------------------------
    def step_seed(self, log_file: IO[str]) -> StepOutcome:
        log_file.write(f"preparing input files from {self.settings.data_dir}\n")
        try:
            prepared = prepare_seeds(self.settings.data_dir, self.run_dir / "seeds")
        except DataError as exc:
            log_file.write(f"{exc}\n")
            return StepOutcome(ok=False, error=f"the input data was rejected, nothing was loaded:\n{exc}")
        log_file.write(f"input ok: {prepared.row_counts}\n")
        return self._dbt(["seed"], log_file, "seed", self.suffix)

    def step_run(self, log_file: IO[str]) -> StepOutcome:
        return self._dbt(["run"], log_file, "run", self.suffix)

    def step_test(self, log_file: IO[str]) -> StepOutcome:
        return self._dbt(["test"], log_file, "test", self.suffix)

    def step_transfer(self, log_file: IO[str]) -> StepOutcome:
        """DBT_TARGET=spark only: Spark writes the tested mart as CSV files, Postgres COPYs them into the build
        schema (api/core/spark_mart.py)."""
        export_dir = self.run_dir / "mart-export"
        outcome = self._dbt(spark_mart.export_args(export_dir), log_file, "transfer", self.suffix)
        if outcome.ok:
            rows = spark_mart.load_into_postgres(self.handle.conn, export_dir, self.suffix)
            shutil.rmtree(export_dir, ignore_errors=True)
            log_file.write(f"copied {rows} mart rows from Spark into marts{self.suffix}\n")
        return outcome

    def step_publish(self, log_file: IO[str]) -> StepOutcome:
        publish.publish(self.handle.conn, self.suffix)
        log_file.write(f"published schemas {', '.join(publish.BUILD_SCHEMAS)} from run {self.run_id}\n")
        return StepOutcome(ok=True)

    def step_docs(self, log_file: IO[str]) -> StepOutcome:
        outcome = self._dbt(["docs", "generate"], log_file, "docs", "")
        if outcome.ok:
            self._install_docs()
        return outcome

    def _install_docs(self) -> None:
        root = self.settings.state_dir / "docs"
        site = root / f"run-{self.run_id}"
        site.mkdir(parents=True, exist_ok=True)
        for name in DOCS_FILES:
            shutil.copy2(self.run_dir / "target" / name, site / name)
        link = root / f".current-{self.run_id}"
        link.unlink(missing_ok=True)
        link.symlink_to(site.name)
        os.replace(link, root / "current")
        for old in root.glob("run-*"):
            if old != site:
                shutil.rmtree(old, ignore_errors=True)

    # -- the whole run -----------------------------------------------------------------------------------
    def _set_step(self, index: int, **fields: Any) -> None:
        self.steps[index].update(fields)
        self.handle.update(steps=self.steps)

    def execute(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "dbt.log"
        status, error, found, published = "failed", None, [], False
        self.handle.update(status="running", started_at=now(), log_path=str(log_path), steps=self.steps)
        with open(log_path, "a", encoding="utf-8") as log_file:
            try:
                for index, step in enumerate(self.steps):
                    if self.stop_requested:
                        error = f"interrupted: the API was stopped before step {step['name']}"
                        break
                    self._set_step(index, status="running", started_at=now().isoformat())
                    self.handle.update(progress={"step": step["name"], **Progress().as_dict()})
                    outcome = getattr(self, f"step_{step['name']}")(log_file)
                    self._set_step(
                        index,
                        status="success" if outcome.ok else "failed",
                        finished_at=now().isoformat(),
                        exit_code=outcome.exit_code,
                    )
                    published = published or (step["name"] == "publish" and outcome.ok)
                    if not outcome.ok and self.stop_requested:
                        error = f"interrupted: the API was stopped during step {step['name']}"
                        break
                    if not outcome.ok:
                        error = f"step {step['name']} failed: {outcome.error}"
                        found = outcome.failures
                        break
                else:
                    status = "success"
            except Exception as exc:
                log.exception("run %s crashed", self.run_id)
                log_file.write(traceback.format_exc())
                error = f"internal error in the job: {type(exc).__name__}: {exc}"
            finally:
                if published and status != "success":
                    # The mart is out: the run succeeded. Only the docs site is stale; say why.
                    status, error = "success", f"the mart was published, but the docs were not updated: {error}"
                for s in self.steps:
                    if s["status"] == "running":
                        s.update(status="failed", finished_at=now().isoformat())
                    elif s["status"] == "pending":
                        s["status"] = "skipped"
                log_file.write(f"run {self.run_id} {status}\n")
                if error:
                    log_file.write(error + "\n")
        self.kill_dbt_if_running()  # a step that crashed may have left its dbt running: stop it writing
        try:
            publish.drop_build(self.handle.conn, self.suffix)
        except Exception:
            log.warning("could not drop the build schemas of run %s", self.run_id, exc_info=True)
        self.handle.update(
            status=status, finished_at=now(), steps=self.steps, error=error, failures=found or None,
            progress=None, dbt_pid=None,
        )  # fmt: skip

    def stop(self) -> None:
        """Asked by a shutting-down API: end the current dbt and run no further step."""
        self.stop_requested = True
        self.kill_dbt_if_running()

    def kill_dbt_if_running(self, sig: int = signal.SIGTERM) -> None:
        pid = self.dbt_pid
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)


class JobRunner:
    """Starts runs in background threads of this process and lets callers wait for them."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._threads: dict[int, threading.Thread] = {}
        self._executions: dict[int, RunExecution] = {}
        self._lock = threading.Lock()

    def startup(self) -> list[int]:
        """Create the ops schema, mark runs orphaned by a dead process as failed and drop their schemas."""
        runs.ensure_schema(self.db)
        interrupted = runs.recover_interrupted(self.db)
        if interrupted:
            log.warning("marked runs %s as failed: they were interrupted", interrupted)
        try:
            with runs.run_lock(self.db) as conn:
                dropped = publish.drop_leftovers(conn)
                if dropped:
                    log.info("dropped leftover build schemas %s", dropped)
        except runs.RunBusy:
            pass  # another process is running a job; its schemas are not leftovers
        return interrupted

    def trigger(self, trigger: dict[str, Any]) -> int:
        """Start a run; raises runs.RunBusy when one is active anywhere."""
        handle = runs.start_run(self.db, trigger)
        execution = RunExecution(self.settings, self.db, handle)
        thread = threading.Thread(target=self._execute, args=(execution,), name=f"run-{handle.run_id}", daemon=True)
        with self._lock:
            self._threads[handle.run_id] = thread
            self._executions[handle.run_id] = execution
        thread.start()
        return handle.run_id

    def _execute(self, execution: RunExecution) -> None:
        try:
            execution.execute()
        except Exception:
            log.exception("run %s could not record its outcome", execution.run_id)
        finally:
            execution.handle.release()
            with self._lock:
                self._executions.pop(execution.run_id, None)
            self._prune()

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait for a run started by this process; True when it has finished."""
        thread = self._threads.get(run_id)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def shutdown(self, timeout: float = 30) -> None:
        """Stop: end the dbt process of an active run, which then records itself as failed."""
        with self._lock:
            executions = list(self._executions.values())
        for execution in executions:
            execution.stop()
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _prune(self) -> None:
        root = self.settings.state_dir / "runs"
        dirs = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
        for old in dirs[:-KEEP_RUN_DIRS]:
            shutil.rmtree(old, ignore_errors=True)
