"""Calibration and cost of the outlier family (not a test): false alarms on null windows, a 2% burst.

Reference: 100k rows of calibrate_drift.py's 20 features (normal, lognormal, tied Poisson counts,
categoricals); the forest is fitted once with the defaults of OutliersConfig (20k-row fit sample, cut on
20k held-out rows). Null windows are drawn from the reference's own distribution; burst windows replace
2% of the rows' ``n0`` by values 6–10σ away. ``fail`` = share of windows whose outlier_share check fails.
Cost: seconds per window at 100k and 1M rows (a window above max_score_rows = 50k is scored on a seeded
sample of 50k rows; the message says so); ``bench_pipeline.py`` prints the same figures (:func:`cost`).

    python tests/benchmarks/calibrate_outliers.py           # 200 windows per null cell (~3 min)
    python tests/benchmarks/calibrate_outliers.py --quick   # 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_drift import CATS, N_CAT, N_NUM, draw

from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.checks.outliers import fit_outliers, outlier_checks
from mlmon.tasks.config import model_from_dict

assert len(CATS) == N_CAT


def setup(seed: int) -> tuple[Any, Any, Any, np.random.Generator, float]:
    """The config, its outliers section, the forest fitted on a 100k-row reference, the generator and the
    fit's seconds."""
    features = {f"n{i}": {"type": "numerical"} for i in range(N_NUM)}
    features |= {f"c{i}": {"type": "categorical"} for i in range(N_CAT)}
    cfg = model_from_dict({"features": features, "outliers": {"enabled": True}})
    rng = np.random.default_rng(seed)
    ref = draw(100_000, rng)
    t = time.perf_counter()
    model = fit_outliers(ref, cfg)
    return cfg, cfg.outliers, model, rng, time.perf_counter() - t


def cost(rows: int, windows: int, seed: int = 20261201) -> tuple[float, int]:
    """Median seconds of the outlier family on a null window of ``rows`` rows, and the rows it scored."""
    _, oc, model, rng, _ = setup(seed)
    secs = []
    for _ in range(windows):
        w = draw(rows, rng)
        t = time.perf_counter()
        outlier_checks(w, model, oc)
        secs.append(time.perf_counter() - t)
    return float(np.median(secs)), min(rows, oc.max_score_rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    _, oc, model, rng, fit_s = setup(args.seed)
    print(
        f"forest fitted in {fit_s:.1f}s; reference share {model.reference_share:.3%} on "
        f"{model.n_holdout:,} held-out rows; rule: one-sided Fisher exact p < {oc.alpha} AND share ≥ "
        f"reference + {oc.min_excess}; windows above {oc.max_score_rows:,} rows scored on a sample\n"
    )
    n = 40 if args.quick else 200
    print(f"{'windows':<14} {'rows':>9} {'n':>5} {'fail':>7} {'mean share':>11} {'s/window':>9}")
    cells = [("null", 1_000, n, 0.0), ("null", 10_000, n, 0.0), ("2% burst", 1_000, n // 4, 0.02)]
    cells += [
        ("2% burst", 10_000, n // 4, 0.02),
        ("null (cost)", 100_000, 5, 0.0),
        ("null (cost)", 1_000_000, 3, 0.0),
    ]
    for label, rows, windows, burst in cells:
        fails, shares, secs = 0, [], 0.0
        for _ in range(windows):
            w = draw(rows, rng)
            if burst:
                idx = rng.choice(rows, int(burst * rows), replace=False)
                w.loc[idx, "n0"] = rng.choice([-1, 1], idx.size) * rng.uniform(6, 10, idx.size)
            t = time.perf_counter()
            (check,), _ = outlier_checks(w, model, oc)
            secs += time.perf_counter() - t
            fails += check.status is Status.FAIL
            shares.append(check.value)
        print(
            f"{label:<14} {rows:>9,} {windows:>5} {fails / windows:>7.1%} {np.mean(shares):>11.3%} "
            f"{secs / windows:>9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
