"""The careful record tokenizer: one CSV record, quoted values holding commas, doubled quotes and
newlines (so spanning lines) included, read into trimmed fields.

The rule it keeps: a record is held whole only up to ``MAX_RECORD_CHARS`` characters; a longer one
(almost always a missing closing quote) is kept only as far as that and rejected. It reports
nothing: a broken record comes back as a ``Broken`` (message, line, value) that the scan reports.
"""

from __future__ import annotations

import csv
import io
from typing import NamedTuple

from api.core.seeds.reader import Source

MAX_RECORD_CHARS = 1_000_000
"""A record longer than this (quoted newlines included) is rejected instead of being held in memory."""

_UNEXPECTED_AFTER_QUOTE = (
    'unexpected text after the closing quote of a quoted value; to put a " inside '
    'a quoted value write it twice (""), or leave the value unquoted'
)
_NEVER_CLOSED = 'a quoted value starting on this line is never closed (missing closing ")'


class Broken(NamedTuple):
    """A record that is not valid CSV: the message, the line it starts on, and its text when useful."""

    message: str
    line: int
    value: str | None = None


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


def careful_record(first: str, start: int, source: Source) -> list[str] | Broken | None:
    """The fields of the record that starts with line ``first`` (number ``start``), reading
    further lines from ``source`` while a quoted value holds newlines. None for a blank record;
    a broken one (never closed, too long, not CSV) is described by a ``Broken``. Spaces and
    TABs around fields (outside quotes) are dropped, so that ``a,\\t"b,c"`` reads as two
    fields; the csv module then parses the record."""
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
                following = source.next_line()
                if following is None:
                    if last_even is None:
                        return Broken(_NEVER_CLOSED, opened)
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
            return Broken(_UNEXPECTED_AFTER_QUOTE, start, record)
        return Broken(
            f"a record longer than {MAX_RECORD_CHARS} characters starts on this line; "
            'is the closing quote (") of a quoted value missing?',
            start,
        )
    if not record:
        return None
    try:
        fields = _parse_fields(record)
    except csv.Error:
        return Broken(_UNEXPECTED_AFTER_QUOTE, start, record)
    return fields if any(fields) else None  # rows of empty fields (",,,") are blank rows
