"""The operator's pages: the runs page (`/`), one page per run (`/run/{run_id}`), and the static files they load
(`/static/{name}`: their scripts and stylesheet).

The one rule: the pages are static files that read the JSON API from the browser; no build step, no CDN, no
inline script, style or event-handler attribute (so that a Content-Security-Policy of `'self'` covers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from api.core.runs import history
from api.deps import BearerCredentials, BrowserAuthorized, DatabaseDep, SettingsDep, login_redirect
from api.schemas import MAX_ID, Message

router = APIRouter(tags=["runs page"])

STATIC = Path(__file__).resolve().parent.parent / "static"
#: Every file `/static/{name}` serves, with its media type (no other name is accepted).
ASSETS = {
    "pages.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "runs.js": "text/javascript; charset=utf-8",
    "run.js": "text/javascript; charset=utf-8",
}
_NO_CACHE = {"Cache-Control": "no-cache"}
_HTML = {200: {"content": {"text/html": {}}}, 303: {"description": "a browser that is not logged in goes to /login"}}


@router.get("/", response_class=FileResponse, responses={**_HTML, 401: {"model": Message}})
def runs_page(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> Response:
    """The runs page (HTML): runs with their steps, live progress of the active run, Trigger and Cancel
    buttons, run durations; each run links to its own page. With API_TOKEN set it needs the browser login
    (`/login`), like the docs site; its own calls to the API then go with the login cookie (same-origin
    requests only)."""
    page = FileResponse(STATIC / "runs.html", media_type="text/html", headers=_NO_CACHE)
    return login_redirect(request, settings, credentials, "/") or page


@router.get(
    "/run/{run_id}",
    response_class=FileResponse,
    responses={
        **_HTML,
        401: {"model": Message},
        404: {"content": {"text/html": {}}, "description": "no such run: the page says so"},
    },
)
def run_page(
    run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    request: Request,
    settings: SettingsDep,
    credentials: BearerCredentials,
    db: DatabaseDep,
) -> Response:
    """One run's page (HTML), a URL to share: status, trigger, timings, each step with its log (searchable,
    live while running), every dbt node it executed as a timing chart, the whole error with every input
    problem or failing test rows, links to the artifacts and to each node's page in the docs site."""
    redirect = login_redirect(request, settings, credentials, f"/run/{run_id}")
    if redirect:
        return redirect
    status = 200 if history.get_run(db, run_id) is not None else 404
    return FileResponse(STATIC / "run.html", status_code=status, media_type="text/html", headers=_NO_CACHE)


@router.get("/static/{name}", response_class=FileResponse, dependencies=BrowserAuthorized, include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """The pages' scripts and stylesheet."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=_NO_CACHE)
