"""For the lineage tests: the OpenLineage spec's JSON schemas (vendored in tests/openlineage_spec/) as a
validator, and a local HTTP receiver (a real http.server in a thread) that keeps every event POSTed to it and
validates it.

`problems(event)` checks the event against the spec's `RunEvent` schema (OpenLineage.json, 2-0-2) and every
facet in it (run, job, dataset, input and output facets) against its own facet schema, found by the facet's
key in the facet files; an unknown facet key is a problem too. The facet files' `$ref`s to OpenLineage.json are
resolved through a `referencing` registry holding all the vendored files (nothing is fetched).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC_DIR = Path(__file__).resolve().parent / "openlineage_spec"


def _load() -> tuple[Registry, dict[str, Any], dict[str, dict[str, Any]]]:
    core = json.loads((SPEC_DIR / "OpenLineage.json").read_text())
    facet_files = [json.loads(p.read_text()) for p in sorted((SPEC_DIR / "facets").glob("*.json"))]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in [core, *facet_files])
    by_key = {key: schema for schema in facet_files for key in schema.get("properties", {})}
    return registry, core, by_key


REGISTRY, CORE, FACET_SCHEMAS = _load()
EVENT_SCHEMA = {"$ref": CORE["$id"] + "#/$defs/RunEvent"}


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = Draft202012Validator(schema, registry=REGISTRY)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(instance)]


def problems(event: dict[str, Any]) -> list[str]:
    """Why `event` is not a valid OpenLineage run event (empty: it is valid)."""
    found = _errors(EVENT_SCHEMA, event)
    facet_groups = [("run", event.get("run", {}).get("facets")), ("job", event.get("job", {}).get("facets"))]
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side) or []):
            facet_groups.append((f"{side}/{i}", dataset.get("facets")))
            facet_groups.append((f"{side}/{i}/io", dataset.get("inputFacets") or dataset.get("outputFacets")))
    for where, facets in facet_groups:
        for key, facet in (facets or {}).items():
            schema = FACET_SCHEMAS.get(key)
            if schema is None:
                found.append(f"{where}: facet {key!r} has no schema in the spec")
                continue
            found += [f"{where}: {e}" for e in _errors({"$ref": schema["$id"]}, {key: facet})]
    return found


class Receiver:
    """What a receiver got: every event, in order of arrival, and the problems of the invalid ones."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.paths: set[str] = set()
        self.lock = threading.Lock()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)


@contextmanager
def receiver() -> Iterator[tuple[str, Receiver]]:
    """A local HTTP server that takes OpenLineage events (POST, JSON): 200 for a valid one, 400 with the
    problems for an invalid one (kept too). Yields (its URL, what it got)."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(body)
                found = problems(event)
            except ValueError as exc:
                event, found = {"unparsable": body.decode(errors="replace")}, [f"not JSON: {exc}"]
            with got.lock:
                got.events.append(event)
                got.problems += found
                got.paths.add(self.path)
            self.send_response(400 if found else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="lineage-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def hanging_receiver() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers: every request times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def refused_url() -> str:
    """A URL nothing listens at (a port just bound and released): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
