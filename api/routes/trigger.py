from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.core.runs.lock import RunBusy
from api.deps import Authorized, DatabaseDep, RunnerDep
from api.schemas import Run, RunConflict
from api.views import fetch_run

router = APIRouter(prefix="/trigger", tags=["trigger"], dependencies=Authorized)

_RESPONSES = {
    200: {"model": Run, "description": "with ?wait=true: the finished run, whatever its outcome"},
    202: {"model": Run, "description": "the run was queued; follow the Location header"},
    409: {"model": RunConflict, "description": "a run is already queued or running"},
}


async def trigger(
    request: Request,
    response: Response,
    db: DatabaseDep,
    runner: RunnerDep,
    wait: Annotated[bool, Query(description="block until the run has finished")] = False,
) -> Run:
    """Start a run of the job: validate and seed the CSVs, `dbt run`, `dbt test`, publish, `dbt docs generate`.

    GET does the same as POST, so that a plain `curl localhost:8000/trigger` works."""
    info = {
        "source": "api",
        "method": request.method,
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }
    try:
        run_id = await asyncio.to_thread(runner.trigger, info)
    except RunBusy as busy:
        body = RunConflict(
            detail=f"{busy}; try again when it has finished",
            active_run_id=busy.active_run_id,
        )
        return JSONResponse(status_code=409, content=body.model_dump())
    response.headers["Location"] = f"/runs/{run_id}"
    if wait:
        await asyncio.to_thread(runner.wait, run_id)
        response.status_code = 200
    return await asyncio.to_thread(fetch_run, db, run_id)


# One handler, two methods, each with its own operation id in the OpenAPI document.
for _method in ("POST", "GET"):
    router.add_api_route(
        "",
        trigger,
        methods=[_method],
        operation_id=f"trigger_{_method.lower()}",
        response_model=Run,
        status_code=202,
        responses=_RESPONSES,
    )
