"""Turn a failed dbt command into something a user can act on: which node failed, dbt's message, and for a
failed test the first failing rows (kept by `store_failures` in the `audit` schema)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from api.core.dbt.invoke import DbtResult

MAX_ROWS = 5
_FAILED = ("error", "fail", "runtime error")


def _audit_rows(conn: psycopg.Connection, relation: str) -> list[dict[str, Any]]:
    parts = [p.strip('"') for p in relation.split(".")][-2:]
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.SQL("select * from {} limit %s").format(sql.Identifier(*parts)), (MAX_ROWS,))
            return [{k: _plain(v) for k, v in row.items()} for row in cur.fetchall()]
    except psycopg.Error:
        return []


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _ran_on_spark(result: DbtResult) -> bool:
    try:
        manifest = json.loads((result.target_path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("metadata", {}).get("adapter_type") == "spark"


def collect(result: DbtResult, conn: psycopg.Connection | None) -> list[dict[str, Any]]:
    """The failed nodes of a dbt command, each with its message and (tests) sample failing rows. Failing rows
    are read from Postgres, except when dbt ran on Spark (they stay in Spark's audit schema then)."""
    nodes = result.manifest_nodes()
    if _ran_on_spark(result):
        conn = None
    failures = []
    for res in result.run_results():
        if res.get("status") not in _FAILED:
            continue
        uid = res.get("unique_id", "")
        node = nodes.get(uid, {})
        item: dict[str, Any] = {
            "node": uid,
            "name": node.get("name") or uid.split(".")[-1],
            "resource_type": node.get("resource_type") or uid.split(".")[0],
            "status": res.get("status"),
            "message": (res.get("message") or "").strip(),
            "failing_rows": res.get("failures"),
            "relation": node.get("relation_name") if node.get("resource_type") == "test" else None,
            "rows": [],
        }
        if item["relation"] and conn is not None and res.get("status") == "fail":
            item["rows"] = _audit_rows(conn, item["relation"])
        failures.append(item)
    return failures


def _row_text(row: dict[str, Any]) -> str:
    if row.get("failure"):
        return str(row["failure"])
    return ", ".join(f"{k}={v!r}" for k, v in row.items())


def summarize(command: str, result: DbtResult, failures: list[dict[str, Any]]) -> str:
    """A readable, bounded summary: one paragraph per failed node."""
    if not failures:
        if result.exit_code < 0:
            return f"dbt {command} was killed (signal {-result.exit_code})"
        detail = "\n".join(result.errors[-5:]) or "no details; see the run's logs"
        return f"dbt {command} failed (exit code {result.exit_code}): {detail}"
    lines = [f"dbt {command} failed: {len(failures)} node(s) did not pass"]
    for f in failures[:10]:
        what = f"{f['resource_type']} {f['name']}"
        if f["resource_type"] == "test" and f["status"] == "fail":
            lines.append(
                f"- {what} failed on {f['failing_rows']} row(s)" + (f" (see {f['relation']})" if f["relation"] else "")
            )
            lines.extend(f"    {_row_text(r)}" for r in f["rows"])
        else:
            lines.append(f"- {what}: {f['message']}")
    if len(failures) > 10:
        lines.append(f"... and {len(failures) - 10} more")
    return "\n".join(lines)
