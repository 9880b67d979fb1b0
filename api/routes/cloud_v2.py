"""dbt Cloud's administrative API v2, the part its clients call (Airflow's provider, prefect-dbt, dbtc,
dbt-cloud-cli), under /api/v2/accounts/{account_id}/: the one job, its runs, cancel, artifacts, rerun.

A thin layer over the same runs as /trigger and /runs (api/cloud_views.py maps them); one difference, as in dbt
Cloud: a run asked for while another is active is queued (status 1) and starts when it ends
(api/core/runs/queue.py), where /trigger answers 409. Every path answers with and without its trailing slash,
and every answer, errors too, is in dbt Cloud's envelope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api import cloud_views as cv
from api.cloud_schemas import CloudRun, Envelope, ErrorEnvelope, Job, ListEnvelope
from api.config import Settings
from api.core.job import retry as retries
from api.core.job.files import runs_dir
from api.core.runs import history
from api.deps import Authorized, DatabaseDep, RunnerDep, SettingsDep
from api.routes.runs import ARTIFACTS
from api.schemas import MAX_ID, MAX_OFFSET

AccountId = Annotated[int, Path(ge=1, le=2**31 - 1, description="DBT_CLOUD_ACCOUNT_ID (default 1)")]
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="1: the one job, `features-mart`")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Related = Annotated[
    list[str], Query(description="trigger, job, run_steps: repeated, comma-joined or a JSON list; others ignored")
]


def _account(account_id: AccountId, settings: SettingsDep) -> None:
    cv.check_account(settings, account_id)


router = APIRouter(
    prefix="/api/v2/accounts/{account_id}", tags=["dbt Cloud API v2"], dependencies=[*Authorized, Depends(_account)]
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 404, 409, 422)
}  # fmt: skip


class RunRequest(BaseModel):
    """dbt Cloud's trigger body. Other keys (schema_override, git_sha, threads_override, ...) are accepted and
    ignored: the job always runs as configured."""

    model_config = ConfigDict(extra="ignore")
    cause: str | None = Field(None, max_length=255, description="recorded as the run's trigger reason")
    steps_override: list[str] | None = Field(
        None, description=f"only the job's own commands, which run the whole job: {', '.join(cv.ACCEPTED_STEPS)}"
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _job_or_404(settings: Settings, job_id: int, request: Request) -> Job:
    if job_id != cv.JOB_ID:
        raise cv.CloudError(404, f"job {job_id} not found: this API has one job, {cv.JOB_ID} ({cv.NAME})")
    return cv.job(settings, _base(request))


def _row_or_404(db, run_id: int) -> dict[str, Any]:
    row = history.get_run(db, run_id)
    if row is None:
        raise cv.CloudError(404, f"run {run_id} not found")
    return row


@cv.both_slashes(router, "GET", "", response_model=Envelope[dict[str, Any]], responses=ERRORS)
def get_account(account_id: AccountId) -> dict[str, Any]:
    """The account (what clients call to test their connection)."""
    return cv.envelope({"id": account_id, "name": cv.NAME, "state": 1})


@cv.both_slashes(router, "GET", "/jobs", response_model=ListEnvelope[Job], responses=ERRORS)
def list_jobs(
    request: Request,
    settings: SettingsDep,
    project_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    environment_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    name__icontains: Annotated[str | None, Query(max_length=255)] = None,
    order_by: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The one job, if it matches the filters."""
    found = [cv.job(settings, _base(request))]
    found = [
        j
        for j in found
        if project_id in (None, j.project_id)
        and environment_id in (None, j.environment_id)
        and (name__icontains or "").lower() in j.name.lower()
    ]
    filters = {"project_id": project_id, "environment_id": environment_id, "name__icontains": name__icontains}
    return cv.page([j.model_dump() for j in found], limit, offset, filters, order_by)


@cv.both_slashes(router, "GET", "/jobs/{job_id}", response_model=Envelope[Job], responses=ERRORS)
def get_job(job_id: JobId, request: Request, settings: SettingsDep) -> dict[str, Any]:
    return cv.envelope(_job_or_404(settings, job_id, request).model_dump())


@cv.both_slashes(router, "POST", "/jobs/{job_id}/run", response_model=Envelope[CloudRun], responses=ERRORS)
def trigger_run(
    job_id: JobId,
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    runner: RunnerDep,
    body: Annotated[RunRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Run the job. While a run is active, the new run is queued (status 1) and starts when it has ended.
    `steps_override` may name only the job's own commands (they run the whole job): a run publishes as a whole."""
    _job_or_404(settings, job_id, request)
    body = body or RunRequest()
    steps = [" ".join(s.split()) for s in body.steps_override or []]
    refused = [s for s in steps if s not in cv.ACCEPTED_STEPS]
    if refused:
        raise cv.CloudError(
            400,
            f"steps_override {refused} cannot run here: this job builds, tests and publishes the mart as a whole; "
            f"accepted: {', '.join(cv.ACCEPTED_STEPS)} (each runs the whole job)",
        )
    trigger: dict[str, Any] = {
        "source": "dbt-cloud-api",
        "cause": body.cause or "Triggered via API",
        "method": "POST",
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }
    if steps:
        trigger["steps_override"] = steps
    run_id = runner.enqueue(trigger)
    return cv.envelope(cv.to_cloud_run(_row_or_404(db, run_id), settings, _base(request), set()).model_dump())


@cv.both_slashes(router, "POST", "/jobs/{job_id}/rerun", response_model=Envelope[CloudRun], responses=ERRORS)
def rerun(job_id: JobId, request: Request, settings: SettingsDep, db: DatabaseDep, runner: RunnerDep) -> dict[str, Any]:
    """Retry the job's last run from its failure (as POST /runs/{id}/retry), queued while a run is active. When
    the last run did not fail, the job runs anew."""
    _job_or_404(settings, job_id, request)
    failed = retries.latest_failed(db)
    trigger: dict[str, Any] = {
        "source": "dbt-cloud-api",
        "method": "POST",
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }
    if failed is None:
        run_id = runner.enqueue({**trigger, "cause": "rerun: the last run did not fail, so the job runs anew"})
    else:
        run_id = runner.enqueue({**trigger, "cause": f"rerun of failed run {failed}", "retry_of": failed},
                                retries.plan(db, failed))  # fmt: skip
    return cv.envelope(cv.to_cloud_run(_row_or_404(db, run_id), settings, _base(request), set()).model_dump())


@cv.both_slashes(router, "GET", "/runs", response_model=ListEnvelope[CloudRun], responses=ERRORS)
def list_runs(
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    job_definition_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    status: Annotated[list[str], Query(description="a run status code")] = [],  # noqa: B006
    status__in: Annotated[list[str], Query(description="status codes: `[1,2,3]` or `1,2,3`")] = [],  # noqa: B006
    order_by: Annotated[str | None, Query(description="id, -id, created_at, -created_at (default -id)")] = None,
    include_related: Related = [],  # noqa: B006
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The job's runs, newest first unless `order_by` says otherwise. Status codes 1 and 2 both select the
    queued runs (waiting, or about to start)."""
    if order_by not in (None, "id", "-id", "created_at", "-created_at"):
        raise cv.CloudError(400, f"order_by {order_by!r}: one of id, -id, created_at, -created_at")
    codes = cv.parse_statuses(status + status__in)
    related = cv.parse_related(include_related)
    if job_definition_id not in (None, cv.JOB_ID):
        rows, total = [], 0
    else:
        statuses = cv.our_statuses(codes) if codes else None
        rows, total = history.list_runs(
            db, limit, offset, statuses=statuses, oldest_first=order_by in ("id", "created_at")
        )
    runs = [cv.to_cloud_run(r, settings, _base(request), related).model_dump() for r in rows]
    filters = {"job_definition_id": job_definition_id, "status__in": codes or None}
    return cv.page(runs, limit, offset, filters, order_by or "-id", total=total)


@cv.both_slashes(router, "GET", "/runs/{run_id}", response_model=Envelope[CloudRun], responses=ERRORS)
def get_run(
    run_id: RunId,
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    include_related: Related = [],  # noqa: B006
) -> dict[str, Any]:
    """One run; `include_related=run_steps` adds its steps with their logs."""
    related = cv.parse_related(include_related)
    return cv.envelope(cv.to_cloud_run(_row_or_404(db, run_id), settings, _base(request), related).model_dump())


@cv.both_slashes(router, "POST", "/runs/{run_id}/cancel", response_model=Envelope[CloudRun], responses=ERRORS)
def cancel_run(run_id: RunId, request: Request, settings: SettingsDep, db: DatabaseDep) -> dict[str, Any]:
    """Cancel a queued or running run (as POST /runs/{run_id}/cancel); 409 when it has already finished."""
    client = request.client.host if request.client else "unknown client"
    try:
        row = history.request_cancel(db, run_id, f"cancelled by dbt Cloud API request from {client}")
    except history.RunNotFound as exc:
        raise cv.CloudError(404, str(exc)) from exc
    except history.RunFinished as exc:
        raise cv.CloudError(409, str(exc)) from exc
    return cv.envelope(cv.to_cloud_run(row, settings, _base(request), set()).model_dump())


@cv.both_slashes(router, "GET", "/runs/{run_id}/artifacts", response_model=Envelope[list[str]], responses=ERRORS)
def list_artifacts(
    run_id: RunId,
    settings: SettingsDep,
    db: DatabaseDep,
    step: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="accepted; the list is the run's")] = None,
) -> dict[str, Any]:
    """The run's dbt artifacts (manifest.json, run_results.json, catalog.json, as far as the run got)."""
    _row_or_404(db, run_id)
    return cv.envelope(cv.artifact_names(settings, run_id))


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}}, **ERRORS},
)
def get_artifact(
    run_id: RunId,
    path: str,
    settings: SettingsDep,
    db: DatabaseDep,
    step: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="accepted; the file is the run's")] = None,
) -> FileResponse:
    """One artifact of the run, the file itself. run_results.json holds every step's results."""
    _row_or_404(db, run_id)
    if path not in ARTIFACTS:
        raise cv.CloudError(404, f"no artifact {path!r}: one of {', '.join(ARTIFACTS)}")
    file = runs_dir(settings) / str(run_id) / "artifacts" / path
    if not file.is_file():
        raise cv.CloudError(404, f"run {run_id} has no {path} (the run did not get that far, or it was pruned)")
    return FileResponse(file, media_type="application/json")
