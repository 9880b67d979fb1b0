"""The job, as one ordered list of steps: validate and `dbt seed`, `dbt run`, `dbt test` into the build schemas,
(on Spark: transfer the mart into Postgres), publish them, then `dbt docs generate`.

The one rule: `STEPS` is the only list of the job's steps. Every other list of step names derives from it: the
steps a run records (`step_names`), the API's schema (api/schemas.py), the metrics' order, the runs page (it
shows the steps a run records). A step is a function of the run being executed (`StepContext`) and its log; it
returns a `StepOutcome`. The execution (api/core/job/execution.py) runs them in order and stops at the first
that fails.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg

from api.config import Settings
from api.core.db.database import Database
from api.core.dbt import spark_warehouse
from api.core.dbt.env import warehouse_location
from api.core.dbt.worker import NO_WRITE_JSON
from api.core.job import retry as retries
from api.core.job.files import exchange_dir, install_docs
from api.core.mart import publish, spark
from api.core.seeds import DataError, prepare_seeds

#: The API's test step runs the data tests. Unit tests check the models' logic, not the data: they run in
#: scripts/test.sh and in `scripts/dbt.sh build`, as dbt Labs recommends, not on every rebuild.
TEST_ARGS = ("test", "--exclude-resource-type", "unit_test", NO_WRITE_JSON)


@dataclass
class StepOutcome:
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: The seed step's rejection of the input, structured: {"total": N, "items": [Problem fields]} (`rejected`).
    input_problems: dict[str, Any] | None = None
    #: Written into the step's record (the seed step: `input_sha256`, the digest of the prepared input).
    facts: dict[str, Any] = field(default_factory=dict)


class StepContext(Protocol):
    """What a step may use of the run being executed."""

    settings: Settings
    db: Database
    run_id: int
    build_dir: Path
    stop_requested: bool
    retry: retries.Retry | None  # a retry of a failed run (api/core/job/retry.py), or None

    def record_retry(self) -> None:
        """Write what the retry decided into the run's row."""

    @property
    def conn(self) -> psycopg.Connection:
        """The run's own connection, which holds the run lock."""

    def dbt(
        self,
        args: Sequence[str],
        log_file: IO[str],
        step: str,
        *,
        docs: bool = False,
        on_message: Callable[[str], None] | None = None,
    ) -> StepOutcome:
        """Run a dbt command for this run (`docs`: over the published schemas, into the docs target;
        `on_message`: called with the text of each of dbt's events)."""


def dbt_seed(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    if ctx.settings.dbt_target == "spark":  # what a killed write left in Spark's warehouse
        for path in spark_warehouse.clean_killed_writes(warehouse_location(ctx.settings)):
            log_file.write(f"removed {path}, left by a killed Spark write\n")
    log_file.write(f"preparing input files from {ctx.settings.data_dir}\n")
    seeds = exchange_dir(ctx.settings) / "seeds"  # where dbt's engine reads them (on Spark: SPARK_SHARED_DIR)
    try:
        prepared = prepare_seeds(ctx.settings.data_dir, seeds)
    except DataError as exc:
        log_file.write(f"{exc}\n")
        return StepOutcome(
            ok=False, error=f"the input data was rejected, nothing was loaded:\n{exc}", input_problems=rejected(exc)
        )
    log_file.write(f"input ok: {prepared.row_counts}\n")
    facts = {"input_sha256": retries.input_digest(seeds)}
    if ctx.retry is not None:
        ctx.retry.decide(ctx.conn, seeds, ctx.run_id, ctx.settings)
        ctx.record_retry()
        if ctx.retry.resumes:
            log_file.write(f"retry of run {ctx.retry.of}: its seeds and build schemas are reused\n")
            return StepOutcome(ok=True, facts=facts)
        log_file.write(f"retry of run {ctx.retry.of}: the whole job runs: {ctx.retry.reason}\n")
    publish.drop_build(ctx.conn, publish.BUILD_SUFFIX)  # whatever a failed or dead run left there
    if ctx.stop_requested:  # cancelled while the input was being validated
        return StepOutcome(ok=False, error="stopped before dbt seed")
    outcome = ctx.dbt(["seed", NO_WRITE_JSON], log_file, "seed")
    outcome.facts.update(facts)
    return outcome


def rejected(exc: DataError) -> dict[str, Any]:
    """Every problem the validator kept (file, line, column, value, key, message) and how many it found."""
    return {"total": exc.total, "items": [dataclasses.asdict(problem) for problem in exc.problems]}


def dbt_run(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    return _resumable(ctx, log_file, "run", ["run", NO_WRITE_JSON])


def dbt_test(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    return _resumable(ctx, log_file, "test", list(TEST_ARGS))


def _resumable(ctx: StepContext, log_file: IO[str], step: str, args: list[str]) -> StepOutcome:
    """A dbt step as a retry that resumes runs it: reused before the failed step, `dbt retry` over the failed
    run's state at it (run again whole when dbt left no run_results.json: it was killed), as usual after it."""
    retry = ctx.retry
    if retry is None or not retry.resumes or retry.failed_step is None:
        return ctx.dbt(args, log_file, step)
    order = retries.RESUMABLE
    if order.index(step) < order.index(retry.failed_step):
        log_file.write(f"retry of run {retry.of}: step {step} is reused\n")
        return StepOutcome(ok=True)
    state = retries.state_dir(ctx.settings, retry.of, step)
    if step == retry.failed_step and (state / "run_results.json").is_file():
        return ctx.dbt(["retry", NO_WRITE_JSON, "--state", str(state)], log_file, step)
    if step == retry.failed_step:
        log_file.write(f"retry of run {retry.of}: dbt left no run_results.json in step {step}: it runs whole\n")
    return ctx.dbt(args, log_file, step)


def transfer(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    """Spark writes the tested mart as CSV files, Postgres COPYs them into the build schema
    (api/core/mart/spark.py), only if they hold exactly the mart's row count on Spark."""
    export_dir = exchange_dir(ctx.settings) / "mart-export"
    counted: list[int] = []

    def count(message: str) -> None:
        if (rows := spark.exported_rows(message)) is not None:
            counted.append(rows)

    outcome = ctx.dbt(spark.export_args(export_dir), log_file, "transfer", on_message=count)
    if not outcome.ok:
        return outcome
    try:
        if not counted:
            raise spark.ExportError("the export did not report the mart's row count on Spark; nothing was loaded")
        rows = spark.load_into_postgres(ctx.conn, export_dir, publish.BUILD_SUFFIX, counted[-1])
    except spark.ExportError as exc:
        log_file.write(f"{exc}\n")
        return StepOutcome(ok=False, error=str(exc))
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    log_file.write(f"copied {rows} mart rows from Spark into marts{publish.BUILD_SUFFIX}\n")
    return outcome


def publish_build(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    publish.publish(ctx.conn, publish.BUILD_SUFFIX, f"r{ctx.run_id}", run_id=ctx.run_id)
    log_file.write(f"published schemas {', '.join(publish.BUILD_SCHEMAS)} from run {ctx.run_id}\n")
    publish.drop_retired_later(ctx.db)  # never inline: a reader may still be in the old mart
    return StepOutcome(ok=True)


def dbt_docs(ctx: StepContext, log_file: IO[str]) -> StepOutcome:
    outcome = ctx.dbt(["docs", "generate"], log_file, "docs", docs=True)
    if outcome.ok:
        install_docs(ctx.settings, ctx.run_id, ctx.build_dir / "docs")
    return outcome


ALL_ENGINES = frozenset({"default", "spark"})


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext, IO[str]], StepOutcome]
    description: str
    engines: frozenset[str] = ALL_ENGINES  # the DBT_TARGET values whose runs have this step


STEPS: tuple[Step, ...] = (
    Step("seed", dbt_seed, "validate the CSVs and `dbt seed`"),
    Step("run", dbt_run, "`dbt run`"),
    Step("test", dbt_test, "`dbt test`"),
    Step("transfer", transfer, "copy the tested mart from Spark into Postgres", frozenset({"spark"})),
    Step("publish", publish_build, "swap the run's schemas in"),
    Step("docs", dbt_docs, "`dbt docs generate`"),
)
#: Every step name, in the job's order.
STEP_NAMES = tuple(step.name for step in STEPS)


def steps_for(target: str) -> tuple[Step, ...]:
    """The steps of a run on this engine (DBT_TARGET)."""
    return tuple(step for step in STEPS if target in step.engines)


def step_names(target: str) -> tuple[str, ...]:
    return tuple(step.name for step in steps_for(target))


def described() -> str:
    """Every step and what it does, in one line (the API's schema)."""
    parts = []
    for step in STEPS:
        only = "" if step.engines == ALL_ENGINES else f" (DBT_TARGET={'/'.join(sorted(step.engines))} only)"
        parts.append(f"{step.name}{only}: {step.description}")
    return "; ".join(parts)
