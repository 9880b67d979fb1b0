"""The mart's columns come from its dbt contract only (api/core/mart/contract.py): the API's model and the Spark
transfer read them, and the README's table lists them."""

from __future__ import annotations

import re
import typing

from api.config import REPO_ROOT
from api.core.mart.contract import MART, mart_columns
from api.schemas import UserFeatures


def test_the_contract_is_read_with_postgres_types_and_rendered_descriptions():
    columns = mart_columns()
    assert columns[0].name == "user_id" and not columns[0].nullable
    assert [c.pg_type for c in columns] == [
        "integer", "text", "text", "date", "integer", "numeric", "numeric", "numeric", "numeric",
        "integer", "text", "text", "integer", "integer[]",
    ]  # fmt: skip
    assert all(c.description and "{{" not in c.description for c in columns), "every column described, rendered"
    assert MART == "marts.user_features"


def test_the_api_model_is_the_contract():
    columns = mart_columns()
    assert list(UserFeatures.model_fields) == [c.name for c in columns]
    for column in columns:
        field = UserFeatures.model_fields[column.name]
        assert field.description == column.description
        assert (type(None) in typing.get_args(field.annotation)) == column.nullable, column.name
        assert field.is_required()


def test_the_readme_lists_every_column():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("## The mart", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\w+)`", table))
    missing = [c.name for c in mart_columns() if c.name not in listed]
    assert not missing, f"README.md's mart table does not list {missing}"
