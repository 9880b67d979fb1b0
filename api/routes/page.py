from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from api.deps import BearerCredentials, SettingsDep, login_redirect
from api.schemas import Message

router = APIRouter(tags=["runs page"])

PAGE = Path(__file__).resolve().parent.parent / "static" / "runs.html"


@router.get("/", response_class=FileResponse, responses={401: {"model": Message}})
def runs_page(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> Response:
    """The runs page (HTML): runs with their steps, live progress of the active run, Trigger and Cancel
    buttons, run durations. With API_TOKEN set it needs the browser login (`/login`), like the docs site; its
    own calls to the API then go with the login cookie (same-origin requests only)."""
    page = FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})
    return login_redirect(request, settings, credentials, "/") or page
