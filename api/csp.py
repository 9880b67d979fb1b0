"""The headers of every HTML answer: `X-Frame-Options: DENY` and a Content-Security-Policy that fits the page.

The one rule: no page of ours may be framed (`frame-ancestors 'none'`: clickjacking), and each page may load
only what it needs, and all of it from this API (no CDN): the runs page, a run's page and the login form only
their own files (`'self'`); the OpenAPI page (Swagger UI) its bundled files and its one inline script, by hash;
ReDoc its bundled script and the worker it makes from a blob; the dbt docs site its inline scripts, by hash
(computed from the file served). api/middleware.py puts `PAGE_POLICY` on any HTML answer that has no
policy of its own.
"""

from __future__ import annotations

import base64
import hashlib
import re

_BASE = {
    "default-src": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)

FRAME_HEADERS = {"X-Frame-Options": "DENY"}


def policy(**directives: str) -> str:
    """A Content-Security-Policy: the base (only 'self', no framing, no plugins, no <base>) plus `directives`
    (`script_src="..."` is `script-src ...`)."""
    merged = {**_BASE, **{k.replace("_", "-"): v for k, v in directives.items()}}
    return "; ".join(f"{k} {v}" for k, v in merged.items())


def inline_script_hashes(html: str) -> list[str]:
    """`'sha256-…'` of every inline <script> of `html`, as CSP's script-src takes them."""
    found = []
    for body in _INLINE_SCRIPT.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        found.append(f"'sha256-{digest}'")
    return sorted(set(found))


#: The runs page, a run's page, the login form, and any other HTML answer: their own files only.
PAGE_POLICY = policy(img_src="'self' data:")


def swagger_policy(html: str) -> str:
    """The OpenAPI page (Swagger UI, its files served by api/routes/reference.py): its inline start-up script
    by hash; nothing from another host (no validator badge, no CDN)."""
    return policy(
        script_src=" ".join(["'self'", *inline_script_hashes(html)]),
        img_src="'self' data:",
        form_action="'none'",
    )


def redoc_policy() -> str:
    """ReDoc (its bundled script served by api/routes/reference.py): it runs a worker from a blob and injects
    styles; its logo and fonts from another host are refused."""
    return policy(
        script_src="'self' blob:",
        worker_src="'self' blob:",
        style_src="'self' 'unsafe-inline'",
        img_src="'self' data:",
        font_src="'self' data:",
        form_action="'none'",
    )


def dbt_docs_policy(html: str) -> str:
    """The dbt docs site: one HTML file whose scripts are inline (by hash), with inline styles, reading its
    manifest.json and catalog.json from this server. Its AngularJS probes for `eval` at start (`new Function`)
    and reports a violation when refused, so 'unsafe-eval' is allowed here, and only here: no script but the
    hashed ones can run to use it."""
    return policy(
        script_src=" ".join(["'self'", "'unsafe-eval'", *inline_script_hashes(html)]),
        style_src="'self' 'unsafe-inline'",
        img_src="'self' data:",
        font_src="'self' data:",
        form_action="'none'",
    )
