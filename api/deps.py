"""Typed dependencies shared by the routers."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.config import Settings
from api.core import sessions
from api.core.db.database import Database
from api.core.job.runner import JobRunner
from api.security import SESSION_COOKIE


class _BearerOrToken(HTTPBearer):
    """`Authorization: Bearer <t>`, or `Token <t>` as dbt Cloud's clients (Airflow, dbt-cloud-cli) send it."""

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "token" and token.strip():
            return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
        return await super().__call__(request)


_bearer = _BearerOrToken(auto_error=False, description="the API_TOKEN (`Bearer <t>` or `Token <t>`), when set")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]


def token_matches(settings: Settings, presented: str | None) -> bool:
    expected = settings.api_token.get_secret_value() if settings.api_token else ""
    return hmac.compare_digest((presented or "").encode(), expected.encode())


def _session_valid(request: Request, settings: Settings) -> bool:
    """The request's login cookie names a live session of the current token (api/core/sessions.py)."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    return sessions.valid(request.app.state.db, token, request.cookies.get(SESSION_COOKIE))


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid token: send 'Authorization: Bearer <API_TOKEN>' (browsers: log in at /login)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_token(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> None:
    """The JSON API: when API_TOKEN is set, require `Authorization: Bearer <token>`. The one exception is the
    runs page's own calls: a login cookie is accepted on a request the browser marks `Sec-Fetch-Site:
    same-origin`, i.e. made by one of this server's pages. The cookie is SameSite=Strict and the Host header is
    checked, so another site's page can use neither a logged-in browser nor DNS rebinding against the API."""
    if not settings.api_token or token_matches(settings, credentials.credentials if credentials else None):
        return
    if request.headers.get("sec-fetch-site") == "same-origin" and _session_valid(request, settings):
        return
    raise _unauthorized()


def require_browser(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> None:
    """Browser pages (the docs): the bearer token, or the signed cookie set by POST /login."""
    if not settings.api_token:
        return
    if credentials and token_matches(settings, credentials.credentials):
        return
    if _session_valid(request, settings):
        return
    raise _unauthorized()


def login_redirect(
    request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None, page: str
) -> RedirectResponse | None:
    """For a browser page: None when the request may see it, a redirect to `/login?next=<page>` for a browser
    (it accepts HTML) that has not logged in; anything else gets the 401."""
    try:
        require_browser(request, settings, credentials)
    except HTTPException:
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/login?next={page}", status_code=303)
        raise
    return None


Authorized = [Depends(require_token)]
BrowserAuthorized = [Depends(require_browser)]
