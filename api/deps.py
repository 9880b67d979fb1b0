"""Typed dependencies shared by the routers."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.config import Settings
from api.core.database import Database
from api.core.jobs import JobRunner

TOKEN_COOKIE = "features_mart_token"  # noqa: S105 - a cookie name, not a secret
_bearer = HTTPBearer(auto_error=False, description="the API_TOKEN, when the server has one")


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


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_token(request: Request, settings: SettingsDep, credentials: BearerCredentials) -> None:
    """When API_TOKEN is set, require `Authorization: Bearer <token>` (or the docs-site cookie)."""
    if not settings.api_token:
        return
    presented = credentials.credentials if credentials else request.cookies.get(TOKEN_COOKIE)
    if not token_matches(settings, presented):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid token: send 'Authorization: Bearer <API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = [Depends(require_token)]
