"""Read, normalise and validate the user's three CSV files before dbt seeds them, as a stream.

``prepare_seeds(data_dir, out_dir)`` reads ``users.csv``, ``user_experiments.csv`` and
``compounds.csv`` from ``data_dir`` (never modifying them), checks them against
``SEED_FILES`` and, only if nothing is wrong, puts clean copies into ``out_dir`` for
``dbt seed``. Otherwise it raises ``DataError`` listing every problem found (up to
``MAX_PROBLEMS``), each naming the file, the line in the user's file, the row's key, the
column and the offending value.

Memory does not grow with the data: files are read chunk by chunk and each clean row is
written to a temporary file at once; what is kept across rows is only compact integer sets
(keys, for duplicates and references) and at most ``MAX_PROBLEMS`` problems per file. The
temporary files replace the outputs, all together, only when nothing is wrong.

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

The parts, each keeping one rule:

* ``schema``: the expected files and columns (``SEED_FILES``) and the header check;
* ``values``: the rules for one value (ids, dates, numbers, lists of ids);
* ``reader``: the file as physical lines, a chunk at a time (newlines, BOM, NUL, bad UTF-8);
* ``records``: the careful tokenizer of one record (quoted values over lines, the length limit);
* ``fast``: blocks of ordinary lines checked at once, accepted or rejected as a whole;
* ``scan``: one pass over one file, the only part that reports problems and writes rows;
* ``problems`` and ``output``: what is reported, and the copies published all together;
* ``prepare``: ``prepare_seeds``, the three files in reading order, duplicates' first lines.
"""

from __future__ import annotations

from api.core.seeds.prepare import PreparedSeeds, prepare_seeds
from api.core.seeds.problems import MAX_PROBLEMS, DataError, Problem
from api.core.seeds.records import MAX_RECORD_CHARS
from api.core.seeds.schema import SEED_FILES, Column

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
