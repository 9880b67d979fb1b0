"""Tests of api.core.seeds: normalisation of cosmetic mess, validation, output writing."""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
from pathlib import Path

import pytest

from api.core.seeds import (
    MAX_PROBLEMS,
    SEED_FILES,
    DataError,
    PreparedSeeds,
    Problem,
    fast,
    prepare_seeds,
    reader,
    records,
    scan,
)
from tests.datasets import (
    CANONICAL_DIR,
    CANONICAL_ROW_COUNTS,
    COMPOUNDS,
    EXPERIMENTS,
    SEED_FILE_NAMES,
    USERS,
    bad_variants,
    chain,
    copy_canonical,
    messy_variants,
    quoted_value_variants,
    replace_line,
    set_cell,
    write_file,
)

EXPECTED_COMPOUNDS = (
    "compound_id,compound_name,compound_structure\n"
    "1,Compound A,C20H25N3O\n"
    "2,Compound B,C21H30O2\n"
    "3,Compound C,C8H11NO2\n"
)
EXPECTED_EXPERIMENTS_HEAD = (
    "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n1,1,1;2,10\n2,1,2;3,15\n"
)
EXPECTED_USERS_TAIL = "10,Judy,judy@example.com,2023-10-01\n"

MESSY = messy_variants()
QUOTED = quoted_value_variants()
BAD = bad_variants()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in SEED_FILE_NAMES}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _error(data: Path, out: Path) -> DataError:
    with pytest.raises(DataError) as caught:
        prepare_seeds(data, out)
    return caught.value


def _assert_no_output(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == []


@pytest.fixture(scope="module")
def canonical_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("canonical") / "out"
    prepare_seeds(CANONICAL_DIR, out)
    return _outputs(out)


# --------------------------------------------------------------------------- canonical


def test_canonical_output_is_exact(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    before = _hashes(data)
    result = prepare_seeds(data, tmp_path / "out")
    assert result == PreparedSeeds(directory=tmp_path / "out", row_counts=CANONICAL_ROW_COUNTS)
    out = _outputs(tmp_path / "out")
    assert out[COMPOUNDS].decode("utf-8") == EXPECTED_COMPOUNDS
    assert out[EXPERIMENTS].decode("utf-8").startswith(EXPECTED_EXPERIMENTS_HEAD)
    assert out[USERS].decode("utf-8").endswith(EXPECTED_USERS_TAIL)
    for name in SEED_FILE_NAMES:  # the canonical files are already clean
        assert out[name] == (CANONICAL_DIR / name).read_bytes(), name
        assert b"\r" not in out[name] and not out[name].startswith(b"\xef\xbb\xbf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(SEED_FILE_NAMES)  # no temp files
    assert _hashes(data) == before


def test_seed_files_schema_matches_canonical_headers() -> None:
    assert list(SEED_FILES) == list(SEED_FILE_NAMES)
    for name, columns in SEED_FILES.items():
        header = (CANONICAL_DIR / name).read_text(encoding="utf-8").splitlines()[0]
        assert ",".join(column.name for column in columns) == header


# --------------------------------------------------------------------------- cosmetic mess


@pytest.mark.parametrize("variant", sorted(MESSY))
def test_messy_variant_loads_like_canonical(variant: str, tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    data = copy_canonical(tmp_path / "data")
    MESSY[variant](data)
    assert _outputs(data) != _outputs(CANONICAL_DIR), "the variant must change the input"
    before = _hashes(data)
    result = prepare_seeds(data, tmp_path / "out")
    assert result.row_counts == CANONICAL_ROW_COUNTS
    assert _outputs(tmp_path / "out") == canonical_output
    assert _hashes(data) == before


@pytest.mark.parametrize("variant", sorted(QUOTED))
def test_quoted_value_variant(variant: str, tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    mutation, names = QUOTED[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    prepare_seeds(data, tmp_path / "out")
    rows = _rows(tmp_path / "out" / COMPOUNDS)
    assert {int(row["compound_id"]): row["compound_name"] for row in rows} == names
    assert [row["compound_structure"] for row in rows] == ["C20H25N3O", "C21H30O2", "C8H11NO2"]
    for name in (USERS, EXPERIMENTS):
        assert (tmp_path / "out" / name).read_bytes() == canonical_output[name]


def test_quoted_values_are_written_quoted(tmp_path: Path) -> None:
    mutation, _ = QUOTED["quoted_fields_messy"]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    prepare_seeds(data, tmp_path / "out")
    assert (tmp_path / "out" / COMPOUNDS).read_text(encoding="utf-8") == (
        "compound_id,compound_name,compound_structure\n"
        '1,"Compound, A",C20H25N3O\n'
        '2,"Compound\nB",C21H30O2\n'
        '3,"Compound ""C""",C8H11NO2\n'
    )


def test_empty_text_values_are_written_empty(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(set_cell(USERS, 2, "name", " "), set_cell(USERS, 2, "email", '""'))(data)
    prepare_seeds(data, tmp_path / "out")
    assert (tmp_path / "out" / USERS).read_text(encoding="utf-8").split("\n")[1] == "1,,,2023-01-01"


def test_numbers_keep_their_text_and_ids_are_canonical(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(
        replace_line(EXPERIMENTS, 2, "1, 1 ,\t1 ; 2;1 ,12.50"),
        replace_line(EXPERIMENTS, 3, "2,1,2;3,-0"),
    )(data)
    prepare_seeds(data, tmp_path / "out")
    lines = (tmp_path / "out" / EXPERIMENTS).read_text(encoding="utf-8").split("\n")
    assert lines[1:3] == ["1,1,1;2;1,12.50", "2,1,2;3,0"]


# --------------------------------------------------------------------------- one fault each


def test_there_are_enough_bad_variants() -> None:
    assert len(BAD) >= 24


@pytest.mark.parametrize("variant", sorted(BAD))
def test_bad_variant_is_reported(variant: str, tmp_path: Path) -> None:
    mutation, expected = BAD[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    before = _hashes(data)
    error = _error(data, tmp_path / "out")
    text = str(error)
    assert expected in text
    assert any(name in text for name in SEED_FILE_NAMES)
    assert error.problems and all(isinstance(p, Problem) for p in error.problems)
    assert error.problems[0].file in SEED_FILE_NAMES
    _assert_no_output(tmp_path / "out")
    assert _hashes(data) == before


def test_problem_fields_and_format(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(EXPERIMENTS, 6, "experiment_compound_ids", "1:3")(data)
    error = _error(data, tmp_path / "out")
    assert len(error.problems) == 1 and error.total == 1
    problem = error.problems[0]
    assert (problem.file, problem.line, problem.column, problem.value, problem.key) == (
        EXPERIMENTS,
        6,
        "experiment_compound_ids",
        "1:3",
        "experiment_id 5",
    )
    assert str(problem).startswith(
        "user_experiments.csv, line 6 (experiment_id 5): experiment_compound_ids '1:3' "
        "is not a ';'-separated list of compound ids"
    )
    assert str(error).splitlines() == ["The data files cannot be loaded (1 problem):", f"- {problem}"]
    assert pickle.loads(pickle.dumps(error)).problems == error.problems  # noqa: S301 - our own bytes


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(
        set_cell(USERS, 3, "signup_date", "2023-02-30"),
        set_cell(USERS, 5, "user_id", "abc"),
        set_cell(EXPERIMENTS, 6, "experiment_compound_ids", "1;;2"),
        set_cell(EXPERIMENTS, 9, "experiment_run_time", "-1"),
        set_cell(EXPERIMENTS, 10, "experiment_compound_ids", "1;9"),
        replace_line(COMPOUNDS, 3, "2,Compound B"),
    )(data)
    error = _error(data, tmp_path / "out")
    where = [(p.file, p.line) for p in error.problems]
    # compounds.csv has a broken row, so compound references are not checked;
    # users.csv has an invalid user_id, so user references are not checked either.
    assert where == [
        (USERS, 3),
        (USERS, 5),
        (EXPERIMENTS, 6),
        (EXPERIMENTS, 9),
        (COMPOUNDS, 3),
    ]
    assert error.total == 5 and "(5 problems)" in str(error)


def test_references_are_checked_against_complete_files(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(
        set_cell(EXPERIMENTS, 2, "user_id", "42"),
        set_cell(EXPERIMENTS, 3, "experiment_compound_ids", "4;2;5"),
    )(data)
    messages = [str(p) for p in _error(data, tmp_path / "out").problems]
    assert messages == [
        "user_experiments.csv, line 2 (experiment_id 1): user_id 42 does not exist in users.csv (no user_id 42)",
        "user_experiments.csv, line 3 (experiment_id 2): compound id 4 in experiment_compound_ids '4;2;5' "
        "does not exist in compounds.csv (no compound_id 4)",
        "user_experiments.csv, line 3 (experiment_id 2): compound id 5 in experiment_compound_ids '4;2;5' "
        "does not exist in compounds.csv (no compound_id 5)",
    ]


def test_missing_referenced_file_gives_no_follow_up_errors(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    (data / USERS).unlink()
    error = _error(data, tmp_path / "out")
    assert [str(p) for p in error.problems] == [
        "users.csv: the file is missing from the data folder; "
        "expected the files users.csv, user_experiments.csv, compounds.csv"
    ]


def test_all_files_missing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Users.csv").write_text("x")
    error = _error(tmp_path / "data", tmp_path / "out")
    assert [p.file for p in error.problems] == list(SEED_FILE_NAMES)
    assert "found 'Users.csv'; file names are case-sensitive" in str(error.problems[0])


def test_problems_are_capped(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    rows = [f"{n},{n % 10 + 1},1;2,slow" for n in range(1, 201)]
    write_file(EXPERIMENTS, "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n" + "\n".join(rows))(
        data
    )
    error = _error(data, tmp_path / "out")
    assert len(error.problems) == MAX_PROBLEMS and error.total == 200
    text = str(error)
    assert "(200 problems)" in text and text.endswith("... and 190 more")
    assert len(text.splitlines()) == 1 + 10 + 1


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    # blank lines before the header, a quoted newline, CR-only line breaks
    write_file(
        COMPOUNDS,
        '\r\r  \rcompound_id,compound_name,compound_structure\r1,"Compound\rA",X\r\r2,Compound B,Y\r3,C,Z,W\r',
    )(data)
    problems = _error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(9, "3,C,Z,W")]


def test_unterminated_quote_reports_where_it_opened(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    write_file(COMPOUNDS, 'compound_id,compound_name,compound_structure\n\n1,"Compound A,X\n2,B,Y\n3,C,Z\n')(data)
    problems = _error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        'compounds.csv, line 3: a quoted value starting on this line is never closed (missing closing ")'
    ]


def test_non_utf8_reports_every_bad_line(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    write_file(COMPOUNDS, b"compound_id,compound_name,compound_structure\r\n1,A\xe9,X\r\n2,B,Y\r\n3,\xff\xfeC,Z\r\n")(
        data
    )
    problems = _error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(2, "\\xe9"), (4, "\\xff \\xfe")]
    assert "'1,A\\xe9,X'" in problems[0].message


# --------------------------------------------------------------------------- output handling


def test_failed_call_keeps_previous_output(tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    data = copy_canonical(tmp_path / "data")
    out = tmp_path / "out"
    prepare_seeds(data, out)
    set_cell(USERS, 2, "user_id", "x")(data)
    _error(data, out)
    assert _outputs(out) == canonical_output
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILE_NAMES)


def test_output_is_replaced_on_success(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    out = tmp_path / "out"
    prepare_seeds(data, out)
    set_cell(COMPOUNDS, 2, "compound_name", "Aspirin")(data)
    result = prepare_seeds(data, out)
    assert result.directory == out
    assert _rows(out / COMPOUNDS)[0]["compound_name"] == "Aspirin"
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILE_NAMES)


def test_out_dir_must_differ_from_data_dir(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    before = _hashes(data)
    with pytest.raises(ValueError):
        prepare_seeds(data, data / ".." / "data")
    assert _hashes(data) == before


def test_missing_data_dir(tmp_path: Path) -> None:
    error = _error(tmp_path / "nowhere", tmp_path / "out")
    assert "the data folder does not exist" in str(error)
    _assert_no_output(tmp_path / "out")


def test_output_round_trips_through_csv(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(USERS, 2, "name", '"Alice ""Al"", Jr.\nPhD"')(data)
    prepare_seeds(data, tmp_path / "out")
    text = (tmp_path / "out" / USERS).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == ["1", 'Alice "Al", Jr.\nPhD', "alice@example.com", "2023-01-01"]
    assert len(rows) == 11


# --------------------------------------------------------------------------- streaming at scale


def _big_dataset(folder: Path, experiments: int, users: int = 5000, compounds: int = 300) -> Path:
    """A valid data set written fast: experiment n (line n + 1) belongs to user n % users + 1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / USERS).write_text(
        "user_id,name,email,signup_date\n"
        + "".join(
            f"{u},User {u},u{u}@example.com,2024-{u % 12 + 1:02d}-{u % 28 + 1:02d}\n" for u in range(1, users + 1)
        )
    )
    (folder / EXPERIMENTS).write_text(
        "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n"
        + "".join(
            f"{e},{e % users + 1},{e % compounds + 1};{(e * 7) % compounds + 1},{e % 500}.{e % 10}\n"
            for e in range(1, experiments + 1)
        )
    )
    (folder / COMPOUNDS).write_text(
        "compound_id,compound_name,compound_structure\n"
        + "".join(f"{c},Compound {c},C{c}H{c * 2}O\n" for c in range(1, compounds + 1))
    )
    return folder


def test_memory_does_not_grow_with_the_data(tmp_path: Path) -> None:
    import tracemalloc

    data = _big_dataset(tmp_path / "data", experiments=200_000)
    size = sum((data / name).stat().st_size for name in SEED_FILE_NAMES)
    tracemalloc.start()
    try:
        result = prepare_seeds(data, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.row_counts == {"users": 5000, "user_experiments": 200_000, "compounds": 300}
    # Holding the rows (even as bare tuples of strings) takes well over 50 MB here; the
    # streaming reader holds a chunk of text and integer sets of the keys.
    assert size > 5_000_000
    assert peak < 16_000_000, f"peak {peak / 1e6:.1f} MB"
    assert _outputs(tmp_path / "out") == _outputs(data)  # already clean: copied byte for byte


def test_duplicate_keys_at_scale_name_their_first_line(tmp_path: Path) -> None:
    data = _big_dataset(tmp_path / "data", experiments=120_000)
    lines = (data / EXPERIMENTS).read_text().split("\n")
    # line n + 1 holds experiment n; repeat experiment 9 at line 100001 (written 009, with
    # spaces) and line 110001, and experiment 60000 at line 119001
    for line, key in ((100_001, " 009 "), (110_001, "9"), (119_001, "60000")):
        lines[line - 1] = key + lines[line - 1][lines[line - 1].index(",") :]
    (data / EXPERIMENTS).write_text("\n".join(lines))
    error = _error(data, tmp_path / "out")
    assert [str(p) for p in error.problems] == [
        "user_experiments.csv, line 100001 (experiment_id 9): experiment_id 9 appears more than once "
        "(lines 10 and 100001)",
        "user_experiments.csv, line 110001 (experiment_id 9): experiment_id 9 appears more than once "
        "(lines 10 and 110001)",
        "user_experiments.csv, line 119001 (experiment_id 60000): experiment_id 60000 appears more than once "
        "(lines 60001 and 119001)",
    ]
    assert error.problems[0].value == "009" and error.total == 3
    _assert_no_output(tmp_path / "out")


def test_errors_deep_in_a_big_file_report_physical_lines(tmp_path: Path) -> None:
    data = _big_dataset(tmp_path / "data", experiments=150_000, compounds=50)
    text = (data / COMPOUNDS).read_text()
    # a quoted name spanning three lines near the top of compounds.csv, CRLF line ends
    text = text.replace("2,Compound 2,", '2,"Compound\n2\nbis",', 1)
    (data / COMPOUNDS).write_bytes(text.replace("\n", "\r\n").encode())
    lines = (data / EXPERIMENTS).read_text().split("\n")
    lines[140_000] = "140000,1,1;2,fast"  # line 140001
    lines[149_990] = "149990,1,1;51,3"  # line 149991: compound 51 does not exist
    (data / EXPERIMENTS).write_text("\n".join(["", "   ", *lines]))  # two blank lines first
    (data / USERS).write_text((data / USERS).read_text().replace("\n4999,", "\n4999,User,x,2024-02-30\n#", 1))
    error = _error(data, tmp_path / "out")
    assert [(p.file, p.line, p.column, p.value) for p in error.problems] == [
        (USERS, 5000, "signup_date", "2024-02-30"),
        (USERS, 5001, None, "#User 4999,u4999@example.com,2024-08-16"),
        (EXPERIMENTS, 140_003, "experiment_run_time", "fast"),
        (EXPERIMENTS, 149_993, "experiment_compound_ids", "51"),
    ]
    assert "too few values" in error.problems[1].message
    # users.csv is broken, so user references are not checked; compounds.csv is complete (its
    # quoted newlines and CRLF are fine), so compound references are
    assert str(error.problems[3]) == (
        "user_experiments.csv, line 149993 (experiment_id 149990): compound id 51 in experiment_compound_ids "
        "'1;51' does not exist in compounds.csv (no compound_id 51)"
    )


def test_unterminated_quote_in_a_big_file_is_found_without_holding_the_rest(tmp_path: Path) -> None:
    import tracemalloc

    data = _big_dataset(tmp_path / "data", experiments=10, compounds=100_000)
    text = (data / COMPOUNDS).read_text()
    (data / COMPOUNDS).write_text(text.replace("\n3,Compound 3,", '\n3,"Compound 3,', 1))
    tracemalloc.start()
    try:
        problems = _error(data, tmp_path / "out").problems
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [str(p) for p in problems] == [
        'compounds.csv, line 4: a quoted value starting on this line is never closed (missing closing ")'
    ]
    assert peak < 16_000_000, f"peak {peak / 1e6:.1f} MB"
    # With a doubled quote further down, the value ends there (as before): the record that
    # opened it is reported as broken, with the start of its text
    lines = (data / COMPOUNDS).read_text().split("\n")
    lines[90_000] = '90000,Compound ""X"",C'
    (data / COMPOUNDS).write_text("\n".join(lines))
    problems = _error(data, tmp_path / "out").problems
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (4, "unexpected text after the closing quote of a quoted value")
    ]
    assert problems[0].value is not None and problems[0].value.startswith('3,"Compound 3,C3H6O\n4,Compound 4,')
    assert len(problems[0].value) == 200 and problems[0].value.endswith("...")


def test_a_record_longer_than_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_RECORD_CHARS", 1000)
    data = copy_canonical(tmp_path / "data")
    long_name = '"' + "\n".join(["x" * 99] * 12) + '"'
    set_cell(COMPOUNDS, 3, "compound_name", long_name)(data)
    problems = _error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        "compounds.csv, line 3: a record longer than 1000 characters starts on this line; "
        'is the closing quote (") of a quoted value missing?'
    ]
    set_cell(COMPOUNDS, 3, "compound_name", '"' + "\n".join(["x" * 99] * 9) + '"')(copy_canonical(data))
    prepare_seeds(data, tmp_path / "out")  # below the limit: loads
    assert _rows(tmp_path / "out" / COMPOUNDS)[1]["compound_name"] == "\n".join(["x" * 99] * 9)


def test_nul_and_bad_utf8_deep_in_a_big_file(tmp_path: Path) -> None:
    data = _big_dataset(tmp_path / "data", experiments=100_000)
    raw = (data / EXPERIMENTS).read_bytes()
    lines = raw.split(b"\n")
    lines[99_000] = lines[99_000].replace(b",", b",\x00", 1)  # line 99001
    (data / EXPERIMENTS).write_bytes(b"\r\n".join(lines))
    problems = _error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        "user_experiments.csv, line 99001: the file contains a NUL character (\\x00); is it really a CSV text file?"
    ]
    lines[99_500] = lines[99_500] + b"\xe9"  # a decoding error after the NUL takes precedence
    lines[60_000] = lines[60_000] + b"\xff"
    (data / EXPERIMENTS).write_bytes(b"\r\n".join(lines))
    problems = _error(data, tmp_path / "out").problems
    assert [(p.line, p.value) for p in problems] == [(60_001, "\\xff"), (99_501, "\\xe9")]


def test_failure_leaves_no_output_folder_behind(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(USERS, 2, "user_id", "x")(data)
    _error(data, tmp_path / "new" / "out")
    assert not (tmp_path / "new" / "out").exists()


def test_ids_outside_the_fast_path_are_normalised(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    chain(
        write_file(USERS, "user_id,name,email,signup_date\n-5,A,a@x,2023-01-01\n2147483647,B,b@x,2023-01-02\n"),
        write_file(COMPOUNDS, "compound_id,compound_name,compound_structure\n1000000000,C1,X\n2,C2,Y\n"),
        write_file(
            EXPERIMENTS,
            "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n"
            "1,-005,1000000000;0002,1\n-2147483648,02147483647,2,-0\n",
        ),
    )(data)
    prepare_seeds(data, tmp_path / "out")
    out = _outputs(tmp_path / "out")
    assert out[USERS].decode().split("\n")[1:3] == ["-5,A,a@x,2023-01-01", "2147483647,B,b@x,2023-01-02"]
    assert out[EXPERIMENTS].decode().split("\n")[1:] == ["1,-5,1000000000;2,1", "-2147483648,2147483647,2,0", ""]
    set_cell(EXPERIMENTS, 3, "user_id", "-2147483648")(data)
    assert [str(p) for p in _error(data, tmp_path / "out").problems] == [
        "user_experiments.csv, line 3 (experiment_id -2147483648): user_id -2147483648 does not exist in "
        "users.csv (no user_id -2147483648)"
    ]


@pytest.mark.parametrize("variant", sorted(MESSY))
def test_tiny_chunks_and_blocks_change_nothing(
    variant: str, tmp_path: Path, canonical_output: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk and block edges fall everywhere, also inside quoted values and CRLF pairs."""
    monkeypatch.setattr(reader, "CHUNK_CHARS", 3)
    monkeypatch.setattr(scan, "SMALL_BLOCK", 1)
    monkeypatch.setattr(scan, "FAN_OUT", 2)
    data = copy_canonical(tmp_path / "data")
    MESSY[variant](data)
    prepare_seeds(data, tmp_path / "out")
    assert _outputs(tmp_path / "out") == canonical_output


@pytest.mark.parametrize("variant", sorted(BAD))
def test_tiny_chunks_report_the_same_problems(variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mutation, _ = BAD[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    expected = str(_error(data, tmp_path / "out"))
    monkeypatch.setattr(reader, "CHUNK_CHARS", 2)
    monkeypatch.setattr(scan, "SMALL_BLOCK", 1)
    assert str(_error(data, tmp_path / "out")) == expected


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_writes_what_the_careful_path_writes(seed: int, tmp_path: Path) -> None:
    """Blocks of ordinary lines are copied as they are; checking every row one by one must give
    the same bytes (columns reordered for odd seeds)."""
    from tests.datasets import random_dataset

    data = random_dataset(tmp_path / "data", seed, users=300, experiments=2000, compounds=40)
    if seed % 2:
        for name in SEED_FILE_NAMES:
            with (data / name).open(encoding="utf-8", newline="") as stream:
                rows = [row[::-1] for row in csv.reader(stream)]
            with (data / name).open("w", encoding="utf-8", newline="") as stream:
                csv.writer(stream, lineterminator="\n").writerows(rows)
    fast = prepare_seeds(data, tmp_path / "fast")
    careful = prepare_seeds(data, tmp_path / "careful", careful=True)
    assert fast.row_counts == careful.row_counts == {"users": 300, "user_experiments": 2000, "compounds": 40}
    assert _outputs(tmp_path / "fast") == _outputs(tmp_path / "careful")


def test_whitespace_trimmed_by_the_block_path_is_what_strip_trims() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace() and c != "\n") == fast._SPACES_BUT_LF
