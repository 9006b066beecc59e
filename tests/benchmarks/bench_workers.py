"""Benchmark: a backfill fanned out over a Prefect process work pool, one worker against two.

Not a test (tests/test_fanout.py checks the same on fewer windows). On a fresh state folder: the embedded
MongoDB and PostgreSQL, a local Prefect server, ``--days`` days of the demo model's simulated traffic and
its reference (a copy of deployments/models.yaml pointing at a reference in the state folder). Then, for
1 and for 2 real workers (``prefect worker start --pool … --type process --limit 1``: one window at a
time each), the backfill of the same windows is fanned out as deployment runs (:mod:`mlmon.fanout`,
what ``mlmon backfill --pool`` does). Checked from the Prefect API and the store, and printed: which
worker ran each window, that every window ran exactly once (one flow run, one row in mlmon.runs whose
flow_run_id is that run's), and the wall time from the first submission to the last run's end.

    python tests/benchmarks/bench_workers.py              # 6 daily windows, Evidently off
    python tests/benchmarks/bench_workers.py --days 8 --evidently
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MODEL = "demo_classifier"


def _config(home: Path, evidently: bool) -> Path:
    raw = yaml.safe_load((ROOT / "deployments" / "models.yaml").read_text())
    cfg = raw["models"][MODEL]
    cfg["reference"]["path"] = str(home / "reference" / f"{MODEL}.parquet")
    cfg.setdefault("evidently", {})["enabled"] = evidently
    raw["models"] = {MODEL: cfg}
    path = home / "models.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def setup(home: Path, days: int, per_day: int, evidently: bool) -> tuple[Path, datetime]:
    """Databases, a Prefect server, traffic and the reference; return the config and the first window."""
    os.environ.update({"MLMON_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    os.environ["MLMON_CONFIG"] = str(config := _config(home, evidently))
    from mlmon import embedded, simulate
    from mlmon.settings import Settings
    from mlmon.tasks import reference
    from mlmon.tasks.config import load_config

    s = Settings.from_env(config)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ["PREFECT_API_URL"] = embedded.start_prefect_server(s.prefect_postgres_uri(), home / "prefect")
    cfg = load_config(config).model(MODEL)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days + 1)
    simulate.run_simulation(s.mongo_uri(), cfg.source.database, start, days + 1, per_day, 7)
    reference.build_from_mongo(s.mongo_uri(), cfg, start, start + timedelta(days=1), cfg.reference_path)
    s.postgres_uri()  # the writer role exists before the workers' flow runs connect
    return config, start + timedelta(days=1)


def store_rows(config: Path) -> list[tuple[datetime, str | None]]:
    """``(window_start, flow_run_id)`` of every mlmon.runs row of the model (as the superuser reads it)."""
    import psycopg2

    from mlmon.settings import Settings

    with psycopg2.connect(Settings.from_env(config).postgres_uri()) as conn, conn.cursor() as cur:
        cur.execute(
            "select window_start, flow_run_id from mlmon.runs where model = %s order by 1",
            (MODEL,),
        )
        return cur.fetchall()


def run(config: Path, first: datetime, days: int, workers: int, home: Path) -> dict[str, object]:
    from mlmon import fanout

    pool = f"bench-{workers}w-{int(time.time())}"  # a pool of its own: no worker of another round takes runs
    fanout.ensure_pool(pool)
    fanout.deploy_monitor(pool)
    procs = [
        fanout.start_worker(pool, f"{pool}-w{i + 1}", log_path=home / f"{pool}-w{i + 1}.log")
        for i in range(workers)
    ]
    try:
        time.sleep(3)  # the workers have registered and polled once
        t0 = time.monotonic()
        from mlmon.tasks.config import load_config
        from mlmon.tasks.window import Window

        cfg = load_config(config).model(MODEL)
        windows = list(
            Window.range(first, first + timedelta(days=days), cfg.window_length, cfg.window_anchor)
        )
        runs = fanout.wait(fanout.submit(MODEL, windows, str(config)), timeout=1800)
        wall = time.monotonic() - t0
    finally:
        for p in procs:
            fanout.stop_worker(p)
    return {"workers": workers, "wall": wall, "runs": runs}


def check(result: dict[str, object], rows: list[tuple[datetime, str | None]], days: int) -> list[str]:
    """What is wrong with a round (empty: every window ran once, on the workers, stored once)."""
    runs = result["runs"]
    problems = [f"{r.window_start:%Y-%m-%d}: {r.state}" for r in runs if r.state != "COMPLETED"]
    if len({r.window_start for r in runs}) != days or len(runs) != days:
        problems.append(f"{len(runs)} runs for {days} windows")
    by_window = Counter(w for w, _ in rows)
    problems += [f"{w:%Y-%m-%d}: {n} rows in mlmon.runs" for w, n in by_window.items() if n != 1]
    stored = {w: run_id for w, run_id in rows}
    for r in runs:
        if stored.get(r.window_start) != r.flow_run_id:
            problems.append(
                f"{r.window_start:%Y-%m-%d}: mlmon.runs row written by {stored.get(r.window_start)}"
            )
    used = {r.worker for r in runs}
    if None in used or len(used) != result["workers"]:
        problems.append(f"workers that took runs: {sorted(map(str, used))}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=6, help="daily windows to backfill")
    parser.add_argument("--per-day", type=int, default=2500)
    parser.add_argument("--evidently", action="store_true", help="keep Evidently on (6-8 s more a window)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlmon-bench-workers-"))
    t0 = time.monotonic()
    config, first = setup(home, args.days, args.per_day, args.evidently)
    print(f"set up in {time.monotonic() - t0:.0f} s (state in {home})")
    results, bad = [], []
    for workers in args.workers:
        result = run(config, first, args.days, workers, home)
        problems = check(result, store_rows(config), args.days)
        bad += problems
        results.append(result)
        print(f"\n{workers} worker(s): {result['wall']:.1f} s wall for {args.days} windows")
        for r in result["runs"]:
            print(f"  {r.window_start:%Y-%m-%d}  {r.state:<9}  {r.worker}")
        print(
            "  every window ran once and is stored once"
            if not problems
            else "  PROBLEMS: " + "; ".join(problems)
        )
    load = os.getloadavg()
    walls = ", ".join(f"{r['workers']} worker{'s' * (r['workers'] > 1)} {r['wall']:.1f} s" for r in results)
    ratio = f" (× {results[0]['wall'] / results[-1]['wall']:.2f})" if len(results) > 1 else ""
    print(
        f"\nfanned-out backfill, {args.days} daily windows of {args.per_day:,} predictions"
        f"{'' if args.evidently else ', Evidently off'}: {walls}{ratio}; load average {load[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    from mlmon import embedded

    embedded.stop_prefect_server(home / "prefect")
    embedded.stop_postgres(home / "postgres")
    embedded.stop_mongo(home / "mongo")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
