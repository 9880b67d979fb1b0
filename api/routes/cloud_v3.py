"""dbt Cloud's API v3, the lookups Airflow's provider makes to find a job by project, environment and job name:
/api/v3/accounts/{account_id}/projects/ and its environments. One project (id 1, `features-mart`) with one
environment (id 1, `production`); lists are paged as dbt Cloud pages them (api/cloud_views.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api import cloud_views as cv
from api.cloud_schemas import Envelope, Environment, ListEnvelope, Project
from api.deps import Authorized, SettingsDep
from api.routes.cloud_v2 import ERRORS, AccountId, Limit, Offset
from api.schemas import MAX_OFFSET

ProjectId = Annotated[int, Path(ge=1, le=MAX_OFFSET, description="1: the one project, `features-mart`")]
EnvironmentId = Annotated[int, Path(ge=1, le=MAX_OFFSET, description="1: the one environment, `production`")]
NameContains = Annotated[str | None, Query(max_length=255, description="case-insensitive part of the name")]


def _account(account_id: AccountId, settings: SettingsDep) -> None:
    cv.check_account(settings, account_id)


router = APIRouter(
    prefix="/api/v3/accounts/{account_id}", tags=["dbt Cloud API v3"], dependencies=[*Authorized, Depends(_account)]
)


def _project_or_404(project_id: int) -> None:
    if project_id != cv.PROJECT_ID:
        raise cv.CloudError(404, f"project {project_id} not found: this API has one, {cv.PROJECT_ID} ({cv.NAME})")


def _matches(name: str, part: str | None) -> bool:
    return (part or "").lower() in name.lower()


@cv.both_slashes(router, "GET", "/projects", response_model=ListEnvelope[Project], responses=ERRORS)
def list_projects(
    settings: SettingsDep, name__icontains: NameContains = None, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    found = [p.model_dump() for p in [cv.project(settings)] if _matches(p.name, name__icontains)]
    return cv.page(found, limit, offset, {"name__icontains": name__icontains}, None)


@cv.both_slashes(router, "GET", "/projects/{project_id}", response_model=Envelope[Project], responses=ERRORS)
def get_project(project_id: ProjectId, settings: SettingsDep) -> dict[str, Any]:
    _project_or_404(project_id)
    return cv.envelope(cv.project(settings).model_dump())


@cv.both_slashes(
    router, "GET", "/projects/{project_id}/environments", response_model=ListEnvelope[Environment], responses=ERRORS
)
def list_environments(
    project_id: ProjectId,
    settings: SettingsDep,
    name__icontains: NameContains = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    _project_or_404(project_id)
    found = [e.model_dump() for e in [cv.environment(settings)] if _matches(e.name, name__icontains)]
    return cv.page(found, limit, offset, {"name__icontains": name__icontains}, None)


@cv.both_slashes(
    router,
    "GET",
    "/projects/{project_id}/environments/{environment_id}",
    response_model=Envelope[Environment],
    responses=ERRORS,
)
def get_environment(project_id: ProjectId, environment_id: EnvironmentId, settings: SettingsDep) -> dict[str, Any]:
    _project_or_404(project_id)
    if environment_id != cv.ENVIRONMENT_ID:
        raise cv.CloudError(404, f"environment {environment_id} not found: project {project_id} has one, 1")
    return cv.envelope(cv.environment(settings).model_dump())
