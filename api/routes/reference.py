"""The API's reference pages: Swagger UI (`/docs`) and ReDoc (`/redoc`) over `/openapi.json`, every asset served
by this API (`/docs-assets/{name}`, from the pinned fastapi-offline package), so that they work offline.

The one rule: neither page loads anything from another host (no CDN, no web fonts, no validator badge), and a
Content-Security-Policy makes the browser refuse what a bundled script would still fetch (ReDoc's logo).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from api.config import Settings
from api.csp import redoc_policy, swagger_policy
from api.deps import BearerCredentials, BrowserAuthorized, SettingsDep, login_redirect

router = APIRouter(include_in_schema=False)

ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
#: Every file `/docs-assets/{name}` serves, with its media type (no other name is accepted).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_PREFIX = "/docs-assets/"
TITLE = "features-mart API"


#: Both pages are the same for every request: built once, each with its Content-Security-Policy.
_SWAGGER = get_swagger_ui_html(
    openapi_url="/openapi.json",
    title=TITLE,
    swagger_js_url=_PREFIX + "swagger-ui-bundle.js",
    swagger_css_url=_PREFIX + "swagger-ui.css",
    swagger_favicon_url=_PREFIX + "favicon.png",
    swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
).body
_REDOC = get_redoc_html(
    openapi_url="/openapi.json",
    title=TITLE,
    redoc_js_url=_PREFIX + "redoc.standalone.js",
    redoc_favicon_url=_PREFIX + "favicon.png",
    with_google_fonts=False,
).body
_PAGES = {
    "/docs": (_SWAGGER, swagger_policy(bytes(_SWAGGER).decode())),
    "/redoc": (_REDOC, redoc_policy()),
}


def _page(
    path: str, request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> Response:
    """The page at `path`, or the login form's redirect for a browser without a session."""
    html, policy = _PAGES[path]
    return login_redirect(request, settings, credentials, path) or HTMLResponse(
        html, headers={"Content-Security-Policy": policy}
    )


@router.get("/docs")
def swagger(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> Response:
    return _page("/docs", request, settings, credentials)


@router.get("/redoc")
def redoc(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> Response:
    return _page("/redoc", request, settings, credentials)


@router.get(_PREFIX + "{name}", dependencies=BrowserAuthorized)
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no docs asset {name!r}")
    return FileResponse(ASSET_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})
