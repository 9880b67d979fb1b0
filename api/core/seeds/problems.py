"""What is wrong with the user's data: ``Problem``, ``DataError`` and the collections problems are kept in.

The rule it keeps: problems take bounded memory. A collection (``ProblemList``, one per kind of
problem and file) keeps the first ``MAX_PROBLEMS`` and only counts the rest, and the first
problem added abandons the output (nothing is written for data that cannot be loaded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_PROBLEMS = 50
"""At most this many problems are kept in ``DataError.problems`` (``DataError.total`` counts all)."""
SUMMARY_PROBLEMS = 10
"""``str(DataError)`` lists this many problems, then says how many more there are."""


def show(value: str, limit: int = 60) -> str:
    """A value quoted for a message: newlines escaped, long values shortened."""
    text = value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"


def _clip(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's data.

    ``line`` is the 1-based physical line in the user's file (None for whole-file
    problems); ``key`` names the row (e.g. ``experiment_id 5``) when known.
    """

    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str
    key: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.key:
            where += f" ({self.key})"
        return f"{where}: {self.message}"


class DataError(Exception):
    """The data files cannot be loaded. ``problems`` lists them (at most ``MAX_PROBLEMS``);
    ``total`` is how many were found in all."""

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        self.problems: list[Problem] = list(problems)
        self.total: int = max(total or 0, len(self.problems))
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = f"{self.total} problem{'s' if self.total != 1 else ''}"
        lines = [f"The data files cannot be loaded ({count}):"]
        lines += [f"- {problem}" for problem in self.problems[:SUMMARY_PROBLEMS]]
        more = self.total - min(len(self.problems), SUMMARY_PROBLEMS)
        if more > 0:
            lines.append(f"... and {more} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._summary()

    def __reduce__(self):  # keep problems when pickled (e.g. across processes)
        return (type(self), (self.problems, self.total))


@dataclass
class Duplicate:
    """A duplicated key whose first line is looked up after the file was read."""

    file: str
    line: int
    column: str
    value: str
    key: str
    key_id: int

    def problem(self, first: int | None) -> Problem:
        where = "?" if first is None else str(first)
        message = f"{self.column} {self.key_id} appears more than once (lines {where} and {self.line})"
        return Problem(self.file, self.line, self.column, _clip(self.value), message, self.key)


class ProblemList:
    """Problems of one kind in one file: keeps the first MAX_PROBLEMS, counts all. Adding one
    calls ``abandon`` (the output's ``fail``: nothing is written once anything is wrong)."""

    def __init__(self, file: str, abandon: Callable[[], None] | None) -> None:
        self.file = file
        self.abandon = abandon
        self.kept: list[Problem | Duplicate] = []
        self.count = 0

    def add(
        self,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
        key: str | None = None,
    ) -> None:
        self._count()
        if len(self.kept) < MAX_PROBLEMS:
            clipped = None if value is None else _clip(value)
            self.kept.append(Problem(self.file, line, column, clipped, message, key))

    def add_duplicate(self, line: int, column: str, value: str, key: str, key_id: int) -> None:
        self._count()
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(Duplicate(self.file, line, column, value, key, key_id))

    def clear(self) -> None:
        self.kept.clear()
        self.count = 0

    def _count(self) -> None:
        self.count += 1
        if self.abandon is not None:
            self.abandon()
