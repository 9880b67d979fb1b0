"""One pass over one file: the scan drives the reader, the header check, the fast block path and the
careful row check, reports every problem and writes the clean rows.

The rule it keeps: only the scan reports. The parts it drives return what they found (a record's
fields or what is broken about it, the header's issues, an accepted or rejected block) and the
scan decides what it means: which problems count (a broken CSV structure hides the value
problems), which keys were seen, what is written. Across rows it keeps only integer sets of the
keys, a bounded cache of valid dates and at most ``MAX_PROBLEMS`` problems of each kind, so its
memory does not grow with the data.

How it is fast: runs of lines that are records of their own (no quotes, or quotes only around
whole values) go to the fast path a block at a time, as they are or tidied; a block it rejects is
split into ``FAN_OUT`` parts until blocks of at most ``SMALL_BLOCK`` lines go one by one through
the careful path, which gives every message. Other records (a quoted comma, newline or doubled
quote) always take the careful path; with ``careful`` set, every record does.
"""

from __future__ import annotations

import csv
from typing import IO

from pyroaring import BitMap

from api.core.seeds.fast import SIMPLY_QUOTED, fast_block, none_located, tidied
from api.core.seeds.output import Output
from api.core.seeds.problems import MAX_PROBLEMS, Duplicate, Problem, ProblemList, show
from api.core.seeds.reader import Source
from api.core.seeds.records import Broken, careful_record
from api.core.seeds.schema import SEED_FILES, Loaded, Spec, check_header, expected_header
from api.core.seeds.values import ID_MASK, check_value, parse_id

SMALL_BLOCK = 16
"""A block of ordinary lines that fails the fast check and has at most this many lines is
checked line by line; a larger one is split into ``FAN_OUT`` parts first."""
FAN_OUT = 8
DATE_CACHE = 100_000
"""At most this many distinct valid dates are remembered (dates repeat a lot)."""

_HEADER, ROWS, _SKIP, _BROKEN = range(4)
"""Scan modes: looking for the header; checking data rows; header wrong (only the CSV structure
is still checked); structure broken (only further structure problems are collected)."""


class Scan:
    """One pass over one file. In the normal pass it checks every record, collects problems and
    writes the clean rows to ``stream``; with ``locate`` set it only finds the first line of
    each key in ``locate`` (the duplicated ones), for the messages. With ``careful``, every
    record is read and checked one by one (the fast path is never used)."""

    def __init__(
        self,
        name: str,
        source: Source,
        loaded: dict[str, Loaded],
        output: Output | None,
        stream: IO[str] | None,
        locate: BitMap | None = None,
        *,
        careful: bool = False,
    ) -> None:
        self.name = name
        self.src = source
        self.loaded = loaded
        self.output = output
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n") if stream is not None else None
        self.locate = locate
        self.careful = careful
        self.first_lines: dict[int, int] = {}
        self.field_limit = csv.field_size_limit()
        self.columns = SEED_FILES[name]
        self.key_index = next(index for index, column in enumerate(self.columns) if column.unique)
        self.mode = _HEADER
        abandon = None if output is None else output.fail
        self.structure = ProblemList(name, abandon)
        self.content = ProblemList(name, abandon)
        self.refs = [ProblemList(name, abandon) for column in self.columns if column.references]
        self.keys = BitMap()
        self.rows = 0
        self.header_line = 0
        self.width = 0
        self.specs: list[Spec] = []
        self.identity = False
        self.file_order = ""
        self.good_dates: set[str] = set()

    # ------------------------------------------------------------------ driving

    def run(self) -> None:
        src = self.src
        careful = self.careful
        while src.fill():
            if self.locate is not None and len(self.first_lines) == len(self.locate):
                return
            if careful or self.mode == _HEADER:
                number = src.base + src.i
                src.i += 1
                self._one(src.lines[src.i - 1], number)
                continue
            lines, start, end = src.lines, src.i, len(src.lines)
            stop = end
            if src.quotes:
                stop = start
                while stop < end and ('"' not in lines[stop] or SIMPLY_QUOTED.fullmatch(lines[stop])):
                    stop += 1
            if stop > start:
                block = lines if start == 0 and stop == end else lines[start:stop]
                if self.mode == ROWS:
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
                f"the file has no header and no data; expected the header line '{expected_header(self.name)}'"
            )
        elif self.mode == ROWS and self.rows == 0:
            self.content.add(f"the file has a header (line {self.header_line}) but no data rows")

    def _one(self, line: str, number: int) -> None:
        """The record starting with ``line`` (the source's cursor is just past it)."""
        if '"' in line or len(line) > self.field_limit:
            fields = careful_record(line, number, self.src)
            if fields is None:
                return
            if isinstance(fields, Broken):
                self._broken(fields.message, fields.line, fields.value)
                return
        else:
            fields = [field.strip() for field in line.split(",")]
            if not any(fields):  # blank line, or a line of commas
                return
        self._record(number, fields)

    def _record(self, number: int, fields: list[str]) -> None:
        if self.mode == ROWS:
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

    # ------------------------------------------------------------------ header

    def _header(self, number: int, fields: list[str]) -> None:
        positions, issues = check_header(self.name, fields)
        if self.locate is None:
            for issue in issues:
                self.content.add(issue.message, line=number, column=issue.column, value=issue.value)
        self.header_line = number
        if positions is None:
            self.mode = _SKIP
            return
        self.mode = ROWS
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
            self.specs.append(Spec(column, positions[column.name], complete, column.references, target_key, group))
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
            tidy = tidied(lines)
            if not tidy or ((not plain or tidy != lines) and fast(tidy)):  # (not tidy: blank lines only)
                return
        if len(lines) <= SMALL_BLOCK:
            for offset, line in enumerate(lines):
                self._one(line, base + offset)
            return
        step = -(-len(lines) // FAN_OUT)
        for offset in range(0, len(lines), step):
            self._block(lines[offset : offset + step], base + offset)

    def _fast(self, lines: list[str]) -> bool:
        """True when the fast path accepts ``lines``: their rows are then counted, their keys kept,
        their dates remembered and their text written. False, changing nothing, otherwise."""
        accepted = fast_block(
            lines,
            self.specs,
            width=self.width,
            key_index=self.key_index,
            field_limit=self.field_limit,
            keys=self.keys,
            good_dates=self.good_dates,
            identity=self.identity,
            write=self.stream is not None and not self.output.failed,
        )
        if accepted is None:
            return False
        if accepted.keys is not None:
            self.keys |= accepted.keys
        self.rows += accepted.rows
        if accepted.dates:
            if len(self.good_dates) + len(accepted.dates) > DATE_CACHE:
                self.good_dates.clear()
            self.good_dates |= accepted.dates
        if accepted.text is not None:
            self.stream.write(accepted.text)
            self.stream.write("\n")
        return True

    def _fast_locate(self, lines: list[str]) -> bool:
        """True when none of ``lines`` holds a key being located (nothing else to do then)."""
        return none_located(lines, self.specs[self.key_index].position, self.width, self.field_limit, self.locate)

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
        key_id = parse_id(key_text)
        if self.locate is not None:
            if isinstance(key_id, int):
                masked = key_id & ID_MASK
                if masked in self.locate and masked not in self.first_lines:
                    self.first_lines[masked] = number
            return
        self.rows += 1
        key = f"{key_spec.column.name} {key_id}" if isinstance(key_id, int) else None
        values: list[str] = []
        references: list[tuple[Spec, str, list[int]]] = []
        for spec in self.specs:
            value = fields[spec.position]
            checked = check_value(spec.column, value)
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
                        f"compound id {referenced} in {spec.column.name} {show(text)} "
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

    def problems(self) -> tuple[list[Problem | Duplicate], int]:
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
                f"the file is empty; expected the header line '{expected_header(self.name)}' followed by data rows"
            )
            return [Problem(self.name, None, None, None, message)], 1
        if self.mode == _BROKEN:
            return list(self.structure.kept), self.structure.count
        groups = [self.content, *self.refs]
        kept = [problem for group in groups for problem in group.kept][:MAX_PROBLEMS]
        return kept, sum(group.count for group in groups)

    def loaded_state(self) -> Loaded:
        complete = self.mode == ROWS and self.rows > 0 and self.content.count == 0 and self.src.nul_line is None
        return Loaded(self.keys, complete, self.rows)
