"""Benchmark: the targets of the performance issue, each printed with its measured figure.

Not a test. ``make bench`` runs targets 1 and 2:

* target 1, checks: mlmon's drift and data-quality checks vs Evidently 0.7's ``Report([DataDriftPreset()])``
  on the issue's workload (reference and window of n rows each; 15 numerical columns N(j, 1+0.1j), 5
  categorical of 4, 6, 8, 10, 12 levels with linearly decreasing probabilities; the window shifted by
  +0.2σ on three numerical columns), both on the same frames in this one process: time (median of the
  repeats), peak memory, rows used, and which columns drifted. Target: ≥ 50× faster at 100k and 1M with
  at most half of Evidently's peak memory.
* target 2, small windows: every check (drift, quality, health, model quality with its bootstrap) of a
  2,500-row labelled window of the demo model with three segments. Target: ≤ 0.3 s.

``--stages`` adds the older per-stage table (extraction from raw BSON, store, report) on 100k/1M rows.

Peak memory is the kernel's own high-water mark of this process (``VmHWM``, reset through
``/proc/self/clear_refs`` before each measured call) minus the resident size at its start: exact, no
sampling. The machine is shared (2 cores, other work running): absolute times are noisy, the ratios
measured side by side in the same run are what to quote.

    python tests/benchmarks/bench_pipeline.py                       # targets 1 (100k and 1M) and 2
    python tests/benchmarks/bench_pipeline.py --sizes 100000        # target 1 at 100k only (fast)
    python tests/benchmarks/bench_pipeline.py --targets 2
    python tests/benchmarks/bench_pipeline.py --stages --sizes 100000 --no-evidently
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
import numpy as np
import pandas as pd
import psutil

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import CODEC, Batch, decode_batches
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


# --------------------------------------------------------------------------- peak memory, exactly


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


@dataclass
class Run:
    seconds: list[float]
    peak_mb: float  # highest resident size above the start of the call, over the repeats

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))


def _release_free_memory() -> None:
    """Give freed heap memory back to the OS, so the next call's peak is measured from a true baseline."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def timed(fn: Any, repeats: int) -> tuple[Run, Any]:
    """Time ``fn()`` ``repeats`` times; peak memory from the kernel's high-water mark (reset first)."""
    out = None
    seconds, peak = [], 0.0
    for _ in range(repeats):
        out = None
        gc.collect()
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            pass
        base = _rss_kb("VmRSS")
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
        peak = max(peak, (_rss_kb("VmHWM") - base) / 1024)
    return Run(seconds, peak), out


# --------------------------------------------------------------------------- target 1: the workload

LEVELS = (4, 6, 8, 10, 12)
SHIFTED = ("n0", "n1", "n2")  # +0.2σ in the window


def workload_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """15 numerical columns N(j, 1 + 0.1j) and 5 categorical ones (levels with linearly decreasing
    probabilities), as object-dtype strings like a frame straight from a decoder."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for j in range(N_NUM):
        sigma = 1 + 0.1 * j
        mean = j + (shift * sigma if f"n{j}" in SHIFTED else 0.0)
        cols[f"n{j}"] = rng.normal(mean, sigma, n)
    for i, k in enumerate(LEVELS):
        w = np.arange(k, 0, -1, dtype=np.float64)
        names = np.array([f"c{i}_{v}" for v in range(k)], dtype=object)
        cols[f"c{i}"] = names[rng.choice(k, n, p=w / w.sum())]
    return pd.DataFrame(cols)


def workload_config() -> ModelConfig:
    feats: dict[str, Any] = {f"n{j}": {"type": "numerical"} for j in range(N_NUM)}
    feats |= {f"c{i}": {"type": "categorical"} for i in range(N_CAT)}
    return ModelConfig.model_validate(
        {
            "name": "workload",
            "base_dir": ".",
            "features": feats,
            "reference": {"path": "w.parquet"},
            "task": "none",
        }
    )


def evidently_report(ref: pd.DataFrame, cur: pd.DataFrame, cfg: ModelConfig) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    dd = DataDefinition(numerical_columns=cfg.numerical, categorical_columns=cfg.categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
        )


def target_checks(n: int, with_evidently: bool, repeats: int) -> dict[str, Any]:
    cfg = workload_config()
    ref, cur = workload_frame(n, seed=1), workload_frame(n, seed=2, shift=0.2)
    window = Window(T0, T0 + timedelta(days=1))
    print(f"\n== target 1: checks on {n:,} + {n:,} rows × {N_NUM + N_CAT} columns ==", flush=True)
    fit, profile = timed(lambda: fit_profile(ref, profile_kinds(cfg), "workload"), 1)
    print(
        f"  reference profile fit (once per reference, cached on disk) {fit.median:7.2f} s  +{fit.peak_mb:5.0f} MB"
    )
    run, result = timed(lambda: evaluate(cfg, profile, Batch(frame=cur), window), repeats)
    drifted = sorted(d.feature for d in result.drift if d.drifted)
    used = {d.n_current for d in result.drift}
    print(
        f"  mlmon checks (drift + quality + health)  {run.median:7.3f} s  +{run.peak_mb:5.0f} MB  "
        f"(runs: {', '.join(f'{s:.3f}' for s in run.seconds)}); rows used per column: "
        f"{', '.join(f'{u:,}' for u in sorted(used))} of {n:,}; drifted: {', '.join(drifted) or 'none'}",
        flush=True,
    )
    out: dict[str, Any] = {"n": n, "mlmon": run, "fit": fit, "drifted": drifted, "all_rows": used == {n}}
    if with_evidently:
        import evidently  # noqa: F401  (import outside the timing)

        ev, report = timed(lambda: evidently_report(ref, cur, cfg), repeats)
        print(
            f"  Evidently DataDriftPreset                {ev.median:7.3f} s  +{ev.peak_mb:5.0f} MB  "
            f"(runs: {', '.join(f'{s:.2f}' for s in ev.seconds)})",
            flush=True,
        )
        out["evidently"] = ev
        del report
    return out


# --------------------------------------------------------------------------- target 2: a small window


def target_small(repeats: int) -> dict[str, Any]:
    """The demo model (its config and its reference), a 2,500-row window, 80 % labelled, three segments
    (plan), drifted and with degraded predictions so the model-quality bootstrap runs."""
    from mlmon import demo_model as dm
    from mlmon.tasks import evaluate as ev_mod
    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "deployments" / "models.yaml").models[dm.MODEL_NAME]
    cfg = cfg.model_copy(update={"segments": ["plan"]})
    ref = pd.read_parquet(root / "reference_data" / f"{dm.MODEL_NAME}.parquet")
    profile = fit_profile(ref, profile_kinds(cfg), "demo")
    profile = replace(profile, performance=reference_performance(ref, cfg))
    cur = small_window(2_500, seed=5)
    window = Window(T0, T0 + timedelta(days=1))
    print("\n== target 2: a 2,500-row labelled window, three segments (demo model) ==", flush=True)
    ev_mod._SEGMENT_PROFILES.clear()  # the first window of a process fits the segments' reference profiles
    cold, result = timed(lambda: evaluate(cfg, profile, Batch(frame=cur), window, reference=ref), 1)
    warm, result = timed(lambda: evaluate(cfg, profile, Batch(frame=cur), window, reference=ref), repeats)
    segments = sorted({ch.segment for ch in result.checks})
    failed = sorted({f"{ch.check}@{ch.segment}" for ch in result.checks if ch.status is Status.FAIL})
    print(f"  segments: {', '.join(segments)}; {len(result.checks)} checks, {len(failed)} failing")
    print(f"  all checks, first window of the process    {cold.median:7.3f} s")
    print(
        f"  all checks, next windows (median of {repeats})     {warm.median:7.3f} s  "
        f"(runs: {', '.join(f'{s:.3f}' for s in warm.seconds)})"
    )
    return {"cold": cold, "warm": warm}


def small_window(n: int, seed: int) -> pd.DataFrame:
    from mlmon import demo_model as dm

    rng = np.random.default_rng(seed)
    f = dm.customers(rng, n, shift=0.5)
    p = np.clip(dm.churn_probability(f) + rng.normal(0, 0.25, n), 0, 1)  # a worse model than the reference's
    f[c.TIMESTAMP] = pd.date_range(T0, periods=n, freq="30s", tz="UTC")
    f[c.VERSION] = "v1"
    f[c.PREDICTION] = np.where(p > 0.5, "churn", "stay").astype(object)
    f[c.SCORE] = p
    f[c.TARGET] = np.where(rng.random(n) < 0.8, dm.sample_churn(rng, f), None)
    f[c.LATENCY] = rng.lognormal(np.log(40), 0.5, n)
    f[c.STATUS] = "ok"
    return f


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3],
                    help="1: checks vs Evidently, 2: a small window, 3: model-health families")  # fmt: skip
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="target 1 sizes")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement at sizes ≤ 100k (1 above)")
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--stages", action="store_true", help="also the per-stage table (extract, store, report)")
    ap.add_argument("--reference-rows", type=int, default=100_000, help="reference rows of --stages")
    ap.add_argument("--no-store", action="store_true", help="skip the Postgres stage of --stages")
    args = ap.parse_args(argv)
    if argv is None and os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        # Fixed glibc thresholds: big arrays are mmapped and returned to the OS when freed, so one
        # stage's freed memory never hides the next one's peak. Set at start-up only: re-run ourselves.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "1048576"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: ratios matter)")
    checks = [
        target_checks(n, not args.no_evidently, args.repeats if n <= 100_000 else 1)
        for n in (args.sizes if 1 in args.targets else [])
    ]
    small = target_small(max(args.repeats, 5)) if 2 in args.targets else None
    if args.stages:
        run_stages(args)

    print("\nsummary (targets of the performance issue; absolute times are from a shared machine)")
    for r in checks:
        line = (
            f"  target 1 at {r['n']:>9,} rows: mlmon {r['mlmon'].median:.3f} s, +{r['mlmon'].peak_mb:.0f} MB"
        )
        if "evidently" in r:
            ev = r["evidently"]
            speed = ev.median / r["mlmon"].median
            mem = r["mlmon"].peak_mb / ev.peak_mb if ev.peak_mb > 0 else float("nan")
            ok = speed >= 50 and mem <= 0.5 and r["all_rows"] and r["drifted"] == list(SHIFTED)
            line += (
                f"; Evidently {ev.median:.2f} s, +{ev.peak_mb:.0f} MB => {speed:.0f}× faster (target ≥ 50×), "
                f"{mem:.0%} of its peak memory (target ≤ 50%), every row used: {r['all_rows']}, "
                f"drifted = the shifted columns: {r['drifted'] == list(SHIFTED)} -> {'MET' if ok else 'NOT MET'}"
            )
        print(line)
    if 3 in args.targets:
        family_costs(args.sizes)
    if small is not None:
        w, cold = small["warm"].median, small["cold"].median
        print(
            f"  target 2, 2,500 rows + labels + 3 segments: {w:.3f} s (first window of a process {cold:.3f} s); "
            f"target ≤ 0.3 s -> {'MET' if max(w, cold) <= 0.3 else 'NOT MET'}"
        )


def family_costs(sizes: list[int]) -> None:
    """Seconds each model-health family adds to a window (its own calibration script measures it)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from calibrate_outliers import cost

    for n in sizes:
        seconds, scored = cost(n, 3 if n <= 100_000 else 1)
        sampled = f"a seeded sample of {scored:,} rows" if scored < n else "every row"
        print(f"  target 3, outliers at {n:>9,} rows (20 features): {seconds:.2f} s, scoring {sampled}")


def run_stages(args: argparse.Namespace) -> None:
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
    print("\nstages")
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
