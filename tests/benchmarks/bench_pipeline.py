"""Benchmark: time and peak memory of each stage on 100k and 1M predictions × 20 features.

Not a test. Prints one table per window size:

* extract  — decoding raw BSON batches into the typed frame (validation and quarantine included),
             next to ``bson.decode_all`` alone on the same bytes (the client-side ceiling). MongoDB itself
             is not in the loop: the stand-in server here is not what production runs.
* checks   — every mlmon check (drift on 20 features + prediction, quality, health, performance).
* store    — the transactional replace of the window's rows in a real (embedded) PostgreSQL.
* report   — our HTML report (Evidently excluded: it is timed separately).
* evidently DataDriftPreset alone, on the same frames, for comparison with ``checks``.

Peak memory is the peak resident set size above the stage's starting RSS, sampled every 5 ms.

    python tests/benchmarks/bench_pipeline.py            # 100k and 1M
    python tests/benchmarks/bench_pipeline.py --sizes 100000 --no-evidently
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
import numpy as np
import pandas as pd
import psutil

from mlmon.tasks import contract as c
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import CODEC, decode_batches
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.window import Window

N_NUM, N_CAT = 15, 5
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATS = [
    ["a", "b", "c", "d"],
    ["x", "y"],
    [f"c{i}" for i in range(12)],
    ["eu", "us", "apac"],
    ["web", "ios", "android"],
]


@dataclass
class Stage:
    name: str
    seconds: float
    peak_mb: float


@contextmanager
def measure(name: str, out: list[Stage]) -> Any:
    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        secs = time.perf_counter() - t0
        stop.set()
        t.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        out.append(Stage(name, secs, (peak[0] - base) / 2**20))
        print(
            f"  {name:<30} {secs:8.2f} s  peak +{(peak[0] - base) / 2**20:6.0f} MB above start "
            f"(RSS peak {peak[0] / 2**20:6.0f} MB)",
            flush=True,
        )


def config() -> ModelConfig:
    feats: dict[str, Any] = {f"n{i}": {"type": "numerical"} for i in range(N_NUM)}
    feats |= {f"c{i}": {"type": "categorical"} for i in range(N_CAT)}
    return ModelConfig.model_validate(
        {
            "name": "bench",
            "base_dir": ".",
            "features": feats,
            "reference": {"path": "bench.parquet"},
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            "fields": {"probabilities": "prediction.probabilities"},
            "service": {"latency_p95_ms": 300, "latency_p99_ms": 800},
            "evidently": {"max_rows": 20_000},
        }
    )


def columns(n: int, rng: np.random.Generator, shift: float = 0.0) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for i in range(N_NUM):
        if i % 3 == 0:
            cols[f"n{i}"] = rng.normal(shift if i == 0 else 0.0, 1.0, n)
        elif i % 3 == 1:
            cols[f"n{i}"] = rng.lognormal(3.0, 0.5, n)
        else:
            cols[f"n{i}"] = rng.poisson(4, n).astype(np.float64)
    for i in range(N_CAT):
        cols[f"c{i}"] = rng.choice(np.array(CATS[i], dtype=object), n)
    return cols


def reference_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame(columns(n, rng))
    p = rng.random(n)
    df[c.SCORE] = p
    df[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    df[c.TARGET] = np.where(rng.random(n) < np.clip(p + rng.normal(0, 0.2, n), 0, 1), "yes", "no").astype(
        object
    )
    return df


def raw_batches(n: int, rng: np.random.Generator, batch: int = 10_000) -> list[bytes]:
    """The window as MongoDB would send it: raw BSON batches of canonical prediction documents."""
    cols = columns(n, rng)
    names = list(cols)
    lists = [cols[k].tolist() for k in names]
    p = rng.random(n).tolist()
    lat = rng.lognormal(3.5, 0.5, n).tolist()
    err = (rng.random(n) < 0.01).tolist()
    out: list[bytes] = []
    buf: list[bytes] = []
    for r in range(n):
        doc = {
            "_id": r,
            "request_id": f"r{r}",
            "model_name": "bench",
            "model_version": "v1",
            "timestamp": T0 + timedelta(milliseconds=r * 50),
            "features": {k: lists[j][r] for j, k in enumerate(names)},
            "prediction": {
                "value": "yes" if p[r] >= 0.5 else "no",
                "probabilities": {"yes": p[r], "no": 1 - p[r]},
            },
            "latency_ms": lat[r],
            "status": "error" if err[r] else "ok",
        }
        buf.append(bson.encode(doc))
        if len(buf) == batch:
            out.append(b"".join(buf))
            buf = []
    if buf:
        out.append(b"".join(buf))
    return out


def run_size(
    n: int, ref: pd.DataFrame, pg_uri: str | None, with_evidently: bool, out_dir: Path
) -> list[Stage]:
    rng = np.random.default_rng(n)
    cfg = config()
    window = Window(T0, T0 + timedelta(days=60))
    print(f"\n== {n:,} predictions × {N_NUM + N_CAT} features (reference {len(ref):,} rows) ==", flush=True)
    t = time.perf_counter()
    batches = raw_batches(n, rng)
    print(f"  (encoded {sum(map(len, batches)) / 2**20:.0f} MB of BSON in {time.perf_counter() - t:.0f} s)")
    stages: list[Stage] = []
    with measure("bson.decode_all alone", stages):
        docs = [d for b in batches for d in bson.decode_all(b, CODEC)]
    del docs
    gc.collect()
    with measure("extract (decode+validate+type)", stages):
        batch = decode_batches(batches, cfg, window)
    del batches
    assert len(batch.frame) == n, (len(batch.frame), batch.quarantine[:3])
    profile = fit_profile(ref, profile_kinds(cfg), "bench")
    with measure("checks (all of mlmon's)", stages):
        result = evaluate(cfg, profile, batch, window)
    if pg_uri:
        from mlmon.tasks.store import store

        store.migrate(pg_uri)
        with measure("store (one transaction)", stages):
            store.write_window(pg_uri, result, report_path="bench.html", flow_run_id=None)
    from mlmon.reports import render

    with measure("report (mlmon summary)", stages):
        render.write_report(result, cfg, out_dir, None)
    if with_evidently:
        stages.append(evidently_drift(ref, batch.frame, cfg))
    return stages


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame, cfg: ModelConfig) -> Stage:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    feats = list(cfg.features)
    dd = DataDefinition(numerical_columns=cfg.numerical, categorical_columns=cfg.categorical)
    stages: list[Stage] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with measure("evidently DataDriftPreset", stages):
            Report([DataDriftPreset()]).run(
                Dataset.from_pandas(cur[feats], data_definition=dd),
                Dataset.from_pandas(ref[feats], data_definition=dd),
            )
    return stages[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--no-store", action="store_true", help="skip the Postgres stage")
    args = ap.parse_args(argv)
    ref = reference_frame(args.reference_rows, np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        pg_uri = None
        if not args.no_store:
            from mlmon import embedded

            pg_uri = embedded.start_postgres(Path(tmp) / "pg")
        summary: dict[int, list[Stage]] = {}
        try:
            for n in args.sizes:
                summary[n] = run_size(n, ref, pg_uri, not args.no_evidently, Path(tmp) / "reports")
        finally:
            if pg_uri:
                from mlmon import embedded

                embedded.stop_postgres(Path(tmp) / "pg")
    print("\nsummary")
    for n, stages in summary.items():
        by = {s.name: s for s in stages}
        ext, dec = by["extract (decode+validate+type)"], by["bson.decode_all alone"]
        line = f"  {n:>9,} rows: extract {ext.seconds:.2f}s = {ext.seconds / dec.seconds:.1f}× decode_all"
        chk = by["checks (all of mlmon's)"]
        if "evidently DataDriftPreset" in by:
            ev = by["evidently DataDriftPreset"]
            line += f"; checks {chk.seconds:.2f}s vs Evidently DataDriftPreset {ev.seconds:.2f}s = {ev.seconds / chk.seconds:.1f}× faster"
        print(line)


if __name__ == "__main__":
    main()
