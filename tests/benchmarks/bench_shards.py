"""Benchmark of the sharded path (issue 12, target 5): a big window in time shards on a local Dask
cluster through Prefect's ``DaskTaskRunner``, each worker under a 2 GB address-space limit.

    python tests/benchmarks/bench_shards.py [--rows 20000000] [--shard-rows 250000] [--workers 2]

What it measures, honestly:

* MongoDB is not in the loop. The stand-in here (nx-27017) reads ~10k documents/s, so 20M documents
  would take over half an hour to read, and a real MongoDB cannot be installed. Each shard task instead
  *generates* its shard as raw BSON batches — the bytes a real MongoDB returns to ``find_raw_batches``,
  the issue workload's 15 numerical + 5 categorical features in the canonical document — and then runs the
  real extraction on them (``extract.decode_batches``: decode, validate, type, quarantine) and the real
  summary (``summary.summarise_batch``). The BSON is built from a byte template with NumPy (fixed-length
  values), because ``bson.encode`` (~18k docs/s here) would dominate; generation is timed apart.
* Each Dask worker sets ``RLIMIT_AS`` (``ulimit -v``) to the limit in its first task, on top of the
  Dask worker's own ``memory_limit``; a shard that needs more fails with MemoryError, the run says so.
* Times: wall time of the whole flow (Dask cluster start-up excluded and printed apart), and per-shard
  task seconds split into generate / extract / summarise, with each worker's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import numpy as np
import pandas as pd

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a busy shared machine
if "PREFECT_API_URL" not in os.environ:  # a private temporary server, not the user's ~/.prefect database
    import tempfile

    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="mlmon-bench-shards-"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MALLOC_ARENA_MAX", "2")

from mlmon.tasks import contract as c
from mlmon.tasks import summary
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.window import Window

T0 = datetime(2026, 1, 1, tzinfo=UTC)
N_NUM, LEVELS = 15, (4, 6, 8, 10, 12)
SHIFTED = (0, 5, 10)  # the workload: +0.2 σ on three numerical columns
BATCH = 10_000  # documents per raw batch, as source.batch_size
MEMORY_LIMIT = 2 * 2**30


def config() -> ModelConfig:
    feats: dict[str, Any] = {f"n{j}": {"type": "numerical"} for j in range(N_NUM)}
    feats |= {f"c{i}": {"type": "categorical"} for i in range(len(LEVELS))}
    return ModelConfig.model_validate(
        {
            "name": "bench_shards",
            "features": feats,
            "reference": {"path": "unused.parquet"},
            "task": "binary",
            "classes": ["neg", "pos"],
            "positive_class": "pos",
            "fields": {"probabilities": "prediction.probabilities", "target": "label"},
            "service": {"latency_p95_ms": 300, "latency_p99_ms": 800},
            "quality": {"expected_volume": {"min": 1}},
            "shards": {"max_in_memory_rows": 1_000_000, "worker_memory": "2GB"},
        }
    )


def _cat_names(levels: int) -> np.ndarray:
    return np.array([f"v{k:02d}" for k in range(levels)], dtype="S3")  # fixed length: one template


def draw(n: int, rng: np.random.Generator, shift: float) -> dict[str, np.ndarray]:
    """The issue's workload columns: ``N(j, 1+0.1j)``; categories with linearly decreasing weights."""
    out: dict[str, np.ndarray] = {}
    for j in range(N_NUM):
        sd = 1 + 0.1 * j
        out[f"n{j}"] = rng.normal(j + (shift * sd if j in SHIFTED else 0.0), sd, n)
    for i, levels in enumerate(LEVELS):
        w = np.arange(levels, 0, -1, dtype=np.float64)
        out[f"c{i}"] = rng.choice(levels, n, p=w / w.sum())
    p = rng.random(n)
    out["p"] = p
    out["label"] = rng.random(n) < np.clip(p + rng.normal(0, 0.2, n), 0, 1)
    out["latency"] = rng.lognormal(3.5, 0.5, n)
    out["error"] = rng.random(n) < 0.01
    return out


def reference(n: int, seed: int = 1) -> pd.DataFrame:
    cols = draw(n, np.random.default_rng(seed), 0.0)
    df = pd.DataFrame({f"n{j}": cols[f"n{j}"] for j in range(N_NUM)})
    for i, levels in enumerate(LEVELS):
        df[f"c{i}"] = _cat_names(levels).astype(str).astype(object)[cols[f"c{i}"]]
    df[c.SCORE] = cols["p"]
    df[c.PREDICTION] = np.where(cols["p"] >= 0.5, "pos", "neg").astype(object)
    df[c.TARGET] = np.where(cols["label"], "pos", "neg").astype(object)
    return df


class Template:
    """A canonical prediction document as BSON bytes, with the offset of every value in it: documents
    of the same layout are written by NumPy slicing instead of ``bson.encode`` per document."""

    def __init__(self) -> None:
        marks: dict[str, Any] = {f"n{j}": 1e300 + j * 1e290 for j in range(N_NUM)}
        feats: dict[str, Any] = dict(marks)
        feats |= {f"c{i}": f"#{i:02d}" for i in range(len(LEVELS))}
        doc = {
            "_id": 0x0102030405060708,
            "request_id": "R########",
            "model_name": "bench_shards",
            "model_version": "v1",
            "timestamp": datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
            "features": feats,
            "prediction": {"value": "P##", "probabilities": {"pos": 7.25e299, "neg": 7.5e299}},
            "label": "L##",
            "latency_ms": 8.75e299,
            "status": "S#",
        }
        self.raw = bson.encode(doc)
        b = self.raw
        self.size = len(b)

        def at(needle: bytes) -> int:
            i = b.find(needle)
            assert i >= 0 and b.find(needle, i + 1) < 0, needle
            return i

        self.num = {k: at(struct.pack("<d", v)) for k, v in marks.items()}
        self.cat = {f"c{i}": at(f"#{i:02d}".encode()) for i in range(len(LEVELS))}
        self.id = at(struct.pack("<q", 0x0102030405060708))
        self.rid = at(b"R########")
        ms = int(datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC).timestamp() * 1000)
        self.ts = at(struct.pack("<q", ms))
        self.pred, self.label, self.status = at(b"P##"), at(b"L##"), at(b"S#")
        self.pos, self.neg = at(struct.pack("<d", 7.25e299)), at(struct.pack("<d", 7.5e299))
        self.lat = at(struct.pack("<d", 8.75e299))

    def batches(self, shard: Window, n: int, seed: int, shift: float) -> list[bytes]:
        """``n`` documents spread over ``shard``, as raw BSON batches of :data:`BATCH` documents."""
        rng = np.random.default_rng(seed)
        cols = draw(n, rng, shift)
        buf = np.tile(np.frombuffer(self.raw, dtype=np.uint8), (n, 1))

        def put(off: int, values: np.ndarray) -> None:
            buf[:, off : off + values.dtype.itemsize] = values.view(np.uint8).reshape(n, -1)

        for k, off in self.num.items():
            put(off, cols[k].astype("<f8"))
        for i, levels in enumerate(LEVELS):
            put(self.cat[f"c{i}"], _cat_names(levels)[cols[f"c{i}"]])
        ids = np.arange(n, dtype=np.int64) + seed * 10**9
        put(self.id, ids.astype("<i8"))
        put(self.rid, np.char.add(b"r", np.char.zfill(ids.astype("S16"), 8)).astype("S9"))
        span = int((shard.end - shard.start).total_seconds() * 1000)
        start_ms = int(shard.start.timestamp() * 1000)
        put(self.ts, (start_ms + np.sort(rng.integers(0, span, n))).astype("<i8"))
        put(self.pred, np.where(cols["p"] >= 0.5, b"pos", b"neg").astype("S3"))
        put(self.label, np.where(cols["label"], b"pos", b"neg").astype("S3"))
        put(self.pos, cols["p"].astype("<f8"))
        put(self.neg, (1 - cols["p"]).astype("<f8"))
        put(self.lat, cols["latency"].astype("<f8"))
        put(self.status, np.where(cols["error"], b"er", b"ok").astype("S2"))
        flat = buf.reshape(-1)
        step = BATCH * self.size
        return [flat[i : i + step].tobytes() for i in range(0, flat.size, step)]


_TEMPLATE: list[Template] = []  # one per worker process


def _limit_memory() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def shard_work(
    cfg: ModelConfig, plan: summary.Plan, shard: Window, n: int, index: int, rate: float
) -> dict[str, Any]:
    """One shard on a worker: generate its raw BSON, extract it for real, summarise it."""
    from mlmon.tasks.extract import decode_batches, in_one_process

    _limit_memory()
    if not _TEMPLATE:
        _TEMPLATE.append(Template())
    t0 = time.perf_counter()
    raw = _TEMPLATE[0].batches(shard, n, 1000 + index, 0.2)
    t1 = time.perf_counter()
    batch = decode_batches(raw, in_one_process(cfg), shard)  # as shard_task: the shards are the parallelism
    del raw
    t2 = time.perf_counter()
    out = summary.summarise_batch(batch, plan, cfg, shard, rate=rate, index=index)
    t3 = time.perf_counter()
    return {
        "out": out,
        "generate": t1 - t0,
        "extract": t2 - t1,
        "summarise": t3 - t2,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "limit_mb": resource.getrlimit(resource.RLIMIT_AS)[0] / 2**20,
        "pid": os.getpid(),
    }


def run(rows: int, shard_rows: int, workers: int) -> None:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.evaluate import profile_kinds
    from mlmon.tasks.reference import fit_profile

    cfg = config()
    ref = reference(200_000)
    profile = replace(
        fit_profile(ref, profile_kinds(cfg), "bench"), performance=reference_performance(ref, cfg)
    )
    plan = summary.fit_plan(cfg, profile, profile_kinds(cfg))
    n_shards = -(-rows // shard_rows)
    window = Window(T0, T0 + timedelta(hours=n_shards))
    shards = [Window(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1)) for i in range(n_shards)]
    sizes = [min(shard_rows, rows - i * shard_rows) for i in range(n_shards)]
    rate = summary.sample_rate(cfg, rows)
    shard_task = task(name="bench-shard", cache_policy=NO_CACHE, task_run_name="shard {index}")(shard_work)

    @flow(name="bench-shards")
    def bench() -> list[dict[str, Any]]:
        futures = [
            shard_task.submit(cfg, plan, s, k, i, rate)
            for i, (s, k) in enumerate(zip(shards, sizes, strict=True))
        ]
        done, t_start = [], time.perf_counter()
        for f in futures:
            done.append(f.result())
            if len(done) % 10 == 0 or len(done) == len(futures):
                rows_done = sum(d["out"].n_rows for d in done)
                secs = time.perf_counter() - t_start
                print(
                    f"  … {len(done)}/{len(futures)} shards, {rows_done:,} rows in {secs:.0f} s "
                    f"({rows_done / secs:,.0f} rows/s since the first submit)",
                    flush=True,
                )
        return done

    print(
        f"\n== sharded path: {rows:,} rows in {n_shards} shards of ≤ {shard_rows:,}, {workers} Dask workers, "
        f"each under RLIMIT_AS {MEMORY_LIMIT / 2**30:.0f} GB (+ Dask memory_limit 2GB) ==",
        flush=True,
    )
    print("  source: raw BSON batches generated in each worker (no MongoDB: see the module docstring)")
    # One temporary Prefect server for the driver and every worker (each worker process would otherwise
    # boot its own: 15-60 s each on this machine, and time-outs under load).
    server = None
    if "PREFECT_API_URL" not in os.environ:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=180)
        os.environ["PREFECT_API_URL"] = server.api_url
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "memory_limit": "2GB",
            "processes": True,
            "dashboard_address": None,
        }
    )
    t = time.perf_counter()
    try:
        parts = bench.with_options(task_runner=runner)()
        wall = time.perf_counter() - t
    finally:
        if server is not None:
            from prefect.logging.handlers import APILogWorker

            try:
                APILogWorker.drain_all(timeout=30)  # the flow's last logs, before their server goes away
            finally:
                server.stop()
    t = time.perf_counter()
    merged = summary.merge_all(summary.from_bytes(p["out"].summary) for p in parts)
    sample = summary.draw_sample([p["out"].sample for p in parts], cfg.shards.sample_rows, 0)
    result = summary.evaluate_summary(cfg, profile, merged, plan, window, sample=sample, reference=ref)
    decide = time.perf_counter() - t
    gen = sum(p["generate"] for p in parts)
    ext = sum(p["extract"] for p in parts)
    summ = sum(p["summarise"] for p in parts)
    peak = {}
    for p in parts:
        peak[p["pid"]] = max(peak.get(p["pid"], 0.0), p["rss_mb"])
    limits = {p["limit_mb"] for p in parts}
    drifted = sorted(d.feature for d in result.drift if d.drifted)
    size = sum(len(p["out"].summary) for p in parts)
    print(f"  rows summarised          {merged.n_rows:>14,}  (quarantined {merged.n_quarantined:,})")
    print(f"  flow wall time           {wall:>10.1f} s   (incl. Dask cluster start-up and Prefect task runs)")
    print(
        f"  shard task seconds       {gen + ext + summ:>10.1f} s   generate {gen:.1f} / extract {ext:.1f} / summarise {summ:.1f}"
    )
    print(
        f"  extract + summarise      {merged.n_rows / max(ext + summ, 1e-9) * workers:>10,.0f} rows/s over {workers} workers (task seconds)"
    )
    print(
        f"  merge + decide + sample  {decide:>10.1f} s   ({len(sample):,} sample rows; Evidently not run here)"
    )
    print(
        f"  worker peak RSS          {', '.join(f'{v:.0f} MB' for v in peak.values())}  (limit {', '.join(f'{x:.0f} MB' for x in limits)})"
    )
    print(
        f"  summaries                {size / 2**20:>10.1f} MB for {n_shards} shards ({size / n_shards / 1024:.0f} kB each)"
    )
    print(
        f"  verdict                  {result.status.value}; drifted: {', '.join(drifted) or 'none'} (injected: n0, n5, n10)"
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--shard-rows", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    run(args.rows, args.shard_rows, args.workers)


if __name__ == "__main__":
    main()
