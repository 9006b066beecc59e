"""Cost of the fairness and class-balance families at 100k and 1M rows (not a test; prints figures).

A binary classifier's window with two sensitive attributes (4 and 12 groups), 70% labelled, the four
default gap metrics; and a multiclass one (5 classes, one-vs-rest) with one attribute. Median of
``--repeats`` runs of the family's run function on a prepared frame (what ``family_checks`` calls per
window or segment), and the class-balance check on the same frame.

    python tests/benchmarks/bench_fairness.py            # 100k and 1M rows
    python tests/benchmarks/bench_fairness.py --sizes 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.balance import balance_checks, fit_balance
from mlmon.tasks.checks.fairness import fairness_checks
from mlmon.tasks.config import model_from_dict


def frame(n: int, seed: int, classes: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pred = rng.choice(np.array(classes, dtype=object), n)
    target = np.where(rng.random(n) < 0.8, pred, rng.choice(np.array(classes, dtype=object), n)).astype(
        object
    )
    target[rng.random(n) >= 0.7] = None
    return pd.DataFrame({
        "x": rng.normal(size=n),
        "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
        "age_band": rng.choice(np.array([f"{a}-{a + 4}" for a in range(20, 80, 5)], dtype=object), n),
        c.PREDICTION: pred, c.TARGET: target,
    })  # fmt: skip


def config(task: str, classes: list[str], attributes: list[str]):
    return model_from_dict({
        "task": task, "classes": classes, "features": {"x": {"type": "numerical"}},
        "business_fields": {"region": {"path": "customer.region", "type": "categorical"},
                            "age_band": {"path": "customer.age_band", "type": "categorical"}},
        "fairness": {"enabled": True, "attributes": attributes},
        "class_balance": {"enabled": True},
    })  # fmt: skip


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared)")
    binary = ["stay", "churn"]
    multi = ["a", "b", "c", "d", "e"]
    cases = [
        ("binary, region (4 groups)", "binary", binary, ["region"]),
        ("binary, region + age_band (4 + 12)", "binary", binary, ["region", "age_band"]),
        ("multiclass (5 classes), region", "multiclass", multi, ["region"]),
    ]
    print(f"{'case':<38} {'rows':>10} {'fairness s':>11} {'checks':>7} {'metrics':>8} {'balance s':>10}")
    for n in args.sizes:
        for label, task, classes, attrs in cases:
            df = frame(n, 1, classes)
            cfg = config(task, classes, attrs)
            checks, metrics = fairness_checks(df, cfg)
            secs = median_seconds(lambda df=df, cfg=cfg: fairness_checks(df, cfg), args.repeats)
            ref = fit_balance(frame(10_000, 0, classes), cfg)
            bal = median_seconds(lambda df=df, cfg=cfg, ref=ref: balance_checks(df, ref, cfg), args.repeats)
            print(
                f"{label:<38} {n:>10,} {secs:>11.3f} {len(checks):>7} {len(metrics):>8} {bal:>10.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
