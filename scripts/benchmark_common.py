"""What the benchmark's engines share (scripts/benchmark.py for Postgres, scripts/benchmark_spark.py for Spark): the
data generator, the API's runs measured step by step, the table of medians, and the peak-RSS sampler.

The one rule: a figure is printed with its minimum, median and maximum over the rounds; no module here asserts
anything. Run as a script (`--sample-rss PID OUT`), this module is the RSS sampler's own process.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.config import Settings
from api.core.db.database import Database
from api.core.job.files import build_dir
from api.core.job.runner import JobRunner
from api.core.job.steps import step_names
from api.core.runs import history
from api.core.seeds import prepare_seeds

# --------------------------------------------------------------------------- data


def generate(dest: Path, users: int, experiments: int, compounds: int, seed: int = 1) -> None:
    """A random, valid data set: 1-4 compound ids per experiment (duplicates possible), streamed to disk."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "users.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "name", "email", "signup_date"])
        for u in range(1, users + 1):
            w.writerow([u, f"User {u}", f"u{u}@example.com", f"2024-{u % 12 + 1:02d}-{u % 28 + 1:02d}"])
    with open(dest / "user_experiments.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["experiment_id", "user_id", "experiment_compound_ids", "experiment_run_time"])
        for e in range(1, experiments + 1):
            ids = ";".join(str(rng.randint(1, compounds)) for _ in range(rng.randint(1, 4)))
            w.writerow([e, rng.randint(1, users), ids, rng.randint(0, 500)])
    with open(dest / "compounds.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["compound_id", "compound_name", "compound_structure"])
        for c in range(1, compounds + 1):
            w.writerow([c, f"Compound {c}", f"C{c}H{c * 2}O"])


def count_rows(folder: Path) -> dict[str, int]:
    counts = {}
    for name in ("users", "user_experiments", "compounds"):
        with open(folder / f"{name}.csv", "rb") as fh:
            counts[name] = sum(1 for _ in fh) - 1
    return counts


def validation(data: Path, out: Path, counts: dict[str, int]) -> None:
    """Time the validator (in this process, as in the API's) on `data` and print its throughput."""
    t0 = time.perf_counter()
    prepare_seeds(data, out)
    took = time.perf_counter() - t0
    rows = sum(counts.values())
    print(f"  {'validate + normalise (in the API process)':<44} {took:7.2f} s  ({rows / took:,.0f} rows/s)")


# --------------------------------------------------------------------------- figures


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def describe(values: list[float]) -> str:
    return f"{median(values):7.2f} s  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def measure(label: str, fn: Callable[[], float], rounds: int) -> list[float]:
    values = [fn() for _ in range(rounds)]
    print(f"  {label:<44} {describe(values)}", flush=True)
    return values


# --------------------------------------------------------------------------- the API's runs


def seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def api_run(runner: JobRunner, db: Database) -> dict:
    t0 = time.perf_counter()
    run_id = runner.trigger({"source": "benchmark"})
    runner.wait(run_id)
    whole = time.perf_counter() - t0
    run = history.get_run(db, run_id)
    if run["status"] != "success":
        raise SystemExit(f"run {run_id} {run['status']}: {run['error']}")
    steps = {s["name"]: seconds(s["started_at"], s["finished_at"]) for s in run["steps"]}
    publish = next(s for s in run["steps"] if s["name"] == "publish")
    created = run["created_at"].isoformat()
    return {
        "published": seconds(created, publish["finished_at"]),
        "whole": whole,
        "docs_after_publish": steps["docs"],
        **steps,
    }


def wait_warm(runner: JobRunner, timeout: float = 120) -> float:
    """Wait until the worker has parsed the project for builds and docs (start-up, before the first trigger)."""
    t0 = time.perf_counter()
    warm = build_dir(runner.settings) / "docs" / "manifest.json"
    while not warm.exists() and time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
    return time.perf_counter() - t0


def api_runs(settings: Settings, db: Database, rounds: int) -> list[dict]:
    """Start an API's job runner, wait for its warm-up, trigger `rounds` runs one after the other; print the
    time to published, each step, and the docs after publish (medians)."""
    runner = JobRunner(settings, db)
    runner.startup()
    print(f"  {'API start-up: dbt worker warm (import, parse)':<44} {wait_warm(runner):7.2f} s")
    try:
        results = [api_run(runner, db) for _ in range(rounds)]
    finally:
        runner.shutdown()
    labels = {"published": "API: trigger -> published"}
    for name in step_names(settings.dbt_target):
        if name == "seed":
            labels[name] = "  step seed (validate + dbt seed)"
        elif name != "docs":
            labels[name] = f"  step {name}"
    labels["docs_after_publish"] = "API: docs served, after publish"
    for key, label in labels.items():
        print(f"  {label:<44} {describe([r[key] for r in results])}", flush=True)
    return results


# --------------------------------------------------------------------------- memory


class RssSampler:
    """Samples the RSS of this process and of every descendant, by role, every 50 ms: the peak of each. The
    sampling runs in a process of its own (this module as a script), so that it takes no time from the processes
    it measures (psutil walks /proc: in a thread of the API process it would slow the run it measures)."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self._out = Path(tempfile.mkstemp(prefix="features-mart-rss-", suffix=".json")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def role(proc: psutil.Process) -> str | None:
        try:
            cmd = " ".join(proc.cmdline())
            if proc.name() == "java":
                return "Spark JVM (driver and local executors)"
        except (psutil.Error, OSError):
            return None
        if "dbt-worker" in cmd or "api.core.dbt.worker" in cmd:
            return "dbt worker (warm, idle)"
        if cmd.startswith("dbt "):
            return f"dbt {cmd.split()[1]} (worker child)"
        if "/bin/dbt " in cmd:
            return f"dbt {cmd.split('/bin/dbt ', 1)[1].split()[0]} (CLI process)"
        if "api.cli serve" in cmd:
            return "API server process (load figure)"
        return None

    @classmethod
    def sample(cls, pid: int, out: Path) -> int:
        """The sampler process: watch `pid` and its descendants until SIGTERM, then write the peaks to `out`."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        peaks: dict[str, float] = {}
        root = psutil.Process(pid)

        def note(role: str, proc: psutil.Process) -> None:
            with contextlib.suppress(psutil.Error, OSError):
                peaks[role] = max(peaks.get(role, 0.0), proc.memory_info().rss / 2**20)

        while not stop.wait(0.05):
            note("API process (validates, drives the run)", root)
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    role = cls.role(child)
                    if role:
                        note(role, child)
        out.write_text(json.dumps(peaks))
        return 0

    def __enter__(self) -> RssSampler:
        self._proc = subprocess.Popen([sys.executable, __file__, "--sample-rss", str(os.getpid()), str(self._out)])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.terminate()
        self._proc.wait(timeout=30)
        with contextlib.suppress(OSError, ValueError):
            self.peaks = json.loads(self._out.read_text())
        self._out.unlink(missing_ok=True)

    def print_peaks(self) -> None:
        print("\n== peak RSS by process (sampled every 50 ms)")
        for role, peak in sorted(self.peaks.items()):
            print(f"  {role:<52} {peak:7.0f} MiB")


if __name__ == "__main__" and sys.argv[1:2] == ["--sample-rss"]:
    sys.exit(RssSampler.sample(int(sys.argv[2]), Path(sys.argv[3])))
