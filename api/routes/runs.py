from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse

from api.core import runs
from api.deps import Authorized, DatabaseDep
from api.schemas import Message, Run, RunPage

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=Authorized)


def to_run(row: dict[str, Any]) -> Run:
    started, finished = row["started_at"], row["finished_at"]
    end = finished or (datetime.now(started.tzinfo) if started else None)
    return Run(
        run_id=row["run_id"],
        status=row["status"],
        trigger=row["trigger"] or {},
        created_at=row["created_at"],
        started_at=started,
        finished_at=finished,
        duration_seconds=round((end - started).total_seconds(), 3) if started and end else None,
        steps=row["steps"] or [],
        progress=row["progress"] if row["status"] == "running" else None,
        error=row["error"],
        failures=row["failures"] or [],
        cancel_requested_at=row.get("cancel_requested_at"),
        links={"self": f"/runs/{row['run_id']}", "logs": f"/runs/{row['run_id']}/logs"},
    )


def fetch_run(db, run_id: int) -> Run:
    row = runs.get_run(db, run_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return to_run(row)


@router.get("", response_model=RunPage)
def list_runs(
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunPage:
    """Run history, newest first."""
    rows, total = runs.list_runs(db, limit, offset)
    return RunPage(items=[to_run(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{run_id}", response_model=Run, responses={404: {"model": Message}})
def get_run(run_id: int, db: DatabaseDep) -> Run:
    """One run: status, steps, live progress, and on failure what failed."""
    return fetch_run(db, run_id)


@router.get(
    "/{run_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"model": Message}},
)
def get_logs(run_id: int, db: DatabaseDep) -> PlainTextResponse:
    """The run's dbt output as text (grows while the run is running)."""
    row = runs.get_run(db, run_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    path = Path(row["log_path"]) if row["log_path"] else None
    if path is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"run {run_id} has no log on this server (not started, or pruned)")
    return PlainTextResponse(path.read_text(encoding="utf-8", errors="replace"))


@router.post(
    "/{run_id}/cancel",
    response_model=Run,
    status_code=202,
    responses={404: {"model": Message}, 409: {"model": Message, "description": "the run has already finished"}},
)
def cancel_run(run_id: int, request: Request, db: DatabaseDep) -> Run:
    """Cancel a queued or running run, from any API process: its dbt gets SIGINT (dbt cancels its queries), then
    SIGKILL after 10 s. The run ends `cancelled`; the published mart is untouched. Answers with the run as it is
    now (`cancel_requested_at` set); follow it at `/runs/{run_id}`."""
    who = request.client.host if request.client else "unknown client"
    try:
        row = runs.request_cancel(db, run_id, f"cancelled by an API request from {who}")
    except runs.RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except runs.RunFinished as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return to_run(row)
