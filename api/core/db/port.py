"""The embedded Postgres' port: stable per STATE_DIR, so that saved connections (psql, an editor, a BI tool) and
dbt's partial parsing (the profile holds the port) survive a restart.

The one rule: PG_PORT wins; else the port recorded in STATE_DIR/pg/port; else a free one, chosen once and
recorded there. A port that another program holds is reported, naming it when this user may see it, and never
silently swapped for another.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from api.core.db import safe_files

#: The file under STATE_DIR/pg that records the port.
PORT_FILE = "port"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recorded_port(root: Path) -> int | None:
    """The port recorded in `root` (STATE_DIR/pg), or None."""
    try:
        port = int(safe_files.read_text(root / PORT_FILE).strip())  # never through a planted link
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def choose_port(root: Path, requested: int | None) -> tuple[int, str]:
    """The port to start on, and where it comes from (for messages): PG_PORT, the recorded one, or a free one,
    recorded now."""
    if requested:
        return requested, "PG_PORT"
    port = recorded_port(root)
    if port is not None:
        return port, f"recorded in {root / PORT_FILE}"
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    safe_files.write_secret(root / PORT_FILE, f"{port}\n")  # O_EXCL under a random name, then moved in place
    return port, f"chosen now and recorded in {root / PORT_FILE}"


def is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:`port` (as Postgres does: SO_REUSEADDR, so a port that only
    has connections of a stopped server in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def holder(port: int) -> str | None:
    """The program listening on `port`, as `name (pid N)`, when this user may see it."""
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    return None


def taken_message(port: int, source: str, root: Path) -> str:
    """What to tell a user whose port is held by another program."""
    who = holder(port)
    return (
        f"port {port} ({source}) is in use by another program{f': {who}' if who else ''}, so the embedded "
        f"Postgres cannot listen on it. Stop that program, or set PG_PORT to a free port, or delete "
        f"{root / PORT_FILE} to have a new port chosen (saved connections to the old one then break)."
    )
