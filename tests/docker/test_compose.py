"""The README's "With Docker" section, run as written on a fresh copy of the project, on a real engine, with
Compose v1 (`docker-compose`) and v2 (`docker compose`, where installed): docker-up.sh, trigger.sh with the token,
query.sh through the stack, /features and /dbt-docs/, down and up again (data kept), `docker stop` during a run
(recorded interrupted, the mart intact), docker-up.sh refusing to invent a password for an existing database,
and docker-down.sh --volumes leaving nothing behind.

The steps build on each other (one stack per Compose version, in file order)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.config import REPO_ROOT
from tests.conftest import free_port
from tests.docker.conftest import (
    APP_UID,
    docker,
    docker_time,
    http,
    http_json,
    inspect,
    process_uids,
    published_port,
    wait_until,
)
from tests.expected import assert_rows_match, compute

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: The image name docker-compose.yml gives the app (shared by every checkout on the machine).
APP_IMAGE = "features-mart:local"
#: Hides Compose v2 from the scripts, so that they take Compose v1 (`docker-compose`).
DOCKER_WITHOUT_COMPOSE_V2 = """#!/bin/sh
if [ "$1" = compose ]; then
    echo "docker: 'compose' is not a docker command (hidden: this run uses Compose v1)" >&2
    exit 1
fi
exec {docker} "$@"
"""
#: Held by the stop-during-a-run step: waits (a new transaction per try) for the run's seed step to create
#: raw__build.users, then locks it, so that the run waits mid-statement until the app is stopped.
HOLD_USERS_TABLE = """
do $$
begin
  while to_regclass('raw__build.users') is null loop
    commit;
    perform pg_sleep(0.02);
  end loop;
  lock table raw__build.users in access exclusive mode;
  perform pg_sleep(600);
end $$;
"""
HOLDER = "features-mart-test-holder"
RELEASE_USERS_TABLE = (
    "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'features-mart-test-holder'"
)


def compose_v2() -> bool:
    return (
        bool(shutil.which("docker"))
        and subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60).returncode == 0
    )


@dataclass
class Stack:
    """A fresh copy of the project, and how a user there runs the scripts."""

    root: Path
    flavour: str
    env: dict[str, str]
    port: int
    compose: list[str]
    facts: dict = field(default_factory=dict)  # what a step leaves for the next ones

    def script(self, name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", f"scripts/{name}", *args], cwd=self.root, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)

    def dotenv(self) -> dict[str, str]:
        pairs = (line.split("=", 1) for line in (self.root / ".env").read_text().splitlines() if "=" in line)
        return {k: v for k, v in pairs if not k.startswith("#")}

    @property
    def token(self) -> str:
        return self.dotenv()["API_TOKEN"]

    @property
    def project(self) -> str:
        return re.sub(r"[^a-z0-9_-]", "", self.root.name.lower()).lstrip("-_")

    def container(self, service: str) -> str:
        ids = self.run(*self.compose, "ps", "-q", service).stdout.split()
        assert ids, f"no {service} container in the stack"
        return ids[0]

    def labelled(self, kind: str) -> list[str]:
        """The project's containers (also stopped ones), volumes or networks, as Compose labels them."""
        filt = f"label=com.docker.compose.project={self.project}"
        if kind == "containers":
            return docker("ps", "-aq", "--filter", filt).stdout.split()
        return docker(kind.rstrip("s"), "ls", "-q", "--filter", filt).stdout.split()

    def psql(self, sql: str) -> str:
        db = self.container("db")
        done = docker("exec", db, "psql", "-X", "-U", "mart", "-d", "mart", "-Atc", sql)
        return done.stdout.strip()

    def features(self) -> tuple[str | None, list[dict]]:
        status, headers, body = http(self.port, "/features?limit=1000", self.token)
        assert status == 200, (status, body[:300])
        return headers.get("x-mart-run-id"), json.loads(body)["items"]


def assert_ok(done: subprocess.CompletedProcess[str], what: str) -> str:
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{out[-4000:]}"
    return out


@pytest.fixture(scope="module", params=["v1", "v2"])
def stack(request, built_images, fresh_copy, tmp_path_factory) -> Iterator[Stack]:
    flavour = request.param
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POSTGRES_", "COMPOSE_", "API_")) and k not in ("DATABASE_URL", "PORT", "VENV_DIR")
    }
    if flavour == "v1":
        if not shutil.which("docker-compose"):
            pytest.skip("Compose v1 (docker-compose) is not installed here")
        shim = tmp_path_factory.mktemp("no-compose-v2")
        (shim / "docker").write_text(DOCKER_WITHOUT_COMPOSE_V2.format(docker=shutil.which("docker")))
        (shim / "docker").chmod(0o755)
        env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
        compose = ["docker-compose"]
    else:
        if not compose_v2():
            pytest.skip("Compose v2 (the docker compose plugin) is not installed here")
        compose = ["docker", "compose"]
    port = free_port()
    env["PORT"] = str(port)  # the host port: Compose takes it from the shell over .env
    root = fresh_copy(f"stack-{flavour}")
    saved = docker("images", "-q", "--no-trunc", APP_IMAGE).stdout.strip()
    stack = Stack(root=root, flavour=flavour, env=env, port=port, compose=compose)
    try:
        yield stack
    finally:
        env_file = [] if (root / ".env").exists() else ["--env-file", str(root / ".env.example")]
        stack.run(*compose, *env_file, "down", "--volumes", "--remove-orphans", timeout=300)
        built = docker("images", "-q", "--no-trunc", APP_IMAGE).stdout.strip()
        if built and built != saved:
            docker("rmi", "-f", APP_IMAGE, check=False)
        if saved:
            docker("tag", saved, APP_IMAGE, check=False)  # a developer's own stack keeps its image


def test_compose_refuses_to_start_without_a_password_or_a_token(stack, tmp_path):
    """No default secret: Compose itself stops on a missing POSTGRES_PASSWORD or API_TOKEN, naming it."""
    example = (REPO_ROOT / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "API_TOKEN"):
        env_file = tmp_path / f"without-{name}.env"
        env_file.write_text(re.sub(rf"^{name}=.*$", "", example, flags=re.M))
        done = stack.run(*stack.compose, "--env-file", str(env_file), "config", "--quiet")
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "is not set" in out, f"{name}: {out}"


def test_up_creates_env_and_starts_a_healthy_stack(stack):
    out = assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh")
    assert "app is healthy" in out
    assert f"({' '.join(stack.compose)} up -d --build)" in out, f"not run with {stack.compose}: {out}"
    dotenv = stack.dotenv()
    assert re.fullmatch(r"[0-9a-f]{32}", dotenv["POSTGRES_PASSWORD"]) and re.fullmatch(r"[0-9a-f]{64}", stack.token)
    assert stat.S_IMODE((stack.root / ".env").stat().st_mode) == 0o600
    assert stack.token not in out and dotenv["POSTGRES_PASSWORD"] not in out, "no secret is printed"

    app, db = stack.container("app"), stack.container("db")
    assert published_port(app) == stack.port, "published on this machine's loopback, on PORT"
    # The app waits for a healthy db: it started after the database accepted connections.
    app_started = docker_time(inspect(app, "{{.State.StartedAt}}"))
    logs = docker("logs", "-t", db)
    lines = (logs.stdout + logs.stderr).splitlines()
    ready = [docker_time(line.split()[0]) for line in lines if "ready to accept connections" in line]
    assert ready and min(ready) < app_started, f"the app started ({app_started}) before the db was ready ({ready})"
    # It gets its DATABASE_URL from .env: the app's role (not the superuser POSTGRES_USER), the db service.
    assert re.fullmatch(r"[0-9a-f]{32}", dotenv["APP_DB_PASSWORD"]) and dotenv["APP_DB_PASSWORD"] not in out
    url = docker("exec", app, "printenv", "DATABASE_URL").stdout.strip()
    assert url == f"postgresql://features_mart:{dotenv['APP_DB_PASSWORD']}@db:5432/mart", "not the db's app role"
    assert http_json(stack.port, "/health")["database"] == "ok"
    assert_app_role(stack)
    uids = process_uids(app)
    assert set(uids) == {str(APP_UID)}, f"every process of the app runs as uid 10001: {uids}"


def test_trigger_query_features_and_docs(stack, tmp_path):
    # README: `set -a; . ./.env; set +a` gives scripts/trigger.sh the token
    trigger = stack.run(
        "bash", "-c", "set -a; . ./.env; set +a; exec scripts/trigger.sh " + f"http://localhost:{stack.port}"
    )
    out = assert_ok(trigger, "scripts/trigger.sh")
    assert "success" in out, out

    query = stack.script("query.sh")
    out = assert_ok(query, "scripts/query.sh")
    assert "query: using the compose stack's db container" in out, out
    names = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy"]
    assert all(re.search(rf"\|\s*{name}\s*\|", out) for name in names) and "(10 rows)" in out, out
    assert not (stack.root / ".venv").exists(), "query.sh set up a host venv instead of asking the stack"

    run_id, items = stack.features()
    assert_rows_match(items, compute(REPO_ROOT / "seeds", tmp_path))
    stack.facts["published"] = (run_id, items)
    status, headers, page = http(stack.port, "/dbt-docs/", stack.token)
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, page[:300])
    assert http(stack.port, "/features")[0] == 401, "the stack's API demands the token"


def test_down_then_up_keeps_the_data(stack):
    published = stack.features()
    runs = http_json(stack.port, "/runs", stack.token)["total"]
    assert_ok(stack.script("docker-down.sh"), "scripts/docker-down.sh")
    assert stack.labelled("containers") == [], "docker-down.sh left containers"
    assert len(stack.labelled("volumes")) == 2, "docker-down.sh (without --volumes) keeps the db and state volumes"

    assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh, again")
    assert stack.features() == published, "the published mart came back from the volume"
    assert http_json(stack.port, "/runs", stack.token)["total"] == runs
    assert http(stack.port, "/dbt-docs/", stack.token)[0] == 200, "the docs site came back from the app-state volume"


def assert_app_role(stack: Stack) -> None:
    """The app's role is no superuser and owns the database and every schema of the project's in it."""
    assert stack.psql("select rolsuper from pg_roles where rolname = 'features_mart'") == "f"
    assert stack.psql("select pg_get_userbyid(datdba) from pg_database where datname = 'mart'") == "features_mart"
    owners = stack.psql(
        "select string_agg(distinct pg_get_userbyid(nspowner), ',') from pg_namespace "
        "where nspname <> 'information_schema' and nspname !~ '^pg_' and nspname <> 'public'"
    )
    assert owners == "features_mart", owners  # ops at least: the app's migrations made it at start-up


def _back_to_the_old_layout(stack: Stack) -> None:
    """The database as a version before the app's role left it: the superuser's, and no such role."""
    assert_ok(stack.run(*stack.compose, "stop", "app"), "compose stop app")
    stack.psql("alter database mart owner to mart; reassign owned by features_mart to mart")
    stack.psql("drop role features_mart")
    assert stack.psql("select count(*) from pg_roles where rolname = 'features_mart'") == "0"
    assert_ok(stack.script("docker-down.sh"), "scripts/docker-down.sh")


@pytest.mark.parametrize("dotenv_has_the_password", [True, False], ids=["password-in-env", "older-env"])
def test_up_hands_a_database_made_before_the_apps_role_to_it(stack, dotenv_has_the_password):
    """A volume from before (everything the superuser's, no app role), with an .env that has an APP_DB_PASSWORD
    (set by hand, or left by a set-up that failed halfway) or not (older): docker-up.sh adds one when missing,
    sees from the database that the role does not own it, sets it up, and the app serves the same mart."""
    published = stack.features()
    _back_to_the_old_layout(stack)
    dotenv = stack.root / ".env"
    if not dotenv_has_the_password:
        dotenv.write_text(re.sub(r"^APP_DB_PASSWORD=.*\n", "", dotenv.read_text(), flags=re.M))
    out = assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh on an older volume")
    assert ("adding a random APP_DB_PASSWORD" in out) != dotenv_has_the_password, out
    assert "setting up the app's role" in out and "app-role: features_mart owns database mart" in out, out
    assert re.search(r"^APP_DB_PASSWORD=[0-9a-f]{32}$", dotenv.read_text(), re.M)
    assert stack.features() == published
    assert_app_role(stack)
    tables = stack.psql(
        "select string_agg(distinct pg_get_userbyid(relowner), ',') from pg_class c join pg_namespace n "
        "on n.oid = c.relnamespace where nspname in ('marts', 'ops', 'raw', 'audit') and relkind in ('r', 'v', 'S')"
    )
    assert tables == "features_mart", tables
    again = assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh, the role set up")
    assert "setting up the app's role" not in again, "set up once: the database says it is done"


def test_docker_stop_during_a_run_records_it_interrupted_and_keeps_the_mart(stack):
    published = stack.features()
    db, app = stack.container("db"), stack.container("app")
    holder = subprocess.Popen(
        ["docker", "exec", "-e", f"PGAPPNAME={HOLDER}", db, "psql", "-X", "-q", "-U", "mart", "-d", "mart",
         "-c", HOLD_USERS_TABLE],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        run_id = http_json(stack.port, "/trigger", stack.token, method="POST")["run_id"]
        waiting = "select count(*) from pg_locks where relation = to_regclass('raw__build.users') and not granted"
        wait_until(lambda: stack.psql(waiting) not in ("", "0"), 300, "the run to wait for raw__build.users")
        assert http_json(stack.port, f"/runs/{run_id}", stack.token)["status"] == "running"

        begun = time.monotonic()
        docker("stop", app, timeout=120)  # SIGTERM, then SIGKILL after stop_grace_period
        assert inspect(app, "{{.State.ExitCode}}") != "137", (
            f"the app was killed after {time.monotonic() - begun:.0f} s: it did not stop within the grace period"
        )
    finally:
        stack.psql(RELEASE_USERS_TABLE)
        holder.communicate(timeout=60)

    assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh after the stop")
    run = http_json(stack.port, f"/runs/{run_id}", stack.token)
    assert run["status"] == "failed" and run["error"].startswith("interrupted"), run
    assert stack.features() == published, "the published mart is the one from before the interrupted run"
    assert stack.psql("select count(*) from pg_namespace where nspname like '%\\_\\_build'") == "0", (
        "build schemas left"
    )


def test_up_refuses_to_invent_a_password_for_an_existing_database(stack):
    assert_ok(stack.script("docker-down.sh"), "scripts/docker-down.sh")
    dotenv = stack.root / ".env"
    saved = dotenv.read_text()
    dotenv.unlink()
    try:
        done = stack.script("docker-up.sh")
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert f"the database volume '{stack.project}_pgdata' exists" in out, out
        assert "scripts/docker-down.sh --volumes" in out and "Put that .env back" in out, out
        assert not dotenv.exists(), "no .env with a new password was written"
        assert stack.labelled("containers") == [], "nothing was started"

        # A .env with another password than the database's: the app cannot log in, and docker-up.sh says why.
        example = (stack.root / ".env.example").read_text()
        token = re.search(r"^API_TOKEN=(.*)$", saved, re.M).group(1)
        other = example.replace("API_TOKEN=change-me", f"API_TOKEN={token}")
        dotenv.write_text(other.replace("POSTGRES_PASSWORD=change-me", f"POSTGRES_PASSWORD={uuid.uuid4().hex}"))
        done = stack.script("docker-up.sh", "--timeout", "300")
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert "the database refuses the APP_DB_PASSWORD of .env" in out, out
        assert_ok(stack.script("docker-down.sh"), "scripts/docker-down.sh")
    finally:
        dotenv.write_text(saved)
        dotenv.chmod(0o600)


def test_down_with_volumes_removes_everything(stack):
    assert_ok(stack.script("docker-up.sh"), "scripts/docker-up.sh with the right .env")
    assert len(stack.features()[1]) == 10, "the database is the same as before the refused starts"
    assert_ok(stack.script("docker-down.sh", "--volumes"), "scripts/docker-down.sh --volumes")
    for kind in ("containers", "volumes", "networks"):
        assert stack.labelled(kind) == [], f"docker-down.sh --volumes left {kind}"
