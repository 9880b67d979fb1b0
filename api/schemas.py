"""Response bodies of the API (they are the OpenAPI page's reference)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from api.core.job.steps import STEP_NAMES, described
from api.core.mart.contract import mart_columns

#: Bounds of query and path numbers: what Postgres can take (an out-of-range value gets 422, never a 500).
MAX_OFFSET = 2**31 - 1
MAX_ID = 2**63 - 1
MAX_TAIL = 1_000_000

RunStatus = Literal["queued", "running", "success", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "success", "failed", "cancelled", "skipped"]


class Step(BaseModel):
    name: Literal[STEP_NAMES] = Field(description=described())  # type: ignore[valid-type]
    status: StepStatus
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    exit_code: int | None = Field(None, description="dbt's exit code: 0 ok, 1 handled failure, 2 crash, <0 signal")
    log_offset: int | None = Field(
        None, description="where the step's lines begin in the run's log, in bytes (`/logs?step=` serves them)"
    )


class Progress(BaseModel):
    step: str = Field(description="the step in progress")
    nodes_done: int = Field(description="dbt nodes finished in this step")
    nodes_total: int = Field(description="dbt nodes this step will run (0 until dbt has counted them)")
    current_node: str | None = Field(None, description="the node being built or tested")


class Failure(BaseModel):
    node: str = Field(description="dbt unique_id of the failed node")
    name: str
    resource_type: str = Field(description="test, unit_test, model or seed")
    status: str = Field(description="dbt's status: fail (test found rows) or error")
    message: str
    failing_rows: int | None = Field(None, description="how many rows the test found")
    relation: str | None = Field(None, description="the audit table holding all failing rows")
    rows: list[dict[str, Any]] = Field(default_factory=list, description="the first failing rows")


class InputProblem(BaseModel):
    file: str = Field(description="the input file (a folder, for a problem with the folder itself)")
    line: int | None = Field(None, description="1-based physical line in the file; null for a whole-file problem")
    column: str | None = None
    value: str | None = Field(None, description="the offending value (long values shortened)")
    key: str | None = Field(None, description="the row's key, e.g. `experiment_id 5`, when known")
    message: str


class InputProblems(BaseModel):
    total: int = Field(description="how many problems the validator found")
    items: list[InputProblem] = Field(description="the first of them (at most 50), in file and line order")


class RunLinks(BaseModel):
    self: str
    logs: str
    page: str = Field(description="the run's page, for a browser")


class RetryInfo(BaseModel):
    of: int = Field(description="the failed run this run retries")
    mode: Literal["pending", "failed nodes", "whole job"] = Field(
        description="failed nodes: dbt retry over the failed run's state, the rest reused; whole job: see reason; "
        "pending: not decided yet (the run has not validated its input)"
    )
    reason: str | None = Field(None, description="why the whole job runs, when it does")
    reused: list[str] = Field(default_factory=list, description="the failed run's finished nodes, not redone")


class Run(BaseModel):
    run_id: int
    status: RunStatus
    trigger: dict[str, Any] = Field(description="who asked for the run: source, method, client, user_agent")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_seconds: float | None = None
    steps: list[Step]
    progress: Progress | None = Field(None, description="live progress while the run is running")
    error: str | None = Field(
        None,
        description="on failure: what failed and why, in words; cancelled: who or what cancelled it (a request, "
        "or `timed out after N s`); on a success whose docs step failed: why the docs site was not updated "
        "(the mart was published)",
    )
    failures: list[Failure] = Field(default_factory=list, description="on failure: the failed dbt nodes")
    input_problems: InputProblems | None = Field(
        None, description="when the seed step rejected the input: every problem with its file, line, column, value"
    )
    cancel_requested_at: dt.datetime | None = Field(None, description="when a cancel was asked for (POST .../cancel)")
    cancel_reason: str | None = Field(None, description="who or what asked for the cancel")
    retry: RetryInfo | None = Field(None, description="a retry (POST /runs/{id}/retry): of which run, what it reused")
    links: RunLinks


class CancelRequest(BaseModel):
    reason: str | None = Field(None, max_length=500, description="why, in words (added to the run's error)")


class WebhookDelivery(BaseModel):
    event_id: str = Field(description="the same for every attempt of one event")
    event_type: Literal["run.started", "run.succeeded", "run.failed", "run.cancelled"]
    url: str = Field(description="the receiver (credentials and query string left out)")
    attempt: int = Field(description="1..5")
    status_code: int | None = Field(None, description="the receiver's HTTP status, when it answered")
    error: str | None = Field(None, description="why no answer came (timeout, refused, ...)")
    attempted_at: dt.datetime


class RunPage(BaseModel):
    items: list[Run]
    total: int
    limit: int
    offset: int


class RunConflict(BaseModel):
    detail: str
    active_run_id: int | None


#: Postgres types of the mart's contract -> the JSON types of the API.
_JSON_TYPES: dict[str, Any] = {"integer": int, "text": str, "date": dt.date, "numeric": float, "integer[]": list[int]}

#: One row of the mart: its fields are the dbt contract's columns (api/core/mart/contract.py), in its order,
#: with its descriptions.
UserFeatures = create_model(
    "UserFeatures",
    **{
        column.name: (
            _JSON_TYPES[column.pg_type] | None if column.nullable else _JSON_TYPES[column.pg_type],
            Field(description=column.description),
        )
        for column in mart_columns()
    },
)  # type: ignore[call-overload]


class FeaturesPage(BaseModel):
    items: list[UserFeatures]
    total: int
    limit: int
    offset: int


class ScheduleTick(BaseModel):
    scheduled_for: dt.datetime
    fired_at: dt.datetime
    worker: str = Field(description="host:pid of the API process that fired it")
    run_id: int | None = Field(None, description="the run it started, if any")
    outcome: str | None = Field(None, description="'started run N', or 'skipped: ...' when a run was active")


class Schedule(BaseModel):
    schedule: str | None = Field(description="SCHEDULE, a 5-field cron expression; null: no scheduled runs")
    timezone: str = Field(description="SCHEDULE_TZ, the time zone the expression is read in")
    next: list[dt.datetime] = Field(description="the next five tick times")
    recent_ticks: list[ScheduleTick] = Field(description="the last ticks, newest first")


class Health(BaseModel):
    status: Literal["ok", "error"]
    database: str


class Message(BaseModel):
    detail: str
