"""One run, executed: the steps of api/core/job/steps.py in order, in the thread that calls `execute`, its state
written to its row of `ops.runs` as it goes, so any process can serve it.

dbt runs in the API's warm worker (api/core/dbt/), which parsed the project once: every run builds into the
same `*__build` schemas from the same `STATE_DIR/build/seeds` folder (on Spark `SPARK_SHARED_DIR/build/seeds`),
so one parsed manifest serves every run (the run lock makes sure only one run uses them at a time). Each run
keeps its log and dbt artifacts in `STATE_DIR/runs/<run_id>/`.

The one rule: whatever happens (a failed step, a cancel, a crash, a full disk, a lost lock), the outcome is
recorded in `ops.runs`, and a run whose steps did not all pass publishes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import IO, Any

import psycopg

from api.config import Settings
from api.core import lineage, webhooks
from api.core.db.database import Database
from api.core.dbt import failures as failure_report
from api.core.dbt.client import DbtWorker
from api.core.dbt.env import dbt_env
from api.core.dbt.invoke import Progress, run_dbt
from api.core.job import retry as retries
from api.core.job.control import Watchdog, interrupt
from api.core.job.files import BestEffortLog, build_dir, exchange_dir, keep_artifacts, runs_dir
from api.core.job.steps import StepOutcome, steps_for
from api.core.mart import publish
from api.core.runs.history import initial_steps
from api.core.runs.lock import LockLost, RunHandle

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(timezone.utc)


def build_env(settings: Settings, db: Database, *, docs: bool = False) -> dict[str, str]:
    """dbt's environment for the job: the build schemas (`*__build`) from STATE_DIR/build/seeds, or with `docs`
    the published schemas. On Spark, dbt builds in place (no suffix; api/core/mart/spark.py)."""
    suffix = "" if docs or settings.dbt_target == "spark" else publish.BUILD_SUFFIX
    return dbt_env(settings, db, seeds_dir=exchange_dir(settings) / "seeds", suffix=suffix)


class RunExecution:
    """One run, executed step by step in the calling thread (the `StepContext` of its steps)."""

    def __init__(
        self, settings: Settings, db: Database, handle: RunHandle, worker: DbtWorker, retry: retries.Retry | None = None
    ) -> None:
        self.settings = settings
        self.retry = retry
        self.db = db
        self.handle = handle
        self.worker = worker
        self.run_id = handle.run_id
        self.run_dir = runs_dir(settings) / str(self.run_id)
        self.build_dir = build_dir(settings)
        self.plan = steps_for(settings.dbt_target)
        self.steps = initial_steps(tuple(step.name for step in self.plan))
        self.dbt_pid: int | None = None
        self.stop_requested = False
        self.cancel_reason: str | None = None
        self.trigger_source = "unknown"  # for the server's log: api, schedule, cli
        self._last_progress = 0.0

    @property
    def conn(self) -> psycopg.Connection:
        return self.handle.conn

    # -- dbt -----------------------------------------------------------------------------------------------
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

    def dbt(
        self,
        args: Sequence[str],
        log_file: IO[str],
        step: str,
        *,
        docs: bool = False,
        on_message: Callable[[str], None] | None = None,
    ) -> StepOutcome:
        result = run_dbt(
            args,
            env=build_env(self.settings, self.db, docs=docs),
            target_path=self.build_dir / ("docs" if docs else "target"),
            log=log_file,
            on_progress=self._progress(step),
            on_start=self._on_start,
            worker=self.worker,
            debug_log=False,  # dbt's debug log file would repeat what the run's log keeps (8% of a canonical run)
            on_message=on_message,
        )
        self.dbt_pid = None
        self.handle.update(dbt_pid=None)  # the column names a running dbt only, never a finished one
        keep_artifacts(self.run_dir, result)
        if step in ("seed", *retries.RESUMABLE):
            retries.keep_state(self.settings, self.run_id, step, result.target_path)
        if result.ok:
            return StepOutcome(ok=True, exit_code=0)
        try:
            with self.db.connect() as conn:
                found = failure_report.collect(result, conn)
        except Exception:  # the database may be what failed; report without sample rows
            found = failure_report.collect(result, None)
        error = failure_report.summarize(" ".join(args), result, found)
        return StepOutcome(ok=False, exit_code=result.exit_code, error=error, failures=found)

    # -- the whole run -------------------------------------------------------------------------------------
    def record_retry(self) -> None:
        if self.retry is not None:
            self.handle.update(retry=self.retry.record())

    def _set_step(self, index: int, **fields: Any) -> None:
        self.steps[index].update(fields)
        self.handle.update(steps=self.steps)

    def execute(self) -> None:
        """Run the steps in order, stopping at the first failure or at a cancel. Whatever happens (even a full
        disk), the outcome is recorded in ops.runs before anything is written to a file: the log only gets what
        can still be written."""
        status, error, found, problems, published = "failed", None, [], None, False
        log_file = BestEffortLog(self.run_dir / "dbt.log")
        self.handle.update(status="running", started_at=now(), log_path=str(log_file.path), steps=self.steps)
        started = time.monotonic()
        log.info("run %s started (trigger: %s)", self.run_id, self.trigger_source)
        webhooks.run_event(self.settings, self.db, "run.started", self.run_id)  # never blocks
        lineage_id = lineage.job_started(self.settings, self.run_id, self.db.url)  # never blocks either
        with Watchdog(self.db, self.run_id, self.settings.run_timeout, self.cancel):
            try:
                for index, step in enumerate(self.plan):
                    if self.stop_requested:
                        error = self._stopped_reason(f"before step {step.name}")
                        break
                    self._set_step(index, status="running", started_at=now().isoformat(), log_offset=log_file.offset())
                    self.handle.update(progress={"step": step.name, **Progress().as_dict()})
                    outcome = step.run(self, log_file)
                    # a step stopped by a cancel did not fail: the run ends `cancelled`, and so does the step
                    stopped = "cancelled" if self.cancel_reason else "failed"
                    self._set_step(
                        index,
                        status="success" if outcome.ok else stopped,
                        finished_at=now().isoformat(),
                        exit_code=outcome.exit_code,
                        **outcome.facts,
                    )
                    published = published or (step.name == "publish" and outcome.ok)
                    if not outcome.ok and self.stop_requested:
                        error = self._stopped_reason(f"during step {step.name}")
                        break
                    if not outcome.ok:
                        error = f"step {step.name} failed: {outcome.error}"
                        found, problems = outcome.failures, outcome.input_problems
                        break
                else:
                    status = "success"
            except LockLost as exc:
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
        failed_at = next((s["name"] for s in self.steps if s["status"] == "failed"), None)
        keep = status == "failed" and failed_at in retries.RESUMABLE  # for a retry (api/core/job/retry.py)
        if self.handle.lock_lost is None and not keep:  # without the lock, they may be another run's now
            try:  # before the outcome is recorded, so that a finished run leaves no build schemas but for a retry
                publish.drop_build(self.handle.conn, publish.BUILD_SUFFIX)
            except Exception:  # they are dropped at the next run's start, or at the next API start-up
                log.warning("could not drop the build schemas of run %s", self.run_id, exc_info=True)
        self.handle.update(
            status=status, finished_at=now(), steps=self.steps, error=error, failures=found or None,
            input_problems=problems, progress=None, dbt_pid=None, final=True,
        )  # fmt: skip
        first_line = (error or "").strip().splitlines()[:1]
        log.info(
            "run %s %s in %.1fs%s", self.run_id, status, time.monotonic() - started,
            f": {first_line[0]}" if first_line else "",
        )  # fmt: skip
        webhooks.run_event(self.settings, self.db, webhooks.FINISHED_EVENT.get(status, "run.failed"), self.run_id)
        lineage.job_finished(self.settings, self.run_id, lineage_id, self.run_dir, status, error, self.db.url)
        log_file.write(f"run {self.run_id} {status}\n" + (f"{error}\n" if error else ""))
        log_file.close()

    def _stopped_reason(self, when: str) -> str:
        if self.cancel_reason:
            return f"{self.cancel_reason} ({when})"
        return f"interrupted: the API was stopped {when}"

    # -- control -------------------------------------------------------------------------------------------
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
