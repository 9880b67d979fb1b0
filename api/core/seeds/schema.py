"""The expected files and their columns (``SEED_FILES``), and the check of a file's header line.

The rule it keeps: a file's columns are found by their names in its header (trimmed, matched
case-sensitively, in any order), and a header that does not name each expected column exactly
once, and nothing else, is wrong as a whole: ``check_header`` returns every issue with it and
no column positions. It reports nothing itself; the scan does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from pyroaring import BitMap

from api.core.seeds.problems import ProblemList, show

ColumnKind = Literal["id", "text", "date", "number", "id_list"]


@dataclass(frozen=True)
class Column:
    """One expected column of a seed file.

    kind: ``id`` (integer in Postgres int range, required), ``text`` (any text, may be
    empty), ``date`` (YYYY-MM-DD), ``number`` (non-negative decimal), ``id_list``
    (non-empty ';'-separated list of ids). ``unique``: the file's key. ``references``:
    the file whose key this column's id(s) must exist in.
    """

    name: str
    kind: ColumnKind
    unique: bool = False
    references: str | None = None


SEED_FILES: dict[str, tuple[Column, ...]] = {
    "users.csv": (
        Column("user_id", "id", unique=True),
        Column("name", "text"),
        Column("email", "text"),
        Column("signup_date", "date"),
    ),
    "user_experiments.csv": (
        Column("experiment_id", "id", unique=True),
        Column("user_id", "id", references="users.csv"),
        Column("experiment_compound_ids", "id_list", references="compounds.csv"),
        Column("experiment_run_time", "number"),
    ),
    "compounds.csv": (
        Column("compound_id", "id", unique=True),
        Column("compound_name", "text"),
        Column("compound_structure", "text"),
    ),
}
"""The expected files: file name -> its columns, in output order."""


def expected_header(name: str) -> str:
    return ",".join(column.name for column in SEED_FILES[name])


class _HeaderIssue(NamedTuple):
    """One thing wrong with a header line (the scan reports it at the header's line)."""

    message: str
    column: str | None = None
    value: str | None = None


def check_header(name: str, header: list[str]) -> tuple[dict[str, int] | None, list[_HeaderIssue]]:
    """Map column name -> position in the user's file, or None and what is wrong with the header."""
    columns = [column.name for column in SEED_FILES[name]]
    expected = ", ".join(columns)
    if not {field.lower() for field in header} & {column.lower() for column in columns}:
        message = (
            f"the first line must be the header {show(expected_header(name), 200)} but it is {show(','.join(header))}"
        )
        return None, [_HeaderIssue(message, value=",".join(header))]
    issues: list[_HeaderIssue] = []
    positions: dict[str, int] = {}
    for index, title in enumerate(header):
        if title in positions:
            issues.append(_HeaderIssue(f"column '{title}' appears more than once in the header", column=title))
        elif title in columns:
            positions[title] = index
    missing = [column for column in columns if column not in positions]
    for index, title in enumerate(header):
        if title in columns:
            continue
        if not title:
            message = (
                f"the header has an empty column name at position {index + 1} "
                f"(a stray comma?); expected the columns {expected}"
            )
            issues.append(_HeaderIssue(message, value=title))
            continue
        same = [column for column in missing if column.lower() == title.lower()]
        hint = (
            f"write it as '{same[0]}' (column names are case-sensitive)" if same else f"expected the columns {expected}"
        )
        issues.append(_HeaderIssue(f"unexpected column '{title}'; {hint}", column=title, value=title))
    for column in missing:
        if not any(column.lower() == title.lower() for title in header):
            issues.append(_HeaderIssue(f"missing column '{column}'; expected the columns {expected}", column=column))
    return (None if issues else positions), issues


@dataclass
class Loaded:
    """What the other files need to know about a file that was read: its keys (as uint32), and
    whether it loaded completely (so references to it are checked)."""

    keys: BitMap
    complete: bool
    rows: int


@dataclass
class Spec:
    """A column as found in the user's file."""

    column: Column
    position: int
    target: Loaded | None  # the referenced file, when it loaded completely
    target_name: str | None
    target_key: str | None
    problems: ProblemList | None  # where its reference problems go
