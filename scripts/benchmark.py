"""Benchmark of the job (see scripts/benchmark.sh). Prints figures and ratios; asserts nothing.

Every ratio compares two things measured in this same run on this same Postgres, because an absolute time on a
shared two-core machine means little:
- canonical data: the API's trigger -> published time against the card chain, three plain `dbt` CLI processes
  (`dbt seed`, `dbt run`, `dbt test`) as a user would type them (target dir reused, so partial parsing works);
- a generated data set (default 1M experiments): trigger -> published against the floor, a COPY of the same
  three files plus one SQL statement computing the mart plus the key checks, in one session.
Then a load figure: /features served at 200 requests/s while the API rebuilds back to back (p50/p99, errors).
Peak RSS is sampled for every process involved (this process plays the API, which also validates the CSVs).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.config import REPO_ROOT, Settings
from api.core.db.database import Database, open_database
from api.core.db.port import free_port
from api.core.dbt.env import dbt_env, session_options
from api.core.dbt.invoke import run_dbt
from api.core.seeds import prepare_seeds
from scripts import benchmark_spark
from scripts.benchmark_common import RssSampler, api_runs, count_rows, generate, measure, median, validation

CANONICAL = REPO_ROOT / "seeds"
ENGINES = ("postgres", "spark")


# --------------------------------------------------------------------------- the reference points


def card_chain(db: Database, data: Path, scratch: Path, fresh_target: bool = False) -> float:
    """Three plain `dbt` CLI processes, as typed by hand: seed, run, test (unit tests included, as `dbt test`
    runs them). Into `*__card` schemas of the same database. `fresh_target`: a new target folder each time, so
    each process parses the whole project (as the job ran dbt before the warm worker)."""
    seeds = scratch / "seeds"
    prepare_seeds(data, seeds)
    env = dbt_env(Settings(dbt_threads=4, dbt_target="default"), db, seeds_dir=seeds, suffix="__card")
    t0 = time.perf_counter()
    with open(scratch / "card.log", "a") as log:
        for command in ("seed", "run", "test"):
            target = scratch / ("target-" + str(time.perf_counter_ns()) if fresh_target else "target")
            result = run_dbt([command], env=env, target_path=target, log=log)
            if not result.ok:
                raise SystemExit(f"card chain: dbt {command} failed; see {scratch / 'card.log'}")
    return time.perf_counter() - t0


FLOOR_SQL = """
create table floor.user_features as
with unnested as (
    select distinct e.user_id, e.experiment_id, cast(t as integer) as compound_id
    from floor.user_experiments as e
    cross join lateral unnest(string_to_array(e.experiment_compound_ids, ';')) as t
),
counts as (
    select user_id, compound_id, count(*) as n,
           max(count(*)) over (partition by user_id) as top
    from unnested group by user_id, compound_id
),
top as (
    select user_id, min(compound_id) as compound_id, max(n) as n,
           array_agg(compound_id order by compound_id) as tied
    from counts where n = top group by user_id
),
per_user as (
    select user_id, count(*) as total, avg(experiment_run_time) as avg_rt, sum(experiment_run_time) as sum_rt
    from floor.user_experiments group by user_id
),
totals as (
    select (select count(*) from floor.user_experiments)::numeric as all_e,
           (select count(*) from floor.users)::numeric as all_u
)
select u.user_id, u.name, u.email, u.signup_date,
       coalesce(p.total, 0) as total_experiments,
       case when all_e = 0 then 0 else coalesce(p.total, 0) / all_e end as experiment_share,
       all_e / nullif(all_u, 0) as avg_experiments_per_user,
       p.avg_rt as avg_experiment_run_time, coalesce(p.sum_rt, 0) as total_experiment_run_time,
       t.compound_id as most_common_compound_id, c.compound_name, c.compound_structure,
       coalesce(t.n, 0) as most_common_compound_experiments, coalesce(t.tied, '{}') as tied_compound_ids
from floor.users u cross join totals
left join per_user p on p.user_id = u.user_id
left join top t on t.user_id = u.user_id
left join floor.compounds c on c.compound_id = t.compound_id
"""

FLOOR_CHECKS = [
    "select count(*) - count(distinct user_id) + count(*) filter (where user_id is null) from floor.users",
    "select count(*) - count(distinct experiment_id) + count(*) filter (where experiment_id is null)"
    " from floor.user_experiments",
    "select count(*) - count(distinct compound_id) + count(*) filter (where compound_id is null) from floor.compounds",
    "select count(*) - count(distinct user_id) + count(*) filter (where user_id is null) from floor.user_features",
    "select count(*) from floor.user_experiments e left join floor.users u using (user_id) where u.user_id is null",
    "select count(*) from floor.user_experiments e"
    " cross join lateral unnest(string_to_array(e.experiment_compound_ids, ';')) as t"
    " left join floor.compounds c on c.compound_id = cast(t as integer) where c.compound_id is null",
]


def floor(db: Database, data: Path) -> float:
    """COPY the three files, compute the mart in one statement, run the key checks: one session, with the
    session settings dbt's connections get (DBT_SESSION_OPTIONS)."""
    with db.connect(options=session_options()) as conn:
        conn.execute("drop schema if exists floor cascade")
        t0 = time.perf_counter()
        conn.execute("create schema floor")
        conn.execute("create table floor.users (user_id integer, name text, email text, signup_date date)")
        conn.execute(
            "create table floor.user_experiments (experiment_id integer, user_id integer,"
            " experiment_compound_ids text, experiment_run_time numeric)"
        )
        conn.execute("create table floor.compounds (compound_id integer, compound_name text, compound_structure text)")
        for name in ("users", "user_experiments", "compounds"):
            sql = f"copy floor.{name} from stdin with (format csv, header true)"
            with conn.cursor() as cur, open(data / f"{name}.csv", "rb") as fh, cur.copy(sql) as copy:
                while block := fh.read(1 << 20):
                    copy.write(block)
        conn.execute(FLOOR_SQL)
        bad = [conn.execute(check).fetchone()[0] for check in FLOOR_CHECKS]
        took = time.perf_counter() - t0
        conn.execute("drop schema floor cascade")
    if any(bad):
        raise SystemExit(f"floor: key checks failed {bad}")
    return took


def section(
    title: str, db: Database, data: Path, scratch: Path, rounds: int, reference: str
) -> tuple[float, float, list[dict]]:
    counts = count_rows(data)
    print(f"\n== {title}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
    validation(data, scratch / "validated", counts)
    if reference == "none":
        ref = [float("nan")]
    elif reference == "card":
        fresh = measure(
            "  the same, a new target folder each time", lambda: card_chain(db, data, scratch, True), rounds
        )
        ref = measure("card chain: dbt seed, dbt run, dbt test (CLI)", lambda: card_chain(db, data, scratch), rounds)
    else:
        ref = measure("floor: COPY + one SQL statement + key checks", lambda: floor(db, data), rounds)
    settings = Settings(data_dir=data, state_dir=scratch / "state", dbt_threads=4).resolved()
    results = api_runs(settings, db, rounds)
    api = median([r["published"] for r in results])
    name = "card chain" if reference == "card" else "floor"
    if reference != "none":
        print(f"  ratio: trigger -> published / {name} = {api / median(ref):.2f}", flush=True)
    if reference == "card":
        print(f"  ratio: trigger -> published / card chain with a new target folder = {api / median(fresh):.2f}")
    shutil.rmtree(scratch, ignore_errors=True)
    return api, median(ref), results


def load_section(db: Database, data: Path, scratch: Path, rate: int, duration: float) -> None:
    """GET /features?limit=100 at `rate` requests/s for `duration` s over loopback, open loop (latency counted
    from when each request was due, so a stall is not hidden), while the API rebuilds the mart back to back."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "DATA_DIR": str(data),
        "STATE_DIR": str(scratch / "state"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "warning",
    }
    env.pop("API_TOKEN", None)
    scratch.mkdir(parents=True, exist_ok=True)
    with open(scratch / "api.log", "wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(base + "/health", timeout=2).status == 200:  # noqa: S310 - loopback
                    break
            time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(base + "/trigger?wait=true", method="POST"), timeout=600)  # noqa: S310
        stop = threading.Event()
        rebuilds = [0]

        def rebuild() -> None:
            while not stop.is_set():
                request = urllib.request.Request(base + "/trigger?wait=true", method="POST")  # noqa: S310
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(request, timeout=600).read()  # noqa: S310 - loopback
                    rebuilds[0] += 1

        rebuilder = threading.Thread(target=rebuild, daemon=True)
        rebuilder.start()
        total = int(rate * duration)
        latencies: list[float] = []
        errors: list[str] = []
        next_index = iter(range(total))
        lock = threading.Lock()
        t0 = time.perf_counter() + 0.5

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                due = t0 + i / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                try:
                    conn.request("GET", "/features?limit=100")
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        errors.append(str(response.status))
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(type(exc).__name__)
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                with lock:
                    latencies.append(time.perf_counter() - due)
            conn.close()

        clients = [threading.Thread(target=client) for _ in range(16)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        stop.set()
        rebuilder.join(timeout=600)
    finally:
        api.terminate()
        api.wait(timeout=60)
    latencies.sort()
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.5, 0.99))
    print(f"\n== load: GET /features?limit=100 at {rate}/s for {duration:g} s during back-to-back rebuilds")
    print(f"  requests {len(latencies)}, errors {len(errors)}, rebuilds meanwhile {rebuilds[0]}")
    print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms  (goal: p99 < 20 ms, 0 errors)")


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/benchmark.sh",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=100_000, help="users of the generated data set")
    parser.add_argument("--experiments", type=int, default=1_000_000, help="experiments of the generated data set")
    parser.add_argument("--compounds", type=int, default=5_000, help="compounds of the generated data set")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each figure (median reported)")
    parser.add_argument("--skip-canonical", action="store_true", help="no canonical-data section")
    parser.add_argument("--skip-generated", action="store_true", help="no generated-data section")
    parser.add_argument("--skip-load", action="store_true", help="no load figure")
    parser.add_argument("--skip-floor", action="store_true", help="generated data: no floor (memory checks at 10M)")
    parser.add_argument("--load-rate", type=int, default=200, help="requests/s of the load figure")
    parser.add_argument("--load-seconds", type=float, default=30, help="duration of the load figure")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="postgres",
        help="where dbt builds: postgres, or spark (the generated-data section only; needs "
        "scripts/bootstrap.sh --spark and Java)",
    )
    return parser


def main() -> int:
    args = arguments().parse_args()
    if args.engine == "spark":
        return benchmark_spark.main(args)
    settings = Settings()
    url = settings.database_url.get_secret_value() if settings.database_url else None
    summary = []
    with tempfile.TemporaryDirectory(prefix="features-mart-bench-") as tmp, RssSampler() as sampler:
        root = Path(tmp)
        with open_database(url, root / "pg-state", None) as db:
            print(f"database: {db.display_url}{' (embedded)' if db.embedded else ''}; dbt threads 4")
            if not args.skip_canonical:
                api, ref, _ = section("canonical data", db, CANONICAL, root / "canonical", args.rounds, "card")
                summary.append(("canonical: trigger -> published / card chain", api, ref))
            if not args.skip_generated:
                data = root / "generated"
                t0 = time.perf_counter()
                generate(data, args.users, args.experiments, args.compounds)
                print(f"\n(generated the data set in {time.perf_counter() - t0:.1f} s)")
                reference = "none" if args.skip_floor else "floor"
                api, ref, _ = section("generated data", db, data, root / "gen", args.rounds, reference)
                against = "" if args.skip_floor else " / floor"
                summary.append((f"{args.experiments:,} experiments: trigger -> published{against}", api, ref))
            if not args.skip_load:
                load_section(db, CANONICAL, root / "load", args.load_rate, args.load_seconds)
    print("\n== summary")
    for label, api, ref in summary:
        if ref == ref:  # not nan: there was a reference
            print(f"  {label:<52} {api:6.2f} s / {ref:6.2f} s = {api / ref:.2f}")
        else:
            print(f"  {label:<52} {api:6.2f} s (no reference measured)")
    sampler.print_peaks()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  {'API process, exact peak (getrusage)':<52} {self_peak:7.0f} MiB")
    print(f"  {'largest ended child process, exact (getrusage)':<52} {children:7.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
