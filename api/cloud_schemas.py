"""Bodies of the dbt Cloud-compatible API (api/routes/cloud_v2.py, cloud_v3.py), named and typed as dbt Cloud's
administrative API v2/v3 names them, so that its clients (Airflow's provider, prefect-dbt, dbtc, dbt-cloud-cli)
read them unchanged. Every answer, errors too, is an `Envelope`: `{"status": {...}, "data": ...}`."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import RetryInfo

T = TypeVar("T")

#: dbt Cloud's run status codes: 1 queued, 2 starting, 3 running, 10 success, 20 error, 30 cancelled.
CloudStatus = Literal[1, 2, 3, 10, 20, 30]


class Status(BaseModel):
    code: int = Field(description="the HTTP status code")
    is_success: bool
    user_message: str | None = Field(None, description="what went wrong, in words (errors only)")
    developer_message: str | None = None


class Envelope(BaseModel, Generic[T]):
    status: Status
    data: T


class ErrorEnvelope(BaseModel):
    status: Status
    data: None = None


class Filters(BaseModel):
    model_config = ConfigDict(extra="allow")
    limit: int
    offset: int


class Pagination(BaseModel):
    count: int = Field(description="items on this page")
    total_count: int = Field(description="items matching the filters, on every page")


class Extra(BaseModel):
    filters: Filters
    order_by: str | None = None
    pagination: Pagination


class ListEnvelope(BaseModel, Generic[T]):
    status: Status
    data: list[T]
    extra: Extra


class Project(BaseModel):
    id: int
    account_id: int
    name: str
    description: str
    state: int = Field(1, description="1: active")
    dbt_project_subdirectory: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class Environment(BaseModel):
    id: int
    account_id: int
    project_id: int
    name: str
    type: Literal["deployment"] = "deployment"
    deployment_type: Literal["production"] = "production"
    state: int = 1
    dbt_version: str
    dbt_project_subdirectory: str | None = None


class JobSettings(BaseModel):
    threads: int
    target_name: str


class Job(BaseModel):
    id: int
    account_id: int
    project_id: int
    environment_id: int
    name: str
    description: str
    dbt_version: str | None = None
    execute_steps: list[str] = Field(description="the job's commands (steps_override accepts these and `dbt build`)")
    generate_docs: bool
    generate_sources: bool
    run_generate_sources: bool
    state: int = 1
    job_type: str = "scheduled"
    triggers: dict[str, Any]
    settings: JobSettings
    schedule: dict[str, Any]
    href: str = Field(description="this API's page of the job's runs")


class RunStep(BaseModel):
    id: int
    run_id: int
    account_id: int
    index: int = Field(description="1-based, in the job's order")
    name: str = Field(description="as dbt Cloud names steps: ``Invoke dbt with `dbt seed` ``, ...")
    status: CloudStatus = Field(description="10 success, 20 error, 30 cancelled or skipped, 1 not started, 3 running")
    status_humanized: str
    logs: str = Field(description="the step's part of the run's log (its last 1,000 lines)")
    debug_logs: str = ""
    truncated_debug_logs: str = ""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration: str | None = None
    duration_humanized: str | None = None


class Trigger(BaseModel):
    id: int
    cause: str = Field(description="why the run was asked for (the trigger's `cause`, or what started it)")
    job_definition_id: int
    git_branch: str | None = None
    git_sha: str | None = None
    schema_override: str | None = None
    steps_override: list[str] | None = None
    created_at: dt.datetime


class CloudRun(BaseModel):
    id: int
    trigger_id: int
    account_id: int
    project_id: int
    environment_id: int
    job_definition_id: int
    job_id: int
    status: CloudStatus
    status_humanized: str = Field(description="Queued, Starting, Running, Success, Error, Cancelled")
    status_message: str | None = Field(None, description="on error or cancel: what happened, in words")
    dbt_version: str | None = None
    git_branch: str | None = None
    git_sha: str | None = None
    in_progress: bool
    is_complete: bool
    is_success: bool
    is_error: bool
    is_cancelled: bool
    is_running: bool
    href: str = Field(description="this API's page of the run")
    created_at: dt.datetime
    updated_at: dt.datetime
    dequeued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration: str | None = Field(None, description="HH:MM:SS from creation to end (or now)")
    duration_humanized: str | None = None
    queued_duration: str | None = None
    run_duration: str | None = None
    has_docs_generated: bool
    has_sources_generated: bool = False
    artifacts_saved: bool
    trigger: Trigger | None = Field(None, description="with include_related=trigger")
    job: Job | None = Field(None, description="with include_related=job")
    run_steps: list[RunStep] = Field(default_factory=list, description="with include_related=run_steps")
    retry: RetryInfo | None = Field(None, description="a rerun: which run it retries, which nodes it reused")
