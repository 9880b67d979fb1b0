"""Benchmark of the job (see scripts/benchmark.sh). Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.config import Settings
from api.core import runs
from api.core.database import open_database
from api.core.jobs import JobRunner
from api.core.seeds import prepare_seeds
from scripts import benchmark_spark


def generate(dest: Path, users: int, experiments: int, compounds: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "users.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "name", "email", "signup_date"])
        w.writerows(
            [u, f"User {u}", f"u{u}@example.com", f"2024-{u % 12 + 1:02d}-{u % 28 + 1:02d}"]
            for u in range(1, users + 1)
        )
    with open(dest / "user_experiments.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["experiment_id", "user_id", "experiment_compound_ids", "experiment_run_time"])
        for e in range(1, experiments + 1):
            ids = ";".join(str(rng.randint(1, compounds)) for _ in range(rng.randint(1, 4)))
            w.writerow([e, rng.randint(1, users), ids, rng.randint(0, 500)])
    with open(dest / "compounds.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["compound_id", "compound_name", "compound_structure"])
        w.writerows([c, f"Compound {c}", f"C{c}H{c * 2}O"] for c in range(1, compounds + 1))


def seconds(step: dict) -> float:
    if not step.get("started_at") or not step.get("finished_at"):
        return 0.0
    return (datetime.fromisoformat(step["finished_at"]) - datetime.fromisoformat(step["started_at"])).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--experiments", type=int, default=6000)
    parser.add_argument("--compounds", type=int, default=50)
    benchmark_spark.add_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="features-mart-bench-") as tmp:
        data, state = Path(tmp) / "data", Path(tmp) / "state"
        generate(data, args.users, args.experiments, args.compounds)
        rows = args.users + args.experiments + args.compounds
        t0 = time.perf_counter()
        prepare_seeds(data, Path(tmp) / "prepared")
        validate = time.perf_counter() - t0
        print(f"data set: {args.users} users, {args.experiments} experiments, {args.compounds} compounds ({rows} rows)")
        print(f"validate + normalise: {validate:.2f} s ({rows / validate:,.0f} rows/s)")
        settings = benchmark_spark.configure(Settings(data_dir=data, state_dir=state).resolved(), args.engine)
        print(benchmark_spark.describe(settings))
        url = settings.database_url.get_secret_value() if settings.database_url else None
        with open_database(url, state, None) as db:
            runner = JobRunner(settings, db)
            runner.startup()
            for label in ("first run (cold dbt parse)", "second run"):
                t0 = time.perf_counter()
                run_id = runner.trigger({"source": "benchmark"})
                runner.wait(run_id)
                total = time.perf_counter() - t0
                run = runs.get_run(db, run_id)
                steps = ", ".join(f"{s['name']} {seconds(s):.1f}s" for s in run["steps"])
                print(f"{label}: {run['status']} in {total:.1f} s: {steps}")
                seed_step = next(s for s in run["steps"] if s["name"] == "seed")
                took = max(seconds(seed_step), 1e-9)
                print(f"  validate + dbt seed: {rows / took:,.0f} rows/s ({took:.1f} s)")
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: this process {peak_self:.0f} MiB, largest subprocess (dbt/postgres) {peak_children:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
