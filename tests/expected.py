"""An independent Python model of the features mart, to check what dbt built on any data set."""

from __future__ import annotations

import csv
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from api.core.seeds import prepare_seeds

#: The canonical expectations from the issue, spelled out (user_id -> values).
CANONICAL = {
    1: ("Alice", 2, Fraction(2, 11), 12.5, 2, "Compound B", 2, [2]),
    2: ("Bob", 1, Fraction(1, 11), 20, 1, "Compound A", 1, [1, 3]),
    3: ("Carol", 1, Fraction(1, 11), 25, 2, "Compound B", 1, [2, 3]),
    4: ("Dave", 1, Fraction(1, 11), 30, 1, "Compound A", 1, [1, 2, 3]),
    5: ("Eve", 1, Fraction(1, 11), 35, 2, "Compound B", 1, [2, 3]),
    6: ("Frank", 1, Fraction(1, 11), 40, 1, "Compound A", 1, [1, 3]),
    7: ("Grace", 1, Fraction(1, 11), 45, 2, "Compound B", 1, [2, 3]),
    8: ("Heidi", 1, Fraction(1, 11), 50, 1, "Compound A", 1, [1, 2]),
    9: ("Ivan", 1, Fraction(1, 11), 55, 2, "Compound B", 1, [2, 3]),
    10: ("Judy", 1, Fraction(1, 11), 60, 1, "Compound A", 1, [1, 3]),
}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def compute(data_dir: Path, scratch: Path) -> dict[int, dict[str, Any]]:
    """Features per user_id, computed in Python from the (normalised) CSVs."""
    prepare_seeds(data_dir, scratch)
    users = _read(scratch / "users.csv")
    experiments = _read(scratch / "user_experiments.csv")
    compounds = {int(c["compound_id"]): c for c in _read(scratch / "compounds.csv")}
    n_exp, n_users = len(experiments), len(users)
    out = {}
    for u in users:
        uid = int(u["user_id"])
        mine = [e for e in experiments if int(e["user_id"]) == uid]
        times = [Decimal(e["experiment_run_time"]) for e in mine]
        counts = Counter(c for e in mine for c in {int(x) for x in e["experiment_compound_ids"].split(";")})
        top = max(counts.values()) if counts else None
        tied = sorted(c for c, n in counts.items() if n == top) if counts else []
        best = tied[0] if tied else None
        out[uid] = {
            "user_id": uid,
            "name": u["name"] or None,
            "email": u["email"] or None,
            "signup_date": u["signup_date"],
            "total_experiments": len(mine),
            "experiment_share": Fraction(len(mine), n_exp) if n_exp else Fraction(0),
            "avg_experiments_per_user": Fraction(n_exp, n_users),
            "avg_experiment_run_time": (sum(times) / len(times)) if times else None,
            "total_experiment_run_time": sum(times) if times else Decimal(0),
            "most_common_compound_id": best,
            "most_common_compound_name": (compounds[best]["compound_name"] or None) if best else None,
            "most_common_compound_structure": (compounds[best]["compound_structure"] or None) if best else None,
            "most_common_compound_experiments": top,
            "tied_compound_ids": tied,
        }
    return out


def close(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def assert_rows_match(actual: list[dict[str, Any]], expected: dict[int, dict[str, Any]]) -> None:
    """Compare mart rows (as dicts) with `compute()` output, numerics with a tolerance."""
    assert [r["user_id"] for r in actual] == sorted(expected), "the mart must hold one row per user, by user_id"
    for row in actual:
        want = expected[row["user_id"]]
        for col, value in want.items():
            got = row[col]
            if col == "signup_date":
                assert str(got) == value, (row["user_id"], col, got, value)
            elif col == "tied_compound_ids":
                assert list(got or []) == value, (row["user_id"], col, got, value)
            elif col == "most_common_compound_experiments" and value is None:
                assert got in (None, 0), (row["user_id"], col, got)
            elif isinstance(value, (int, float, Decimal, Fraction)) or value is None:
                assert close(got, value), (row["user_id"], col, got, value)
            else:
                assert got == value, (row["user_id"], col, got, value)
