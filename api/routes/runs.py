from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from api.core import runs
from api.deps import Authorized, DatabaseDep
from api.schemas import MAX_ID, MAX_OFFSET, MAX_TAIL, Message, Run, RunPage

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=Authorized)

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
_CHUNK = 64 * 1024


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
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RunPage:
    """Run history, newest first."""
    rows, total = runs.list_runs(db, limit, offset)
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
) -> StreamingResponse:
    """The run's dbt output as text, streamed (it grows while the run is running)."""
    row = runs.get_run(db, run_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    path = FilePath(row["log_path"]) if row["log_path"] else None
    if path is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"run {run_id} has no log on this server (not started, or pruned)")
    fh = open(path, "rb")  # noqa: SIM115 - closed by the generator, which the response drains
    size = fh.seek(0, 2)  # what the log holds now: a running run keeps appending
    start = _tail_offset(fh, size, tail) if tail else 0
    return StreamingResponse(_read(fh, start, size), media_type="text/plain; charset=utf-8")


def _tail_offset(fh: BinaryIO, size: int, lines: int) -> int:
    """The offset where the last `lines` lines of the file's first `size` bytes begin."""
    if size == 0:
        return 0
    fh.seek(size - 1)
    pos = size - 1 if fh.read(1) == b"\n" else size  # a final newline ends the last line, it starts none
    found = 0
    while pos > 0:
        step = min(_CHUNK, pos)
        fh.seek(pos - step)
        block = fh.read(step)
        for i in range(len(block) - 1, -1, -1):
            if block[i] == 0x0A:
                found += 1
                if found == lines:
                    return pos - step + i + 1
        pos -= step
    return 0


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
