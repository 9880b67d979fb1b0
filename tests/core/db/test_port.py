"""The embedded Postgres' port (api/core/db/port.py): chosen once per STATE_DIR and kept, PG_PORT first, a port
held by another program reported with what to do."""

from __future__ import annotations

import os
import socket

import pytest

from api.core.db.embedded import DatabaseError, EmbeddedPostgres
from api.core.db.port import PORT_FILE, choose_port, free_port, is_free, recorded_port


def test_a_port_is_chosen_once_recorded_and_kept_and_pg_port_wins(tmp_path):
    root = tmp_path / "pg"
    port, source = choose_port(root, None)
    assert source.startswith("chosen now") and (root / PORT_FILE).read_text() == f"{port}\n"
    assert choose_port(root, None) == (port, f"recorded in {root / PORT_FILE}")
    other = free_port()
    assert choose_port(root, other) == (other, "PG_PORT")
    assert recorded_port(root) == port, "PG_PORT does not overwrite the record"
    (root / PORT_FILE).write_text("not a port\n")
    assert choose_port(root, None)[0] != 0 and recorded_port(root) is not None, "a damaged record is replaced"


@pytest.mark.parametrize("pg_port", [False, True])
def test_a_port_held_by_another_program_is_reported_before_anything_starts(pg_tmp, pg_port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        assert not is_free(taken)
        if not pg_port:
            (pg_tmp / "pg").mkdir()
            (pg_tmp / "pg" / PORT_FILE).write_text(f"{taken}\n")
        server = EmbeddedPostgres(pg_tmp, taken if pg_port else None)
        with pytest.raises(DatabaseError) as refused:
            server.start()
    message = str(refused.value)
    assert f"port {taken} ({'PG_PORT' if pg_port else 'recorded in'}" in message
    assert "in use by another program: " in message and f"(pid {os.getpid()})" in message, "names the holder"
    assert "set PG_PORT to a free port" in message
    assert not (pg_tmp / "pg" / "data").exists(), "nothing was initialised"
    assert is_free(taken), "free again once the other program let go"
