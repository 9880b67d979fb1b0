"""Failed logins per client (api/core/throttle.py), on a clock the test moves."""

from __future__ import annotations

from api.core.throttle import LOCK_SECONDS, MAX_FAILURES, MAX_LOCK_SECONDS, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_waits_after_max_failures_and_the_wait_doubles():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("a")
        assert throttle.wait_seconds("a") == 0
    throttle.failed("a")
    assert throttle.wait_seconds("a") == LOCK_SECONDS
    assert throttle.wait_seconds("b") == 0, "per client"
    clock.now += LOCK_SECONDS
    assert throttle.wait_seconds("a") == 0
    throttle.failed("a")
    assert throttle.wait_seconds("a") == 2 * LOCK_SECONDS
    for _ in range(20):
        throttle.failed("a")
    assert throttle.wait_seconds("a") == MAX_LOCK_SECONDS
    throttle.succeeded("a")
    assert throttle.wait_seconds("a") == 0
