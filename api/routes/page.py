from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import Authorized
from api.schemas import Message

router = APIRouter(tags=["runs page"])

PAGE = Path(__file__).resolve().parent.parent / "static" / "runs.html"


@router.get("/", response_class=FileResponse, dependencies=Authorized, responses={401: {"model": Message}})
def runs_page() -> FileResponse:
    """The runs page (HTML): runs with their steps, live progress of the active run, Trigger and Cancel
    buttons, run durations. Protected like the docs site when API_TOKEN is set."""
    return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})
