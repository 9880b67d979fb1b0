"""Who may talk to the API, and what never leaks from it.

- Requests: the Host header must name this server (`allowed_hosts`: localhost, HOST, ALLOWED_HOSTS), which
  defeats DNS rebinding; api/middleware.py applies it, and refuses state changes from other sites' pages.
- Browser sessions: POST /login trades the token for a random, expiring session cookie kept server-side
  (api/core/sessions.py: logout ends it, a new API_TOKEN ends them all). The cookie opens the browser pages,
  and the JSON API only for the pages' own same-origin calls (api/deps.py).
- Logs: every log record (ours and uvicorn's, access log included) has the token, the database password and
  any `token=` query value replaced by `***` before it is written, and control characters in its arguments
  (request data: a cancel reason, a path) escaped, so that no request can write a line of its own.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from urllib.parse import quote, quote_plus, unquote_plus

from api.config import Settings

SESSION_COOKIE = "features_mart_session"
SESSION_SECONDS = 12 * 3600
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - names of "every interface", compared, not bound


# --------------------------------------------------------------------------- browser sessions


def safe_next(target: str | None, default: str = "/dbt-docs/") -> str:
    """Where to send the browser after login: a path on this server only (never `//host` or a URL)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return default


# --------------------------------------------------------------------------- Host and cross-site checks


def allowed_hosts(settings: Settings) -> set[str] | None:
    """Host names this server answers to; None means any (ALLOWED_HOSTS=*)."""
    extra = {h.strip().lower().strip("[]").rstrip(".") for h in settings.allowed_hosts.split(",") if h.strip()}
    if "*" in extra:
        return None
    names = {"localhost", "127.0.0.1", "::1", *extra}
    host = settings.host.strip("[]").lower()
    if host in _WILDCARD_HOSTS:  # every interface: this machine's names and addresses
        hostname = socket.gethostname().lower()
        names |= {hostname, socket.getfqdn().lower()}
        with contextlib.suppress(OSError):
            names |= set(socket.gethostbyname_ex(hostname)[2])
    else:
        names.add(host)
    return names


def host_name(header: str) -> str:
    """'[::1]:8000' -> '::1', 'Example.org:80' -> 'example.org'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


# --------------------------------------------------------------------------- logs

#: A run of URL characters between separators (a path segment, a query value): decoded to look for a secret.
_URL_PART = re.compile(r"[^\s\"'&=?;,/]+")
_TOKEN_PARAM = re.compile(r"(?i)([?&;](?:token|api_token|access_token|password)=)[^&;\s\"']*")


#: Control characters (C0, DEL, C1) and Unicode's line and paragraph separators: escaped in request data that
#: goes into a log line, so that it cannot start a forged line.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROLS.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape (`\\n`, `\\x1b`): one line, nothing hidden."""
    return text.translate(_CONTROLS)


class RedactSecrets(logging.Filter):
    """Replaces secrets (and `token=` query values) in a record's message and arguments with `***`, and escapes
    control characters in its string arguments (`escape_controls`)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        variants = {v for s in secrets if s for v in (s, quote(s, safe=""), quote_plus(s))}
        self.secrets = sorted(variants, key=len, reverse=True)

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        if self.secrets and ("%" in text or "+" in text):
            text = _URL_PART.sub(self._decoded_secret, text)
        return _TOKEN_PARAM.sub(r"\1***", text)

    def _decoded_secret(self, match: re.Match[str]) -> str:
        """A URL part that, decoded (percent-encoding in any case, `+`, twice encoded...), holds a secret: written
        decoded, with the secret replaced; any other part as it was."""
        part = decoded = match.group(0)
        for _ in range(3):
            decoded = unquote_plus(decoded)
            if any(secret in decoded for secret in self.secrets):
                for secret in self.secrets:
                    decoded = decoded.replace(secret, "***")
                return decoded
        return part

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.clean(escape_controls(a)) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: self.clean(escape_controls(v)) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
        return True


def redact_logs(secrets: list[str]) -> None:
    """Put a RedactSecrets filter on every handler of every logger configured now (uvicorn's included)."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
                handler.removeFilter(old)
            handler.addFilter(RedactSecrets(secrets))
