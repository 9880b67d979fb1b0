"""The clients tier (`pytest -m clients`, run by scripts/test.sh after the spark tier; SKIP_CLIENT_TESTS=1 skips it):
dbt Cloud's real clients, each in a virtualenv of its own (their dependencies conflict with ours and with each
other), made here from the pinned tests/clients/requirements-<client>.txt and cached in CLIENT_VENVS_DIR
(default `.clients/` in the repository, which this tier owns; a venv is rebuilt when its pins change). They drive
the API served over HTTPS by `python -m api.cli serve`, with a trustme CA they trust through
REQUESTS_CA_BUNDLE and SSL_CERT_FILE, on the test's database, running the real job."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.config import REPO_ROOT
from tests.reliability.conftest import ApiServer

HERE = Path(__file__).parent
TOKEN = "clients-tier-test-token-long-enough-to-be-accepted"


def venvs_dir() -> Path:
    return Path(os.environ.get("CLIENT_VENVS_DIR") or REPO_ROOT / ".clients")


def client_venv(name: str) -> Path:
    """The virtualenv of one client, made (or remade, when its pins changed) from requirements-<name>.txt."""
    pins = HERE / f"requirements-{name}.txt"
    stamp_value = hashlib.sha256(pins.read_bytes() + sys.version.encode()).hexdigest()
    venv = venvs_dir() / name
    stamp = venv / ".pins.sha256"
    if stamp.is_file() and stamp.read_text() == stamp_value:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            str(pins),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"pip could not install {pins.name} into {venv}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    stamp.write_text(stamp_value)
    return venv


#: Every client of the tier: their venvs are made in the background, two at a time, as soon as a test of the
#: tier starts, so that the Airflow install (the longest) overlaps the dbt-cloud-cli test's runs.
CLIENTS = ("airflow", "dbt-cloud-cli")


@pytest.fixture(scope="session")
def venvs() -> Iterator[Callable[[str], Path]]:
    """`venvs(name)`: the client's venv, once made (made in the background from the tier's first test on)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="client-venv") as pool:
        builds = {name: pool.submit(client_venv, name) for name in CLIENTS}
        yield lambda name: builds[name].result()


@pytest.fixture
def cloud_api(settings, tmp_path, tls) -> Iterator[ApiServer]:
    """The API over HTTPS (a trustme certificate for 127.0.0.1 and localhost) with API_TOKEN=TOKEN."""
    server = ApiServer(
        settings, tmp_path / "api.log", ca=tls.ca, TLS_CERTFILE=str(tls.cert), TLS_KEYFILE=str(tls.key), API_TOKEN=TOKEN
    ).start()
    try:
        yield server
    finally:
        server.stop()


def client_env(server: ApiServer, ca: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a client process: trusts the test CA (requests, httpx, aiohttp), nothing of ours."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "REQUESTS_CA_BUNDLE": str(ca),
        "SSL_CERT_FILE": str(ca),
        "LANG": "C.UTF-8",
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Airflow test last: its venv (the longest install) is made while dbt-cloud-cli's test runs."""
    items.sort(key=lambda item: "tests/clients/test_airflow.py" in item.nodeid)
