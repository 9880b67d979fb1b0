"""Read, normalise and validate the user's three CSV files before dbt seeds them.

``prepare_seeds(data_dir, out_dir)`` reads ``users.csv``, ``user_experiments.csv`` and
``compounds.csv`` from ``data_dir`` (never modifying them), checks them against
``SEED_FILES`` and, only if nothing is wrong, writes clean copies into ``out_dir`` for
``dbt seed``. Otherwise it raises ``DataError`` listing every problem found (up to
``MAX_PROBLEMS``), each naming the file, the line in the user's file, the row's key, the
column and the offending value.

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
  one broken file does not produce a flood of follow-up errors.

Line numbers are 1-based physical lines of the user's file (CRLF counts as one line
break); a record that spans lines (a quoted newline) is reported at the line it starts.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

__all__ = [
    "MAX_PROBLEMS",
    "SEED_FILES",
    "Column",
    "DataError",
    "PreparedSeeds",
    "Problem",
    "prepare_seeds",
]

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


class _Problems:
    """Problems of one file: keeps the first MAX_PROBLEMS, counts all."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.kept: list[Problem] = []
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
        self.count += 1
        if len(self.kept) < MAX_PROBLEMS:
            clipped = None if value is None else _clip(value)
            self.kept.append(Problem(self.file, line, column, clipped, message, key))


@dataclass
class _Row:
    line: int
    key: str | None
    values: dict[str, str]
    ids: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class _ParsedFile:
    name: str
    rows: list[_Row] = field(default_factory=list)
    complete: bool = False  # loaded fully: structure fine, data rows present, every value valid
    keys: set[int] = field(default_factory=set)


# --------------------------------------------------------------------------- decoding


def _decode(raw: bytes, out: _Problems) -> str | None:
    """The file's text with the BOM removed and line breaks normalised to LF, or None."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add("the file is saved as UTF-16; save it as UTF-8 (CSV UTF-8) instead", line=1)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _report_bad_utf8(raw, out)
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        out.add(
            "the file contains a NUL character (\\x00); is it really a CSV text file?",
            line=text.count("\n", 0, nul) + 1,
        )
        return None
    return text


def _report_bad_utf8(raw: bytes, out: _Problems) -> None:
    # '\r' and '\n' bytes never occur inside a UTF-8 sequence, so lines can be split as bytes.
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    for number, line in enumerate(lines, start=1):
        bad: list[str] = []
        pos = 0
        while pos < len(line):
            try:
                line[pos:].decode("utf-8")
                break
            except UnicodeDecodeError as err:
                bad.append("".join(f"\\x{byte:02x}" for byte in line[pos + err.start : pos + err.end]))
                pos += err.end
        if bad:
            shown = line.decode("utf-8", "backslashreplace").lstrip("\ufeff")
            out.add(
                f"the text is not valid UTF-8: cannot decode {' '.join(bad)} in {_show(shown)}; "
                "save the file with UTF-8 encoding",
                line=number,
                value=" ".join(bad),
            )


# --------------------------------------------------------------------------- CSV parsing

_BLANKS = re.compile(r"[ \t]*")
_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')
_UNQUOTED = re.compile(r"[^,\n]*")


def _split_records(text: str) -> tuple[list[tuple[int, str]], int | None]:
    """Split LF-normalised CSV text into records: (first physical line, record text).

    Spaces and TABs around fields (outside quotes) are dropped, so that ``a,\\t"b,c"``
    reads as two fields; blank lines give no record. The second item is the line where an
    unterminated quoted field opened (records after it are not returned), else None.
    Field parsing itself is left to the csv module.
    """
    records: list[tuple[int, str]] = []
    pieces: list[str] = []
    line = start = 1
    pos, end = 0, len(text)
    while True:
        pos = _BLANKS.match(text, pos).end()
        if pos < end and text[pos] == '"':
            quoted = _QUOTED.match(text, pos)
            if quoted is None:
                return records, line
            pieces.append(quoted.group())
            line += quoted.group().count("\n")
            pos = quoted.end()
            after = _BLANKS.match(text, pos).end()
            if after < end and text[after] not in ",\n":
                # text after the closing quote: keep it as it is so the csv module rejects it
                rest = _UNQUOTED.match(text, pos)
                pieces.append(rest.group())
                pos = rest.end()
            else:
                pos = after
        else:
            unquoted = _UNQUOTED.match(text, pos)
            pieces.append(unquoted.group().rstrip(" \t"))
            pos = unquoted.end()
        if pos < end and text[pos] == ",":
            pieces.append(",")
            pos += 1
            continue
        record = "".join(pieces)
        if record:
            records.append((start, record))
        if pos >= end:
            return records, None
        pos += 1  # the '\n' ending the record
        line += 1
        start = line
        pieces = []


def _parse_fields(record: str) -> list[str]:
    """The trimmed fields of one record; raises csv.Error when it is not valid CSV."""
    rows = list(csv.reader(io.StringIO(record, newline=""), strict=True))
    if len(rows) != 1:
        raise csv.Error("the record does not parse as a single row")
    return [value.strip() for value in rows[0]]


def _read_records(text: str, out: _Problems) -> list[tuple[int, list[str]]] | None:
    """All non-blank records as (line, fields), or None when the CSV structure is broken."""
    raw_records, open_quote_line = _split_records(text)
    records: list[tuple[int, list[str]]] = []
    broken = False
    for line, record in raw_records:
        try:
            fields = _parse_fields(record)
        except csv.Error:
            out.add(
                'unexpected text after the closing quote of a quoted value; to put a " inside '
                'a quoted value write it twice (""), or leave the value unquoted',
                line=line,
                value=record,
            )
            broken = True
            continue
        if any(fields):  # rows of empty fields (",,,") are blank rows
            records.append((line, fields))
    if open_quote_line is not None:
        out.add(
            'a quoted value starting on this line is never closed (missing closing ")',
            line=open_quote_line,
        )
        broken = True
    return None if broken else records


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


def _check_rows(
    name: str, positions: dict[str, int], records: list[tuple[int, list[str]]], out: _Problems
) -> _ParsedFile:
    columns = SEED_FILES[name]
    width = len(positions)
    key_column = next(column for column in columns if column.unique)
    parsed = _ParsedFile(name)
    header_order = sorted(positions, key=positions.__getitem__)
    first_line: dict[int, int] = {}
    before = out.count
    for line, fields in records:
        if len(fields) != width:
            amount = "too few" if len(fields) < width else "too many"
            hint = "; put values containing commas in double quotes" if len(fields) > width else ""
            out.add(
                f"{amount} values: expected {width} ({', '.join(header_order)}) but found {len(fields)}{hint}",
                line=line,
                value=",".join(fields),
            )
            continue
        raw = {column.name: fields[positions[column.name]] for column in columns}
        key_id = _parse_id(raw[key_column.name])
        key = f"{key_column.name} {key_id}" if isinstance(key_id, int) else None
        row = _Row(line, key, {})
        for column in columns:
            checked = _check_value(column, raw[column.name])
            if isinstance(checked, str):
                out.add(checked, line=line, column=column.name, value=raw[column.name], key=key)
                continue
            row.values[column.name], row.ids[column.name] = checked
        if isinstance(key_id, int):
            if key_id in first_line:
                out.add(
                    f"{key_column.name} {key_id} appears more than once (lines {first_line[key_id]} and {line})",
                    line=line,
                    column=key_column.name,
                    value=raw[key_column.name],
                    key=key,
                )
            else:
                first_line[key_id] = line
        parsed.rows.append(row)
    parsed.keys = set(first_line)
    parsed.complete = out.count == before
    return parsed


def _check_references(parsed: dict[str, _ParsedFile], problems: dict[str, _Problems]) -> None:
    for name, columns in SEED_FILES.items():
        source = parsed.get(name)
        if source is None:
            continue
        for column in columns:
            target = parsed.get(column.references or "")
            if target is None or not target.complete:
                continue
            target_key = next(c.name for c in SEED_FILES[target.name] if c.unique)
            for row in source.rows:
                for number in row.ids.get(column.name, []):
                    if number in target.keys:
                        continue
                    if column.kind == "id_list":
                        message = (
                            f"compound id {number} in {column.name} {_show(row.values[column.name])} "
                            f"does not exist in {target.name} (no {target_key} {number})"
                        )
                    else:
                        message = f"{column.name} {number} does not exist in {target.name} (no {target_key} {number})"
                    problems[name].add(message, line=row.line, column=column.name, value=str(number), key=row.key)


# --------------------------------------------------------------------------- files


def _load_file(data_dir: Path, name: str, out: _Problems) -> _ParsedFile | None:
    path = data_dir / name
    if not path.is_file():
        others = sorted(p.name for p in data_dir.iterdir() if p.name.lower() == name.lower() and p.is_file())
        hint = f" (found '{others[0]}'; file names are case-sensitive)" if others else ""
        expected = ", ".join(SEED_FILES)
        message = f"the file is missing from the data folder{hint}; expected the files {expected}"
        if path.exists():
            message = "the path exists but is not a regular file"
        out.add(message)
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        out.add(f"the file cannot be read: {err.strerror or err}")
        return None
    text = _decode(raw, out)
    if text is None:
        return None
    if not text.strip():
        out.add(f"the file is empty; expected the header line '{_expected_header(name)}' followed by data rows")
        return None
    records = _read_records(text, out)
    if records is None:
        return None
    if not records:  # only commas and whitespace
        out.add(f"the file has no header and no data; expected the header line '{_expected_header(name)}'")
        return None
    (header_line, header), data = records[0], records[1:]
    positions = _check_header(name, header_line, header, out)
    if positions is None:
        return None
    # Rows must have as many fields as the header; a duplicate or unexpected column would
    # have been rejected above, so the header width is the number of expected columns.
    if not data:
        out.add(f"the file has a header (line {header_line}) but no data rows")
        return None
    return _check_rows(name, positions, data, out)


def _write_outputs(out_dir: Path, parsed: dict[str, _ParsedFile]) -> None:
    """Write every file to a temporary name first, then rename them all into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary: dict[str, Path] = {}
    try:
        for name, columns in SEED_FILES.items():
            handle, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            temporary[name] = Path(tmp_name)
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                writer = csv.writer(stream, lineterminator="\n")
                writer.writerow([column.name for column in columns])
                writer.writerows([row.values[column.name] for column in columns] for row in parsed[name].rows)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(tmp_name, 0o600)
        for name, tmp_path in temporary.items():
            os.replace(tmp_path, out_dir / name)
    finally:
        for tmp_path in temporary.values():
            tmp_path.unlink(missing_ok=True)


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
    problems = {name: _Problems(name) for name in SEED_FILES}
    parsed: dict[str, _ParsedFile] = {}
    for name in SEED_FILES:
        result = _load_file(data_dir, name, problems[name])
        if result is not None:
            parsed[name] = result
    _check_references(parsed, problems)
    total = sum(collected.count for collected in problems.values())
    if total:
        ordered = [problem for name in SEED_FILES for problem in problems[name].kept]
        ordered.sort(key=lambda p: (list(SEED_FILES).index(p.file), p.line or 0))
        raise DataError(ordered[:MAX_PROBLEMS], total)
    _write_outputs(out_dir, parsed)
    return PreparedSeeds(
        directory=out_dir,
        row_counts={name.removesuffix(".csv"): len(parsed[name].rows) for name in SEED_FILES},
    )
