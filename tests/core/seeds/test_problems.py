"""api.core.seeds.problems: what a problem says, how many are listed."""

from __future__ import annotations

import pickle
from pathlib import Path

from api.core.seeds import MAX_PROBLEMS
from tests.core.seeds.helpers import data_error
from tests.datasets import COMPOUNDS, EXPERIMENTS, USERS, chain, copy_canonical, replace_line, set_cell, write_file


def test_problem_fields_and_format(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    set_cell(EXPERIMENTS, 6, "experiment_compound_ids", "1:3")(data)
    error = data_error(data, tmp_path / "out")
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
    error = data_error(data, tmp_path / "out")
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


def test_problems_are_capped(tmp_path: Path) -> None:
    data = copy_canonical(tmp_path / "data")
    rows = [f"{n},{n % 10 + 1},1;2,slow" for n in range(1, 201)]
    write_file(EXPERIMENTS, "experiment_id,user_id,experiment_compound_ids,experiment_run_time\n" + "\n".join(rows))(
        data
    )
    error = data_error(data, tmp_path / "out")
    assert len(error.problems) == MAX_PROBLEMS and error.total == 200
    text = str(error)
    assert "(200 problems)" in text and text.endswith("... and 190 more")
    assert len(text.splitlines()) == 1 + 10 + 1
