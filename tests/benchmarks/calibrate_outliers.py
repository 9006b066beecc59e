"""Calibration and cost of the outlier family (not a test): false alarms on null windows, a 2% burst.

Reference: 100k rows of calibrate_drift.py's 20 features (normal, lognormal, tied Poisson counts,
categoricals); the forest is fitted once with the defaults of OutliersConfig (20k-row fit sample, cut on
20k held-out rows). Null windows are drawn from the reference's own distribution; burst windows replace
2% of the rows' ``n0`` by values 6–10σ away. ``fail`` = share of windows whose outlier_share check fails.
Large windows: a window above ``max_score_rows`` (20k) is counted and tested on a seeded sample of that
many rows (the message and the ``outlier_rows`` metric say so): null and burst windows of 100k and 1M
rows show the sampled rule keeps its verdicts. Power of the sampled rule: :func:`power` draws the
window's outlier count from a binomial at the reference's share plus an excess, for a window sample of
10k / 20k / 50k rows against a 20k-row held-out reference count, and applies the rule (Fisher's exact
test and ``min_excess``) exactly as :func:`~mlmon.tasks.checks.outliers.decide_outliers` does: the share
of draws that fail, per reference share and excess. The cost of the family at 100k and 1M rows, beside
the other families and the univariate checks, is bench_families.py's (``make bench``).

    python tests/benchmarks/calibrate_outliers.py           # 200 windows per null cell (~3 min)
    python tests/benchmarks/calibrate_outliers.py --quick   # 40
    python tests/benchmarks/calibrate_outliers.py --power   # only the power table (seconds)
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
from mlmon.tasks.checks.outliers import excess_p_value, fit_outliers, outlier_checks
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


def power(draws: int, seed: int, alpha: float, min_excess: float) -> None:
    """Share of binomial windows the rule fails, by window sample size, reference share and excess
    (reference count on 20k held-out rows, as the fit makes it)."""
    rng = np.random.default_rng(seed)
    n_ref, excesses = 20_000, (0.0, 0.005, 0.0075, 0.01, 0.02)
    print(
        f"\npower of the rule on a window sample ({draws} binomial draws per cell; reference count on "
        f"{n_ref:,} held-out rows): share failing at excess " + " / ".join(f"{e:.2%}" for e in excesses)
    )
    for share in (0.01, 0.02, 0.04):
        for n in (10_000, 20_000, 50_000):
            row = []
            for e in excesses:
                ks = rng.binomial(n, share + e, draws)
                row.append(
                    np.mean(
                        [
                            excess_p_value(int(k), n, share, n_ref) < alpha and k / n >= share + min_excess
                            for k in ks
                        ]
                    )
                )
            print(
                f"  reference share {share:.0%}, sample {n:>6,} rows: " + " / ".join(f"{r:4.0%}" for r in row)
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--power", action="store_true", help="only the power table")
    args = ap.parse_args(argv)
    _, oc, model, rng, fit_s = setup(args.seed)
    if args.power:
        power(400, args.seed, oc.alpha, oc.min_excess)
        return
    print(
        f"forest fitted in {fit_s:.1f}s; reference share {model.reference_share:.3%} on "
        f"{model.n_holdout:,} held-out rows; rule: one-sided Fisher exact p < {oc.alpha} AND share ≥ "
        f"reference + {oc.min_excess}; windows above {oc.max_score_rows:,} rows scored on a sample\n"
    )
    n = 40 if args.quick else 200
    print(f"{'windows':<18} {'rows':>9} {'n':>5} {'fail':>7} {'mean share':>11} {'s/window':>9}")
    cells = [("null", 1_000, n, 0.0), ("null", 10_000, n, 0.0), ("2% burst", 1_000, n // 4, 0.02)]
    cells += [
        ("2% burst", 10_000, n // 4, 0.02),
        ("null, sampled", 100_000, 10 if args.quick else 20, 0.0),
        ("2% burst, sampled", 100_000, 5 if args.quick else 10, 0.02),
        ("null, sampled", 1_000_000, 3, 0.0),
        ("2% burst, sampled", 1_000_000, 3, 0.02),
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
            f"{label:<18} {rows:>9,} {windows:>5} {fails / windows:>7.1%} {np.mean(shares):>11.3%} "
            f"{secs / windows:>9.3f}",
            flush=True,
        )
    power(400 if args.quick else 1_000, args.seed, oc.alpha, oc.min_excess)


if __name__ == "__main__":
    main()
