"""The job: prepare the input, `dbt seed`, `dbt run`, `dbt test` into the build schemas, publish them, then
`dbt docs generate`. Runs in a background thread of the process that triggered it; its state is written to
`ops.runs` as it goes, so any process can serve it.

dbt runs in the API's warm worker (api/core/dbt.py), which parsed the project once: every run builds into the
same `*__build` schemas from the same `STATE_DIR/build/seeds` folder, so one parsed manifest serves every run
(the run lock makes sure only one run uses them at a time). Each run keeps its log and dbt artifacts in
`STATE_DIR/runs/<run_id>/`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import psycopg

from api.config import Settings
from api.core import failures as failure_report
from api.core import publish, runs, spark_mart, webhooks
from api.core.control import Watchdog, interrupt
from api.core.database import Database
from api.core.dbt import DbtResult, DbtWorker, Progress, run_dbt
from api.core.dbt_worker import NO_WRITE_JSON
from api.core.seeds import SEED_FILES, DataError, prepare_seeds

log = logging.getLogger(__name__)

DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
#: The API's test step runs the data tests. Unit tests check the models' logic, not the data: they run in
#: scripts/test.sh and in `scripts/dbt.sh build`, as dbt Labs recommends, not on every rebuild.
TEST_ARGS = ("test", "--exclude-resource-type", "unit_test", NO_WRITE_JSON)


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


def build_dir(settings: Settings) -> Path:
    """What every run reuses: the normalised input (`seeds/`) and dbt's targets (`target/` for the build, `docs/`
    for the docs of the published schemas), so that dbt's parsed manifests stay valid from run to run."""
    return settings.state_dir / "build"


def dbt_env(settings: Settings, db: Database, suffix: str) -> dict[str, str]:
    """The environment dbt is parsed and run with (DBT_SCHEMA_SUFFIX and DBT_SEEDS_DIR are fixed at parse time)."""
    return {
        **db.dbt_env(),
        "DBT_SEEDS_DIR": str(build_dir(settings) / "seeds"),
        "DBT_SCHEMA_SUFFIX": suffix,
        "DBT_THREADS": str(settings.dbt_threads),
        # dbt's own debug log file would repeat, at debug level, what the run's log keeps (8% of a canonical run)
        "DBT_LOG_LEVEL_FILE": "none",
        **spark_mart.dbt_env(settings),  # DBT_TARGET=spark: dbt's Spark settings
    }


class RunExecution:
    """One run, executed step by step in the calling thread."""

    def __init__(self, settings: Settings, db: Database, handle: runs.RunHandle, worker: DbtWorker) -> None:
        self.settings = settings
        self.db = db
        self.handle = handle
        self.worker = worker
        self.run_id = handle.run_id
        self.run_dir = settings.state_dir / "runs" / str(self.run_id)
        self.build_dir = build_dir(settings)
        self.suffix = publish.BUILD_SUFFIX
        self.steps = runs.initial_steps(spark_mart.STEP_NAMES if settings.dbt_target == "spark" else runs.STEP_NAMES)
        self.dbt_pid: int | None = None
        self.stop_requested = False
        self.cancel_reason: str | None = None
        self._last_progress = 0.0

    # -- helpers -----------------------------------------------------------------------------------------
    def _on_start(self, pid: int) -> None:
        self.dbt_pid = pid
        if self.cancel_reason:  # cancelled while this command was being started
            interrupt(pid)
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

    def _dbt(self, args: Sequence[str], log_file: IO[str], step: str, suffix: str, target: str) -> StepOutcome:
        result = run_dbt(
            args,
            env=dbt_env(self.settings, self.db, suffix),
            target_path=self.build_dir / target,
            log=log_file,
            on_progress=self._progress(step),
            on_start=self._on_start,
            worker=self.worker,
        )
        self.dbt_pid = None
        self.handle.update(dbt_pid=None)  # the column names a running dbt only, never a finished one
        self._keep_artifacts(result)
        if result.ok:
            return StepOutcome(ok=True, exit_code=0)
        try:
            with self.db.connect() as conn:
                found = failure_report.collect(result, conn)
        except Exception:  # the database may be what failed; report without sample rows
            found = failure_report.collect(result, None)
        error = failure_report.summarize(" ".join(args), result, found)
        return StepOutcome(ok=False, exit_code=result.exit_code, error=error, failures=found)

    def _keep_artifacts(self, result: DbtResult) -> None:
        """Keep this run's dbt artifacts in its own folder: manifest.json and catalog.json as dbt wrote them last,
        run_results.json with the results of every step of the run so far."""
        folder = self.run_dir / "artifacts"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("manifest.json", "catalog.json"):
                if (result.target_path / name).exists() and result.args[0] in ("seed", "docs"):  # new ones
                    shutil.copyfile(result.target_path / name, folder / name)
            merged_path = folder / "run_results.json"
            fresh = json.loads((result.target_path / "run_results.json").read_text())
            if merged_path.exists():
                fresh["results"] = json.loads(merged_path.read_text())["results"] + fresh["results"]
            merged_path.write_text(json.dumps(fresh))
        except (OSError, ValueError, KeyError):
            log.warning("run %s: could not keep the dbt artifacts of %s", self.run_id, result.args, exc_info=True)

    # -- steps -------------------------------------------------------------------------------------------
    def step_seed(self, log_file: IO[str]) -> StepOutcome:
        publish.drop_build(self.handle.conn, self.suffix)  # whatever a dead run left there
        log_file.write(f"preparing input files from {self.settings.data_dir}\n")
        try:
            prepared = prepare_seeds(self.settings.data_dir, self.build_dir / "seeds")
        except DataError as exc:
            log_file.write(f"{exc}\n")
            return StepOutcome(ok=False, error=f"the input data was rejected, nothing was loaded:\n{exc}")
        log_file.write(f"input ok: {prepared.row_counts}\n")
        if self.stop_requested:  # cancelled while the input was being validated
            return StepOutcome(ok=False, error="stopped before dbt seed")
        return self._dbt(["seed", NO_WRITE_JSON], log_file, "seed", self.suffix, "target")

    def step_run(self, log_file: IO[str]) -> StepOutcome:
        return self._dbt(["run", NO_WRITE_JSON], log_file, "run", self.suffix, "target")

    def step_test(self, log_file: IO[str]) -> StepOutcome:
        return self._dbt(TEST_ARGS, log_file, "test", self.suffix, "target")

    def step_transfer(self, log_file: IO[str]) -> StepOutcome:
        """DBT_TARGET=spark only: Spark writes the tested mart as CSV files, Postgres COPYs them into the build
        schema (api/core/spark_mart.py)."""
        export_dir = self.build_dir / "mart-export"
        outcome = self._dbt(spark_mart.export_args(export_dir), log_file, "transfer", self.suffix, "target")
        if outcome.ok:
            rows = spark_mart.load_into_postgres(self.handle.conn, export_dir, self.suffix)
            shutil.rmtree(export_dir, ignore_errors=True)
            log_file.write(f"copied {rows} mart rows from Spark into marts{self.suffix}\n")
        return outcome

    def step_publish(self, log_file: IO[str]) -> StepOutcome:
        publish.publish(self.handle.conn, self.suffix, f"r{self.run_id}", run_id=self.run_id)
        log_file.write(f"published schemas {', '.join(publish.BUILD_SCHEMAS)} from run {self.run_id}\n")
        publish.drop_retired_later(self.db)  # never inline: a reader may still be in the old mart
        return StepOutcome(ok=True)

    def step_docs(self, log_file: IO[str]) -> StepOutcome:
        outcome = self._dbt(["docs", "generate"], log_file, "docs", "", "docs")
        if outcome.ok:
            self._install_docs()
        return outcome

    def _install_docs(self) -> None:
        root = self.settings.state_dir / "docs"
        site = root / f"run-{self.run_id}"
        site.mkdir(parents=True, exist_ok=True)
        for name in DOCS_FILES:
            shutil.copy2(self.build_dir / "docs" / name, site / name)
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
        """Run the steps in order, stopping at the first failure or at a cancel. Whatever happens (even a full
        disk), the outcome is recorded in ops.runs before anything is written to a file: the log only gets what
        can still be written."""
        status, error, found, published = "failed", None, [], False
        log_file = BestEffortLog(self.run_dir / "dbt.log")
        self.handle.update(status="running", started_at=now(), log_path=str(log_file.path), steps=self.steps)
        webhooks.run_event(self.settings, self.db, "run.started", self.run_id)  # never blocks
        with Watchdog(self.db, self.run_id, self.settings.run_timeout, self.cancel):
            try:
                for index, step in enumerate(self.steps):
                    if self.stop_requested:
                        error = self._stopped_reason(f"before step {step['name']}")
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
                        error = self._stopped_reason(f"during step {step['name']}")
                        break
                    if not outcome.ok:
                        error = f"step {step['name']} failed: {outcome.error}"
                        found = outcome.failures
                        break
                else:
                    status = "success"
            except runs.LockLost as exc:
                log.error("run %s: %s", self.run_id, exc)
                log_file.write(f"{exc}\n")
                error = str(self.handle.lock_lost or exc)
            except Exception as exc:
                log.exception("run %s crashed", self.run_id)
                log_file.write(traceback.format_exc())
                error = f"internal error in the job: {type(exc).__name__}: {exc}"
        self.kill_dbt_if_running(signal.SIGKILL)  # a step that crashed may have left its dbt running
        if published and status != "success":
            # The mart is out: the run succeeded. Only the docs site is stale; say why.
            status, error = "success", f"the mart was published, but the docs were not updated: {error}"
        elif self.cancel_reason and status != "success":
            status = "cancelled"
        for s in self.steps:
            if s["status"] == "running":
                s.update(status="failed", finished_at=now().isoformat())
            elif s["status"] == "pending":
                s["status"] = "skipped"
        if self.handle.lock_lost is None:  # without the lock, the build schemas may be another run's now
            try:  # before the outcome is recorded, so that a finished run never leaves its build schemas behind
                publish.drop_build(self.handle.conn, self.suffix)
            except Exception:  # they are dropped at the next run's start, or at the next API start-up
                log.warning("could not drop the build schemas of run %s", self.run_id, exc_info=True)
        self.handle.update(
            status=status, finished_at=now(), steps=self.steps, error=error, failures=found or None,
            progress=None, dbt_pid=None, final=True,
        )  # fmt: skip
        webhooks.run_event(self.settings, self.db, webhooks.FINISHED_EVENT.get(status, "run.failed"), self.run_id)
        log_file.write(f"run {self.run_id} {status}\n" + (f"{error}\n" if error else ""))
        log_file.close()

    def _stopped_reason(self, when: str) -> str:
        if self.cancel_reason:
            return f"{self.cancel_reason} ({when})"
        return f"interrupted: the API was stopped {when}"

    def cancel(self, reason: str) -> None:
        """Cancel the run: no further step, and its dbt is interrupted (SIGINT, then SIGKILL after a grace
        period). The build schemas are dropped as for any failed run; the published mart is untouched."""
        if self.cancel_reason:
            return
        self.cancel_reason = reason
        self.stop_requested = True
        log.info("run %s: cancelling: %s", self.run_id, reason)
        pid = self.dbt_pid
        if pid:
            interrupt(pid)

    def stop(self) -> None:
        """Asked by a shutting-down API: end the current dbt and run no further step."""
        self.stop_requested = True
        self.kill_dbt_if_running()

    def kill_dbt_if_running(self, sig: int = signal.SIGTERM) -> None:
        pid = self.dbt_pid
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)


class BestEffortLog:
    """The run's text log. Writing to it never raises: on a full disk (ENOSPC) or any other I/O error the run
    goes on, and records its outcome in the database, with the log cut short."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError:
            log.warning("cannot write the log %s", path, exc_info=True)

    def write(self, text: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(text)
            self._file.flush()
        except OSError:
            log.warning("cannot write the log %s any more", self.path, exc_info=True)
            self.close()

    def flush(self) -> None:
        pass  # every write is flushed

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


#: Every JobRunner of this process, for interrupt_all_runs().
_RUNNERS: weakref.WeakSet[JobRunner] = weakref.WeakSet()


def interrupt_all_runs() -> None:
    """Called on SIGTERM/SIGINT: every run of this process stops its dbt and records itself interrupted. Returns
    at once (it may run inside a signal handler); the runs' threads do the recording."""
    for runner in list(_RUNNERS):
        runner.interrupt()


class JobRunner:
    """Starts runs in background threads of this process and lets callers wait for them."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.worker = DbtWorker()
        _RUNNERS.add(self)
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
        threading.Thread(target=self._warm_up, name="dbt-warm-up", daemon=True).start()
        return interrupted

    def _warm_up(self) -> None:
        """Have the worker import dbt and parse the project for builds and for docs, before the first trigger."""
        folder = build_dir(self.settings)
        try:
            (folder / "seeds").mkdir(parents=True, exist_ok=True)
            for name, columns in SEED_FILES.items():  # dbt parses a seed only when its file exists
                if not (folder / "seeds" / name).exists():
                    (folder / "seeds" / name).write_text(",".join(c.name for c in columns) + "\n")
            with open(folder / "warm-up.log", "w", encoding="utf-8") as log_file:
                for suffix, target in ((publish.BUILD_SUFFIX, "target"), ("", "docs")):
                    env = dbt_env(self.settings, self.db, suffix)
                    run_dbt(["parse"], env=env, target_path=folder / target, log=log_file, worker=self.worker)
        except Exception:
            log.warning("the dbt worker could not parse the project ahead of a run", exc_info=True)

    def trigger(self, trigger: dict[str, Any]) -> int:
        """Start a run; raises runs.RunBusy when one is active anywhere."""
        handle = runs.start_run(self.db, trigger)
        execution = RunExecution(self.settings, self.db, handle, self.worker)
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

    def interrupt(self) -> None:
        """End the dbt process of every active run, which then records itself as failed (interrupted)."""
        with self._lock:
            executions = list(self._executions.values())
        for execution in executions:
            execution.stop()

    def shutdown(self, timeout: float = 30) -> None:
        """Stop: end the dbt process of an active run, which then records itself as failed."""
        self.interrupt()
        for thread in list(self._threads.values()):
            thread.join(timeout)
        self.worker.close()

    def _prune(self) -> None:
        """Keep RUNS_KEEP runs: older rows of ops.runs and their folders go."""
        try:
            oldest = runs.prune(self.db, self.settings.runs_keep)
        except psycopg.Error:
            log.warning("could not prune the run history", exc_info=True)
            return
        if oldest is None:
            return
        for old in (self.settings.state_dir / "runs").glob("*"):
            if old.name.isdigit() and int(old.name) < oldest:
                shutil.rmtree(old, ignore_errors=True)
