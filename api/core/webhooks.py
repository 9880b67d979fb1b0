"""Run events to webhooks: `run.started`, `run.succeeded`, `run.failed`, `run.cancelled`, POSTed as JSON to
every URL in WEBHOOK_URLS, signed with WEBHOOK_SECRET, and every attempt recorded in `ops.webhook_deliveries`
(api/core/db/migrations.py).

The one rule: delivery never blocks or fails a run. `run_event` returns at once; a background thread reads the
run, POSTs it (10 s timeout, up to 5 attempts with exponential backoff) and swallows every error it meets.

Signature (so receivers can reject forged and replayed deliveries):
`X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with WEBHOOK_SECRET>`;
`t` is the time of the attempt, signed anew for each retry; `event_id` stays the same across retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from psycopg.rows import dict_row

from api.config import Settings
from api.core.db.database import Database
from api.core.runs import history

log = logging.getLogger(__name__)

EVENTS = ("run.started", "run.succeeded", "run.failed", "run.cancelled")
#: The event a run sends when it ends with this status.
FINISHED_EVENT = {"success": "run.succeeded", "failed": "run.failed", "cancelled": "run.cancelled"}
TIMEOUT_SECONDS = 10.0
ATTEMPTS = 5
#: Wait before retry n (n = 1..4): BACKOFF_SECONDS * 2**(n-1), i.e. 1, 2, 4, 8 s.
BACKOFF_SECONDS = 1.0
USER_AGENT = "features-mart-webhooks/1"
#: How a delivery waits between attempts (the tests observe the backoff through it).
wait = time.sleep


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def display_url(url: str) -> str:
    """The URL without credentials or query (they may hold secrets): what is recorded and logged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def run_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The `data` of an event: the run, with each step's duration."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else value

    steps = []
    for step in row["steps"] or []:
        duration = None
        if step.get("started_at") and step.get("finished_at"):
            start, end = datetime.fromisoformat(step["started_at"]), datetime.fromisoformat(step["finished_at"])
            duration = round((end - start).total_seconds(), 3)
        steps.append({"name": step["name"], "status": step["status"], "duration_seconds": duration})
    return {
        "run_id": row["run_id"],
        "status": row["status"],
        "trigger": row["trigger"] or {},
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "steps": steps,
        "error": row["error"],
    }


def run_event(settings: Settings, db: Database, event_type: str, run_id: int) -> threading.Thread | None:
    """Send `event_type` for run `run_id` to every WEBHOOK_URLS URL, in a background thread (returned, for
    tests). Returns at once; never raises; does nothing without WEBHOOK_URLS."""
    try:
        urls = settings.webhook_url_list
        if not urls:
            return None
        if event_type not in EVENTS:
            raise ValueError(f"unknown event type {event_type!r}")
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        event = {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        thread = threading.Thread(
            target=_deliver_event, args=(db, event, run_id, urls, secret), name=f"webhook-{run_id}", daemon=True
        )
        thread.start()
        return thread
    except Exception:
        log.exception("webhooks: could not send %s for run %s", event_type, run_id)
        return None


def _deliver_event(db: Database, event: dict[str, Any], run_id: int, urls: list[str], secret: str | None) -> None:
    try:
        row = history.get_run(db, run_id)
        if row is None:
            log.warning("webhooks: run %s not found; %s not sent", run_id, event["event_type"])
            return
        body = json.dumps({**event, "data": run_summary(row)}, separators=(",", ":")).encode()
        threads = [
            threading.Thread(target=deliver, args=(db, run_id, event, url, body, secret), daemon=True) for url in urls
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except Exception:
        log.exception("webhooks: could not send %s for run %s", event["event_type"], run_id)


def deliver(db: Database, run_id: int, event: dict[str, Any], url: str, body: bytes, secret: str | None) -> bool:
    """POST `body` to `url` until a 2xx answer or ATTEMPTS attempts; record each. True when delivered."""
    shown = display_url(url)
    for attempt in range(1, ATTEMPTS + 1):
        status_code, error = _post(url, body, secret)
        _record(db, run_id, event, shown, attempt, status_code, error)
        if error is None and status_code is not None and 200 <= status_code < 300:
            return True
        log.warning(
            "webhooks: %s of run %s to %s, attempt %d/%d: %s",
            event["event_type"], run_id, shown, attempt, ATTEMPTS, error or f"HTTP {status_code}",
        )  # fmt: skip
        if attempt < ATTEMPTS:
            wait(BACKOFF_SECONDS * 2 ** (attempt - 1))
    return False


def _post(url: str, body: bytes, secret: str | None) -> tuple[int | None, str | None]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if secret:
        headers["X-Signature"] = sign(secret, int(time.time()), body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only (config)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, None
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"


def _record(
    db: Database, run_id: int, event: dict[str, Any], url: str, attempt: int, status_code: int | None, error: str | None
) -> None:
    try:
        with db.connect() as conn:
            conn.execute(
                "insert into ops.webhook_deliveries (run_id, event_id, event_type, url, attempt, status_code, error) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                (run_id, event["event_id"], event["event_type"], url, attempt, status_code, error),
            )
    except Exception:
        log.warning("webhooks: could not record a delivery attempt of run %s", run_id, exc_info=True)


def deliveries(db: Database, run_id: int) -> list[dict[str, Any]]:
    """Every delivery attempt of a run's events, oldest first."""
    with db.connect(row_factory=dict_row) as conn:
        return conn.execute(
            "select event_id, event_type, url, attempt, status_code, error, attempted_at "
            "from ops.webhook_deliveries where run_id = %s order by delivery_id",
            (run_id,),
        ).fetchall()
