"""Which Postgres: the one named by DATABASE_URL, or the embedded one (api/core/db/embedded.py) whose data lives
under STATE_DIR; and this process's pool of connections for short reads.

The one rule: a `Database` holds a URL that may carry a password, so it is never logged: `display_url` is.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from api.core.db.embedded import EmbeddedPostgres

#: Connections a process keeps for API reads; uvicorn runs sync endpoints in a thread pool of 40.
READING_POOL_SIZE = 8
APPLICATION_NAME = "features-mart"


@dataclass(frozen=True)
class Database:
    """A reachable Postgres. `url` may hold a password: never log it, log `display_url`."""

    url: str = field(repr=False)
    embedded: bool = False

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in conninfo_to_dict(self.url).items() if v is not None}

    @property
    def display_url(self) -> str:
        p = self.params
        user = p.get("user", "")
        return f"postgresql://{user}@{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '')}"

    def connect(self, *, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection:
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("application_name", APPLICATION_NAME)
        return psycopg.connect(self.url, autocommit=autocommit, **kwargs)

    def libpq_env(self) -> dict[str, str]:
        """The PG* variables libpq reads (for psql), so that a password never sits on a command line."""
        names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
                 "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}  # fmt: skip
        return {names[k]: v for k, v in self.params.items() if k in names}

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute("select 1")

    @contextlib.contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        """A connection for a short read (an API request), from this process's pool for this database: no
        connect and password handshake per request. Autocommit, no server-side prepared statements (so a
        statement never outlives a publish's schema swap), checked before it is handed out (a restarted
        Postgres costs one retry, not an error)."""
        with _reading_pool(self.url).connection() as conn:
            yield conn

    def close_pool(self) -> None:
        """Close this process's reading pool for this database (the app does at shutdown)."""
        with _POOLS_LOCK:
            pool = _POOLS.pop(self.url, None)
        if pool is not None:
            pool.close()


_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()


def _reading_pool(url: str) -> Any:
    from psycopg_pool import ConnectionPool

    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            pool = ConnectionPool(
                url,
                min_size=0,  # nothing kept open for a database nobody reads any more
                max_size=READING_POOL_SIZE,
                kwargs={"autocommit": True, "prepare_threshold": None, "application_name": APPLICATION_NAME},
                check=ConnectionPool.check_connection,
                timeout=30,
                name="features-mart-reading",
                open=True,
            )
            _POOLS[url] = pool
        return pool


@contextlib.contextmanager
def open_database(
    database_url: str | None, state_dir: Path, pg_port: int | None = None, server_dir: Path | None = None
) -> Iterator[Database]:
    """The database to use: DATABASE_URL if given, else the embedded one (started if needed, and stopped on
    exit when this was its last user)."""
    if database_url:
        yield Database(database_url)
        return
    server = EmbeddedPostgres(state_dir, pg_port, server_dir)
    with server.use() as port:
        yield Database(server.url(port), embedded=True)
