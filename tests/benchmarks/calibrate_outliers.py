"""Calibration and cost of the outlier family (not a test): false alarms on null windows, a 2% burst.

Reference: 100k rows of calibrate_drift.py's 20 features (normal, lognormal, tied Poisson counts,
categoricals); the forest is fitted once with the defaults of OutliersConfig (20k-row fit sample, cut on
20k held-out rows). Null windows are drawn from the reference's own distribution; burst windows replace
2% of the rows' ``n0`` by values 6–10σ away. ``fail`` = share of windows whose outlier_share check fails.
Cost: seconds per window at 100k and 1M rows (a window above max_score_rows = 200k is scored on a seeded
sample of 200k rows; the message says so).

    python tests/benchmarks/calibrate_outliers.py           # 200 windows per null cell (~3 min)
    python tests/benchmarks/calibrate_outliers.py --quick   # 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_drift import CATS, N_CAT, N_NUM, draw

from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.checks.outliers import fit_outliers, outlier_checks
from mlmon.tasks.config import model_from_dict

assert len(CATS) == N_CAT


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    features = {f"n{i}": {"type": "numerical"} for i in range(N_NUM)}
    features |= {f"c{i}": {"type": "categorical"} for i in range(N_CAT)}
    cfg = model_from_dict({"features": features, "outliers": {"enabled": True}})
    oc = cfg.outliers
    rng = np.random.default_rng(args.seed)
    ref = draw(100_000, rng)
    t = time.perf_counter()
    model = fit_outliers(ref, cfg)
    print(
        f"forest fitted in {time.perf_counter() - t:.1f}s; reference share {model.reference_share:.3%} on "
        f"{model.n_holdout:,} held-out rows; rule: one-sided binomial p < {oc.alpha} AND share ≥ "
        f"reference + {oc.min_excess}\n"
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
