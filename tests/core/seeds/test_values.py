"""api.core.seeds.values: values checked and written in normal form."""

from __future__ import annotations

from pathlib import Path

from api.core.seeds import prepare_seeds
from tests.core.seeds.helpers import data_error, outputs
from tests.datasets import COMPOUNDS, EXPERIMENTS, USERS, chain, copy_canonical, replace_line, set_cell, write_file


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
    out = outputs(tmp_path / "out")
    assert out[USERS].decode().split("\n")[1:3] == ["-5,A,a@x,2023-01-01", "2147483647,B,b@x,2023-01-02"]
    assert out[EXPERIMENTS].decode().split("\n")[1:] == ["1,-5,1000000000;2,1", "-2147483648,2147483647,2,0", ""]
    set_cell(EXPERIMENTS, 3, "user_id", "-2147483648")(data)
    assert [str(p) for p in data_error(data, tmp_path / "out").problems] == [
        "user_experiments.csv, line 3 (experiment_id -2147483648): user_id -2147483648 does not exist in "
        "users.csv (no user_id -2147483648)"
    ]
