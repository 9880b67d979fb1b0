"""The ASGI middlewares, outermost first: HEAD as GET without the body, the request guard (Host header,
cross-site state changes; its policy in api/security.py) and the per-route request metrics (api/core/metrics.py).

The one rule: a refused request reaches nothing, not even the metrics of a route.
"""

from __future__ import annotations

import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import Settings
from api.core.metrics import RequestMetrics
from api.security import allowed_hosts, host_name

#: Paths every Host may reach: Docker's and Kubernetes' probes call them by IP.
OPEN_PATHS = frozenset({"/health"})
#: GET endpoints that change state (GET /trigger exists so that a plain `curl .../trigger` works).
STATE_CHANGING_GETS = frozenset({"/trigger"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _HeadDone(Exception):
    """Raised into the app once a HEAD answer is complete: a streaming GET (the SSE events) stops there."""


def _only_head_done(exc: BaseException) -> bool:
    if isinstance(exc, _HeadDone):
        return True
    inner = getattr(exc, "exceptions", None)  # an exception group from a task group (sse-starlette)
    return bool(inner) and all(_only_head_done(e) for e in inner)


class HeadAsGet:
    """ASGI middleware: HEAD answers wherever GET does, with the GET's status and headers and no body (`curl -I`).
    Except where GET changes state (GET /trigger starts a run): HEAD there is 405, and starts nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].upper() != "HEAD":
            await self.app(scope, receive, send)
            return
        if scope["path"] in STATE_CHANGING_GETS:
            detail = f"HEAD {scope['path']} would start a run as GET does: use POST (or GET) to mean it"
            await JSONResponse({"detail": detail}, status_code=405, headers={"Allow": "GET, POST"})(
                scope, receive, send
            )
            return
        finished = False

        async def send_head(message: Message) -> None:
            nonlocal finished
            if finished:
                raise _HeadDone
            if message["type"] == "http.response.body":
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                if message.get("more_body"):
                    raise _HeadDone  # a stream: the headers are out, nothing more is wanted
                return
            await send(message)

        try:
            await self.app({**scope, "method": "GET"}, receive, send_head)
        except Exception as exc:
            if not _only_head_done(exc):
                raise


class RequestGuard:
    """ASGI middleware: 400 for a Host header that is not ours, 403 for a cross-site state change."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            path, method = scope["path"], scope["method"].upper()
            host = headers.get("host", "")
            if self.allowed is not None and path not in OPEN_PATHS and host_name(host) not in self.allowed:
                detail = f"Host header {host!r} is not a name of this server; add it to ALLOWED_HOSTS"
                await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
                return
            changes_state = method not in SAFE_METHODS or path in STATE_CHANGING_GETS
            if changes_state and headers.get("sec-fetch-site", "").lower() == "cross-site":
                detail = (
                    f"{method} {path} changes state and was sent by another site's page (Sec-Fetch-Site: "
                    "cross-site): refused. Call it from this server's pages, curl or a script."
                )
                await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """Counts requests and times them per route template (the matched route's path; `<unmatched>` for
    paths no route knows, so scanners cannot blow up the label set)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - start)
