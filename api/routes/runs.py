from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse

from api.core import runs, webhooks
from api.deps import Authorized, DatabaseDep
from api.schemas import CancelRequest, Message, Run, RunPage, WebhookDelivery

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
        cancel_reason=row.get("cancel_reason"),
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
def cancel_run(
    run_id: int, request: Request, db: DatabaseDep, body: Annotated[CancelRequest | None, Body()] = None
) -> Run:
    """Cancel a queued or running run. dbt gets SIGINT (it cancels its queries), then SIGKILL after a grace
    period; the run ends `cancelled`, the published mart untouched. Answers at once with the run, which shows
    `cancel_requested_at` until it has ended. Works from any API process on the database."""
    client = request.client.host if request.client else "unknown client"
    reason = f"cancelled by API request from {client}"
    if body and body.reason:
        reason += f": {body.reason}"
    try:
        return to_run(runs.request_cancel(db, run_id, reason))
    except runs.RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except runs.RunFinished as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.get("/{run_id}/webhooks", response_model=list[WebhookDelivery], responses={404: {"model": Message}})
def get_webhooks(run_id: int, db: DatabaseDep) -> list[WebhookDelivery]:
    """Every webhook delivery attempt of the run's events, oldest first (empty without WEBHOOK_URLS)."""
    fetch_run(db, run_id)
    return [WebhookDelivery(**row) for row in webhooks.deliveries(db, run_id)]
