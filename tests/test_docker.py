"""Static checks of the Docker delivery: Dockerfile, docker-compose.yml, .dockerignore, .env.example, scripts.

No Docker engine is needed: the files are linted (hadolint, Compose Specification schema) and parsed, and the
docker-up/down scripts are run against a stub `docker` that records what it is asked to do.
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
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
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


# ---------------------------------------------------------------------------------------------- Dockerfile


def parse_dockerfile(text: str) -> list[list[tuple[str, str]]]:
    """Stages, each a list of (INSTRUCTION, arguments) with continuations joined and comments dropped."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        instr, _, args = logical.partition(" ")
        logical = ""
        if instr.upper() == "FROM":
            stages.append([])
        if not stages:
            continue  # ARG before the first FROM
        stages[-1].append((instr.upper(), args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def args_of(stage: list[tuple[str, str]], instr: str) -> list[str]:
    return [args for name, args in stage if name == instr]


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (fails on shell form)."""
    assert args.startswith("["), f"use exec (JSON) form, got: {args}"
    return yaml.safe_load(args)


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
    shutil.copy2(ROOT / "scripts" / "lint-docker.sh", tmp_path / "scripts")
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


def test_base_images_pinned_and_multi_stage(stages: list[list[tuple[str, str]]]) -> None:
    assert len(stages) >= 2, "the Dockerfile must be multi-stage (builder + runtime)"
    for stage in stages:
        image = stage[0][1].split()[0]
        name, _, tag = image.partition("@")[0].partition(":")
        assert tag, f"{image}: pin a tag"
        assert tag != "latest", f"{image}: 'latest' is not a pin"
        assert re.match(r"\d+\.\d+\.\d+-slim", tag), f"{image}: pin a full python version on a slim base"
        assert name in {"python", "docker.io/library/python"}, image
    final_base = stages[-1][0][1].split()[0]
    assert stages[0][0][1].split()[0] == final_base, "builder and runtime must share the base (the venv is copied)"


def test_builder_installs_deps_in_cached_layer_with_bootstrap(stages: list[list[tuple[str, str]]]) -> None:
    builder = stages[0]
    copies = [(i, args) for i, (name, args) in enumerate(builder) if name == "COPY"]
    runs = [(i, args) for i, (name, args) in enumerate(builder) if name == "RUN"]
    bootstrap_runs = [i for i, args in runs if "scripts/bootstrap.sh" in args]
    assert bootstrap_runs, "the builder must install deps with scripts/bootstrap.sh"
    run_at = bootstrap_runs[0]
    assert "VENV_DIR=/app/.venv" in builder[run_at][1]
    copied_before = " ".join(args for i, args in copies if i < run_at)
    for needed in ("requirements.txt", "scripts/bootstrap.sh"):
        assert needed in copied_before, f"COPY {needed} before running the bootstrap"
    # Whatever the bootstrap sources must be in the image at that point too.
    bootstrap = ROOT / "scripts" / "bootstrap.sh"
    assert bootstrap.is_file(), "scripts/bootstrap.sh is missing (the image build runs it)"
    text = bootstrap.read_text()
    for sourced in re.findall(r"^\s*(?:source|\.)\s+\S*?([\w.-]+\.sh)\b", text, re.M):
        assert sourced in copied_before, f"bootstrap.sh sources {sourced}: COPY it before the install"
    for used in set(re.findall(r"\$\{?ROOT\}?/([\w./-]+\w)", text)) - {".venv"}:  # VENV_DIR is given
        assert used in copied_before, f"bootstrap.sh reads {used}: COPY it before the install"
    # The whole tree must not be copied before the install (that would bust the dependency cache).
    for i, args in copies:
        if i < run_at:
            assert not re.match(r"(--\S+\s+)*\.\s", args + " "), "COPY . . comes after the dependency install"


def test_runtime_stage(stages: list[list[tuple[str, str]]]) -> None:
    final = stages[-1]
    names = [name for name, _ in final]
    # No compilers in the image that ships.
    for args in args_of(final, "RUN"):
        assert not re.search(r"build-essential|\bgcc\b|\bg\+\+|\bmake\b", args), f"build tools in runtime: {args}"
    assert any("--from=" in args and "/app/.venv" in args for args in args_of(final, "COPY")), "copy the venv"

    users = args_of(final, "USER")
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"USER {users[-1]} is root"
    last_user = max(i for i, n in enumerate(names) if n == "USER")
    for start in ("ENTRYPOINT", "CMD"):
        if start in names:
            assert last_user < names.index(start), f"USER must come before {start}"

    healthchecks = args_of(final, "HEALTHCHECK")
    assert healthchecks and "/health" in healthchecks[-1], "HEALTHCHECK must hit /health"
    assert "curl" not in healthchecks[-1] and "wget" not in healthchecks[-1], "slim has no curl/wget"
    assert "8000" in " ".join(args_of(final, "EXPOSE")).split()

    env = " ".join(args_of(final, "ENV"))
    for pair in ("HOST=0.0.0.0", "DATA_DIR=/app/seeds", "STATE_DIR=/app/.state"):
        assert pair in env.split(), f"ENV {pair} missing"
    assert any(re.search(r"chown\s+\S+\s+/app/\.state", args) for args in args_of(final, "RUN")), (
        "STATE_DIR must be writable by the app user"
    )


def test_entrypoint_is_run_sh(stages: list[list[tuple[str, str]]]) -> None:
    final = stages[-1]
    entrypoints = args_of(final, "ENTRYPOINT")
    assert entrypoints, "ENTRYPOINT must be scripts/run.sh"
    argv = exec_form(entrypoints[-1])
    assert argv[0].endswith("scripts/run.sh"), argv
    for cmd in args_of(final, "CMD"):
        assert "uvicorn" not in cmd, "the app starts only through scripts/run.sh"
    run_sh = ROOT / "scripts" / "run.sh"
    assert run_sh.is_file(), "scripts/run.sh is missing (the image's ENTRYPOINT)"
    assert run_sh.stat().st_mode & stat.S_IXUSR, "scripts/run.sh must be executable"


# ------------------------------------------------------------------------------------------- .dockerignore


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Approximates Docker's .dockerignore matching: Go filepath.Match plus **, last match wins, !negation."""

    def to_regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
                if pattern.startswith("/", i):
                    out, i = out[:-2] + "(?:.*/)?", i + 1
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + "$")

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = to_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".state/pg/PG_VERSION",
        "dbt_project/target/manifest.json",
        "target/x",
        "dbt_project/logs/dbt.log",
        "logs/app.log",
        ".git/HEAD",
        "api/__pycache__/main.cpython-311.pyc",
        ".env",
    ],
)
def test_dockerignore_keeps_local_state_out(path: str, ignore_patterns: list[str]) -> None:
    assert dockerignored(path, ignore_patterns), f".dockerignore must exclude {path}"


@pytest.mark.parametrize(
    "path",
    ["requirements.txt", "scripts/bootstrap.sh", "scripts/run.sh", "api/main.py",
     "dbt_project/dbt_project.yml", "seeds/users.csv"],
)  # fmt: skip
def test_dockerignore_keeps_what_the_image_needs(path: str, ignore_patterns: list[str]) -> None:
    assert not dockerignored(path, ignore_patterns), f".dockerignore must not exclude {path}"


# ---------------------------------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (item.partition("=") for item in env)}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    assert test, "healthcheck.test missing"
    return test if isinstance(test, str) else " ".join(test)


def test_db_service(compose: dict) -> None:
    db = compose["services"]["db"]
    assert re.fullmatch(r"postgres:\d+", db["image"]), f"pin postgres by major version, got {db['image']}"
    named = set(compose.get("volumes") or {})
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in db.get("volumes", [])]
    assert any(m.split(":")[0] in named and m.split(":")[1] == "/var/lib/postgresql/data" for m in mounts), (
        "db data must live in a named volume"
    )
    assert "pg_isready" in healthcheck_text(db)
    env = environment(db)
    assert set(env) >= {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    # No default password: interpolated from .env, with an error (not a fallback) when missing.
    password = env["POSTGRES_PASSWORD"] or ""
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", password), f"no default password: {password}"


def test_app_service(compose: dict) -> None:
    app = compose["services"]["app"]
    build = app["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) in {".", "./"}
    assert app["depends_on"]["db"]["condition"] == "service_healthy"

    env = environment(app)
    assert env["HOST"] == "0.0.0.0"  # noqa: S104 - the container must listen on all interfaces
    url = env["DATABASE_URL"] or ""
    assert "${POSTGRES_PASSWORD" in url, "DATABASE_URL must take the password from POSTGRES_PASSWORD"
    parts = urlsplit(re.sub(r"\$\{[^}]*\}", "x", url))
    assert parts.scheme in {"postgresql", "postgres"}, url
    assert parts.hostname == "db", f"DATABASE_URL must point at the db service: {url}"
    assert parts.port in {None, 5432}, url

    targets = []
    for port in app.get("ports", []):
        targets.append(str(port["target"]) if isinstance(port, dict) else str(port).rsplit(":", 1)[-1])
        published = port.get("host_ip", "") if isinstance(port, dict) else str(port)
        assert published.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"publish on loopback unless chosen: {port}"
    assert "8000" in targets, "publish container port 8000"
    # listening on 0.0.0.0 in the container: a token is required, with an error (not a default) when missing
    assert re.fullmatch(r"\$\{API_TOKEN:\?[^}]*\}", env.get("API_TOKEN") or ""), env.get("API_TOKEN")
    grace = str(app.get("stop_grace_period", ""))
    assert re.fullmatch(r"\d+s", grace) and int(grace[:-1]) >= 15, "SIGTERM gets 15 s to end the active run"
    assert env.get("PORT") in {None, "8000"}, "the container listens on 8000 (PORT is the host port in compose)"
    assert "/health" in healthcheck_text(app)


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

DOCKER_SCRIPTS = ["docker-up.sh", "docker-down.sh", "lint-docker.sh"]


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
echo "$*" >>"$STUB_LOG"
case "$*" in
  info*) [[ -n "${STUB_ENGINE:-}" ]] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  "compose version"*) echo "Docker Compose version v2.40.0" ;;
  *" ps -q app") echo abc123 ;;
  inspect*) echo "running healthy" ;;
  *" port app 8000") echo "0.0.0.0:8123" ;;
esac
exit 0
"""


@pytest.fixture()
def stub_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the repo's docker scripts + .env.example, with a fake `docker` first on PATH."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in [*DOCKER_SCRIPTS, "_compose.sh"]:  # _compose.sh: sourced by up and down
        shutil.copy2(ROOT / "scripts" / name, root / "scripts" / name)
    shutil.copy2(ENV_EXAMPLE, root / ".env.example")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
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
    assert "compose up -d --build" in calls
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
