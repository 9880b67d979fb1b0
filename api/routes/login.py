"""Browser login: the token is typed into a form and posted, never put in a URL. The answer is a random,
expiring session cookie, kept server-side (api/core/sessions.py) and ended by logout; wrong tokens are
throttled per client (api/core/throttle.py)."""

from __future__ import annotations

import html
import math
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api.core import sessions
from api.core.throttle import MAX_FAILURES, LoginThrottle
from api.csp import policy
from api.deps import DatabaseDep, SettingsDep, token_matches
from api.security import SESSION_COOKIE, SESSION_SECONDS, safe_next

router = APIRouter(tags=["login"])

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>features-mart: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 28em; margin: 4em auto">
<h1>features-mart</h1>{message}
<form method="post" action="/login">
<label>API token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form>
<p>The session lasts {hours} hours and opens the documentation pages only; scripts send
<code>Authorization: Bearer &lt;API_TOKEN&gt;</code>.</p>
</body></html>
"""
_MAX_FORM_BYTES = 16 * 1024
_MAX_FORM_FIELDS = 10
_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"token": {"type": "string"}, "next": {"type": "string"}},
                    "required": ["token"],
                }
            }
        },
    }
}


def _page(next_path: str, message: str = "", status_code: int = 200) -> HTMLResponse:
    body = _PAGE.format(
        message=f"<p role='alert'>{html.escape(message)}</p>" if message else "",
        next=html.escape(next_path, quote=True),
        hours=SESSION_SECONDS // 3600,
    )
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": policy(style_src="'self' 'unsafe-inline'"),  # the page's one style attribute
    }
    return HTMLResponse(body, status_code=status_code, headers=headers)


@router.get("/login", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
def login_form(next: Annotated[str | None, Query(max_length=2000)] = None) -> HTMLResponse:
    """A form to type the API token into, for browsers (the dbt docs, the OpenAPI page)."""
    return _page(safe_next(next))


@router.post(
    "/login",
    response_class=RedirectResponse,
    status_code=303,
    openapi_extra=_FORM,
    responses={
        303: {"description": "logged in: a session cookie is set, and the browser sent to `next`"},
        400: {"description": "not the login form (too long, too many fields)", "content": {"text/html": {}}},
        401: {"description": "wrong token: the form again", "content": {"text/html": {}}},
        429: {
            "description": f"{MAX_FAILURES} wrong tokens in a row from this client: wait `Retry-After` seconds",
            "content": {"text/html": {}},
        },
        403: {"description": "sent by another site's page"},
    },
)
async def login(request: Request, settings: SettingsDep, db: DatabaseDep):
    """Check the token posted by the form and set a session cookie for the browser pages (HttpOnly,
    SameSite=Strict, Secure behind https, expiring; the session is kept server-side and ended by logout)."""
    body = await request.body()
    try:
        if len(body) > _MAX_FORM_BYTES:
            raise ValueError("too long")
        form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:
        return _page("/dbt-docs/", "That form is not the login form.", status_code=400)
    token = (form.get("token") or [""])[0]
    target = safe_next((form.get("next") or [None])[0])
    if not settings.api_token:
        return RedirectResponse(target, status_code=303)  # nothing to log in to
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    wait = throttle.wait_seconds(client)
    if wait > 0:
        refused = _page(target, f"Too many wrong tokens: try again in {math.ceil(wait)} s.", status_code=429)
        refused.headers["Retry-After"] = str(math.ceil(wait))
        return refused
    if not token_matches(settings, token):
        throttle.failed(client)
        return _page(target, "That is not the API token.", status_code=401)
    throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"
    response.set_cookie(
        SESSION_COOKIE,
        await run_in_threadpool(sessions.create, db, settings.api_token.get_secret_value(), SESSION_SECONDS),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=https,
        path="/",
    )
    return response


@router.post(
    "/logout",
    response_class=RedirectResponse,
    status_code=303,
    responses={303: {"description": "the session is ended and its cookie removed"}},
)
def logout(request: Request, db: DatabaseDep) -> RedirectResponse:
    """End the browser session: on the server (the cookie is worthless from now on) and in the browser."""
    sessions.end(db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
