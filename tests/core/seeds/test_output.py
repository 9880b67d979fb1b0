"""api.core.seeds.output: the clean copies, published all together or not at all."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from api.core.seeds import prepare_seeds
from tests.core.seeds.helpers import data_error, outputs, read_rows
from tests.datasets import COMPOUNDS, SEED_FILE_NAMES, USERS, copy_canonical, set_cell


def test_failed_call_keeps_previous_output(tmp_path: Path, canonical_output: dict[str, bytes]) -> None:
    data = copy_canonical(tmp_path / "data")
    out = tmp_path / "out"
    prepare_seeds(data, out)
    set_cell(USERS, 2, "user_id", "x")(data)
    data_error(data, out)
    assert outputs(out) == canonical_output
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILE_NAMES)


def test_output_is_replaced_on_success(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    out = tmp_path / "out"
    prepare_seeds(data, out)
    set_cell(COMPOUNDS, 2, "compound_name", "Aspirin")(data)
    result = prepare_seeds(data, out)
    assert result.directory == out
    assert read_rows(out / COMPOUNDS)[0]["compound_name"] == "Aspirin"
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILE_NAMES)


def test_failure_leaves_no_output_folder_behind(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(USERS, 2, "user_id", "x")(data)
    data_error(data, tmp_path / "new" / "out")
    assert not (tmp_path / "new" / "out").exists()


def test_output_round_trips_through_csv(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(USERS, 2, "name", '"Alice ""Al"", Jr.\nPhD"')(data)
    prepare_seeds(data, tmp_path / "out")
    text = (tmp_path / "out" / USERS).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == ["1", 'Alice "Al", Jr.\nPhD', "alice@example.com", "2023-01-01"]
    assert len(rows) == 11
