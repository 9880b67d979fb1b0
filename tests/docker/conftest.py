"""The Docker tier's fixtures: a real engine (scripts/docker-test.sh starts one when it can), fresh copies of the
project as a user would clone it, the image built from one, and small helpers to talk to containers and the API.

Everything a test creates (containers, volumes, networks, images) is removed by the fixture that made it; the
tier's script removes whatever is left anyway. The base images are the official ones or the stand-ins of
scripts/docker-standins.sh."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from api.config import REPO_ROOT

T = TypeVar("T")

#: Set by scripts/docker-test.sh: there, a missing engine or base image is a failure, not a skip.
IN_TIER = os.environ.get("FEATURES_MART_DOCKER_TIER") == "1"
#: The uid:gid the image runs as.
APP_UID = 10001
#: Labels every container, volume and network the tests create, so that a leftover can be traced.
LABEL = "features-mart.test"
#: The repository of the images the tests build (removed at the end of the session).
TEST_REPOSITORY = "features-mart-test"


def docker(*args: str, timeout: float = 300, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def inspect(ref: str, template: str) -> str:
    return docker("inspect", "-f", template, ref).stdout.strip()


def docker_time(text: str) -> datetime:
    """A time as Docker prints it (RFC 3339, nanoseconds, trailing zeros trimmed), in UTC."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text.strip())
    assert match, f"not a Docker time: {text!r}"
    whole = datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)
    return whole + timedelta(microseconds=int((match.group(2) or "0")[:6].ljust(6, "0")))


def image_ids() -> set[str]:
    return set(docker("images", "-aq", "--no-trunc").stdout.split())


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_healthy(container: str, timeout: float = 180) -> None:
    """Until the container's own HEALTHCHECK reports healthy; fails at once if it exits or turns unhealthy."""

    def healthy() -> bool:
        state = inspect(container, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}")
        if state.startswith(("exited", "dead")) or state.endswith("unhealthy"):
            logs = docker("logs", "--tail", "40", container, check=False)
            raise AssertionError(f"{container} is {state}:\n{logs.stdout}{logs.stderr}")
        return state == "running healthy"

    wait_until(healthy, timeout, f"{container} to be healthy")


def http(
    port: int, path: str, token: str | None = None, method: str = "GET", timeout: float = 300
) -> tuple[int, dict[str, str], bytes]:
    """A request to the API published on this machine's loopback."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:  # noqa: S310
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def http_json(port: int, path: str, token: str | None = None, method: str = "GET") -> Any:
    status, _, body = http(port, path, token, method)
    assert status < 300, f"{method} {path}: {status} {body[:500]!r}"
    return json.loads(body)


def published_port(container: str) -> int:
    """The loopback port container port 8000 is published on (asserting it is published on loopback only)."""
    bindings = json.loads(inspect(container, "{{json .NetworkSettings.Ports}}"))["8000/tcp"]
    assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, f"8000 published on {bindings}"
    return int(bindings[0]["HostPort"])


def process_uids(container: str) -> dict[str, set[str]]:
    """uid -> the commands of the container's processes (as the host's /proc sees them)."""
    found: dict[str, set[str]] = {}
    for line in docker("top", container, "-eo", "pid,uid,comm").stdout.splitlines()[1:]:
        _, uid, comm = line.split(None, 2)
        found.setdefault(uid, set()).add(comm.strip())
    return found


# ------------------------------------------------------------------------------------------- the engine


@pytest.fixture(scope="session")
def engine() -> str:
    """The Docker engine's version; skips (fails inside scripts/docker-test.sh) without an engine or the bases."""

    def unavailable(why: str) -> None:
        if IN_TIER:
            pytest.fail(why)
        pytest.skip(why)

    if not shutil.which("docker"):
        unavailable("docker is not installed: scripts/docker-test.sh installs and starts an engine (as root)")
    info = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True, timeout=60
    )
    if info.returncode != 0:
        unavailable("no Docker engine runs: scripts/docker-test.sh starts one (as root, Debian's docker.io)")
    bases = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "docker-standins.sh"), "--list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    missing = [line for line in bases.stdout.splitlines() if line.endswith(": missing")]
    if bases.returncode != 0 or missing:
        unavailable(f"base images missing ({bases.stdout.strip()}): run scripts/docker-standins.sh")
    return info.stdout.strip()


# ------------------------------------------------------------------------------------------- the project


def project_files() -> list[str]:
    """What a fresh clone of this working tree holds: tracked and new (not ignored) files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


@pytest.fixture(scope="session")
def fresh_copy(tmp_path_factory) -> Callable[[str], Path]:
    """fresh_copy(name): a new copy of the project, as a clone of this working tree, in a folder of that name
    (Compose names the stack after it)."""

    def make(name: str) -> Path:
        dest = tmp_path_factory.mktemp("docker") / f"{name}-{uuid.uuid4().hex[:8]}"
        for rel in project_files():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, target)
        return dest

    return make


#: Local state a developer's checkout holds, which the build context must keep out of the image.
LOCAL_STATE = {
    ".env": "API_TOKEN=local-secret-from-dotenv-long-enough-to-be-accepted\n",
    ".state/pg/PG_VERSION": "18\n",
    ".venv/from-the-host": "a developer venv\n",
    "dbt_project/target/manifest.json": "{}",
    "dbt_project/logs/dbt.log": "log\n",
    "api/__pycache__/main.cpython-311.pyc": "",
}


@pytest.fixture(scope="session")
def built_images(engine) -> Iterator[None]:
    """The images the tests build, removed at the end of the session, not before: the builds share the classic
    builder's layer cache (its untagged builder-stage images), so the image is built from scratch once."""
    before = image_ids()
    yield
    tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}", TEST_REPOSITORY).stdout.split()
    if tags:
        docker("rmi", "-f", *tags, check=False)
    remove_new_dangling_images(before)


@pytest.fixture(scope="session")
def image(built_images, fresh_copy) -> str:
    """The project's image, built (as `docker build .`) from a fresh copy holding a developer's local state."""
    context = fresh_copy("image")
    for rel, text in LOCAL_STATE.items():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text(text)
    tag = f"{TEST_REPOSITORY}:{uuid.uuid4().hex[:12]}"
    docker("build", "-t", tag, str(context), timeout=1800)
    return tag


def remove_new_dangling_images(before: set[str]) -> None:
    """The untagged images made since `before` (the classic builder's builder stages, retagged images)."""
    dangling = set(docker("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split())
    for ref in dangling - before:
        docker("rmi", "-f", ref, check=False)


@pytest.fixture
def resources() -> Iterator[Callable[..., str]]:
    """resources(kind, *args, env=None): create a labelled container (`run`: `docker run -d`), `volume` or
    `network`, removed after the test; returns its id."""
    made: list[tuple[str, str]] = []

    def create(kind: str, *args: str, env: dict[str, str] | None = None) -> str:
        if kind == "run":
            ref = docker("run", "-d", "--label", LABEL, *args, timeout=120, env=env).stdout.strip()
            made.append(("container", ref))
        else:
            name = f"features-mart-test-{uuid.uuid4().hex[:12]}"
            ref = docker(kind, "create", "--label", LABEL, *args, name).stdout.strip()
            made.append((kind, ref))
        return ref

    yield create
    for kind, ref in reversed(made):
        if kind == "container":
            docker("rm", "-f", "-v", ref, check=False)
        else:
            docker(kind, "rm", "-f" if kind == "volume" else "--", ref, check=False)
