"""Benchmark: the per-call cost of ``PredictionLogger.log_prediction`` with live metrics off and on.

Not a test. 20 features (15 numerical with the profile's 20 quantile bins, 5 categorical), a binary
model's prediction and probabilities, a latency and a status per call, as a serving app logs them. Each
mode runs in its own fresh process:

* ``off``          — no metrics (the default; prometheus_client is not even imported);
* ``on``           — :class:`mlmon.live.LiveMetrics` in a single process;
* ``multiprocess`` — the same with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn / uvicorn workers).

The logger's MongoDB is a closed local port, and the buffer holds every call, so what is timed is the
call itself (building the document, queueing it, counting the metrics), not the writer thread's I/O.
Prints p50 / p99 / mean in microseconds per call.

    python tests/benchmarks/bench_logger.py                 # 20,000 timed calls per mode
    python tests/benchmarks/bench_logger.py --calls 100000
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
MODES = ("off", "on", "multiprocess")


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


def run_mode(mode: str, calls: int, warmup: int) -> dict[str, float]:
    from mlmon.logger import PredictionLogger

    metrics = None
    if mode != "off":
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
    timings = np.empty(total, dtype=np.int64)
    clock = time.perf_counter_ns
    log = logger.log_prediction
    for i in range(total):
        p = scores[i]
        t0 = clock()
        log(rows[i], "yes" if p >= 0.5 else "no", {"yes": p, "no": 1 - p}, 12.5, "ok")
        timings[i] = clock() - t0
    stats = logger.stats
    logger.close(timeout=0.1)
    assert stats.dropped == 0 and stats.rejected == 0, stats
    us = timings[warmup:] / 1000
    return {
        "p50": float(np.percentile(us, 50)),
        "p99": float(np.percentile(us, 99)),
        "mean": float(us.mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--mode", choices=MODES, help="(internal) run one mode and print JSON")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.calls, args.warmup)))
        return 0
    print(
        f"log_prediction, {N_NUMERICAL + N_CATEGORICAL} features, {args.calls:,} timed calls per mode (µs/call)"
    )
    print(f"{'mode':<14}{'p50':>8}{'p99':>8}{'mean':>8}")
    for mode in MODES:
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as mp_dir:
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
            done = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--calls", str(args.calls), "--warmup", str(args.warmup)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode:<14}{r['p50']:>8.1f}{r['p99']:>8.1f}{r['mean']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
