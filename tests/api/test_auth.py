"""Who gets in: the bearer token for the API, a signed login cookie for the browser pages only, the Host header
and Sec-Fetch-Site checks, and the refusal to serve the network without a token."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import uuid
from urllib.parse import quote, quote_plus

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.config import MIN_TOKEN_LENGTH, REPO_ROOT
from api.core import sessions
from api.core.throttle import LOCK_SECONDS, MAX_FAILURES
from api.main import create_app
from api.security import SESSION_COOKIE, SESSION_SECONDS, RedactSecrets
from tests.conftest import LOCAL, python_env

TOKEN = "secret-test-token-long-enough-to-be-accepted"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def secured(settings):
    with TestClient(create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)})), base_url=LOCAL) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/runs", "/runs/1", "/runs/1/logs", "/features", "/features/1", "/dbt-docs/", "/dbt-docs/manifest.json",
        "/docs", "/openapi.json", "/", "/schedule", "/metrics", "/runs/1/events", "/runs/1/webhooks",
        "/runs/1/artifacts/manifest.json", "/features?format=csv", "/redoc", "/docs-assets/swagger-ui-bundle.js",
    ],
)  # fmt: skip
def test_every_endpoint_but_health_needs_the_token(secured, path):
    assert secured.get(path).status_code == 401
    assert secured.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = secured.get(path, headers=BEARER)
    assert answer.status_code != 401


def test_cancel_needs_the_token(secured):
    assert secured.post("/runs/1/cancel").status_code == 401
    assert secured.post("/runs/1/cancel", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_docs_and_openapi_are_served_with_the_token(secured):
    assert secured.get("/openapi.json", headers=BEARER).json()["info"]["title"] == "features-mart"
    assert "swagger" in secured.get("/docs", headers=BEARER).text.lower()


def test_trigger_needs_the_token(secured):
    for method in (secured.post, secured.get):
        denied = method("/trigger")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert secured.get("/runs", headers=BEARER).json()["total"] == 0
    answer = secured.post("/trigger?wait=true", headers=BEARER)
    assert answer.status_code == 200 and answer.json()["status"] == "success"


def test_health_never_needs_the_token(secured):
    assert secured.get("/health").json() == {"status": "ok", "database": "ok"}


# --------------------------------------------------------------------------- browser login


def test_login_sets_a_signed_expiring_cookie_for_the_browser_pages_only(secured):
    form = secured.get("/login?next=/docs")
    assert form.status_code == 200 and 'type="password"' in form.text and TOKEN not in form.text
    wrong = secured.post("/login", data={"token": "nope", "next": "/docs"}, follow_redirects=False)
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")

    answer = secured.post("/login", data={"token": TOKEN, "next": "/docs"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/docs"
    cookie = answer.headers["set-cookie"]
    assert TOKEN not in cookie
    for attribute in ("HttpOnly", "SameSite=strict", f"Max-Age={SESSION_SECONDS}", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here; behind https it is Secure (below)

    # the browser pages take the cookie ...
    assert secured.get("/dbt-docs/manifest.json").status_code == 404  # accepted; no docs yet
    assert secured.get("/docs").status_code == 200
    assert secured.get("/openapi.json").status_code == 200
    assert secured.get("/", headers={"Accept": "text/html"}).status_code == 200  # the runs page
    # ... the JSON API does not, unless the browser says one of this server's pages asks (the runs page)
    for site in (None, "cross-site", "same-site", "none"):
        headers = {"Sec-Fetch-Site": site} if site else {}
        for path in ("/runs", "/features", "/runs/1/logs"):
            assert secured.get(path, headers=headers).status_code == 401, (path, site)
        assert secured.post("/trigger", headers=headers).status_code in (401, 403), site
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    assert secured.get("/runs", headers=same_origin).status_code == 200
    assert secured.post("/runs/999/cancel", headers=same_origin).status_code == 404  # in, and no such run

    secured.post("/logout", follow_redirects=False)
    assert secured.get("/docs").status_code == 401


def test_login_cookie_is_secure_behind_https(secured):
    answer = secured.post(
        "/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"}, follow_redirects=False
    )
    assert "secure" in answer.headers["set-cookie"].lower()


def test_a_forged_expired_or_other_tokens_cookie_is_refused(secured, database):
    expired = sessions.create(database, TOKEN, SESSION_SECONDS)
    with database.connect() as conn:
        conn.execute("update ops.sessions set expires_at = now() - interval '1 second'")
    other_token = sessions.create(database, TOKEN + "-before-the-token-changed", SESSION_SECONDS)
    for value in (expired, other_token, "v1.99999999999.00", TOKEN, "x" * 500):
        secured.cookies.set(SESSION_COOKIE, value)
        assert secured.get("/docs").status_code == 401, value
    secured.cookies.set(SESSION_COOKIE, sessions.create(database, TOKEN, SESSION_SECONDS))
    assert secured.get("/docs").status_code == 200


def test_logout_ends_the_session_on_the_server(secured):
    """The attack: the cookie replayed after POST /logout still opened /openapi.json."""
    answer = secured.post("/login", data={"token": TOKEN}, follow_redirects=False)
    cookie = answer.cookies[SESSION_COOKIE]
    assert secured.get("/openapi.json").status_code == 200
    secured.post("/logout", follow_redirects=False)
    secured.cookies.set(SESSION_COOKIE, cookie)  # replayed
    assert secured.get("/openapi.json").status_code == 401
    assert secured.get("/runs", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 401


def test_the_token_in_a_url_opens_nothing(secured):
    answer = secured.get(f"/dbt-docs/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 401 and "set-cookie" not in answer.headers
    browser = secured.get("/dbt-docs/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/dbt-docs/"


def test_a_malformed_login_form_is_a_400(secured):
    many = "&".join(f"f{i}=x" for i in range(50))
    assert (
        secured.post("/login", content=many, headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code
        == 400
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert secured.post("/login", content="token=" + "x" * 20_000, headers=form).status_code == 400  # > 16 KiB
    assert secured.post("/login", content="token=" + "x" * 100_000, headers=form).status_code == 413  # > 64 KiB


def test_wrong_logins_are_throttled_per_client(secured):
    """The attack: 200 wrong logins in 4.9 s, then the right token still worked. Now after MAX_FAILURES in a
    row the client waits (429, Retry-After), whatever it sends, the right token included."""
    for _ in range(MAX_FAILURES):
        assert secured.post("/login", data={"token": "guess"}, follow_redirects=False).status_code == 401
    for token in ("guess", TOKEN):
        refused = secured.post("/login", data={"token": token}, follow_redirects=False)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) == LOCK_SECONDS, token
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert "try again in" in refused.text


def test_a_short_token_is_refused_at_start_up_with_how_to_make_one(settings):
    short = settings.model_copy(update={"api_token": SecretStr("x" * (MIN_TOKEN_LENGTH - 1))})
    how = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    assert how in short.token_problem()
    assert settings.model_copy(update={"api_token": SecretStr("x" * MIN_TOKEN_LENGTH)}).token_problem() is None
    with pytest.raises(RuntimeError, match="at least 32"), TestClient(create_app(short), base_url=LOCAL):
        pass
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"],
        cwd=REPO_ROOT, env=python_env(settings, API_TOKEN="tok-123", PORT="1"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and how in done.stderr, done.stderr


def test_login_never_redirects_off_site(secured):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = secured.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/dbt-docs/", target


# --------------------------------------------------------------------------- no token on the network


def test_no_token_logs_a_warning(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="api"), TestClient(create_app(settings), base_url=LOCAL):
        pass
    assert any("API_TOKEN is not set" in r.getMessage() for r in caplog.records)


def test_a_network_address_without_a_token_refuses_to_start(settings):
    exposed = settings.model_copy(update={"host": "0.0.0.0"})  # noqa: S104
    assert "API_TOKEN" in exposed.exposure_problem()
    assert exposed.model_copy(update={"api_token": SecretStr(TOKEN)}).exposure_problem() is None
    assert exposed.model_copy(update={"allow_unauthenticated": True}).exposure_problem() is None
    for loopback in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert settings.model_copy(update={"host": loopback}).exposure_problem() is None
    with pytest.raises(RuntimeError, match="API_TOKEN"), TestClient(create_app(exposed), base_url=LOCAL):
        pass
    # the real server: exits at once with the message, before touching the database
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"],
        cwd=REPO_ROOT, env=python_env(settings, HOST="0.0.0.0", PORT="1"),  # noqa: S104
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "API_TOKEN" in done.stderr and "ALLOW_UNAUTHENTICATED" in done.stderr


# --------------------------------------------------------------------------- Host and cross-site


def test_an_unknown_host_header_is_refused_but_health_answers(client):
    rebound = {"Host": "attacker.example"}
    answer = client.get("/features", headers=rebound)
    assert answer.status_code == 400 and "ALLOWED_HOSTS" in answer.json()["detail"]
    assert client.post("/trigger", headers=rebound).status_code == 400
    assert client.get("/health", headers=rebound).status_code == 200
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/runs", headers={"Host": host}).status_code == 200, host
    assert client.get("/runs").json()["total"] == 0


def test_allowed_hosts_extends_the_names(settings):
    extended = settings.model_copy(update={"allowed_hosts": "mart.example.org, other.example"})
    with TestClient(create_app(extended), base_url="http://mart.example.org") as c:
        assert c.get("/runs").status_code == 200
        assert c.get("/runs", headers={"Host": "other.example:443"}).status_code == 200
        assert c.get("/runs", headers={"Host": "third.example"}).status_code == 400


def test_a_cross_site_trigger_is_refused_and_starts_nothing(client):
    # the attack: with no token, another port of localhost (same-site, not same-origin) used to get through
    for site in ("cross-site", "same-site"):
        for method in (client.get, client.post):
            answer = method("/trigger", headers={"Sec-Fetch-Site": site})
            assert answer.status_code == 403 and site in answer.json()["detail"], site
        assert client.post("/login", headers={"Sec-Fetch-Site": site}).status_code == 403
        assert client.post("/runs/1/cancel", headers={"Sec-Fetch-Site": site}).status_code == 403
    assert client.get("/runs").json()["total"] == 0
    assert client.get("/features", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 503  # reads pass
    plain = client.get("/trigger")  # curl sends no Sec-Fetch-Site
    assert plain.status_code == 202, plain.text
    assert client.get("/runs").json()["total"] == 1


# --------------------------------------------------------------------------- logs


def _logged(secrets: list[str], message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(secrets))
    logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning(message, *args)
    return stream.getvalue()


def test_log_lines_from_request_data_stay_one_line_and_hold_no_token_in_any_form():
    forged = "x\n2026-01-01 INFO api: run 1 succeeded\r\x1b[2J\u2028y"
    line = _logged([TOKEN], "run %s: cancelling: %s", 7, forged)
    assert line.count("\n") == 1 and "\x1b" not in line and "\u2028" not in line and "\r" not in line, line
    assert "x\\n2026-01-01" in line and "\\x1b[2J" in line
    every_char = "".join(f"%{ord(ch):02x}" for ch in TOKEN)
    for url in (
        f"/features?q={every_char}", f"/features?q={every_char.upper()}&x=1", f"/p/{quote(quote(TOKEN, safe=''))}",
        f"/features?q={quote_plus(TOKEN + ' x')}", f"/p/{TOKEN[:5]}%{ord(TOKEN[5]):02X}{TOKEN[6:]}",
    ):  # fmt: skip
        logged = _logged([TOKEN], '%s - "GET %s HTTP/1.1" 200', "127.0.0.1", url)
        assert "***" in logged and TOKEN not in logged and every_char not in logged.lower(), (url, logged)
    assert _logged([TOKEN], "GET %s", "/ok?x=%41") == "GET /ok?x=%41\n"


def test_a_token_sent_in_a_url_never_shows_up_in_a_log(settings, tmp_path):
    """The real server (uvicorn's access log included, LOG_LEVEL=debug): the token in query strings, in the
    login form, in headers, right and wrong: no log line holds it."""
    from tests.reliability.conftest import ApiServer

    server = ApiServer(settings, tmp_path / "api.log", API_TOKEN=TOKEN, LOG_LEVEL="debug").start()
    try:
        c = server.client
        c.get(f"/features?token={TOKEN}")
        c.get(f"/dbt-docs/?token={TOKEN}&x=1")
        c.get(f"/login?next=/docs%3Ftoken%3D{TOKEN}")
        c.get(f"/runs?api_token={TOKEN}", headers=BEARER)
        c.post("/login", data={"token": TOKEN})
        c.get("/features", headers={"Authorization": f"Bearer {TOKEN}x"})
        c.get(f"/{TOKEN}")
        # the attack: the token percent-encoded (any case, twice) in a parameter not named token
        every_char = "".join(f"%{ord(ch):02X}" for ch in TOKEN)
        c.get(f"/features?q={every_char}", headers=BEARER)
        c.get(f"/features?q={every_char.lower()}&x=1", headers=BEARER)
        c.get(f"/features?q={quote(quote(TOKEN, safe=''), safe='')}", headers=BEARER)
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "GET /features?q=*** HTTP/1.1" in log and "GET /features?q=***&x=1 HTTP/1.1" in log, log[-3000:]
    for encoded in (every_char, every_char.lower(), quote(TOKEN, safe=""), quote(quote(TOKEN, safe=""), safe="")):
        assert encoded not in log
    assert "GET /features?token=*** HTTP/1.1" in log, log[-3000:]  # the access log is on, and redacted
    assert "/runs?api_token=***" in log
    assert TOKEN not in log, [line for line in log.splitlines() if TOKEN in line]
