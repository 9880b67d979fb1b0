"""Webhooks against a real local HTTP receiver that verifies the signature as the one in docs/operations.md does."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.core import webhooks
from api.core.db.migrations import migrate
from api.core.job.steps import step_names
from api.core.runs import lock
from api.main import create_app
from tests.conftest import LOCAL, free_port, wait_until

SECRET = "whsec-test-123"


class Receiver:
    """An HTTP server in a thread; records every POST with whether its X-Signature verified."""

    def __init__(self, secret: str = SECRET, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("X-Signature", "")
                parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
                expected = hmac.new(secret.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
                verified = (
                    hmac.compare_digest(expected, parts.get("v1", "")) and abs(time.time() - int(parts["t"])) < 300
                )
                receiver.received.append({"body": json.loads(body), "verified": verified, "header": header})
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else (200 if verified else 401))
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, run_id: int) -> list[str]:
        return [r["body"]["event_type"] for r in self.received if r["body"]["data"]["run_id"] == run_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.slow
def test_a_run_sends_signed_started_and_succeeded_events(settings, receiver):
    hooked = settings.model_copy(
        update={"webhook_urls": f"{receiver.url}?key=hidden", "webhook_secret": SecretStr(SECRET)}
    )
    with TestClient(create_app(hooked), base_url=LOCAL) as client:
        run = client.post("/trigger?wait=true").json()
        assert run["status"] == "success"
        run_id = run["run_id"]
        wait_until(lambda: len(receiver.events(run_id)) >= 2, 30, "two deliveries")
        assert receiver.events(run_id) == ["run.started", "run.succeeded"]
        assert all(r["verified"] for r in receiver.received), [r["header"] for r in receiver.received]
        started, succeeded = (r["body"] for r in receiver.received)
        assert set(succeeded) == {"event_id", "event_type", "timestamp", "data"}
        assert started["data"]["status"] == "running" and succeeded["data"]["status"] == "success"
        assert started["event_id"] != succeeded["event_id"]
        data = succeeded["data"]
        assert data["trigger"]["source"] == "api" and data["error"] is None and data["finished_at"]
        assert [s["name"] for s in data["steps"]] == list(step_names("default"))
        assert all(s["status"] == "success" and s["duration_seconds"] >= 0 for s in data["steps"])

        def recorded() -> list[dict] | None:
            found = client.get(f"/runs/{run_id}/webhooks").json()
            return found if len(found) >= 2 else None

        listed = wait_until(recorded, 10, "recorded attempts")
        assert [(d["event_type"], d["attempt"], d["status_code"], d["error"]) for d in listed] == [
            ("run.started", 1, 200, None),
            ("run.succeeded", 1, 200, None),
        ]
        # the recorded URL leaves out the query string, which may hold a secret
        assert all(d["url"] == receiver.url + "?…" and "hidden" not in d["url"] for d in listed)
        assert client.get("/runs/999999/webhooks").status_code == 404


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_recorded(settings, database, monkeypatch):
    waits: dict[int, list[float]] = {}  # per delivery thread: the waits between its attempts
    monkeypatch.setattr(webhooks, "wait", lambda seconds: waits.setdefault(threading.get_ident(), []).append(seconds))
    migrate(database)
    handle = lock.start_run(database, {"source": "test"}, step_names("default"))
    handle.release()
    flaky = Receiver(fail_first=2)
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    try:
        hooked = settings.model_copy(
            update={"webhook_urls": f"{flaky.url},{dead}", "webhook_secret": SecretStr(SECRET)}
        )
        thread = webhooks.run_event(hooked, database, "run.failed", handle.run_id)
        assert thread is not None
        thread.join(30)
        assert not thread.is_alive()
    finally:
        flaky.close()
    attempts = webhooks.deliveries(database, handle.run_id)
    to_flaky = [(a["attempt"], a["status_code"]) for a in attempts if a["url"] == flaky.url]
    assert to_flaky == [(1, 500), (2, 500), (3, 200)]
    to_dead = [a for a in attempts if a["url"] == dead]
    assert [a["attempt"] for a in to_dead] == [1, 2, 3, 4, 5]
    assert all(a["status_code"] is None and "Connection refused" in a["error"] for a in to_dead), to_dead
    assert len({a["event_id"] for a in attempts}) == 1 and all(r["verified"] for r in flaky.received)
    # the waits between attempts double (exponential backoff): 1, 2, 4, 8 s to the dead receiver
    assert sorted(waits.values()) == [[1.0, 2.0], [1.0, 2.0, 4.0, 8.0]], waits


def test_without_webhook_urls_nothing_is_sent(settings, database):
    assert webhooks.run_event(settings, database, "run.started", 1) is None


def test_signature_matches_the_documented_recipe():
    body = b'{"event_id":"x"}'
    header = webhooks.sign("s3cret", 1700000000, body)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_the_documented_receiver_accepts_our_deliveries_and_rejects_forged_or_old_ones(settings, database, monkeypatch):
    import re
    import urllib.error
    import urllib.request

    from api.config import REPO_ROOT

    code = re.search(r"```python\n(.*?)```", (REPO_ROOT / "docs" / "operations.md").read_text(), re.S)[1]
    port = free_port()
    code = code.replace(
        'HTTPServer(("", 9000), Hook).serve_forever()', f'server = HTTPServer(("127.0.0.1", {port}), Hook)'
    )
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    scope: dict = {}
    exec(compile(code, "docs/operations.md receiver", "exec"), scope)  # noqa: S102 - our own docs' example
    server = scope["server"]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        migrate(database)
        migrate(database)
        handle = lock.start_run(database, {"source": "test"}, step_names("default"))
        handle.release()
        url = f"http://127.0.0.1:{port}/"
        hooked = settings.model_copy(update={"webhook_urls": url, "webhook_secret": SecretStr(SECRET)})
        webhooks.run_event(hooked, database, "run.started", handle.run_id).join(30)
        assert [(a["attempt"], a["status_code"]) for a in webhooks.deliveries(database, handle.run_id)] == [(1, 200)]

        def post(header: str) -> int:
            req = urllib.request.Request(url, data=b"{}", headers={"X-Signature": header}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback
                    return r.status
            except urllib.error.HTTPError as err:
                return err.code

        assert post(webhooks.sign(SECRET, int(time.time()), b"{}")) == 200
        assert post(webhooks.sign("wrong", int(time.time()), b"{}")) == 401
        assert post(webhooks.sign(SECRET, int(time.time()) - 600, b"{}")) == 401  # a replay, 10 minutes late
        assert post("") == 401
    finally:
        server.shutdown()
        server.server_close()
