"""The Docker delivery without a Docker engine: the files linted (hadolint, the Compose Specification schema,
`compose config`), .env.example and the secret scan, and the docker scripts run against a stub `docker` that
records what it is asked to do (the cases without an engine, and what they choose).

What the image and the stack do is tested on a real engine: tests/docker/ (the Docker tier, scripts/docker-test.sh).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONFIGURATION = ROOT / "docs" / "configuration.md"

# Every setting of the app (api/config.py) plus the compose-only ones for the db service.
CONTRACT_VARS = {
    "DATABASE_URL", "DATA_DIR", "STATE_DIR", "HOST", "PORT", "API_TOKEN", "LOG_LEVEL", "PG_PORT",
    "DBT_THREADS", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "ALLOW_UNAUTHENTICATED", "ALLOWED_HOSTS",
    "RUNS_KEEP", "BIND_ADDRESS",
}  # fmt: skip


def tool_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's bin dir (the venv: hadolint, check-jsonschema) on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_lint_docker_script_passes() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lint-docker.sh")],
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=60,
    )
    assert result.returncode == 0, f"scripts/lint-docker.sh failed:\n{result.stdout}\n{result.stderr}"
    assert "docker lint ok" in result.stdout


def test_lint_docker_script_fails_on_bad_files(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    for name in ("lint-docker.sh", "_compose.sh"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts")
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN cd /tmp && pip install fastapi\n")
    (tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    image: x\n    not_a_compose_key: 1\n")
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "lint-docker.sh")],
        capture_output=True,
        text=True,
        env=tool_env(VENV_DIR=str(tmp_path / "no-venv")),
        timeout=60,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "DL3007" in out  # python:latest
    assert "not_a_compose_key" in out


# ---------------------------------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (item.partition("=") for item in env)}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def test_compose_variables_are_documented(compose: dict) -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    passed = {k for k, v in environment(compose["services"]["app"]).items() if v is None}
    missing = (used | passed) - env_example_vars()
    assert not missing, f"list these in .env.example: {sorted(missing)}"


# -------------------------------------------------------------------------------------- .env.example, secrets


def env_example_vars() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def test_env_example_lists_every_setting() -> None:
    names = env_example_vars()
    assert not CONTRACT_VARS - names, f"missing from .env.example: {sorted(CONTRACT_VARS - names)}"
    config = ROOT / "api" / "config.py"
    if config.is_file():  # every field of the Settings class is an environment variable
        tree = ast.parse(config.read_text())
        fields = {
            node.target.id.upper()
            for cls in ast.walk(tree)
            if isinstance(cls, ast.ClassDef) and cls.name == "Settings"
            for node in cls.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        }
        fields = {f for f in fields if not f.startswith("MODEL_CONFIG")}
        assert not fields - names, f"settings missing from .env.example: {sorted(fields - names)}"


def test_env_example_holds_placeholders_only() -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not match:
            continue
        name, value = match.groups()
        if re.search(r"PASSWORD|TOKEN|SECRET", name):
            assert value in {"", "change-me"}, f"{name}: use the placeholder change-me"
        if "://" in value:
            password = urlsplit(value).password
            assert password in {None, "change-me"}, f"{name}: use change-me as the password"


def test_env_file_is_git_ignored() -> None:
    if (ROOT / ".git").exists() and shutil.which("git"):
        result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, timeout=30)
        ignored = result.returncode == 0
    else:
        gitignore = ROOT / ".gitignore"
        ignored = gitignore.is_file() and ".env" in gitignore.read_text().split()
    assert ignored, "add .env to .gitignore: it holds the real credentials"


PLACEHOLDER = re.compile(
    r"change-?me|example|placeholder|dummy|fake|test|secret|redacted|xxx|\*\*\*|your[-_]|<|\$|\{|%|\.\.\.",
    re.I,
)
SECRET_PATTERNS = [
    re.compile("-----BEGIN " + r"[A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
]
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s'\"/]+)@")
ASSIGNED_SECRET = re.compile(
    r"(?i)[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key)[\w.-]*[\"']?\s*[:=]\s*[\"']?([^\s\"'#,;)]+)"
)


def looks_secret(value: str) -> bool:
    """A literal long enough and mixed enough to be a real credential, and not a placeholder or expression."""
    if PLACEHOLDER.search(value) or re.search(r"[().\[\]]", value):
        return False
    return len(value) >= 8 and bool(re.search(r"[A-Za-z]", value)) and bool(re.search(r"\d", value))


def repo_files() -> list[Path]:
    """Files that are or would be committed: tracked + untracked-not-ignored; the tree when not in git."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=30,
        ).stdout.decode()  # fmt: skip
        return [ROOT / name for name in listed.split("\0") if name]
    skip = {".git", ".venv", ".state", "node_modules", "target", "logs", "__pycache__", "dbt_packages"}
    return [
        p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts) and p.name != ".env"
    ]


def test_no_secret_literals_in_repo_files() -> None:
    findings = []
    for path in repo_files():
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            hits = [p.pattern for p in SECRET_PATTERNS if p.search(line)]
            hits += [v for v in URL_CREDENTIALS.findall(line) if looks_secret(v)]
            hits += [v for v in ASSIGNED_SECRET.findall(line) if looks_secret(v)]
            if hits:
                findings.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:120]}")
    assert not findings, "secret-looking literals (move them to .env, use change-me in examples):\n" + "\n".join(
        findings
    )


def test_secret_scan_catches_real_looking_values() -> None:
    assert looks_secret("9f2c4e1a7b3d5f60")
    assert not looks_secret("change-me")
    assert not looks_secret("${POSTGRES_PASSWORD}")
    assert not looks_secret("settings.api_token")
    line = "DATABASE_URL=postgresql://mart:" + "Zq81kLmPw2@db:5432/mart"
    assert any(looks_secret(v) for v in URL_CREDENTIALS.findall(line))
    assert any(looks_secret(v) for v in ASSIGNED_SECRET.findall("api_token = '" + "a8F3kq9ZLm2w7Xc'"))


def test_docs_mention_every_env_var() -> None:
    assert CONFIGURATION.is_file(), "docs/configuration.md is missing: it must document every variable of .env.example"
    page = CONFIGURATION.read_text()
    missing = sorted(name for name in env_example_vars() if not re.search(rf"\b{name}\b", page))
    assert not missing, f"document these .env.example variables in docs/configuration.md: {missing}"


# ----------------------------------------------------------------------------------------------- scripts

DOCKER_SCRIPTS = ["docker-up.sh", "docker-down.sh", "lint-docker.sh", "docker-test.sh", "docker-standins.sh"]


@pytest.mark.parametrize("name", DOCKER_SCRIPTS)
def test_scripts_follow_the_style(name: str) -> None:
    path = ROOT / "scripts" / name
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert 'ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"' in text
    assert path.stat().st_mode & stat.S_IXUSR, f"chmod +x scripts/{name}"
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, timeout=30).returncode == 0


STUB_DOCKER = """#!/usr/bin/env bash
echo "docker $*" >>"$STUB_LOG"
case "$*" in
  info*) [[ -n "${STUB_ENGINE:-}" ]] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  "compose version"*) [[ -z "${STUB_NO_V2:-}" ]] || exit 1; echo "Docker Compose version v2.40.0" ;;
  "volume ls"*) [[ -z "${STUB_VOLUME:-}" ]] || echo "$STUB_VOLUME" ;;
  *" ps -q app") echo abc123 ;;
  *" ps -q db") echo def456 ;;
  "inspect -f {{.State.Running}}"*) echo true ;;
  inspect*) echo "running healthy" ;;
  *" port app 8000") echo "0.0.0.0:8123" ;;
esac
exit 0
"""
#: Compose v1, as Debian 12 packages it: the same answers, logged as `docker-compose ...`.
STUB_COMPOSE_V1 = """#!/usr/bin/env bash
echo "docker-compose $*" >>"$STUB_LOG"
case "$*" in
  *"ps -q app") echo abc123 ;;
  *"ps -q db") echo def456 ;;
  *"port app 8000") echo "0.0.0.0:8123" ;;
esac
exit 0
"""


@pytest.fixture()
def stub_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the repo's docker scripts + .env.example, with a fake `docker` first on PATH."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in [*DOCKER_SCRIPTS, "_compose.sh", "query.sh"]:  # _compose.sh: sourced by up, down and query
        shutil.copy2(ROOT / "scripts" / name, root / "scripts" / name)
    shutil.copy2(ENV_EXAMPLE, root / ".env.example")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", STUB_DOCKER), ("docker-compose", STUB_COMPOSE_V1)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    env["STUB_LOG"] = str(tmp_path / "docker.log")
    return root, env


def run_script(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", *args], cwd=root.parent, capture_output=True, text=True, env=env, timeout=30)


def test_docker_up_without_engine_says_what_to_do(stub_root: tuple[Path, dict[str, str]]) -> None:
    root, env = stub_root
    result = run_script(root, env, str(root / "scripts" / "docker-up.sh"))
    assert result.returncode != 0
    assert "no Docker engine" in result.stderr and "re-run" in result.stderr, result.stderr
    assert not (root / ".env").exists(), "nothing is written before the engine check passes"


def test_docker_up_creates_env_starts_and_prints_urls(stub_root: tuple[Path, dict[str, str]]) -> None:
    root, env = stub_root
    env["STUB_ENGINE"] = "1"
    result = run_script(root, env, str(root / "scripts" / "docker-up.sh"), "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = Path(env["STUB_LOG"]).read_text()
    assert "docker compose up -d --build" in calls
    for url in ("http://localhost:8123/docs", "http://localhost:8123/dbt-docs/", "http://localhost:8123"):
        assert url in result.stdout
    dotenv = (root / ".env").read_text()
    password = re.search(r"^POSTGRES_PASSWORD=(.*)$", dotenv, re.M).group(1)
    assert password != "change-me" and re.fullmatch(r"[0-9a-f]{32}", password), password
    token = re.search(r"^API_TOKEN=(.*)$", dotenv, re.M).group(1)
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    assert stat.S_IMODE((root / ".env").stat().st_mode) == 0o600
    assert token not in result.stdout + result.stderr, "the token is never printed"


def test_docker_up_adds_a_token_to_an_older_env(stub_root: tuple[Path, dict[str, str]]) -> None:
    root, env = stub_root
    env["STUB_ENGINE"] = "1"
    (root / ".env").write_text("POSTGRES_USER=mart\n")  # an .env from before API_TOKEN
    result = run_script(root, env, str(root / "scripts" / "docker-up.sh"), "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^API_TOKEN=[0-9a-f]{64}$", (root / ".env").read_text(), re.M)


def test_docker_down_passes_volumes_flag(stub_root: tuple[Path, dict[str, str]]) -> None:
    root, env = stub_root
    env["STUB_ENGINE"] = "1"
    result = run_script(root, env, str(root / "scripts" / "docker-down.sh"), "--volumes")
    assert result.returncode == 0, result.stdout + result.stderr
    downs = [shlex.split(c) for c in Path(env["STUB_LOG"]).read_text().splitlines() if " down" in c]
    assert downs and "--volumes" in downs[-1] and "--env-file" in downs[-1], downs


def test_docker_up_takes_compose_v1_when_v2_is_missing(stub_root: tuple[Path, dict[str, str]]) -> None:
    root, env = stub_root
    env.update(STUB_ENGINE="1", STUB_NO_V2="1")
    result = run_script(root, env, str(root / "scripts" / "docker-up.sh"), "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = Path(env["STUB_LOG"]).read_text()
    assert "docker-compose up -d --build" in calls and "docker compose up" not in calls, calls
    assert "docker-compose logs -f app" in result.stdout, "the hints name the Compose command in use"


def test_docker_up_refuses_a_new_password_while_the_database_volume_exists(
    stub_root: tuple[Path, dict[str, str]],
) -> None:
    root, env = stub_root
    env.update(STUB_ENGINE="1", STUB_VOLUME="repo_pgdata")
    result = run_script(root, env, str(root / "scripts" / "docker-up.sh"), "--timeout", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the database volume 'repo_pgdata' exists" in result.stderr, result.stderr
    assert "scripts/docker-down.sh --volumes" in result.stderr and "Put that .env back" in result.stderr
    assert not (root / ".env").exists(), "no .env with a new random password"
    calls = Path(env["STUB_LOG"]).read_text()
    assert "label=com.docker.compose.project=repo" in calls and "label=com.docker.compose.volume=pgdata" in calls
    assert " up " not in calls, "nothing was started"


@pytest.mark.parametrize("v2", [True, False], ids=["compose-v2", "compose-v1"])
def test_query_asks_the_running_stack_through_the_compose_helper(
    stub_root: tuple[Path, dict[str, str]], v2: bool
) -> None:
    """scripts/query.sh uses the same Compose command as docker-up.sh (v1 or v2), and the stack's db container
    when it runs: no host venv, no embedded Postgres."""
    root, env = stub_root
    env["STUB_ENGINE"] = "1"
    env.pop("DATABASE_URL", None)
    if not v2:
        env["STUB_NO_V2"] = "1"
    result = run_script(root, env, str(root / "scripts" / "query.sh"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "query: using the compose stack's db container" in result.stdout
    calls = Path(env["STUB_LOG"]).read_text().splitlines()
    command = "docker compose" if v2 else "docker-compose"
    assert any(c.startswith(f"{command} ") and " exec -T db " in c for c in calls), calls
    assert not (root / ".venv").exists()
