"""Read, normalise and validate the user's three CSV files before dbt seeds them, as a stream.

``prepare_seeds(data_dir, out_dir)`` reads ``users.csv``, ``user_experiments.csv`` and
``compounds.csv`` from ``data_dir`` (never modifying them), checks them against
``SEED_FILES`` and, only if nothing is wrong, puts clean copies into ``out_dir`` for
``dbt seed``. Otherwise it raises ``DataError`` listing every problem found (up to
``MAX_PROBLEMS``), each naming the file, the line in the user's file, the row's key, the
column and the offending value.

The one rule: memory does not grow with the data. Files are read chunk by chunk and each
clean row is written to a temporary file at once; what is kept across rows is only compact
integer sets (keys, for duplicates and references) and at most ``MAX_PROBLEMS`` problems per
file. The temporary files replace the outputs, all together, only when nothing is wrong.

Cosmetic mess is accepted and loads exactly like the clean file: a UTF-8 byte order mark;
CRLF or CR line endings; blank or whitespace-only lines anywhere (also before the header,
and lines holding only commas, as spreadsheets export them); spaces or TABs around values
and after commas, in the header too; no newline at the end of the file; whitespace around
the ids of a compound list (``1; 2``). Quoted fields follow RFC 4180 (a field may hold
commas, newlines and doubled quotes); whitespace outside the quotes is ignored.

Decisions:

* Header names are matched case-sensitively after trimming (``User_ID`` is rejected, with
  a hint); columns may come in any order and are written in the order of ``SEED_FILES``.
* Every value is trimmed, inside quotes too. Empty text values (name, email,
  compound_name, compound_structure) are allowed and written empty, which dbt loads as
  null. All other values are required.
* Ids are written as plain integers (``007`` becomes ``7``) and must fit a Postgres
  ``integer``. Compound lists are written as ``1;2;3``: order and duplicates are kept.
* ``experiment_run_time`` accepts digits with an optional decimal part (``10``, ``12.50``),
  written as given; exponents, NaN, infinity, ``.5``, ``5.`` and negative values are rejected.
* ``signup_date`` must be a real calendar date written ``YYYY-MM-DD``.
* References (experiment -> user, listed compound -> compound) are only checked when the
  referenced file loaded completely (structure fine, data rows present, every id valid), so
  one broken file does not produce a flood of follow-up errors. Files that others refer to
  are therefore read first.
* A record (one row, quoted newlines included) longer than ``MAX_RECORD_CHARS`` characters
  is rejected: it is almost always a missing closing quote.

Line numbers are 1-based physical lines of the user's file (CRLF counts as one line
break); a record that spans lines (a quoted newline) is reported at the line it starts.

How it is fast: lines that are records of their own (no quotes, or quotes only around whole
values without quotes or commas) are checked a block at a time with string methods that run
in C, as they are or tidied (quotes and whitespace around values removed, blank lines
dropped); a block that fails any check is split up until the lines at fault go one by one
through the careful path, which gives every message. Other records (a quoted comma, newline
or doubled quote) always take the careful path. A duplicated key is reported with the line
it first appeared on, found by a second, cheap pass over the file only when there are
duplicates.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import IO, Literal

from pyroaring import BitMap

__all__ = [
    "MAX_PROBLEMS",
    "MAX_RECORD_CHARS",
    "SEED_FILES",
    "Column",
    "DataError",
    "PreparedSeeds",
    "Problem",
    "prepare_seeds",
]

MAX_RECORD_CHARS = 1_000_000
"""A record longer than this (quoted newlines included) is rejected instead of being held in memory."""

MAX_PROBLEMS = 50
"""At most this many problems are kept in ``DataError.problems`` (``DataError.total`` counts all)."""
SUMMARY_PROBLEMS = 10
"""``str(DataError)`` lists this many problems, then says how many more there are."""

PG_INT_MIN = -(2**31)
PG_INT_MAX = 2**31 - 1

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


@dataclass(frozen=True)
class PreparedSeeds:
    """Where the clean CSVs were written, and how many data rows each has (by seed name)."""

    directory: Path
    row_counts: dict[str, int]


# --------------------------------------------------------------------------- helpers


def _show(value: str, limit: int = 60) -> str:
    """A value quoted for a message: newlines escaped, long values shortened."""
    text = value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"


def _clip(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _expected_header(name: str) -> str:
    return ",".join(column.name for column in SEED_FILES[name])


CHUNK_CHARS = 1 << 18
"""How much text is read at a time (then completed to the end of its line)."""
SMALL_BLOCK = 16
"""A block of ordinary lines that fails the fast check and has at most this many lines is
checked line by line; a larger one is split into ``FAN_OUT`` parts first."""
FAN_OUT = 8
ID_MASK = 0xFFFFFFFF
"""Ids (Postgres integers) are kept in sets of unsigned 32-bit ints as their two's complement."""
DATE_CACHE = 100_000
"""At most this many distinct valid dates are remembered (dates repeat a lot)."""


@dataclass
class _Duplicate:
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


class _Output:
    """The temporary copies being written, abandoned (deleted) as soon as any problem is found,
    renamed into place all together at the end otherwise."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.failed = False
        self.published = False
        self.created_dir = False
        self.temporary: dict[str, tuple[Path, IO[str]]] = {}

    def open(self, name: str) -> IO[str] | None:
        if self.failed:
            return None
        if not self.out_dir.exists():
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.created_dir = True
        handle, tmp_name = tempfile.mkstemp(dir=self.out_dir, prefix=f".{name}.", suffix=".tmp")
        stream = os.fdopen(handle, "w", encoding="utf-8", newline="")
        self.temporary[name] = (Path(tmp_name), stream)
        csv.writer(stream, lineterminator="\n").writerow([column.name for column in SEED_FILES[name]])
        return stream

    def fail(self) -> None:
        if self.failed:
            return
        self.failed = True
        for tmp_path, stream in self.temporary.values():
            stream.close()
            tmp_path.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.published:
            return
        self.fail()
        if self.created_dir:
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()  # only if still empty

    def publish(self) -> None:
        for tmp_path, stream in self.temporary.values():
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
            os.chmod(tmp_path, 0o600)
        for name, (tmp_path, _) in self.temporary.items():
            os.replace(tmp_path, self.out_dir / name)
        self.temporary.clear()
        self.published = True


class _Problems:
    """Problems of one kind in one file: keeps the first MAX_PROBLEMS, counts all. Adding one
    abandons the output."""

    def __init__(self, file: str, output: _Output | None) -> None:
        self.file = file
        self.output = output
        self.kept: list[Problem | _Duplicate] = []
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
            self.kept.append(_Duplicate(self.file, line, column, value, key, key_id))

    def clear(self) -> None:
        self.kept.clear()
        self.count = 0

    def _count(self) -> None:
        self.count += 1
        if self.output is not None:
            self.output.fail()


# --------------------------------------------------------------------------- reading


class _ReadError(Exception):
    """The user's file could not be read (an OSError while reading, not while writing)."""


class _Source:
    """One file's text as physical lines, a chunk at a time: universal newlines (CRLF and CR
    become LF), the UTF-8 BOM dropped. ``lines[i]`` is the next line, numbered ``base + i``.
    Reading stops at the first NUL character (``nul_line``), after checking that the rest decodes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lines: list[str] = []
        self.i = 0
        self.base = 1
        self.quotes = False  # the current chunk holds a '"'
        self.nonblank = False  # some character so far is not whitespace
        self.nul_line: int | None = None
        self.done = False

    def fill(self) -> bool:
        """Make ``lines[i]`` available; False at the end of the file."""
        while self.i >= len(self.lines):
            if self.done:
                return False
            self._load()
        return True

    def next_line(self) -> str | None:
        """The next physical line (the cursor moves past it), None at the end of the file."""
        if not self.fill():
            return None
        self.i += 1
        return self.lines[self.i - 1]

    def _read(self, size: int = CHUNK_CHARS) -> str:
        try:
            return self.stream.read(size)
        except OSError as err:
            raise _ReadError(err.strerror or str(err)) from err

    def _load(self) -> None:
        self.base += len(self.lines)
        self.lines, self.i = [], 0
        chunk = self._read()
        if not chunk:
            self.done = True
            return
        if not chunk.endswith("\n"):
            try:
                chunk += self.stream.readline()
            except OSError as err:
                raise _ReadError(err.strerror or str(err)) from err
        nul = chunk.find("\x00")
        if nul >= 0:
            self.nul_line = self.base + chunk.count("\n", 0, nul)
            while self._read():  # a decoding error further on still takes precedence
                pass
            self.done = True
            return
        if not self.nonblank and not chunk.isspace():
            self.nonblank = True
        self.quotes = '"' in chunk
        lines = chunk.split("\n")
        if chunk.endswith("\n"):
            lines.pop()
        self.lines = lines


def _report_bad_utf8(path: Path, out: _Problems) -> None:
    """Every line holding bytes that are not UTF-8, read again as bytes (line by line)."""
    number = 0
    try:
        with path.open("rb") as stream:
            for raw in stream:
                body = raw[:-1] if raw.endswith(b"\n") else raw
                if raw.endswith(b"\r\n"):
                    body = body[:-1]
                # '\r' and '\n' bytes never occur inside a UTF-8 sequence, so lines can be split as bytes.
                for line in body.split(b"\r"):
                    number += 1
                    _report_bad_utf8_line(line, number, out)
    except OSError as err:
        out.clear()
        out.add(f"the file cannot be read: {err.strerror or err}")


def _report_bad_utf8_line(line: bytes, number: int, out: _Problems) -> None:
    try:
        line.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    bad: list[str] = []
    pos = 0
    while pos < len(line):
        try:
            line[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as err:
            bad.append("".join(f"\\x{byte:02x}" for byte in line[pos + err.start : pos + err.end]))
            pos += err.end
    shown = line.decode("utf-8", "backslashreplace").lstrip("\ufeff")
    out.add(
        f"the text is not valid UTF-8: cannot decode {' '.join(bad)} in {_show(shown)}; "
        "save the file with UTF-8 encoding",
        line=number,
        value=" ".join(bad),
    )


# --------------------------------------------------------------------------- CSV records

_UNEXPECTED_AFTER_QUOTE = (
    'unexpected text after the closing quote of a quoted value; to put a " inside '
    'a quoted value write it twice (""), or leave the value unquoted'
)
_NEVER_CLOSED = 'a quoted value starting on this line is never closed (missing closing ")'


def _skip_blanks(text: str, pos: int) -> int:
    end = len(text)
    while pos < end and text[pos] in " \t":
        pos += 1
    return pos


def _parse_fields(record: str) -> list[str]:
    """The trimmed fields of one record; raises csv.Error when it is not valid CSV."""
    rows = list(csv.reader(io.StringIO(record, newline=""), strict=True))
    if len(rows) != 1:
        raise csv.Error("the record does not parse as a single row")
    return [value.strip() for value in rows[0]]


def _plain_ids(joined: str, sep: str) -> bool:
    """True when ``joined`` is ``sep``-separated ids written canonically: ASCII digits, no sign,
    no leading zero, none empty (so the normalised text is the text itself)."""
    if not joined or joined[0] == sep or joined[-1] == sep or sep + sep in joined:
        return False
    digits = joined.replace(sep, "")
    if not (digits.isascii() and digits.isdigit()):
        return False
    text = sep + joined
    zero = text.find(sep + "0")
    while zero >= 0:
        after = zero + 2
        if after < len(text) and text[after] != sep:
            return False
        zero = text.find(sep + "0", after)
    return True


_SIMPLY_QUOTED = re.compile(r'(?:[ \t]*"[^",\n]*"[ \t]*|[^",\n]*)(?:,(?:[ \t]*"[^",\n]*"[ \t]*|[^",\n]*))*')
"""A line whose quotes only wrap whole values holding no quote or comma: a record of its own,
read exactly like the same line with its quotes removed."""


_SPACES_BUT_LF = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What ``str.strip()`` removes (``str.isspace``), except the line feed (which ends a record)."""


def _tidy(lines: list[str]) -> list[str]:
    """Quote-free lines or simply quoted ones (see ``_SIMPLY_QUOTED``) as the careful path reads
    them: quotes removed, whitespace around values trimmed, blank records dropped."""
    text = "\n".join(map(str.strip, "\n".join(lines).replace('"', "").split("\n")))
    text = ",".join(map(str.strip, text.split(","), repeat(_SPACES_BUT_LF)))
    return [line for line in text.split("\n") if line.strip(",")]


_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:\n[0-9]+(?:\.[0-9]+)?)*")


def _plain_numbers(joined: str) -> bool:
    """True when ``joined`` is newline-separated numbers, each digits with an optional decimal part."""
    if "." in joined:
        return _NUMBERS.fullmatch(joined) is not None
    if not joined or joined[0] == "\n" or joined[-1] == "\n" or "\n\n" in joined:
        return False
    digits = joined.replace("\n", "")
    return digits.isascii() and digits.isdigit()


# --------------------------------------------------------------------------- header


def _check_header(name: str, line: int, header: list[str], out: _Problems) -> dict[str, int] | None:
    """Map column name -> position in the user's file, or None if the header is wrong."""
    columns = [column.name for column in SEED_FILES[name]]
    expected = ", ".join(columns)
    if not {field.lower() for field in header} & {column.lower() for column in columns}:
        out.add(
            f"the first line must be the header {_show(_expected_header(name), 200)} "
            f"but it is {_show(','.join(header))}",
            line=line,
            value=",".join(header),
        )
        return None
    before = out.count
    positions: dict[str, int] = {}
    for index, title in enumerate(header):
        if title in positions:
            out.add(f"column '{title}' appears more than once in the header", line=line, column=title)
        elif title in columns:
            positions[title] = index
    missing = [column for column in columns if column not in positions]
    for index, title in enumerate(header):
        if title in columns:
            continue
        if not title:
            out.add(
                f"the header has an empty column name at position {index + 1} "
                f"(a stray comma?); expected the columns {expected}",
                line=line,
                value=title,
            )
            continue
        same = [column for column in missing if column.lower() == title.lower()]
        hint = (
            f"write it as '{same[0]}' (column names are case-sensitive)" if same else f"expected the columns {expected}"
        )
        out.add(f"unexpected column '{title}'; {hint}", line=line, column=title, value=title)
    for column in missing:
        if not any(column.lower() == title.lower() for title in header):
            out.add(f"missing column '{column}'; expected the columns {expected}", line=line, column=column)
    return positions if out.count == before else None


# --------------------------------------------------------------------------- values

_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _parse_id(text: str) -> int | str:
    """The id, or the reason it is not one."""
    if not _INT.fullmatch(text):
        return "is not a whole number"
    number = int(text)
    if not PG_INT_MIN <= number <= PG_INT_MAX:
        return f"is out of range (ids must be between {PG_INT_MIN} and {PG_INT_MAX})"
    return number


def _check_value(column: Column, value: str) -> tuple[str, list[int]] | str:
    """(normalised value, ids it holds) or an error message for the value."""
    name = column.name
    if column.kind == "text":
        return value, []
    if not value:
        if column.kind == "id_list":
            return f"{name} is empty; list at least one compound id, e.g. 1;2;3"
        return f"{name} is empty"
    if column.kind == "id":
        number = _parse_id(value)
        if isinstance(number, str):
            return f"{name} {_show(value)} {number}"
        return str(number), [number]
    if column.kind == "id_list":
        ids: list[int] = []
        for position, item in enumerate(value.split(";"), start=1):
            item = item.strip()
            number = _parse_id(item) if item else "is empty"
            if isinstance(number, str):
                what = f"entry {position} is empty" if not item else f"entry {_show(item)} {number}"
                return (
                    f"{name} {_show(value)} is not a ';'-separated list of compound ids ({what}); write it like 1;2;3"
                )
            ids.append(number)
        return ";".join(str(number) for number in ids), ids
    if column.kind == "date":
        match = _DATE.fullmatch(value)
        if not match:
            return f"{name} {_show(value)} is not a date written YYYY-MM-DD (e.g. 2023-01-31)"
        try:
            date(*(int(part) for part in match.groups()))
        except ValueError:
            return f"{name} {_show(value)} is not a real calendar date"
        return value, []
    # number
    if not _NUMBER.fullmatch(value):
        hint = "use '.' as the decimal separator" if "," in value else "write digits with an optional decimal part"
        return f"{name} {_show(value)} is not a number ({hint}, e.g. 12.5)"
    if value.startswith("-"):
        if Decimal(value) != 0:
            return f"{name} {_show(value)} is negative; it must be 0 or more"
        value = value[1:]
    return value, []


# --------------------------------------------------------------------------- one file, one pass

_HEADER, _ROWS, _SKIP, _BROKEN = range(4)
"""Scan modes: looking for the header; checking data rows; header wrong (only the CSV structure
is still checked); structure broken (only further structure problems are collected)."""


@dataclass
class _Loaded:
    """What the other files need to know about a file that was read: its keys (as uint32), and
    whether it loaded completely (so references to it are checked)."""

    keys: BitMap
    complete: bool
    rows: int


@dataclass
class _Spec:
    """A column as found in the user's file."""

    column: Column
    position: int
    target: _Loaded | None  # the referenced file, when it loaded completely
    target_name: str | None
    target_key: str | None
    problems: _Problems | None  # where its reference problems go


class _Scan:
    """One pass over one file. In the normal pass it checks every record, collects problems and
    writes the clean rows to ``stream``; with ``locate`` set it only finds the first line of
    each key in ``locate`` (the duplicated ones), for the messages."""

    def __init__(
        self,
        name: str,
        source: _Source,
        loaded: dict[str, _Loaded],
        output: _Output | None,
        stream: IO[str] | None,
        locate: BitMap | None = None,
    ) -> None:
        self.name = name
        self.src = source
        self.loaded = loaded
        self.output = output
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n") if stream is not None else None
        self.locate = locate
        self.first_lines: dict[int, int] = {}
        self.field_limit = csv.field_size_limit()
        self.columns = SEED_FILES[name]
        self.key_index = next(index for index, column in enumerate(self.columns) if column.unique)
        self.mode = _HEADER
        self.structure = _Problems(name, output)
        self.content = _Problems(name, output)
        self.refs = [_Problems(name, output) for column in self.columns if column.references]
        self.keys = BitMap()
        self.rows = 0
        self.header_line = 0
        self.width = 0
        self.specs: list[_Spec] = []
        self.identity = False
        self.file_order = ""
        self.good_dates: set[str] = set()

    # ------------------------------------------------------------------ driving

    def run(self) -> None:
        src = self.src
        while src.fill():
            if self.locate is not None and len(self.first_lines) == len(self.locate):
                return
            if self.mode == _HEADER:
                number = src.base + src.i
                src.i += 1
                self._one(src.lines[src.i - 1], number)
                continue
            lines, start, end = src.lines, src.i, len(src.lines)
            stop = end
            if src.quotes:
                stop = start
                while stop < end and ('"' not in lines[stop] or _SIMPLY_QUOTED.fullmatch(lines[stop])):
                    stop += 1
            if stop > start:
                block = lines if start == 0 and stop == end else lines[start:stop]
                if self.mode == _ROWS:
                    self._block(block, src.base + start)
                elif max(map(len, block)) > self.field_limit:  # a value too long is a structure problem
                    for offset, line in enumerate(block):
                        if len(line) > self.field_limit:
                            self._one(line, src.base + start + offset)
                src.i = stop
            if stop < end:
                number = src.base + stop
                src.i = stop + 1
                self._one(lines[stop], number)
        if self.locate is None:
            self._finish()

    def _finish(self) -> None:
        if self.mode == _HEADER and self.src.nonblank:
            self.content.add(
                f"the file has no header and no data; expected the header line '{_expected_header(self.name)}'"
            )
        elif self.mode == _ROWS and self.rows == 0:
            self.content.add(f"the file has a header (line {self.header_line}) but no data rows")

    def _one(self, line: str, number: int) -> None:
        """The record starting with ``line`` (the source's cursor is just past it)."""
        if '"' in line or len(line) > self.field_limit:
            fields = self._careful(line, number)
            if fields is None:
                return
        else:
            fields = [field.strip() for field in line.split(",")]
            if not any(fields):  # blank line, or a line of commas
                return
        self._record(number, fields)

    def _record(self, number: int, fields: list[str]) -> None:
        if self.mode == _ROWS:
            self._row(number, fields)
        elif self.mode == _HEADER:
            self._header(number, fields)

    def _broken(self, message: str, line: int, value: str | None = None) -> None:
        if self.mode != _BROKEN:
            self.mode = _BROKEN
            self.content.clear()
            for refs in self.refs:
                refs.clear()
        self.structure.add(message, line=line, value=value)

    # ------------------------------------------------------------------ the careful tokenizer

    def _careful(self, first: str, start: int) -> list[str] | None:
        """The fields of the record that starts with line ``first`` (number ``start``), reading
        further lines while a quoted value holds newlines. None for a blank record, or a broken
        one (reported). Spaces and TABs around fields (outside quotes) are dropped, so that
        ``a,\\t"b,c"`` reads as two fields; the csv module then parses the record."""
        pieces: list[str] = []
        size = 0  # characters in pieces (while they are kept)
        overflow = eof_close = False
        text, line, pos = first, start, 0
        while True:
            pos = _skip_blanks(text, pos)
            if pos < len(text) and text[pos] == '"':
                # A quoted value ends at the first run of an odd number of quotes (pairs are
                # doubled quotes). With none up to the end of the file, it ends just before the
                # last quote of the last even run (as a backtracking regex would), else never.
                opened, segment, search = line, pos, pos + 1
                last_even: tuple[int, bool, str, int, int] | None = None
                while True:
                    quote = text.find('"', search)
                    if quote >= 0:
                        run = quote + 1
                        while run < len(text) and text[run] == '"':
                            run += 1
                        if (run - quote) % 2:
                            close = run
                            break
                        last_even = (len(pieces), overflow, text, segment, run - 1)
                        search = run
                        continue
                    following = self.src.next_line()
                    if following is None:
                        if last_even is None:
                            self._broken(_NEVER_CLOSED, opened)
                            return None
                        kept, overflow, text, segment, close = last_even
                        del pieces[kept:]
                        eof_close = True
                        break
                    if not overflow:
                        part = text[segment:] + "\n"
                        pieces.append(part)
                        size += len(part)
                        overflow = size > MAX_RECORD_CHARS
                    text, line, segment, search = following, line + 1, 0, 0
                pieces.append(text[segment:close])
                pos = close
                after = _skip_blanks(text, pos)
                if after < len(text) and text[after] != ",":
                    # text after the closing quote: keep it as it is so the csv module rejects it
                    end = text.find(",", pos)
                    end = len(text) if end < 0 else end
                    pieces.append(text[pos:end])
                    pos = end
                else:
                    pos = after
            else:
                end = text.find(",", pos)
                end = len(text) if end < 0 else end
                pieces.append(text[pos:end].rstrip(" \t"))
                pos = end
            if pos < len(text):  # a comma
                pieces.append(",")
                pos += 1
                continue
            break
        record = "".join(pieces)
        if overflow:  # only the start of the record was kept
            if eof_close:  # no closing quote up to the end of the file (see above)
                self._broken(_UNEXPECTED_AFTER_QUOTE, start, record)
            else:
                self._broken(
                    f"a record longer than {MAX_RECORD_CHARS} characters starts on this line; "
                    'is the closing quote (") of a quoted value missing?',
                    start,
                )
            return None
        if not record:
            return None
        try:
            fields = _parse_fields(record)
        except csv.Error:
            self._broken(_UNEXPECTED_AFTER_QUOTE, start, record)
            return None
        return fields if any(fields) else None  # rows of empty fields (",,,") are blank rows

    # ------------------------------------------------------------------ header

    def _header(self, number: int, fields: list[str]) -> None:
        problems = self.content if self.locate is None else _Problems(self.name, None)
        positions = _check_header(self.name, number, fields, problems)
        self.header_line = number
        if positions is None:
            self.mode = _SKIP
            return
        self.mode = _ROWS
        self.width = len(positions)
        self.file_order = ", ".join(sorted(positions, key=positions.__getitem__))
        groups = iter(self.refs)
        for column in self.columns:
            target = self.loaded.get(column.references or "")
            target_key = None
            if column.references:
                target_key = next(c.name for c in SEED_FILES[column.references] if c.unique)
            complete = target if target is not None and target.complete else None
            group = next(groups) if column.references else None
            self.specs.append(_Spec(column, positions[column.name], complete, column.references, target_key, group))
        self.identity = [spec.position for spec in self.specs] == list(range(self.width))

    # ------------------------------------------------------------------ blocks of ordinary lines

    def _block(self, lines: list[str], base: int) -> None:
        """Lines ``base``, ``base + 1``, ..., each a whole record (no quotes, or only simply
        quoted values): all checked at once when they are all ordinary and right (as they are,
        or tidied), else in smaller blocks, and finally one by one."""
        fast = self._fast if self.locate is None else self._fast_locate
        plain = '"' not in "".join(lines)
        if plain and fast(lines):
            return
        if max(map(len, lines)) <= self.field_limit:
            tidy = _tidy(lines)
            if not tidy or ((not plain or tidy != lines) and fast(tidy)):  # (not tidy: blank lines only)
                return
        if len(lines) <= SMALL_BLOCK:
            for offset, line in enumerate(lines):
                self._one(line, base + offset)
            return
        step = -(-len(lines) // FAN_OUT)
        for offset in range(0, len(lines), step):
            self._block(lines[offset : offset + step], base + offset)

    def _split(self, lines: list[str]) -> list[str] | None:
        """The fields of equally wide, not too long lines, all in one list; None otherwise."""
        if max(map(len, lines)) > self.field_limit:
            return None
        if list(map(str.count, lines, repeat(","))).count(self.width - 1) != len(lines):
            return None
        return ",".join(lines).split(",")

    def _fast(self, lines: list[str]) -> bool:
        """Check, count and write ``lines`` when every value is already in normal form and right
        (and no key repeats, no reference dangles); False, changing nothing, otherwise."""
        flat = self._split(lines)
        if flat is None:
            return False
        count, width = len(lines), self.width
        columns: list[list[str]] = []
        new_keys: BitMap | None = None
        for index, spec in enumerate(self.specs):
            values = flat[spec.position :: width]
            columns.append(values)
            kind = spec.column.kind
            if kind == "text":
                if list(map(str.strip, values)) != values:
                    return False
            elif kind == "id":
                if max(map(len, values)) > 9 or not _plain_ids(",".join(values), ","):
                    return False  # (ids of 10 digits may be out of range: checked one by one)
                numbers = BitMap(map(int, values))
                if index == self.key_index:
                    if len(numbers) != count or numbers.intersect(self.keys):
                        return False
                    new_keys = numbers
                if spec.target is not None and not numbers.issubset(spec.target.keys):
                    return False
            elif kind == "id_list":
                joined = ";".join(values)
                if not _plain_ids(joined, ";"):
                    return False
                distinct = set(joined.split(";"))
                if max(map(len, distinct)) > 9:
                    return False
                numbers = BitMap(map(int, distinct))
                if spec.target is not None and not numbers.issubset(spec.target.keys):
                    return False
            elif kind == "number":
                if not _plain_numbers("\n".join(values)):
                    return False
            else:  # date
                unknown = set(values) - self.good_dates
                for value in unknown:
                    if isinstance(_check_value(spec.column, value), str):
                        return False
                if len(self.good_dates) + len(unknown) > DATE_CACHE:
                    self.good_dates.clear()
                self.good_dates |= unknown
        if new_keys is not None:
            self.keys |= new_keys
        self.rows += count
        if self.stream is not None and not self.output.failed:
            if self.identity:
                self.stream.write("\n".join(lines))
            else:
                self.stream.write("\n".join(map(",".join, zip(*columns, strict=True))))
            self.stream.write("\n")
        return True

    def _fast_locate(self, lines: list[str]) -> bool:
        """True when none of ``lines`` holds a key being located (nothing else to do then)."""
        flat = self._split(lines)
        if flat is None:
            return False
        keys = flat[self.specs[self.key_index].position :: self.width]
        if max(map(len, keys)) > 9 or not _plain_ids(",".join(keys), ","):
            return False
        return not BitMap(int(key) & ID_MASK for key in keys).intersect(self.locate)

    # ------------------------------------------------------------------ one row, carefully

    def _row(self, number: int, fields: list[str]) -> None:
        width = self.width
        if len(fields) != width:
            self.rows += 1
            if self.locate is not None:
                return
            amount = "too few" if len(fields) < width else "too many"
            hint = "; put values containing commas in double quotes" if len(fields) > width else ""
            self.content.add(
                f"{amount} values: expected {width} ({self.file_order}) but found {len(fields)}{hint}",
                line=number,
                value=",".join(fields),
            )
            return
        key_spec = self.specs[self.key_index]
        key_text = fields[key_spec.position]
        key_id = _parse_id(key_text)
        if self.locate is not None:
            if isinstance(key_id, int):
                masked = key_id & ID_MASK
                if masked in self.locate and masked not in self.first_lines:
                    self.first_lines[masked] = number
            return
        self.rows += 1
        key = f"{key_spec.column.name} {key_id}" if isinstance(key_id, int) else None
        values: list[str] = []
        references: list[tuple[_Spec, str, list[int]]] = []
        for spec in self.specs:
            value = fields[spec.position]
            checked = _check_value(spec.column, value)
            if isinstance(checked, str):
                self.content.add(checked, line=number, column=spec.column.name, value=value, key=key)
                values.append(value)
                continue
            values.append(checked[0])
            if spec.target is not None:
                references.append((spec, checked[0], checked[1]))
        if isinstance(key_id, int):
            masked = key_id & ID_MASK
            if masked in self.keys:
                self.content.add_duplicate(number, key_spec.column.name, key_text, key or "", key_id)
            else:
                self.keys.add(masked)
        for spec, text, numbers in references:
            problems = spec.problems
            for referenced in numbers:
                if referenced & ID_MASK in spec.target.keys:
                    continue
                if spec.column.kind == "id_list":
                    message = (
                        f"compound id {referenced} in {spec.column.name} {_show(text)} "
                        f"does not exist in {spec.target_name} (no {spec.target_key} {referenced})"
                    )
                else:
                    message = (
                        f"{spec.column.name} {referenced} does not exist in {spec.target_name} "
                        f"(no {spec.target_key} {referenced})"
                    )
                problems.add(message, line=number, column=spec.column.name, value=str(referenced), key=key)
        if self.writer is not None and not self.output.failed:
            self.writer.writerow(values)

    # ------------------------------------------------------------------ the outcome

    def problems(self) -> tuple[list[Problem | _Duplicate], int]:
        """The problems kept (at most MAX_PROBLEMS) and how many there are in all."""
        if self.src.nul_line is not None:
            return [
                Problem(
                    self.name,
                    self.src.nul_line,
                    None,
                    None,
                    "the file contains a NUL character (\\x00); is it really a CSV text file?",
                )
            ], 1
        if not self.src.nonblank:
            message = (
                f"the file is empty; expected the header line '{_expected_header(self.name)}' followed by data rows"
            )
            return [Problem(self.name, None, None, None, message)], 1
        if self.mode == _BROKEN:
            return list(self.structure.kept), self.structure.count
        groups = [self.content, *self.refs]
        kept = [problem for group in groups for problem in group.kept][:MAX_PROBLEMS]
        return kept, sum(group.count for group in groups)

    def loaded_state(self) -> _Loaded:
        complete = self.mode == _ROWS and self.rows > 0 and self.content.count == 0 and self.src.nul_line is None
        return _Loaded(self.keys, complete, self.rows)


# --------------------------------------------------------------------------- files


def _scan_file(
    data_dir: Path, name: str, loaded: dict[str, _Loaded], output: _Output
) -> tuple[list[Problem], int, _Loaded | None]:
    """Read one file once (twice when it has duplicated keys): its problems (kept, count) and,
    when its structure and header were fine, what the other files need to know about it."""
    path = data_dir / name
    fail = _Problems(name, output)
    if not path.is_file():
        others = sorted(p.name for p in data_dir.iterdir() if p.name.lower() == name.lower() and p.is_file())
        hint = f" (found '{others[0]}'; file names are case-sensitive)" if others else ""
        expected = ", ".join(SEED_FILES)
        message = f"the file is missing from the data folder{hint}; expected the files {expected}"
        if path.exists():
            message = "the path exists but is not a regular file"
        fail.add(message)
        return list(fail.kept), fail.count, None
    try:
        with path.open("rb") as raw:
            start = raw.read(2)
        stream = path.open(encoding="utf-8-sig", newline=None)
    except OSError as err:
        fail.add(f"the file cannot be read: {err.strerror or err}")
        return list(fail.kept), fail.count, None
    with stream:
        if start in (b"\xff\xfe", b"\xfe\xff"):
            fail.add("the file is saved as UTF-16; save it as UTF-8 (CSV UTF-8) instead", line=1)
            return list(fail.kept), fail.count, None
        scan = _Scan(name, _Source(stream), loaded, output, output.open(name))
        try:
            scan.run()
        except UnicodeDecodeError:
            _report_bad_utf8(path, fail)
            return list(fail.kept), fail.count, None
        except _ReadError as err:  # (an OSError while writing the copy is not the user's)
            fail.add(f"the file cannot be read: {err}")
            return list(fail.kept), fail.count, None
    kept, count = scan.problems()
    duplicates = {problem.key_id & ID_MASK for problem in kept if isinstance(problem, _Duplicate)}
    first_lines: dict[int, int] = {}
    if duplicates:
        with path.open(encoding="utf-8-sig", newline=None) as stream:
            again = _Scan(name, _Source(stream), loaded, None, None, locate=BitMap(duplicates))
            again.run()
        first_lines = again.first_lines
    problems = [
        problem.problem(first_lines.get(problem.key_id & ID_MASK)) if isinstance(problem, _Duplicate) else problem
        for problem in kept
    ]
    loaded_state = scan.loaded_state() if scan.mode == _ROWS and scan.src.nul_line is None else None
    return problems, count, loaded_state


def _reading_order() -> list[str]:
    """Files that others refer to come first, so references are checked in the same pass."""
    referenced = {column.references for columns in SEED_FILES.values() for column in columns if column.references}
    return sorted(SEED_FILES, key=lambda name: name not in referenced)


def prepare_seeds(data_dir: Path, out_dir: Path) -> PreparedSeeds:
    """Validate the three CSVs in ``data_dir`` and write clean copies into ``out_dir``.

    Raises DataError listing every problem (nothing is written then) and ValueError when
    ``out_dir`` is ``data_dir`` (the user's files are never modified).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise ValueError(f"out_dir must not be the data folder itself: {out_dir}")
    if not data_dir.is_dir():
        raise DataError([Problem(str(data_dir), None, None, None, "the data folder does not exist")])
    output = _Output(out_dir)
    try:
        kept: dict[str, list[Problem]] = {}
        total = 0
        loaded: dict[str, _Loaded] = {}
        for name in _reading_order():
            kept[name], count, state = _scan_file(data_dir, name, loaded, output)
            total += count
            if state is not None:
                loaded[name] = state
        if total:
            ordered = [problem for name in SEED_FILES for problem in kept[name]]
            ordered.sort(key=lambda p: (list(SEED_FILES).index(p.file), p.line or 0))
            raise DataError(ordered[:MAX_PROBLEMS], total)
        output.publish()
    finally:
        output.discard()
    return PreparedSeeds(
        directory=out_dir,
        row_counts={name.removesuffix(".csv"): loaded[name].rows for name in SEED_FILES},
    )
