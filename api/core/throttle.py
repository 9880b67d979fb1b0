"""Failed logins, counted per client: after MAX_FAILURES in a row a client waits before it may try again, and
the wait doubles with each further failure (LOCK_SECONDS, 2x, 4x... up to MAX_LOCK_SECONDS). A success clears
the count. In memory, per API process (a token of at least 32 characters is what makes guessing hopeless;
this only keeps a client from trying fast).

The one rule: a client that is waiting is refused before its token is even looked at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 5
LOCK_SECONDS = 60.0
MAX_LOCK_SECONDS = 900.0
#: Clients remembered at most (the oldest are forgotten first), and for how long after their last failure.
MAX_CLIENTS = 10_000
FORGET_SECONDS = 3600.0


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """How long `client` must still wait before its next login attempt (0: it may try now)."""
        with self._lock:
            found = self._failures.get(client)
            if found is None or found.count < MAX_FAILURES:
                return 0.0
            lock = min(LOCK_SECONDS * 2 ** (found.count - MAX_FAILURES), MAX_LOCK_SECONDS)
            return max(0.0, found.last + lock - self.clock())

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            found = self._failures.pop(client, None)
            if found is None or now - found.last > FORGET_SECONDS:
                found = _Failures(0, now)
            found.count, found.last = found.count + 1, now
            self._failures[client] = found  # re-inserted: the dict stays ordered by last failure
            while len(self._failures) > MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
