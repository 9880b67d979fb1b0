"""Browser sessions, kept server-side in `ops.sessions` (migration 6), so that every API process on the database
knows them and logout ends one for good.

A session is a random value (the cookie) whose SHA-256 is stored, never the value itself, with a key derived
from API_TOKEN (so a new token ends every session) and an expiry. The one rule: a cookie is valid only while
its row exists, holds the current token's key and has not expired; logout deletes the row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from api.core.db.database import Database

#: Longer cookie values are not looked up (ours are 43 characters).
_MAX_VALUE = 128


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def token_key(token: str) -> str:
    """What a session records of the token: an HMAC of it, so the row cannot give the token away."""
    return hmac.new(token.encode(), b"features-mart browser session v2", hashlib.sha256).hexdigest()


def create(db: Database, token: str, seconds: int) -> str:
    """A new session valid `seconds`: returns the cookie value (expired sessions are deleted meanwhile)."""
    value = secrets.token_urlsafe(32)
    with db.connect() as conn, conn.transaction():
        conn.execute("delete from ops.sessions where expires_at < now()")
        conn.execute(
            "insert into ops.sessions (session_hash, token_key, expires_at) "
            "values (%s, %s, now() + make_interval(secs => %s))",
            (_digest(value), token_key(token), seconds),
        )
    return value


def valid(db: Database, token: str, value: str | None) -> bool:
    """True while the session `value` exists, belongs to `token` and has not expired."""
    if not value or len(value) > _MAX_VALUE:
        return False
    with db.reading() as conn:
        row = conn.execute(
            "select token_key from ops.sessions where session_hash = %s and expires_at > now()", (_digest(value),)
        ).fetchone()
    return row is not None and hmac.compare_digest(row[0], token_key(token))


def end(db: Database, value: str | None) -> None:
    """End the session `value` (logout); nothing if there is none."""
    if value and len(value) <= _MAX_VALUE:
        with db.connect() as conn:
            conn.execute("delete from ops.sessions where session_hash = %s", (_digest(value),))
