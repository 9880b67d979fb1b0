"""The dbt Cloud-compatible API's mapping: the one job, project and environment, a row of `ops.runs` as dbt Cloud's
run object, its envelope, and its errors (api/routes/cloud_v2.py and cloud_v3.py use it).

The one rule: it is a view of the same runs, never a second job engine. Everything here reads what
`api/core/runs` recorded; the status codes are dbt Cloud's (1 queued, 2 starting, 3 running, 10 success,
20 error, 30 cancelled) and nothing else, because every client crashes on another value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.cloud_schemas import CloudRun, Environment, Job, JobSettings, Project, RunStep, Status, Trigger
from api.config import Settings
from api.core.job.files import runs_dir
from api.core.job.steps import STEPS

#: The paths of the compatible API: errors under them are answered in dbt Cloud's envelope.
PREFIXES = ("/api/v2/", "/api/v3/")
NAME = "features-mart"
PROJECT_ID = ENVIRONMENT_ID = JOB_ID = 1
ENVIRONMENT = "production"
#: The commands `steps_override` may name: the job's own. Any of them runs the whole job.
ACCEPTED_STEPS = ("dbt build", "dbt seed", "dbt run", "dbt test", "dbt docs generate")
STATUS_CODES = {"running": 3, "success": 10, "failed": 20, "cancelled": 30}
HUMANIZED = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
#: dbt Cloud's codes -> the statuses of ops.runs (1 and 2 are both a `queued` row: waiting, or about to start).
STATUS_FILTER = {1: "queued", 2: "queued", 3: "running", 10: "success", 20: "failed", 30: "cancelled"}
STEP_CODES = {"pending": 1, "running": 3, "success": 10, "failed": 20, "cancelled": 30, "skipped": 30}
STEP_TITLES = {
    "seed": "Invoke dbt with `dbt seed`",
    "run": "Invoke dbt with `dbt run`",
    "test": "Invoke dbt with `dbt test`",
    "transfer": "Copy the tested mart from Spark into Postgres",
    "publish": "Publish the build schemas (write-audit-publish)",
    "docs": "Invoke dbt with `dbt docs generate`",
}
assert set(STEP_TITLES) == {step.name for step in STEPS}, "every step needs its dbt Cloud name"
#: The most log lines a run step carries (dbt Cloud truncates its logs the same way).
STEP_LOG_LINES = 1000


@cache
def dbt_version() -> str:
    return version("dbt-core")


def envelope(data: Any, code: int = 200) -> dict[str, Any]:
    return {"status": Status(code=code, is_success=True).model_dump(), "data": data}


def error_response(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    status = Status(code=code, is_success=False, user_message=message, developer_message=message)
    return JSONResponse({"status": status.model_dump(), "data": None}, status_code=code, headers=headers)


class CloudError(Exception):
    """An expected error of the compatible API: answered in the envelope with this status code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def install_errors(app: FastAPI) -> None:
    """Answer every error under PREFIXES (401, 404, 405, 409, 422, ...) in dbt Cloud's envelope; the rest of the
    API keeps FastAPI's own bodies."""

    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith(PREFIXES):
            return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
        return await http_exception_handler(request, exc)

    async def validation_error(request: Request, exc: RequestValidationError):
        if request.url.path.startswith(PREFIXES):
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                + (f" (got {json.dumps(e['input'], default=str)[:80]})" if "input" in e else "")
                for e in exc.errors()
            )
            return error_response(422, f"invalid request: {problems}")
        return await request_validation_exception_handler(request, exc)

    async def cloud_error(request: Request, exc: CloudError):
        return error_response(exc.code, exc.message)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(CloudError, cloud_error)


def both_slashes(router: APIRouter, method: str, path: str, **kwargs: Any) -> Callable:
    """Register a route at `path` and at `path/`: clients differ, and httpx does not follow redirects."""

    def register(func: Callable) -> Callable:
        router.add_api_route(path, func, methods=[method], **kwargs)
        router.add_api_route(
            path + "/", func, methods=[method], include_in_schema=False, **{**kwargs, "operation_id": None}
        )
        return func

    return register


def check_account(settings: Settings, account_id: int) -> None:
    if account_id != settings.dbt_cloud_account_id:
        raise CloudError(
            404, f"account {account_id} not found: this API serves account {settings.dbt_cloud_account_id}"
        )


def project(settings: Settings) -> Project:
    return Project(
        id=PROJECT_ID,
        account_id=settings.dbt_cloud_account_id,
        name=NAME,
        description="the dbt project of the features mart (dbt_project/)",
    )


def environment(settings: Settings) -> Environment:
    return Environment(
        id=ENVIRONMENT_ID,
        account_id=settings.dbt_cloud_account_id,
        project_id=PROJECT_ID,
        name=ENVIRONMENT,
        dbt_version=dbt_version(),
    )


def job(settings: Settings, base_url: str) -> Job:
    return Job(
        id=JOB_ID,
        account_id=settings.dbt_cloud_account_id,
        project_id=PROJECT_ID,
        environment_id=ENVIRONMENT_ID,
        name=NAME,
        description="validate and seed the CSVs, dbt run, dbt test into build schemas, publish, dbt docs generate",
        dbt_version=dbt_version(),
        execute_steps=["dbt seed", "dbt run", "dbt test"],
        generate_docs=True,
        generate_sources=False,
        run_generate_sources=False,
        triggers={"schedule": bool(settings.schedule), "github_webhook": False, "git_provider_webhook": False},
        settings=JobSettings(threads=settings.dbt_threads, target_name=settings.dbt_target),
        schedule={"cron": settings.schedule, "timezone": settings.schedule_tz},
        href=f"{base_url}/",
    )


def cloud_status(row: dict[str, Any]) -> int:
    if row["status"] == "queued":
        return 1 if row.get("waiting") else 2
    return STATUS_CODES[row["status"]]


def our_statuses(codes: list[int]) -> tuple[str, ...]:
    """The ops.runs statuses that dbt Cloud's codes select."""
    return tuple(sorted({STATUS_FILTER[c] for c in codes}))


def hms(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def humanized(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(max(seconds, 0))
    parts = [(s // 3600, "hour"), (s % 3600 // 60, "minute"), (s % 60, "second")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return ", ".join(words) or "0 seconds"


def _between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return ((end or datetime.now(timezone.utc)) - start).total_seconds()


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def step_logs(row: dict[str, Any], index: int) -> str:
    """The lines step `index` of the run wrote to the run's log (its last STEP_LOG_LINES), or ''."""
    steps = row["steps"] or []
    begin = steps[index].get("log_offset")
    if begin is None or not row.get("log_path"):
        return ""
    later = [s["log_offset"] for s in steps[index + 1 :] if s.get("log_offset") is not None]
    try:
        with open(row["log_path"], "rb") as f:
            f.seek(begin)
            data = f.read(later[0] - begin) if later else f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-STEP_LOG_LINES:])


def run_steps(row: dict[str, Any], account_id: int) -> list[RunStep]:
    found = []
    for i, step in enumerate(row["steps"] or []):
        code = STEP_CODES[step["status"]]
        started, finished = _parse_time(step.get("started_at")), _parse_time(step.get("finished_at"))
        seconds = _between(started, finished)
        found.append(
            RunStep(
                id=row["run_id"] * 100 + i + 1,
                run_id=row["run_id"],
                account_id=account_id,
                index=i + 1,
                name=STEP_TITLES.get(step["name"], step["name"]),
                status=code,
                status_humanized="Skipped" if step["status"] == "skipped" else HUMANIZED[code],
                logs=step_logs(row, i),
                started_at=started,
                finished_at=finished,
                duration=hms(seconds),
                duration_humanized=humanized(seconds),
            )
        )
    return found


def trigger_of(row: dict[str, Any]) -> Trigger:
    info = row["trigger"] or {}
    return Trigger(
        id=row["run_id"],
        cause=info.get("cause") or f"{info.get('source') or 'unknown'}: {info.get('method') or ''} /trigger".strip(),
        job_definition_id=JOB_ID,
        steps_override=info.get("steps_override"),
        created_at=row["created_at"],
    )


def artifact_names(settings: Settings, run_id: int) -> list[str]:
    folder: Path = runs_dir(settings) / str(run_id) / "artifacts"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def to_cloud_run(row: dict[str, Any], settings: Settings, base_url: str, related: set[str]) -> CloudRun:
    """A row of ops.runs as dbt Cloud's run object; `related`: what include_related asked for."""
    code = cloud_status(row)
    created, started, finished = row["created_at"], row["started_at"], row["finished_at"]
    account = settings.dbt_cloud_account_id
    docs = any(s["name"] == "docs" and s["status"] == "success" for s in row["steps"] or [])
    return CloudRun(
        id=row["run_id"],
        trigger_id=row["run_id"],
        account_id=account,
        project_id=PROJECT_ID,
        environment_id=ENVIRONMENT_ID,
        job_definition_id=JOB_ID,
        job_id=JOB_ID,
        status=code,
        status_humanized=HUMANIZED[code],
        status_message=row["error"] if code in (20, 30) else None,
        dbt_version=dbt_version(),
        in_progress=code in (1, 2, 3),
        is_complete=code in (10, 20, 30),
        is_success=code == 10,
        is_error=code == 20,
        is_cancelled=code == 30,
        is_running=code == 3,
        href=f"{base_url}/run/{row['run_id']}",
        created_at=created,
        updated_at=finished or started or created,
        dequeued_at=started,
        started_at=started,
        finished_at=finished,
        duration=hms(_between(created, finished)),
        duration_humanized=humanized(_between(created, finished)),
        queued_duration=hms(_between(created, started or finished)),
        run_duration=hms(_between(started, finished)),
        has_docs_generated=docs,
        artifacts_saved=bool(artifact_names(settings, row["run_id"])),
        trigger=trigger_of(row) if "trigger" in related else None,
        job=job(settings, base_url) if "job" in related else None,
        run_steps=run_steps(row, account) if "run_steps" in related else [],
        retry=row.get("retry"),
    )


def parse_related(values: list[str]) -> set[str]:
    """include_related in every form clients send: repeated (`?include_related=a&include_related=b`),
    comma-joined (`a,b`), a JSON or Python list (`["a", "b"]`, `['a','b']`), or empty."""
    found: set[str] = set()
    for value in values:
        found.update(part.strip().strip("'\"").strip() for part in value.strip().strip("[]").split(","))
    return {v for v in found if v}


def parse_statuses(values: list[str]) -> list[int]:
    """status / status__in: `10`, `[1,2,3]`, `1,2,3`, repeated."""
    codes: list[int] = []
    for value in values:
        for part in value.strip().strip("[]").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) not in HUMANIZED:
                raise CloudError(400, f"status {part!r} is not a dbt Cloud run status: one of 1, 2, 3, 10, 20, 30")
            codes.append(int(part))
    return codes


def page(
    items: list[Any],
    limit: int,
    offset: int,
    filters: dict[str, Any],
    order_by: str | None,
    total: int | None = None,
) -> dict[str, Any]:
    """A list answer with dbt Cloud's `extra` (filters.limit, pagination.count/total_count), which clients page
    with. Without `total`, `items` is every match and the page is cut here."""
    if total is None:
        total, items = len(items), items[offset : offset + limit]
    return {
        **envelope(items),
        "extra": {
            "filters": {**{k: v for k, v in filters.items() if v is not None}, "limit": limit, "offset": offset},
            "order_by": order_by,
            "pagination": {"count": len(items), "total_count": total},
        },
    }
