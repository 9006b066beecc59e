"""Cost of the multivariate-drift and drift-impact families at 100k and 1M rows (not a test).

Frame: calibrate_drift.py's 20 features (15 numerical, 5 categorical) plus a logged score that depends
on four of them; reference 100k rows. Each family is timed on a window of 100k and of 1M rows after its
fit (fitted once on the reference, timed apart), next to the univariate drift rule on the same window
(``drift_table`` + ``dataset_drift`` over the 20 features, the prediction and the score: what the
univariate checks cost today). What the families sample, with their defaults: the domain classifier sees
a seeded sample of at most 5,000 window rows and as many reference rows (3 folds); the impact family
moves 2,000 held-out reference rows with values drawn from a seeded 2,000-row window sample (the drift
table it ranks is the one the univariate rule computed). Both are bounded, so their cost does not grow
with the window beyond drawing the sample. Wall and CPU seconds are printed (the machine is shared).

    python tests/benchmarks/bench_multivariate.py
    python tests/benchmarks/bench_multivariate.py --sizes 100000   # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_drift import N_CAT, N_NUM, draw

from mlmon.tasks import contract as c
from mlmon.tasks.checks.decide import dataset_drift, drift_table
from mlmon.tasks.checks.families import family_checks, fit_families
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.evaluate import drift_specs, profile_kinds
from mlmon.tasks.reference import fit_profile


def with_score(frame: pd.DataFrame) -> pd.DataFrame:
    logit = (
        0.8 * frame["n0"] - 0.02 * (frame["n1"] - 20) + 0.1 * (frame["n2"] - 15) + 0.4 * (frame["c0"] == "a")
    )
    p = 1 / (1 + np.exp(-logit.to_numpy(np.float64)))
    frame[c.SCORE] = p
    frame[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    return frame


def config(multivariate: bool, explanations: bool) -> ModelConfig:
    features = {f"n{i}": {"type": "numerical"} for i in range(N_NUM)}
    features |= {f"c{i}": {"type": "categorical"} for i in range(N_CAT)}
    return model_from_dict(
        {
            "features": features,
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            "multivariate_drift": {"enabled": multivariate},
            "explanations": {"enabled": explanations},
        }
    )


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w, p = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - p, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ref = with_score(draw(100_000, rng))
    both = config(True, True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: wall times vary)")
    profile = fit_profile(ref, profile_kinds(both), "bench")
    for name, cfg in (("multivariate_drift", config(True, False)), ("explanations", config(False, True))):
        wall, cpu, _ = timed(lambda cfg=cfg: fit_families(profile, ref, cfg))
        print(
            f"fit {name:<19} on 100,000 reference rows: {wall:6.2f} s wall, {cpu:6.2f} s CPU (once per reference)"
        )
    profile = fit_families(profile, ref, both)
    print(f"\n{'rows':>10} {'part':<34} {'wall s':>8} {'CPU s':>8}")
    for n in args.sizes:
        cur = with_score(draw(n, rng, shift={"n0": 0.1}))
        specs = drift_specs(both, profile)
        wall, cpu, table = timed(lambda cur=cur, specs=specs: drift_table(profile, cur, specs, both.drift))
        dataset_drift(table, both.drift, set(both.features))
        print(f"{n:>10,} {'univariate drift (22 columns)':<34} {wall:>8.2f} {cpu:>8.2f}")
        rows = []
        for name, cfg in (("multivariate_drift", config(True, False)), ("explanations", config(False, True))):
            wall, cpu, (checks, _) = timed(
                lambda cfg=cfg, cur=cur, t=tuple(table): family_checks(cfg, cur, profile, drift=t)
            )
            rows.append((wall, cpu))
            print(f"{n:>10,} {name:<34} {wall:>8.2f} {cpu:>8.2f}")
            print(f"{'':>10}   {checks[0].message[:150]}")
        print(
            f"{n:>10,} {'both families':<34} {sum(r[0] for r in rows):>8.2f} {sum(r[1] for r in rows):>8.2f}"
        )


if __name__ == "__main__":
    main()
