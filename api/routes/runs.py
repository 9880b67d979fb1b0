from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path as FilePath
from typing import Annotated, Any, BinaryIO, Literal

import psycopg
from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.core import webhooks
from api.core.job import retry as retries
from api.core.job.files import runs_dir
from api.core.job.steps import STEP_NAMES
from api.core.runs import history
from api.core.runs.lock import RunBusy
from api.deps import Authorized, DatabaseDep, RunnerDep, SettingsDep
from api.schemas import (
    MAX_ID,
    MAX_OFFSET,
    MAX_TAIL,
    CancelRequest,
    Message,
    Run,
    RunConflict,
    RunPage,
    WebhookDelivery,
)
from api.security import escape_controls
from api.views import fetch_run, run_row, to_run

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=Authorized)
log = logging.getLogger(__name__)

#: The dbt artifacts of a run that GET /runs/{id}/artifacts/{name} serves (no other name is accepted).
ARTIFACTS = ("manifest.json", "run_results.json", "catalog.json")
#: How often the event stream looks at the run's row and log file (any process can serve any run).
EVENTS_POLL_SECONDS = 0.5
#: The most log text one `log` event carries; the rest follows in the next events.
LOG_CHUNK = 256 * 1024

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
_CHUNK = 64 * 1024


@router.get("", response_model=RunPage)
def list_runs(
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RunPage:
    """Run history, newest first."""
    rows, total = history.list_runs(db, limit, offset)
    return RunPage(items=[to_run(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{run_id}", response_model=Run, responses={404: {"model": Message}})
def get_run(run_id: RunId, db: DatabaseDep) -> Run:
    """One run: status, steps, live progress, and on failure what failed."""
    return fetch_run(db, run_id)


@router.get(
    "/{run_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"model": Message}},
)
def get_logs(
    run_id: RunId,
    db: DatabaseDep,
    tail: Annotated[int | None, Query(ge=1, le=MAX_TAIL, description="only the last N lines")] = None,
    step: Annotated[
        Literal[STEP_NAMES] | None,  # type: ignore[valid-type]
        Query(description="only the lines this step wrote (404 if it has not started)"),
    ] = None,
) -> StreamingResponse:
    """The run's dbt output as text, streamed (it grows while the run is running); `step`: one step's part."""
    row = run_row(db, run_id)
    path = FilePath(row["log_path"]) if row["log_path"] else None
    if path is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"run {run_id} has no log on this server (not started, or pruned)")
    bounds = _step_bounds(row, step) if step else (0, None)
    fh = open(path, "rb")  # noqa: SIM115 - closed by the generator, which the response drains
    size = fh.seek(0, 2)  # what the log holds now: a running run keeps appending
    begin, end = min(bounds[0], size), size if bounds[1] is None else min(bounds[1], size)
    start = _tail_offset(fh, end, tail, begin) if tail else begin
    return StreamingResponse(_read(fh, start, end), media_type="text/plain; charset=utf-8")


def _step_bounds(row: dict[str, Any], step: str) -> tuple[int, int | None]:
    """Where `step`'s lines begin in the run's log and where the next step's begin (None: the end of the log)."""
    steps = row["steps"] or []
    names = [s["name"] for s in steps]
    if step not in names:
        raise HTTPException(status_code=404, detail=f"run {row['run_id']} has no step {step!r}: {', '.join(names)}")
    index = names.index(step)
    begin = steps[index].get("log_offset")
    if begin is None:
        detail = f"step {step} of run {row['run_id']} has no log of its own"
        if steps[index]["status"] in ("pending", "skipped"):
            raise HTTPException(status_code=404, detail=f"{detail}: it did not start ({steps[index]['status']})")
        raise HTTPException(status_code=404, detail=f"{detail}: the run predates the steps' logs (read its whole log)")
    later = [s["log_offset"] for s in steps[index + 1 :] if s.get("log_offset") is not None]
    return begin, (later[0] if later else None)


def _tail_offset(fh: BinaryIO, size: int, lines: int, floor: int = 0) -> int:
    """The offset where the last `lines` lines of the file's bytes `floor`..`size` begin."""
    if size <= floor:
        return floor
    fh.seek(size - 1)
    pos = size - 1 if fh.read(1) == b"\n" else size  # a final newline ends the last line, it starts none
    found = 0
    while pos > floor:
        step = min(_CHUNK, pos - floor)
        fh.seek(pos - step)
        block = fh.read(step)
        for i in range(len(block) - 1, -1, -1):
            if block[i] == 0x0A:
                found += 1
                if found == lines:
                    return pos - step + i + 1
        pos -= step
    return floor


def _read(fh: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@router.post(
    "/{run_id}/cancel",
    response_model=Run,
    status_code=202,
    responses={404: {"model": Message}, 409: {"model": Message, "description": "the run has already finished"}},
)
def cancel_run(
    run_id: RunId, request: Request, db: DatabaseDep, body: Annotated[CancelRequest | None, Body()] = None
) -> Run:
    """Cancel a queued or running run. dbt gets SIGINT (it cancels its queries), then SIGKILL after a grace
    period; the run ends `cancelled`, the published mart untouched. Answers at once with the run, which shows
    `cancel_requested_at` until it has ended. Works from any API process on the database."""
    client = escape_controls(request.client.host) if request.client else "unknown client"
    reason = f"cancelled by API request from {client}"
    if body and body.reason:
        reason += f": {escape_controls(body.reason)}"  # one line in the run's error, log and the API's log
    try:
        return to_run(history.request_cancel(db, run_id, reason))
    except history.RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except history.RunFinished as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.post(
    "/{run_id}/retry",
    response_model=Run,
    status_code=202,
    responses={
        404: {"model": Message},
        409: {"model": RunConflict, "description": "the run did not fail, or a run is queued or running"},
    },
)
def retry_run(run_id: RunId, request: Request, response: Response, db: DatabaseDep, runner: RunnerDep) -> Any:
    """Retry a failed run from its failure: a new run that redoes only the dbt nodes that failed or were skipped
    (dbt's `retry` over the failed run's state), reusing the rest, then tests and publishes as usual. When the
    input files changed, or the failure was in validation, seeding or publish, it runs the whole job and its
    `retry.reason` says why. `409` while a run is active, as POST /trigger."""
    try:
        plan = retries.plan(db, run_id)
    except history.RunNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except retries.NotRetryable as exc:
        return JSONResponse(status_code=409, content=RunConflict(detail=str(exc), active_run_id=None).model_dump())
    info = {"source": "api", "method": "POST", "path": f"/runs/{run_id}/retry", "retry_of": run_id,
            "client": request.client.host if request.client else None}  # fmt: skip
    try:
        new_id = runner.trigger(info, plan)
    except RunBusy as busy:
        body = RunConflict(detail=f"{busy}; try again when it has finished", active_run_id=busy.active_run_id)
        return JSONResponse(status_code=409, content=body.model_dump())
    response.headers["Location"] = f"/runs/{new_id}"
    return fetch_run(db, new_id)


@router.get("/{run_id}/webhooks", response_model=list[WebhookDelivery], responses={404: {"model": Message}})
def get_webhooks(run_id: RunId, db: DatabaseDep) -> list[WebhookDelivery]:
    """Every webhook delivery attempt of the run's events, oldest first (empty without WEBHOOK_URLS)."""
    fetch_run(db, run_id)
    return [WebhookDelivery(**row) for row in webhooks.deliveries(db, run_id)]


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Message}},
)
async def run_events(run_id: RunId, db: DatabaseDep) -> EventSourceResponse:
    """Server-Sent Events while the run goes on: `progress` (the run's progress object, when it changes),
    `log` (new lines of the run's log), then one `status` event with the finished run, and the stream closes.
    For a run that has already ended: the `status` event at once."""
    row = await asyncio.to_thread(history.get_run, db, run_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return EventSourceResponse(_events(db, row), ping=15)


async def _events(db, row: dict[str, Any]) -> AsyncIterator[ServerSentEvent]:
    run_id, offset, last_progress, followed = row["run_id"], 0, None, False
    while row["status"] in history.ACTIVE:
        followed = True
        progress = row["progress"] if row["status"] == "running" else None
        if progress and progress != last_progress:
            last_progress = progress
            yield ServerSentEvent(event="progress", data=json.dumps(progress))
        text, offset = await asyncio.to_thread(_log_since, row["log_path"], offset)
        if text:
            yield ServerSentEvent(event="log", data=text)
        await asyncio.sleep(EVENTS_POLL_SECONDS)
        try:
            row = await asyncio.to_thread(history.get_run, db, run_id) or row
        except psycopg.Error as exc:  # e.g. Postgres restarting: keep the stream, look again
            log.warning("events of run %s: %s", run_id, exc)
    if followed:  # the lines written between the last look and the end of the run
        while True:
            text, offset = await asyncio.to_thread(_log_since, row["log_path"], offset)
            if not text:
                break
            yield ServerSentEvent(event="log", data=text)
    yield ServerSentEvent(event="status", data=to_run(row).model_dump_json())


def _log_since(log_path: str | None, offset: int) -> tuple[str, int]:
    """Complete lines of the log from byte `offset` on (at most LOG_CHUNK bytes), and the new offset."""
    if not log_path:
        return "", offset
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            chunk = f.read(LOG_CHUNK)
    except OSError:
        return "", offset
    end = chunk.rfind(b"\n") + 1
    if end == 0:  # no complete line yet; a line longer than a chunk goes out in pieces
        if len(chunk) < LOG_CHUNK:
            return "", offset
        end = len(chunk) + 1
    return chunk[: end - 1].decode("utf-8", errors="replace"), offset + min(end, len(chunk))


@router.get(
    "/{run_id}/artifacts/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}}, 404: {"model": Message}},
)
def get_artifact(run_id: RunId, name: str, db: DatabaseDep, settings: SettingsDep) -> FileResponse:
    """dbt's `manifest.json`, `run_results.json` or `catalog.json` of the run (only these names). Old runs'
    files are pruned with their logs (the last 30 runs keep them)."""
    if name not in ARTIFACTS:
        raise HTTPException(status_code=404, detail=f"no artifact {name!r}: one of {', '.join(ARTIFACTS)}")
    fetch_run(db, run_id)
    path = runs_dir(settings) / str(run_id) / "artifacts" / name
    if not path.is_file():
        raise HTTPException(
            status_code=404,
            detail=f"run {run_id} has no {name} on this server (the run did not get that far, or it was pruned)",
        )
    return FileResponse(path, media_type="application/json")
