"""``mlmon demo``: a working pipeline on embedded defaults in about a minute.

Seeds a reference day plus ``days`` monitored days of simulated traffic for ``demo_classifier`` (a
drift episode, a data-quality incident and a latency/error spike in the middle), builds the reference
from the first day, backfills every monitored day as Prefect flow runs, and prints where the reports and
tables are. Re-running it reuses the seeded data (``--fresh`` seeds again) and replaces the results.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlmon.settings import Settings

DEMO_MODEL = "demo_classifier"
SEED = 7


def run_demo(s: Settings, *, days: int = 10, per_day: int = 2500, fresh: bool = False) -> int:
    from mlmon import simulate
    from mlmon.tasks import reference
    from mlmon.tasks.config import load_config
    from mlmon.tasks.connect import mongo_client

    t0 = time.monotonic()
    cfg = load_config(s.config_path).model(DEMO_MODEL)
    print(f"[demo] state folder {s.home}")
    mongo_uri = s.mongo_uri()
    pg_uri = s.postgres_uri()
    print(f"[demo] MongoDB {'(embedded) ' if not s.mongo_uri_env else ''}{mongo_uri}")
    print(f"[demo] PostgreSQL {'(embedded) ' if not s.postgres_uri_env else ''}{pg_uri}")
    client = mongo_client(mongo_uri)
    db = client[cfg.source.database]
    meta = db["mlmon_demo"].find_one({"_id": {"$eq": "demo"}})
    # traffic seeded by an older simulator (no region, no shadow, fewer episodes) is seeded again
    wanted = {"days": days + 1, "per_day": per_day, "seed": SEED, "simulator": simulate.SIMULATOR_VERSION}
    if fresh or meta is None or any(meta.get(k) != v for k, v in wanted.items()):
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=days + 1
        )
        db[cfg.source.collection].drop()
        if cfg.source.labels:
            db[cfg.source.labels.collection].drop()
        print(f"[demo] seeding {days + 1} days x {per_day:,} predictions from {start:%Y-%m-%d} …")
        summary = simulate.run_simulation(mongo_uri, cfg.source.database, start, days + 1, per_day, SEED)
        db["mlmon_demo"].replace_one({"_id": "demo"}, {"_id": "demo", "start": start, **wanted}, upsert=True)
        print(
            f"[demo] seeded {summary.get('predictions', '?'):,} predictions and {summary.get('labels', '?'):,} labels"
        )
    else:
        start = meta["start"].astimezone(UTC)
        print(f"[demo] reusing the traffic seeded from {start:%Y-%m-%d} (use --fresh to seed again)")
    client.close()

    ref_start, ref_end = start, start + timedelta(days=1)
    info = reference.build_from_mongo(mongo_uri, cfg, ref_start, ref_end, cfg.reference_path)
    print(
        f"[demo] reference: {info['rows']:,} rows from {ref_start:%Y-%m-%d} -> {cfg.reference_path} ({info['hash']})"
    )

    from mlmon.flows.monitor import backfill

    print(f"[demo] backfilling {days} daily windows as Prefect flow runs …")
    results = backfill(DEMO_MODEL, ref_end, ref_end + timedelta(days=days), str(s.config_path))
    print(f"\n{'window':<12} {'status':<6} {'rows':>6} {'quar.':>5}  failed checks")
    for r in results:
        failed = sorted({f.split(":")[0] for f in r["failed_checks"]})
        print(
            f"{r['window_start'][:10]:<12} {r['status']:<6} {r['rows']:>6,} {r['quarantined']:>5,}  {', '.join(failed)}"
        )
    index = s.reports_dir / "index.html"
    exe = Path(sys.executable).with_name("mlmon")
    cli = str(exe) if exe.exists() else "mlmon"
    print(
        f"""
Done in {time.monotonic() - t0:.0f}s.

Reports:   {index.as_uri()}
           (open it in a browser; every window links to its report)
Postgres:  {pg_uri}
           tables mlmon.runs, mlmon.checks, mlmon.metrics, mlmon.drift, mlmon.quarantine
Query it:  {cli} sql "select window_start, status, n_rows, n_failed_checks from mlmon.runs order by 1"
           {cli} sql "select window_start, feature, effect, status from mlmon.drift
                      where status = 'fail' and segment = 'all' order by 1, 3 desc"
"""
    )
    if running := background_services(s):
        print(
            f"Still running in the background: {', '.join(running)} (state in {s.home}); later mlmon commands "
            f"reuse them. Stop them with:\n           {cli} services stop"
        )
    return 0


def background_services(s: Settings) -> list[str]:
    """The servers mlmon started that outlive this command (so the user can be told, and stop them)."""
    from mlmon import embedded

    out = []
    if not s.mongo_uri_env:
        out.append("the embedded MongoDB")
    if not s.postgres_uri_env:
        out.append("the embedded PostgreSQL")
    if url := embedded.running_prefect_server(s.home / "prefect"):
        out.append(f"a local Prefect server ({url.removesuffix('/api')})")
    return out
