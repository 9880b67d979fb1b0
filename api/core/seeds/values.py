"""The rules for one value: ids, dates, numbers and lists of ids, checked and put in normal form.

The rule it keeps: a value is accepted in its documented forms only and is written in one normal
form (ids as plain integers, lists as ``1;2;3``, numbers and dates as given). ``check_value``
checks one value (trimmed) and gives the message for a wrong one; ``plain_ids`` and
``plain_numbers`` recognise, a whole column at a time, values that are right and already in
normal form, and nothing else.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from api.core.seeds.problems import show
from api.core.seeds.schema import Column

PG_INT_MIN = -(2**31)
PG_INT_MAX = 2**31 - 1
ID_MASK = 0xFFFFFFFF
"""Ids (Postgres integers) are kept in sets of unsigned 32-bit ints as their two's complement."""

_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def parse_id(text: str) -> int | str:
    """The id, or the reason it is not one."""
    if not _INT.fullmatch(text):
        return "is not a whole number"
    number = int(text)
    if not PG_INT_MIN <= number <= PG_INT_MAX:
        return f"is out of range (ids must be between {PG_INT_MIN} and {PG_INT_MAX})"
    return number


def check_value(column: Column, value: str) -> tuple[str, list[int]] | str:
    """(normalised value, ids it holds) or an error message for the value."""
    name = column.name
    if column.kind == "text":
        return value, []
    if not value:
        if column.kind == "id_list":
            return f"{name} is empty; list at least one compound id, e.g. 1;2;3"
        return f"{name} is empty"
    if column.kind == "id":
        number = parse_id(value)
        if isinstance(number, str):
            return f"{name} {show(value)} {number}"
        return str(number), [number]
    if column.kind == "id_list":
        ids: list[int] = []
        for position, item in enumerate(value.split(";"), start=1):
            item = item.strip()
            number = parse_id(item) if item else "is empty"
            if isinstance(number, str):
                what = f"entry {position} is empty" if not item else f"entry {show(item)} {number}"
                return f"{name} {show(value)} is not a ';'-separated list of compound ids ({what}); write it like 1;2;3"
            ids.append(number)
        return ";".join(str(number) for number in ids), ids
    if column.kind == "date":
        match = _DATE.fullmatch(value)
        if not match:
            return f"{name} {show(value)} is not a date written YYYY-MM-DD (e.g. 2023-01-31)"
        try:
            date(*(int(part) for part in match.groups()))
        except ValueError:
            return f"{name} {show(value)} is not a real calendar date"
        return value, []
    # number
    if not _NUMBER.fullmatch(value):
        hint = "use '.' as the decimal separator" if "," in value else "write digits with an optional decimal part"
        return f"{name} {show(value)} is not a number ({hint}, e.g. 12.5)"
    if value.startswith("-"):
        if Decimal(value) != 0:
            return f"{name} {show(value)} is negative; it must be 0 or more"
        value = value[1:]
    return value, []


def plain_ids(joined: str, sep: str) -> bool:
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


_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:\n[0-9]+(?:\.[0-9]+)?)*")


def plain_numbers(joined: str) -> bool:
    """True when ``joined`` is newline-separated numbers, each digits with an optional decimal part."""
    if "." in joined:
        return _NUMBERS.fullmatch(joined) is not None
    if not joined or joined[0] == "\n" or joined[-1] == "\n" or "\n\n" in joined:
        return False
    digits = joined.replace("\n", "")
    return digits.isascii() and digits.isdigit()
