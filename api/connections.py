"""How the server treats connections (uvicorn): deadlines for slow or idle clients, and the cap on them.

- A connection must deliver a request's headers within HEADER_SECONDS of opening (or of its previous answer),
  else it is closed: an idle or trickling client holds nothing for long.
- A request's body must arrive within BODY_SECONDS (api/middleware.py's BodyLimit answers 408).
- Idle keep-alive connections are closed after KEEP_ALIVE_SECONDS; MAX_CONNECTIONS caps the connections and
  requests served at once (uvicorn's limit_concurrency: 503 beyond it).

The one rule: no client holds a connection without sending a request in time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("api")

HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
KEEP_ALIVE_SECONDS = 5


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers have not arrived in time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(HEADER_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection from %s: no complete request within %gs", self.client, HEADER_SECONDS)
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers arrived: the app has it now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers, in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(forwarded_allow_ips: str, max_connections: int) -> dict[str, Any]:
    """The connection settings of uvicorn.Config: these deadlines and cap, and proxy headers (X-Forwarded-For,
    -Proto) trusted only from FORWARDED_ALLOW_IPS (none by default: any local process could forge them)."""
    return {
        "http": DeadlineH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": max_connections,
        "proxy_headers": bool(forwarded_allow_ips.strip()),
        "forwarded_allow_ips": forwarded_allow_ips.strip() or "",
    }
