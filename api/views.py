"""Response bodies built from the domain's rows, shared by the routers: a row of `ops.runs` as the API's `Run`.

The one rule: every route answers a run in the same shape, so a run's JSON never depends on the endpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException

from api.core.db.database import Database
from api.core.runs import history
from api.schemas import Run


def run_links(run_id: int) -> dict[str, str]:
    return {"self": f"/runs/{run_id}", "logs": f"/runs/{run_id}/logs", "page": f"/run/{run_id}"}


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
        input_problems=row.get("input_problems"),
        cancel_requested_at=row.get("cancel_requested_at"),
        cancel_reason=row.get("cancel_reason"),
        retry=row.get("retry"),
        links=run_links(row["run_id"]),
    )


def run_row(db: Database, run_id: int) -> dict[str, Any]:
    """The run's row, or a 404."""
    row = history.get_run(db, run_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return row


def fetch_run(db: Database, run_id: int) -> Run:
    """The run, or a 404."""
    return to_run(run_row(db, run_id))
