"""Data-set variants for tests: the canonical seeds, cosmetic-mess variants and one-fault variants.

Every variant is a function that rewrites a folder holding a copy of the canonical seeds::

    data = copy_canonical(tmp_path / "data")
    messy_variants()["crlf"](data)

* ``messy_variants()``: cosmetic mess only; each must load to exactly the canonical result.
* ``quoted_value_variants()``: quoted fields that change compound names; each comes with
  the compound names (by compound_id) it must load to.
* ``bad_variants()``: one fault each; each comes with a substring the error must contain.

The edit helpers (``set_cell``, ``replace_line``, ...) address lines 1-based as in the
canonical files (line 1 is the header, line N holds the row with id N - 1).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

Mutation = Callable[[Path], None]

CANONICAL_DIR = Path(__file__).resolve().parent.parent / "seeds"
USERS, EXPERIMENTS, COMPOUNDS = "users.csv", "user_experiments.csv", "compounds.csv"
SEED_FILE_NAMES = (USERS, EXPERIMENTS, COMPOUNDS)
CANONICAL_ROW_COUNTS = {"users": 10, "user_experiments": 11, "compounds": 3}
CANONICAL_COMPOUND_NAMES = {1: "Compound A", 2: "Compound B", 3: "Compound C"}


def copy_canonical(dest: Path) -> Path:
    """Copy the three canonical CSVs into ``dest`` (created if needed); return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SEED_FILE_NAMES:
        shutil.copyfile(CANONICAL_DIR / name, dest / name)
    return dest


# --------------------------------------------------------------------------- edit helpers


def chain(*mutations: Mutation) -> Mutation:
    def apply(folder: Path) -> None:
        for mutation in mutations:
            mutation(folder)

    return apply


def edit_bytes(name: str, edit: Callable[[bytes], bytes]) -> Mutation:
    def apply(folder: Path) -> None:
        path = folder / name
        path.write_bytes(edit(path.read_bytes()))

    return apply


def edit_text(name: str, edit: Callable[[str], str]) -> Mutation:
    """Edit one file as UTF-8 text (line endings untouched)."""
    return edit_bytes(name, lambda raw: edit(raw.decode("utf-8")).encode("utf-8"))


def edit_all(edit: Callable[[str], str]) -> Mutation:
    return chain(*(edit_text(name, edit) for name in SEED_FILE_NAMES))


def write_file(name: str, content: bytes | str) -> Mutation:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return lambda folder: (folder / name).write_bytes(data)


def delete_file(name: str) -> Mutation:
    return lambda folder: (folder / name).unlink()


def _lines(edit: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    """Edit the lines of an LF text (a final newline is kept as it was)."""

    def apply(text: str) -> str:
        final = text.endswith("\n")
        lines = edit(text.removesuffix("\n").split("\n"))
        return "\n".join(lines) + ("\n" if final else "")

    return apply


def replace_line(name: str, line: int, text: str) -> Mutation:
    """Replace line ``line`` (1-based) of a file by the raw CSV ``text``."""

    def edit(lines: list[str]) -> list[str]:
        return [*lines[: line - 1], text, *lines[line:]]

    return edit_text(name, _lines(edit))


def keep_lines(name: str, count: int) -> Mutation:
    """Keep only the first ``count`` lines of a file."""
    return edit_text(name, _lines(lambda lines: lines[:count]))


def _cells(edit: Callable[[int, int, str], str]) -> Callable[[str], str]:
    """Rewrite every cell of an unquoted LF CSV text: edit(line_index, column_index, cell)."""

    def per_line(lines: list[str]) -> list[str]:
        return [
            ",".join(edit(row, col, cell) for col, cell in enumerate(line.split(","))) for row, line in enumerate(lines)
        ]

    return _lines(per_line)


def set_cell(name: str, line: int, column: str, text: str) -> Mutation:
    """Set one cell of an unquoted file to the raw CSV ``text`` (quote it yourself if needed)."""

    def apply(folder: Path) -> None:
        header = (folder / name).read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        index = header.index(column)
        edit = _cells(lambda row, col, cell: text if (row, col) == (line - 1, index) else cell)
        edit_text(name, edit)(folder)

    return apply


def drop_column(name: str, column: str) -> Mutation:
    def apply(folder: Path) -> None:
        index = (folder / name).read_text(encoding="utf-8").split("\n", 1)[0].split(",").index(column)
        edit_text(name, _lines(lambda lines: [_without(line.split(","), index) for line in lines]))(folder)

    return apply


def _without(cells: list[str], index: int) -> str:
    return ",".join(cells[:index] + cells[index + 1 :])


def add_column(name: str, header: str, value: str) -> Mutation:
    """Append a column: ``header`` on line 1, ``value`` on every other line."""
    return edit_text(name, _lines(lambda lines: [lines[0] + "," + header] + [f"{x},{value}" for x in lines[1:]]))


# --------------------------------------------------------------------------- cosmetic mess


def _bom(raw: bytes) -> bytes:
    return b"\xef\xbb\xbf" + raw


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def _cr(text: str) -> str:
    return text.replace("\n", "\r")


def _blank_lines(text: str) -> str:
    """Blank and whitespace-only lines before the header, between all rows and at the end."""
    return "\n \t\n\n" + text.rstrip("\n").replace("\n", "\n\n  \n\t\n") + "\n\n   \n"


def _comma_lines(text: str) -> str:
    """Lines of empty fields (as spreadsheets export them) between rows and at the end."""
    return text.rstrip("\n").replace("\n", "\n,,\n") + "\n, ,\n"


def _no_final_newline(text: str) -> str:
    return text.rstrip("\n")


_spaces = _cells(lambda row, col, cell: f"  {cell}   ")
_tabs = _cells(lambda row, col, cell: f"\t{cell} \t")
_quoted = _cells(lambda row, col, cell: f'"{cell}"')
_quoted_blanks = _cells(lambda row, col, cell: (f' "{cell}"  ', f'\t"{cell}"\t')[(row + col) % 2])


def _list_spaces(text: str) -> str:
    """Whitespace around the ids of the compound lists (column 3 of user_experiments.csv)."""
    return _cells(lambda row, col, cell: cell.replace(";", " ;\t ") if (row and col == 2) else cell)(text)


def _leading_zeros(text: str) -> str:
    """Ids written with leading zeros (``007``), in the compound lists too."""

    def pad(row: int, col: int, cell: str) -> str:
        if row and col == 0:
            return "00" + cell
        if row and col == 2 and ";" in cell:
            return ";".join("0" + part for part in cell.split(";"))
        return cell

    return _cells(pad)(text)


def _reorder(text: str) -> str:
    """Columns in reverse order."""
    return _lines(lambda lines: [",".join(reversed(line.split(","))) for line in lines])(text)


def _combine(*edits: Callable[[str], str]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        for edit in edits:
            text = edit(text)
        return text

    return apply


def messy_variants() -> dict[str, Mutation]:
    """Cosmetic-mess variants (applied to all three files) that load exactly like the canonical data."""
    every = {
        "crlf": _crlf,
        "cr_only": _cr,
        "blank_lines": _blank_lines,
        "comma_only_lines": _comma_lines,
        "spaces_around_values": _spaces,
        "tabs_around_values": _tabs,
        "no_trailing_newline": _no_final_newline,
        "quoted_values": _quoted,
        "quoted_values_with_blanks": _quoted_blanks,
        "compound_list_spaces": _list_spaces,
        "leading_zero_ids": _leading_zeros,
        "reordered_columns": _reorder,
    }
    variants: dict[str, Mutation] = {"bom": chain(*(edit_bytes(n, _bom) for n in SEED_FILE_NAMES))}
    variants.update({name: edit_all(edit) for name, edit in every.items()})
    combined = _combine(_list_spaces, _quoted_blanks, _blank_lines, _no_final_newline, _crlf)
    variants["all_combined"] = chain(edit_all(combined), *(edit_bytes(n, _bom) for n in SEED_FILE_NAMES))
    return variants


def quoted_value_variants() -> dict[str, tuple[Mutation, dict[int, str]]]:
    """Quoted fields holding commas, newlines and quotes: (variant, compound_name by compound_id)."""
    plain = {
        "quoted_comma": (
            set_cell(COMPOUNDS, 2, "compound_name", '"Compound, A"'),
            {**CANONICAL_COMPOUND_NAMES, 1: "Compound, A"},
        ),
        "quoted_newline": (
            set_cell(COMPOUNDS, 3, "compound_name", '"Compound\nB"'),
            {**CANONICAL_COMPOUND_NAMES, 2: "Compound\nB"},
        ),
        "quoted_doubled_quote": (
            set_cell(COMPOUNDS, 4, "compound_name", '"Compound ""C"""'),
            {**CANONICAL_COMPOUND_NAMES, 3: 'Compound "C"'},
        ),
    }
    messy_rows = [
        'compound_id ,\t"compound_name"  , compound_structure',
        '1,\t"Compound, A"\t, C20H25N3O',
        '2, "Compound\nB" ,C21H30O2',
        ' 3 ,  "Compound ""C"""\t,\t"C8H11NO2"',
    ]
    # BOM, CRLF (also inside the quoted newline), blank lines, no final newline
    messy = write_file(COMPOUNDS, "\ufeff" + ("\n  \n" + "\n\n".join(messy_rows)).replace("\n", "\r\n"))
    expected = {1: "Compound, A", 2: "Compound\nB", 3: 'Compound "C"'}
    return {**plain, "quoted_fields_messy": (messy, expected)}


# --------------------------------------------------------------------------- one fault each


def bad_variants() -> dict[str, tuple[Mutation, str]]:
    """One fault each, starting from the canonical data: (variant, substring the error must contain)."""
    exp6 = "user_experiments.csv, line 6 (experiment_id 5): "
    cases: dict[str, tuple[Mutation, str]] = {
        # files
        "missing_users": (delete_file(USERS), "users.csv: the file is missing"),
        "missing_experiments": (delete_file(EXPERIMENTS), "user_experiments.csv: the file is missing"),
        "missing_compounds": (delete_file(COMPOUNDS), "compounds.csv: the file is missing"),
        "empty_users": (write_file(USERS, b""), "users.csv: the file is empty"),
        "whitespace_only_compounds": (
            write_file(COMPOUNDS, "\n  \r\n\t\n"),
            "compounds.csv: the file is empty",
        ),
        "header_only_experiments": (
            keep_lines(EXPERIMENTS, 1),
            "user_experiments.csv: the file has a header (line 1) but no data rows",
        ),
        "header_only_compounds": (
            keep_lines(COMPOUNDS, 1),
            "compounds.csv: the file has a header (line 1) but no data rows",
        ),
        # encoding and CSV structure
        "non_utf8_latin1": (
            edit_bytes(COMPOUNDS, lambda raw: raw.replace(b"Compound B", "Compound B\u00e9".encode("latin-1"))),
            "compounds.csv, line 3: the text is not valid UTF-8: cannot decode \\xe9",
        ),
        "non_utf8_ff_byte": (
            edit_bytes(USERS, lambda raw: raw.replace(b"Dave", b"Da\xffve")),
            "users.csv, line 5: the text is not valid UTF-8: cannot decode \\xff",
        ),
        "utf16": (
            edit_bytes(USERS, lambda raw: raw.decode("utf-8").encode("utf-16")),
            "users.csv, line 1: the file is saved as UTF-16",
        ),
        "nul_byte": (
            edit_bytes(COMPOUNDS, lambda raw: raw.replace(b"Compound C", b"Compound\x00C")),
            "compounds.csv, line 4: the file contains a NUL character",
        ),
        "too_many_fields": (
            replace_line(USERS, 3, "2,Bob,bob@example.com,2023-02-01,extra"),
            "users.csv, line 3: too many values: expected 4",
        ),
        "unquoted_comma": (
            set_cell(COMPOUNDS, 2, "compound_name", "Compound, A"),
            "compounds.csv, line 2: too many values: expected 3",
        ),
        "too_few_fields": (
            replace_line(COMPOUNDS, 2, "1,Compound A"),
            "compounds.csv, line 2: too few values: expected 3",
        ),
        "unterminated_quote": (
            set_cell(COMPOUNDS, 3, "compound_name", '"Compound B'),
            "compounds.csv, line 3: a quoted value starting on this line is never closed",
        ),
        "text_after_quote": (
            set_cell(COMPOUNDS, 3, "compound_name", '"Compound" B'),
            "compounds.csv, line 3: unexpected text after the closing quote",
        ),
        # header
        "missing_column": (drop_column(USERS, "email"), "users.csv, line 1: missing column 'email'"),
        "renamed_column": (
            set_cell(USERS, 1, "email", "mail"),
            "users.csv, line 1: unexpected column 'mail'; expected the columns user_id, name, email",
        ),
        "extra_column": (
            add_column(COMPOUNDS, "weight", "1"),
            "compounds.csv, line 1: unexpected column 'weight'",
        ),
        "duplicate_column": (
            add_column(USERS, "name", "X"),
            "users.csv, line 1: column 'name' appears more than once",
        ),
        "column_case": (
            set_cell(USERS, 1, "user_id", "User_ID"),
            "users.csv, line 1: unexpected column 'User_ID'; write it as 'user_id'",
        ),
        "empty_column_name": (
            add_column(COMPOUNDS, "", ""),
            "compounds.csv, line 1: the header has an empty column name at position 4",
        ),
        "no_header": (
            edit_text(COMPOUNDS, _lines(lambda lines: lines[1:])),
            "compounds.csv, line 1: the first line must be the header",
        ),
        # keys
        "duplicate_user_id": (
            set_cell(USERS, 4, "user_id", "2"),
            "users.csv, line 4 (user_id 2): user_id 2 appears more than once (lines 3 and 4)",
        ),
        "duplicate_experiment_id": (
            set_cell(EXPERIMENTS, 7, "experiment_id", "5"),
            exp6.replace("line 6", "line 7") + "experiment_id 5 appears more than once (lines 6 and 7)",
        ),
        "duplicate_compound_id": (
            set_cell(COMPOUNDS, 4, "compound_id", "1"),
            "compounds.csv, line 4 (compound_id 1): compound_id 1 appears more than once (lines 2 and 4)",
        ),
        # references
        "unknown_user": (
            set_cell(EXPERIMENTS, 6, "user_id", "99"),
            exp6 + "user_id 99 does not exist in users.csv",
        ),
        "unknown_compound": (
            set_cell(EXPERIMENTS, 6, "experiment_compound_ids", "1;7;3"),
            exp6 + "compound id 7 in experiment_compound_ids '1;7;3' does not exist in compounds.csv",
        ),
        # values
        "compound_list_empty": (
            set_cell(EXPERIMENTS, 6, "experiment_compound_ids", ""),
            exp6 + "experiment_compound_ids is empty",
        ),
        "run_time_negative": (
            set_cell(EXPERIMENTS, 6, "experiment_run_time", "-5"),
            exp6 + "experiment_run_time '-5' is negative",
        ),
        "run_time_empty": (
            set_cell(EXPERIMENTS, 6, "experiment_run_time", ""),
            exp6 + "experiment_run_time is empty",
        ),
        "run_time_decimal_comma": (
            set_cell(EXPERIMENTS, 6, "experiment_run_time", '"12,5"'),
            exp6 + "experiment_run_time '12,5' is not a number (use '.' as the decimal separator",
        ),
        "date_impossible": (
            set_cell(USERS, 3, "signup_date", "2023-02-30"),
            "users.csv, line 3 (user_id 2): signup_date '2023-02-30' is not a real calendar date",
        ),
        "date_empty": (
            set_cell(USERS, 3, "signup_date", ""),
            "users.csv, line 3 (user_id 2): signup_date is empty",
        ),
        "id_out_of_range": (
            set_cell(COMPOUNDS, 3, "compound_id", "2147483648"),
            "compounds.csv, line 3: compound_id '2147483648' is out of range",
        ),
    }
    for label, value in {
        "colon": "1:3",
        "double_semicolon": "1;;2",
        "only_semicolon": ";",
        "letter": "x",
    }.items():
        cases[f"compound_list_{label}"] = (
            set_cell(EXPERIMENTS, 6, "experiment_compound_ids", value),
            exp6 + f"experiment_compound_ids '{value}' is not a ';'-separated list of compound ids",
        )
    for label, value in {"trailing_semicolon": "1;", "decimal_id": "1.5;2", "spaced_ids": "1 2"}.items():
        cases[f"compound_list_{label}"] = (
            set_cell(EXPERIMENTS, 6, "experiment_compound_ids", value),
            exp6 + f"experiment_compound_ids '{value}' is not a ';'-separated list of compound ids",
        )
    for label, value in {
        "text": "abc",
        "exponent": "1e3",
        "nan": "NaN",
        "inf": "inf",
        "dot_only": ".5",
    }.items():
        cases[f"run_time_{label}"] = (
            set_cell(EXPERIMENTS, 6, "experiment_run_time", value),
            exp6 + f"experiment_run_time '{value}' is not a number",
        )
    for label, value in {
        "us_format": "01/02/2023",
        "no_dashes": "20230201",
        "with_time": "2023-02-01T10:00",
    }.items():
        cases[f"date_{label}"] = (
            set_cell(USERS, 3, "signup_date", value),
            f"users.csv, line 3 (user_id 2): signup_date '{value}' is not a date written YYYY-MM-DD",
        )
    for label, value in {"decimal": "1.0", "text": "abc", "empty": ""}.items():
        message = "user_id is empty" if not value else f"user_id '{value}' is not a whole number"
        cases[f"user_id_{label}"] = (set_cell(USERS, 2, "user_id", value), f"users.csv, line 2: {message}")
    cases["experiment_user_id_text"] = (
        set_cell(EXPERIMENTS, 6, "user_id", "one"),
        exp6 + "user_id 'one' is not a whole number",
    )
    return cases


def random_dataset(dest: Path, seed: int, users: int = 40, experiments: int = 120, compounds: int = 7) -> Path:
    """An unseen but valid data set: users without experiments, lists with duplicate ids, decimal run
    times, gaps in ids, shuffled row order."""
    import random

    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    user_ids = rng.sample(range(1, users * 3), users)
    compound_ids = rng.sample(range(1, compounds * 4), compounds)
    with open(dest / "users.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "name", "email", "signup_date"])
        for uid in user_ids:
            w.writerow(
                [uid, f"User {uid}", f"u{uid}@example.com", f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]
            )
    active = rng.sample(user_ids, max(1, int(users * 0.7)))
    with open(dest / "user_experiments.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["experiment_id", "user_id", "experiment_compound_ids", "experiment_run_time"])
        for eid in rng.sample(range(1, experiments * 2), experiments):
            ids = [rng.choice(compound_ids) for _ in range(rng.randint(1, 4))]
            run_time = rng.choice([str(rng.randint(0, 500)), f"{rng.randint(0, 500)}.{rng.randint(0, 99):02d}"])
            w.writerow([eid, rng.choice(active), ";".join(map(str, ids)), run_time])
    with open(dest / "compounds.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["compound_id", "compound_name", "compound_structure"])
        for cid in compound_ids:
            w.writerow([cid, f"Compound {cid}", f"C{cid}H{cid * 2}O"])
    return dest


def messy_random_dataset(dest: Path, seed: int, faults: bool = True) -> Path:
    """An unseen data set written messily: ``random_dataset`` with random cosmetic mess (BOM, CRLF or CR,
    blank and comma-only lines, whitespace and quotes around values, leading zeros, spaces in compound
    lists, quoted values holding commas, newlines and doubled quotes, reordered columns, no final newline)
    and, with ``faults``, a few random faults (bad values, unknown references, duplicate keys, wrong field
    counts, text after a closing quote). The same seed always writes the same bytes."""
    import random

    rng = random.Random(seed)
    random_dataset(
        dest, seed, users=rng.randint(5, 120), experiments=rng.randint(10, 600), compounds=rng.randint(2, 25)
    )
    id_columns = {USERS: {0}, EXPERIMENTS: {0, 1}, COMPOUNDS: {0}}
    text_columns = {USERS: {1, 2}, EXPERIMENTS: set(), COMPOUNDS: {1, 2}}
    bad_values = {
        USERS: {0: ["x1", "1.0", "", "99999999999"], 3: ["2023-02-30", "01/02/2023", ""]},
        EXPERIMENTS: {
            0: ["-", "abc"],
            1: ["999999", "one"],
            2: ["1;;2", "1:3", ";", "", "999999"],
            3: ["-5", "1e3", "NaN", '"12,5"', ".5"],
        },
        COMPOUNDS: {0: ["c1", "2147483648"]},
    }
    for name in SEED_FILE_NAMES:
        path = dest / name
        rows = [line.split(",") for line in path.read_text(encoding="utf-8").rstrip("\n").split("\n")]
        if rng.random() < 0.2:
            rows = [row[::-1] for row in rows]
            order = list(range(len(rows[0])))[::-1]
        else:
            order = list(range(len(rows[0])))
        lines: list[str] = []
        for index, row in enumerate(rows):
            cells = []
            for position, cell in enumerate(row):
                column = order[position]
                if index and faults and rng.random() < 0.004 and column in bad_values[name]:
                    cell = rng.choice(bad_values[name][column])
                elif index and column in id_columns[name] and rng.random() < 0.05:
                    cell = "0" * rng.randint(1, 3) + cell
                elif index and name == EXPERIMENTS and column == 2 and rng.random() < 0.1:
                    cell = rng.choice([" ;", "; ", "\t;\t", " ; "]).join(cell.split(";"))
                elif index and column in text_columns[name] and rng.random() < 0.05:
                    inner = rng.choice([cell.replace(" ", ", "), cell.replace(" ", "\n"), cell + ' ""x""'])
                    cell = f'"{inner}"'
                if rng.random() < 0.08 and '"' not in cell:
                    cell = f'"{cell}"'
                if rng.random() < 0.08:
                    cell = rng.choice([" ", "\t", "  "]) + cell + rng.choice([" ", "\t", ""])
                cells.append(cell)
            line = ",".join(cells)
            if index and faults and rng.random() < 0.003:
                line = rng.choice([line + ",extra", line.rsplit(",", 1)[0], line.replace(",", ',"x" y,', 1)])
            if index and faults and rng.random() < 0.003:
                lines.append(line)  # the same key twice
            lines.append(line)
            if rng.random() < 0.03:
                lines.append(rng.choice(["", "  ", "\t", ",,", ", ,"]))
        text = "\n".join(lines) + ("\n" if rng.random() < 0.7 else "")
        ending = rng.choice(["\n", "\n", "\r\n", "\r"])
        raw = text.replace("\n", ending).encode("utf-8")
        path.write_bytes((b"\xef\xbb\xbf" if rng.random() < 0.3 else b"") + raw)
    return dest
