"""The ASGI middlewares, outermost first: the answer headers (no framing, a Content-Security-Policy: api/csp.py),
HEAD as GET without the body, the body limit (MAX_BODY_BYTES, BODY_SECONDS), the request guard (Host header,
state changes from other pages; its policy in api/security.py) and the per-route request metrics
(api/core/metrics.py).

The one rule: a refused request reaches nothing, not even the metrics of a route; a body over the limit is
refused before it is read (by its Content-Length) or as soon as the bytes received pass the limit.
"""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import Settings
from api.connections import BODY_SECONDS
from api.core.metrics import RequestMetrics
from api.csp import FRAME_HEADERS, PAGE_POLICY
from api.security import allowed_hosts, host_name

#: Paths every Host may reach: Docker's and Kubernetes' probes call them by IP.
OPEN_PATHS = frozenset({"/health"})
#: GET endpoints that change state (GET /trigger exists so that a plain `curl .../trigger` works).
STATE_CHANGING_GETS = frozenset({"/trigger"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The Sec-Fetch-Site values a state change may carry: this server's own pages (`same-origin`), the user typing
#: or bookmarking (`none`), or none at all (curl, scripts). `same-site` (another port or subdomain) and
#: `cross-site` are refused.
STATE_CHANGE_SITES = frozenset({"", "same-origin", "none"})


#: The largest request body any route accepts (the largest real one, a cancel reason, is under 3 KB).
MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = f"request body larger than {MAX_BODY_BYTES} bytes: refused"


class BodyTooLarge(HTTPException):
    """Raised by `receive` once the body has passed the limit (an HTTPException, so FastAPI's body parsing lets
    it through as a 413 instead of turning it into a 400)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=_TOO_LARGE)


class BodyTooSlow(HTTPException):
    """Raised by `receive` when the body has not arrived within BODY_SECONDS (a trickling client)."""

    def __init__(self) -> None:
        super().__init__(status_code=408, detail=f"request body not received within {BODY_SECONDS:g}s")


class BodyLimit:
    """ASGI middleware: 413 for a body over MAX_BODY_BYTES, on every route and before authentication: at once
    when Content-Length says so, else when the bytes received pass the limit (chunked bodies); 408 for a body
    not received within BODY_SECONDS."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1  # unparseable: refused as well
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received, started = 0, False

        deadline, body_done = time.monotonic() + BODY_SECONDS, False

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # past the body (a streaming answer waiting for a disconnect): no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise BodyTooSlow() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (BodyTooLarge, BodyTooSlow) as refused:
            if started:
                raise
            await self._refuse(scope, receive, send, refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refused: HTTPException | None = None) -> None:
        refused = refused or BodyTooLarge()
        response = JSONResponse(
            {"detail": refused.detail}, status_code=refused.status_code, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


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
    """ASGI middleware: 400 for a Host header that is not ours, 403 for a state change sent by another origin's
    page (Sec-Fetch-Site other than same-origin or none)."""

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
            site = headers.get("sec-fetch-site", "").lower()
            if changes_state and site not in STATE_CHANGE_SITES:
                detail = (
                    f"{method} {path} changes state and was sent by another page than this server's (Sec-Fetch-Site: "
                    f"{site}): refused. Call it from this server's pages, curl or a script."
                )
                await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HtmlHeaders:
    """ASGI middleware: every HTML answer gets `X-Frame-Options: DENY` and, unless its route set one that fits
    it, the pages' Content-Security-Policy (`frame-ancestors 'none'` in every policy); every answer gets
    `X-Content-Type-Options: nosniff`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                extra = {b"x-content-type-options": b"nosniff"}
                if content_type.lower().startswith(b"text/html"):
                    extra.update({k.lower().encode(): v.encode() for k, v in FRAME_HEADERS.items()})
                    extra[b"content-security-policy"] = PAGE_POLICY.encode()
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
