"""Benchmark: the per-call cost of ``PredictionLogger.log_prediction`` with live metrics off and on.

Not a test. 20 features (15 numerical with the profile's 20 quantile bins, 5 categorical), a binary
model's prediction and probabilities, a latency and a status per call, as a serving app logs them. Each
mode runs in its own fresh process:

* ``off``          — no metrics (the default; prometheus_client is not even imported);
* ``on``           — :class:`mlmon.live.LiveMetrics` in a single process;
* ``multiprocess`` — the same with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn / uvicorn workers);
* ``floor``        — not the logger: a function that only reads the clock, copies the two dicts and
  appends a tuple to a list (the least any logger must do), timed the same way: what this machine
  charges for any call, e.g. after a sleep in the paced runs.

The logger's MongoDB is a closed local port, and the buffer holds every call, so what is timed is the
call itself (building the document, queueing it, counting the metrics), not the writer thread's I/O.
Prints p50 / p99 / mean in microseconds per call, twice: wall-clock time (``perf_counter``: includes
being preempted, which on a shared, busy machine dominates the p99) and the calling thread's CPU time
(``thread_time``: the call's own cost, whatever the neighbours do). ``process cpu`` is the whole
process's CPU time per call over the timed calls, the background threads included (the live metrics bin
the values in their sync thread, off the request path: that work shows here, not in the per-call
figures). ``wall p99.9`` and ``wall max`` show the few calls that waited for the GIL while the sync thread
binned a backlog (one batch every 50 ms, see ``LiveMetrics._drain``). Each mode runs ``--rounds`` times,
interleaved, and the round with the median wall p99 is shown. Last, the sync thread's binning cost per
prediction, one by one and in batches.

Back-to-back calls are the worst case for the request path (the calling thread never waits for anything,
so every background stretch of the GIL lands on some call); the paced runs (``--rate`` calls/s, the
thread sleeping between calls as a serving thread waits for requests) are closer to a serving app.

    python tests/benchmarks/bench_logger.py                 # 100,000 timed calls per mode
    python tests/benchmarks/bench_logger.py --calls 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

N_NUMERICAL, N_CATEGORICAL = 15, 5
CATEGORIES = [f"c{i}" for i in range(8)]
MODES = ("floor", "off", "on", "multiprocess")


def _spec():  # imported late: in "off" mode the logger must stay light
    from mlmon.live import LiveSpec
    from mlmon.tasks import contract as c
    from mlmon.tasks.config import ModelConfig
    from mlmon.tasks.profile import Profile
    from mlmon.tasks.reference import fit_categorical, fit_numerical

    rng = np.random.default_rng(0)
    features = {f"n{i}": {"type": "numerical"} for i in range(N_NUMERICAL)}
    features |= {f"k{i}": {"type": "categorical"} for i in range(N_CATEGORICAL)}
    cfg = ModelConfig.model_validate(
        {"name": "bench", "features": features, "task": "binary", "classes": ["no", "yes"],
         "positive_class": "yes", "reference": {"path": "unused.parquet"}}
    )  # fmt: skip
    columns = {f"n{i}": fit_numerical(rng.normal(size=5000)) for i in range(N_NUMERICAL)}
    columns |= {f"k{i}": fit_categorical(rng.choice(CATEGORIES, 5000)) for i in range(N_CATEGORICAL)}
    columns[c.PREDICTION] = fit_categorical(rng.choice(["no", "yes"], 5000))
    columns[c.SCORE] = fit_numerical(rng.random(5000))
    return LiveSpec.from_profile(cfg, Profile("bench", 5000, columns))


def run_mode(mode: str, calls: int, warmup: int, rate: float = 0) -> dict[str, float]:
    from mlmon.logger import PredictionLogger

    metrics = None
    if mode in ("on", "multiprocess"):
        import prometheus_client as pc

        from mlmon.live import LiveMetrics

        metrics = LiveMetrics(_spec(), registry=pc.CollectorRegistry())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    total = calls + warmup
    logger = PredictionLogger(
        f"mongodb://127.0.0.1:{port}/", model_name="bench", model_version="v1", max_buffer=total + 10,
        server_timeout_ms=100, metrics=metrics,
    )  # fmt: skip
    rng = np.random.default_rng(1)
    numbers = rng.normal(size=(total, N_NUMERICAL)).tolist()
    cats = rng.choice([*CATEGORIES, "unseen"], size=(total, N_CATEGORICAL)).tolist()
    scores = rng.random(total).tolist()
    rows = [
        {
            **{f"n{j}": numbers[i][j] for j in range(N_NUMERICAL)},
            **{f"k{j}": cats[i][j] for j in range(N_CATEGORICAL)},
        }
        for i in range(total)
    ]
    wall = np.empty(total, dtype=np.int64)
    cpu = np.empty(total, dtype=np.int64)
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    log = logger.log_prediction
    if mode == "floor":
        kept: list[tuple] = []

        def log(features, prediction, probabilities, latency_ms, status):  # the floor
            kept.append((time.time(), dict(features), prediction, dict(probabilities), latency_ms, status))

    gap = 1 / rate if rate else 0.0
    next_call = time.perf_counter()
    for i in range(total):
        if gap:  # paced: the thread sleeps between calls, as a serving thread waits for requests
            next_call += gap
            pause = next_call - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        if i == warmup:
            if metrics is not None:
                metrics.sync()
            process0 = time.process_time_ns()
        p = scores[i]
        c0, t0 = cpu_clock(), clock()
        log(rows[i], "yes" if p >= 0.5 else "no", {"yes": p, "no": 1 - p}, 12.5, "ok")
        wall[i], cpu[i] = clock() - t0, cpu_clock() - c0
    if metrics is not None:
        metrics.sync()  # what is still deferred is binned here: its CPU counts too
    process_us = (time.process_time_ns() - process0) / 1000 / calls
    stats = logger.stats
    logger.close(timeout=0.1)
    assert stats.dropped == 0 and stats.rejected == 0, stats
    out = {"process_cpu": process_us}
    for name, timings in (("wall", wall), ("cpu", cpu)):
        us = timings[warmup:] / 1000
        out[f"{name}_p50"] = float(np.percentile(us, 50))
        out[f"{name}_p99"] = float(np.percentile(us, 99))
        out[f"{name}_mean"] = float(us.mean())
    out["wall_p99.9"] = float(np.percentile(wall[warmup:] / 1000, 99.9))
    out["wall_max"] = float(wall[warmup:].max() / 1000)
    return out


def binning_cost(n: int = 20_000, repeats: int = 3) -> dict[str, float]:
    """µs of sync-thread CPU per prediction: binned one by one (``_count``) and in batches (``_drain``)."""
    import prometheus_client as pc

    from mlmon import live

    metrics = live.LiveMetrics(_spec(), registry=pc.CollectorRegistry(), sync_interval=3600)
    metrics._stopped.set()  # this thread drives the binning
    rng = np.random.default_rng(2)
    numbers = rng.normal(size=(n, N_NUMERICAL)).tolist()
    cats = rng.choice([*CATEGORIES, "unseen"], size=(n, N_CATEGORICAL)).tolist()
    scores = rng.random(n).tolist()
    items = [
        ("v1", {**{f"n{j}": numbers[i][j] for j in range(N_NUMERICAL)},
                **{f"k{j}": cats[i][j] for j in range(N_CATEGORICAL)}},
         "yes" if scores[i] >= 0.5 else "no", {"yes": scores[i], "no": 1 - scores[i]}, 12.5, "ok")
        for i in range(n)
    ]  # fmt: skip
    best = {"one by one": np.inf, f"batches of {live.DRAIN_BATCH}": np.inf}
    for _ in range(repeats):
        t0 = time.thread_time()
        with metrics._lock:
            for item in items:
                metrics._count(item)
        best["one by one"] = min(best["one by one"], (time.thread_time() - t0) / n * 1e6)
        metrics._deferred.extend(items)
        t0 = time.thread_time()
        metrics._drain()
        key = f"batches of {live.DRAIN_BATCH}"
        best[key] = min(best[key], (time.thread_time() - t0) / n * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (interleaved)")
    parser.add_argument("--rate", type=float, default=2000, help="calls/s of the paced runs (0: none)")
    parser.add_argument("--paced-calls", type=int, default=10_000)
    parser.add_argument("--mode", choices=MODES, help="(internal) run one mode and print JSON")
    parser.add_argument("--pace", type=float, default=0, help="(internal) calls/s, 0: back-to-back")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.calls, args.warmup, args.pace)))
        return 0
    runs = [("back-to-back", 0.0, args.calls)]
    if args.rate:
        runs.append((f"paced at {args.rate:,.0f} calls/s", args.rate, args.paced_calls))
    for title, pace, calls in runs:
        results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
        loads = []
        for _ in range(args.rounds):
            for mode in MODES:
                env = dict(os.environ)
                with tempfile.TemporaryDirectory() as mp_dir:
                    if mode == "multiprocess":
                        env["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
                    cmd = [
                        sys.executable,
                        __file__,
                        "--mode",
                        mode,
                        "--calls",
                        str(calls),
                        "--pace",
                        str(pace),
                    ]
                    done = subprocess.run(
                        [*cmd, "--warmup", str(args.warmup)], env=env, capture_output=True, text=True,
                        check=True,
                    )  # fmt: skip
                results[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
                loads.append(os.getloadavg()[0])
        print(
            f"\nlog_prediction, {N_NUMERICAL + N_CATEGORICAL} features, {title}: {calls:,} timed calls per mode "
            f"and round, {args.rounds} rounds (µs/call; load average {min(loads):.1f}-{max(loads):.1f} on "
            f"{os.cpu_count()} cores)"
        )
        cols = ("wall_p50", "wall_p99", "wall_mean", "cpu_p50", "cpu_p99", "cpu_mean", "process_cpu",
                "wall_p99.9", "wall_max")  # fmt: skip
        print(f"{'mode':<14}" + "".join(f"{c.replace('_', ' '):>12}" for c in cols))
        for mode, rounds in results.items():
            r = sorted(rounds, key=lambda x: x["wall_p99"])[len(rounds) // 2]
            print(f"{mode:<14}" + "".join(f"{r[c]:>12.1f}" for c in cols))
    cost = binning_cost()
    print(
        "\nbinning one prediction in the sync thread (thread CPU, best of 3, µs): "
        + ", ".join(f"{k} {v:.1f}" for k, v in cost.items())
        + f" (load average {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
