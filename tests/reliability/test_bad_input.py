"""Rejected input never touches the published mart. Representative one-fault data sets of tests/datasets.py (one
of each kind: file, encoding, CSV structure, header, key, reference, value), triggered through the real API,
each fail their run at the seed step with an error naming the file and the row or value at fault, while a
pg_dump of the published schemas stays byte for byte what it was and no build schema is left; the next run on
good data succeeds. Every one-fault data set is checked message by message at the validator level
(tests/core/seeds/test_prepare.py), which is where the messages come from. Cosmetically messy input is
accepted."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import mart_rows
from tests.datasets import bad_variants, copy_canonical, messy_variants, quoted_value_variants
from tests.expected import assert_rows_match, compute
from tests.reliability.conftest import build_schemas, dump_published, trigger_and_wait

pytestmark = pytest.mark.slow

#: One one-fault data set of each kind, by its name in bad_variants().
REPRESENTATIVES = (
    "missing_users", "non_utf8_ff_byte", "unterminated_quote", "renamed_column", "duplicate_experiment_id",
    "unknown_compound", "run_time_negative",
)  # fmt: skip


def reset(data_dir) -> None:
    shutil.rmtree(data_dir)
    copy_canonical(data_dir)


def test_bad_inputs_fail_their_runs_and_leave_the_published_mart_alone(client, settings, database, tmp_path):
    first = trigger_and_wait(client)
    assert first["status"] == "success", first["error"]
    published = dump_published(database)
    cases = {name: bad_variants()[name] for name in REPRESENTATIVES}

    wrong: list[str] = []  # every case is run; all mismatches are reported together
    for name, (mutate, expected) in cases.items():
        reset(settings.data_dir)
        mutate(settings.data_dir)
        run = trigger_and_wait(client)
        steps = {s["name"]: s["status"] for s in run["steps"]}
        if run["status"] != "failed":
            wrong.append(f"{name}: the run ended {run['status']}")
            continue
        if steps != {"seed": "failed", "run": "skipped", "test": "skipped", "publish": "skipped", "docs": "skipped"}:
            wrong.append(f"{name}: steps {steps}")
        if expected not in (run["error"] or ""):
            wrong.append(f"{name}: the error does not say {expected!r}:\n{run['error']}")
        if dump_published(database) != published:
            wrong.append(f"{name}: the published schemas changed")
        if leftovers := build_schemas(database):
            wrong.append(f"{name}: the run left its build schemas {leftovers}")
    assert not wrong, f"{len(wrong)} of {len(cases)} bad inputs misbehaved:\n" + "\n".join(wrong)

    reset(settings.data_dir)
    last = trigger_and_wait(client)
    assert last["status"] == "success", last["error"]
    assert_rows_match(mart_rows(database), compute(settings.data_dir, tmp_path / "expected"))
    assert dump_published(database) == published, "the same input must publish the same data"
    history = client.get("/runs", params={"limit": 1000}).json()
    assert history["total"] == len(cases) + 2
    assert [r["status"] for r in history["items"]] == ["success"] + ["failed"] * len(cases) + ["success"]


def test_messy_input_and_quoted_fields_are_accepted(client, settings, database, tmp_path):
    """BOM, CRLF, blank lines, whitespace around values and ids, quoted values; and in compounds.csv quoted
    names holding a comma, a newline and a doubled quote."""
    messy_variants()["all_combined"](settings.data_dir)
    mutate, names = quoted_value_variants()["quoted_fields_messy"]
    mutate(settings.data_dir)
    run = trigger_and_wait(client)
    assert run["status"] == "success", run["error"]
    assert_rows_match(mart_rows(database), compute(settings.data_dir, tmp_path / "expected"))
    with database.connect() as conn:
        loaded = dict(conn.execute("select compound_id, compound_name from raw.compounds").fetchall())
    assert loaded == names
    served = client.get("/features").json()["items"][0]
    assert served["most_common_compound_name"] == names[2] == "Compound\nB"
