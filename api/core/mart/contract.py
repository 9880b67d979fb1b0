"""The mart's table and columns, read from its dbt contract (dbt_project/models/marts/_marts__models.yml).

The one rule: the contract is the only place the mart's columns are written. Their names, order, Postgres types
and descriptions come from there, for the Spark transfer (api/core/mart/spark.py, which must create exactly the
table dbt builds on Postgres) and for the API's response model (api/schemas.py). What the contract cannot say,
whether the API may answer null for a column, is the column's `meta.nullable` in the same file (default true).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from api.config import DBT_PROJECT_DIR

MARTS_DIR = DBT_PROJECT_DIR / "models" / "marts"
CONTRACT_FILE = MARTS_DIR / "_marts__models.yml"
#: The schema readers query (dbt_project.yml: models/marts/ build into `marts`).
MART_SCHEMA = "marts"
MART_TABLE = "user_features"
MART = f"{MART_SCHEMA}.{MART_TABLE}"

_DOCS_BLOCK = re.compile(r"{%\s*docs\s+(\w+)\s*%}(.*?){%\s*enddocs\s*%}", re.S)


@dataclass(frozen=True)
class MartColumn:
    name: str
    pg_type: str  # the contract's data_type on Postgres
    description: str
    nullable: bool  # may the API answer null


def _docs_blocks(folder: Path) -> dict[str, str]:
    blocks: dict[str, str] = {}
    for path in sorted(folder.glob("*.md")):
        blocks.update((name, text.strip()) for name, text in _DOCS_BLOCK.findall(path.read_text()))
    return blocks


def _render(text: str, blocks: dict[str, str]) -> str:
    """A contract string as dbt renders it on Postgres (`target.type` is not spark; `doc()` is the docs block)."""
    if "{" not in text:
        return text
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - not HTML
    return env.from_string(text).render(target={"type": "postgres"}, doc=blocks.__getitem__)


def _model(contract: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in contract["models"] if m["name"] == MART_TABLE)


@lru_cache
def mart_columns() -> tuple[MartColumn, ...]:
    """The mart's columns in the contract's order (the table's order)."""
    blocks = _docs_blocks(MARTS_DIR)
    model = _model(yaml.safe_load(CONTRACT_FILE.read_text()))
    assert model["config"]["contract"]["enforced"], f"{CONTRACT_FILE}: the mart's contract must be enforced"
    return tuple(
        MartColumn(
            name=column["name"],
            pg_type=_render(column["data_type"], blocks),
            description=" ".join(_render(column.get("description", ""), blocks).split()),
            nullable=column.get("config", {}).get("meta", {}).get("nullable", True),
        )
        for column in model["columns"]
    )
