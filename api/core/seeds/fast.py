"""The fast path: a block of ordinary lines checked all at once, with string methods that run in C.

Ordinary lines are records of their own: no quotes, or quotes only around whole values that hold
no quote or comma (``SIMPLY_QUOTED``). ``tidied`` turns such lines into what the careful path
reads (quotes and whitespace around values removed, blank lines dropped).

The rule it keeps: it only accepts or rejects. ``fast_block`` accepts a block only when every
value is right and already in normal form, no key repeats and no reference dangles, so that
the careful path would write exactly the same rows; it then returns what the scan applies (rows
counted, the keys seen, the text to write, the dates learned). Otherwise it returns None and the
scan takes the block apart. It reports nothing, writes nothing and changes nothing.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import NamedTuple

from pyroaring import BitMap

from api.core.seeds.schema import Spec
from api.core.seeds.values import ID_MASK, check_value, plain_ids, plain_numbers

SIMPLY_QUOTED = re.compile(r'(?:[ \t]*"[^",\n]*"[ \t]*|[^",\n]*)(?:,(?:[ \t]*"[^",\n]*"[ \t]*|[^",\n]*))*')
"""A line whose quotes only wrap whole values holding no quote or comma: a record of its own,
read exactly like the same line with its quotes removed."""


SPACES_BUT_LF = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What ``str.strip()`` removes (``str.isspace``), except the line feed (which ends a record)."""


def tidied(lines: list[str]) -> list[str]:
    """Quote-free lines or simply quoted ones (see ``SIMPLY_QUOTED``) as the careful path reads
    them: quotes removed, whitespace around values trimmed, blank records dropped."""
    text = "\n".join(map(str.strip, "\n".join(lines).replace('"', "").split("\n")))
    text = ",".join(map(str.strip, text.split(","), repeat(SPACES_BUT_LF)))
    return [line for line in text.split("\n") if line.strip(",")]


class _Accepted(NamedTuple):
    """A block the fast path accepted, for the scan to apply."""

    rows: int
    keys: BitMap | None  # the block's keys (as uint32), none of them seen before
    text: str | None  # the clean rows, joined by newlines (None when not asked for)
    dates: set[str]  # valid dates that were not known yet


def _split(lines: list[str], width: int, field_limit: int) -> list[str] | None:
    """The fields of equally wide, not too long lines, all in one list; None otherwise."""
    if max(map(len, lines)) > field_limit:
        return None
    if list(map(str.count, lines, repeat(","))).count(width - 1) != len(lines):
        return None
    return ",".join(lines).split(",")


def fast_block(
    lines: list[str],
    specs: list[Spec],
    *,
    width: int,
    key_index: int,
    field_limit: int,
    keys: BitMap,
    good_dates: set[str],
    identity: bool,
    write: bool,
) -> _Accepted | None:
    """``lines`` accepted when every value is already in normal form and right, no key is in
    ``keys`` or repeats, and no reference dangles; None otherwise. Dates in ``good_dates`` are
    known to be valid. With ``write``, the accepted rows' text in output order (``identity``:
    the columns already are)."""
    flat = _split(lines, width, field_limit)
    if flat is None:
        return None
    count = len(lines)
    columns: list[list[str]] = []
    new_keys: BitMap | None = None
    dates: set[str] = set()
    for index, spec in enumerate(specs):
        values = flat[spec.position :: width]
        columns.append(values)
        kind = spec.column.kind
        if kind == "text":
            if list(map(str.strip, values)) != values:
                return None
        elif kind == "id":
            if max(map(len, values)) > 9 or not plain_ids(",".join(values), ","):
                return None  # (ids of 10 digits may be out of range: checked one by one)
            numbers = BitMap(map(int, values))
            if index == key_index:
                if len(numbers) != count or numbers.intersect(keys):
                    return None
                new_keys = numbers
            if spec.target is not None and not numbers.issubset(spec.target.keys):
                return None
        elif kind == "id_list":
            joined = ";".join(values)
            if not plain_ids(joined, ";"):
                return None
            distinct = set(joined.split(";"))
            if max(map(len, distinct)) > 9:
                return None
            numbers = BitMap(map(int, distinct))
            if spec.target is not None and not numbers.issubset(spec.target.keys):
                return None
        elif kind == "number":
            if not plain_numbers("\n".join(values)):
                return None
        else:  # date
            unknown = set(values) - good_dates
            unknown -= dates
            for value in unknown:
                if isinstance(check_value(spec.column, value), str):
                    return None
            dates |= unknown
    text = None
    if write:
        text = "\n".join(lines) if identity else "\n".join(map(",".join, zip(*columns, strict=True)))
    return _Accepted(count, new_keys, text, dates)


def none_located(lines: list[str], key_position: int, width: int, field_limit: int, locate: BitMap) -> bool:
    """True when none of ``lines`` holds a key in ``locate`` (so there is nothing to do with them)."""
    flat = _split(lines, width, field_limit)
    if flat is None:
        return False
    keys = flat[key_position::width]
    if max(map(len, keys)) > 9 or not plain_ids(",".join(keys), ","):
        return False
    return not BitMap(int(key) & ID_MASK for key in keys).intersect(locate)
