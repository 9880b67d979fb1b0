"""api.core.seeds.records: quoted values (commas, doubled quotes, newlines), unclosed quotes, the record length
limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core.seeds import prepare_seeds, records
from tests.core.seeds.helpers import big_dataset, data_error, read_rows
from tests.datasets import COMPOUNDS, EXPERIMENTS, USERS, copy_canonical, quoted_value_variants, set_cell, write_file

QUOTED = quoted_value_variants()


@pytest.mark.parametrize("variant", sorted(QUOTED))
def test_quoted_value_variant(variant: str, tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    mutation, names = QUOTED[variant]
    data = copy_canonical(tmp_path / "data")
    mutation(data)
    prepare_seeds(data, tmp_path / "out")
    rows = read_rows(tmp_path / "out" / COMPOUNDS)
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


def test_unterminated_quote_reports_where_it_opened(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    write_file(COMPOUNDS, 'compound_id,compound_name,compound_structure\n\n1,"Compound A,X\n2,B,Y\n3,C,Z\n')(data)
    problems = data_error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        'compounds.csv, line 3: a quoted value starting on this line is never closed (missing closing ")'
    ]


def test_unterminated_quote_in_a_big_file_is_found_without_holding_the_rest(tmp_path: Path) -> None:
    import tracemalloc

    data = big_dataset(tmp_path / "data", experiments=10, compounds=100_000)
    text = (data / COMPOUNDS).read_text()
    (data / COMPOUNDS).write_text(text.replace("\n3,Compound 3,", '\n3,"Compound 3,', 1))
    tracemalloc.start()
    try:
        problems = data_error(data, tmp_path / "out").problems
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
    problems = data_error(data, tmp_path / "out").problems
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
    problems = data_error(data, tmp_path / "out").problems
    assert [str(p) for p in problems] == [
        "compounds.csv, line 3: a record longer than 1000 characters starts on this line; "
        'is the closing quote (") of a quoted value missing?'
    ]
    set_cell(COMPOUNDS, 3, "compound_name", '"' + "\n".join(["x" * 99] * 9) + '"')(copy_canonical(data))
    prepare_seeds(data, tmp_path / "out")  # below the limit: loads
    assert read_rows(tmp_path / "out" / COMPOUNDS)[1]["compound_name"] == "\n".join(["x" * 99] * 9)
