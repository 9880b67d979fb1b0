"""How the served API treats connections (api/connections.py), on the real uvicorn: proxy headers trusted only
from FORWARDED_ALLOW_IPS, idle and trickling clients closed, a slow body refused, MAX_CONNECTIONS enforced."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from api.connections import BODY_SECONDS, HEADER_SECONDS
from tests.conftest import wait_until
from tests.reliability.conftest import ApiServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def api(settings, tmp_path) -> Iterator[ApiServer]:
    server = ApiServer(settings, tmp_path / "api.log", MAX_CONNECTIONS="4").start()
    try:
        yield server
    finally:
        server.stop()


def _connect(server: ApiServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=HEADER_SECONDS * 6)


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer: its headers and its Content-Length of body (they may come in separate reads)."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_forged_x_forwarded_for_is_not_believed(api):
    """The attack: any local process sent X-Forwarded-For and was recorded as that client (uvicorn trusted
    127.0.0.1 as a proxy)."""
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    run = api.client.post("/trigger", headers=forged)
    assert run.status_code == 202, run.text
    run_id = run.json()["run_id"]
    cancelled = api.client.post(f"/runs/{run_id}/cancel", headers=forged).json()
    assert api.client.get(f"/runs/{run_id}").json()["trigger"]["client"] == "127.0.0.1"
    assert cancelled["cancel_reason"] == "cancelled by API request from 127.0.0.1"


def test_an_idle_or_trickling_connection_is_closed(api):
    """The attack: connections that never finish a request were kept open for good."""
    idle = _connect(api)
    assert _closed(idle), "an idle connection (no request at all) is closed"
    trickle = _connect(api)
    trickle.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    start = time.monotonic()
    with pytest.raises(OSError):  # the server closes it: sending fails (broken pipe / reset)
        while time.monotonic() - start < HEADER_SECONDS * 4:
            trickle.sendall(b"X")
            time.sleep(0.5)
    slow_body = _connect(api)
    slow_body.sendall(b"POST /runs/1/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
    answer = _answer(slow_body)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert f"{BODY_SECONDS:g}s".encode() in answer


def test_connections_beyond_max_connections_get_a_503(api):
    held = [_connect(api) for _ in range(4)]
    try:
        extra = _connect(api)
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert extra.recv(65536).startswith(b"HTTP/1.1 503"), "a fifth connection is refused"
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: api.client.get("/health").status_code == 200, 30, "the held connections to be let go")
