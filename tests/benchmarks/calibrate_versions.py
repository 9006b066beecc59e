"""Calibration of the versions family (not a test): false verdicts on null windows, a worse challenger.

A window is a binary classifier's traffic: a latent risk s ~ N(0, 1.5²), the label y ~ Bernoulli(σ(s)),
and two versions answering ``s + noise ≥ 0`` with their own noise (σ 0.5 each on null windows: the same
accuracy, about 0.78, and about 85 % agreement, as two retrains of one model). Every row is labelled.

* shadow: the challenger scores every request of the champion (paired, McNemar's exact test);
* split: each request is served by one version at random, 50/50 (unpaired, two-proportion z-test).

``worse`` = share of windows whose ``version_quality`` check fails (the challenger called worse);
``better`` = called better; ``drift warn`` = share whose ``version_prediction_drift`` warns. Injected
windows give the challenger more noise (σ 1.2 / 0.9, printed with the accuracy drop they cause).
Defaults of VersionsConfig: alpha 0.01 (two-sided), min_effect 0.01, min_rows 200.

    python tests/benchmarks/calibrate_versions.py           # 200 windows per null cell (~1 min)
    python tests/benchmarks/calibrate_versions.py --quick   # 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.checks.versions import version_checks
from mlmon.tasks.config import ModelConfig, model_from_dict

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def config() -> ModelConfig:
    return model_from_dict(
        {
            "task": "binary",
            "classes": ["churn", "stay"],
            "positive_class": "churn",
            "features": {"x": {"type": "numerical"}},
            "versions": {"enabled": True, "champion": "v1"},
        }
    )


def draw(
    n: int, rng: np.random.Generator, *, mode: str, noise: float = 0.5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(served, shadow) frames of one window; the challenger's answer noise is ``noise``."""
    s = rng.normal(0, 1.5, n)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-s)), "churn", "stay").astype(object)
    ids = np.char.add("r", np.arange(n).astype(str)).astype(object)

    def rows(sigma: float, version: str, keep: np.ndarray) -> pd.DataFrame:
        z = s[keep] + rng.normal(0, sigma, int(keep.sum()))
        p = 1 / (1 + np.exp(-z))
        return pd.DataFrame(
            {
                c.REQUEST_ID: ids[keep],
                c.VERSION: version,
                c.TIMESTAMP: T0,
                c.PREDICTION: np.where(z >= 0, "churn", "stay").astype(object),
                c.SCORE: p,
                c.TARGET: y[keep],
            }
        )

    every = np.ones(n, dtype=bool)
    if mode == "shadow":
        return rows(0.5, "v1", every), rows(noise, "v2", every)
    half = rng.random(n) < 0.5
    served = pd.concat([rows(0.5, "v1", ~half), rows(noise, "v2", half)], ignore_index=True)
    return served, served.iloc[:0]


def run_cell(
    cfg: ModelConfig, rng: np.random.Generator, n: int, windows: int, mode: str, noise: float
) -> dict[str, float]:
    worse = better = drift = 0
    gains, secs = [], 0.0
    for _ in range(windows):
        served, shadow = draw(n, rng, mode=mode, noise=noise)
        t = time.perf_counter()
        checks, metrics = version_checks(served, shadow, cfg)
        secs += time.perf_counter() - t
        by = {ch.check: ch for ch in checks}
        q = by["version_quality"]
        worse += q.status is Status.FAIL
        better += q.message.startswith("challenger better")
        drift += by["version_prediction_drift"].status is Status.WARN
        gains += [m.value for m in metrics if m.metric == "version_gain"]
    return {
        "worse": worse / windows,
        "better": better / windows,
        "drift": drift / windows,
        "gain": float(np.mean(gains)),
        "secs": secs / windows,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    cfg = config()
    rng = np.random.default_rng(args.seed)
    n = 40 if args.quick else 200
    print(f"rule: p < {cfg.versions.alpha} (two-sided) AND |Δ accuracy| ≥ {cfg.versions.min_effect}\n")
    print(
        f"{'windows':<22} {'mode':<7} {'rows':>7} {'n':>5} {'worse':>7} {'better':>7} {'drift warn':>11} "
        f"{'mean Δacc':>10} {'s/window':>9}"
    )
    cells = [("null", m, rows, n, 0.5) for m in ("shadow", "split") for rows in (1_000, 10_000)]
    cells += [(f"worse (noise {z})", m, 1_000, n // 2, z) for z in (1.2, 2.0) for m in ("shadow", "split")]
    cells += [("worse (noise 0.9)", m, 10_000, n // 2, 0.9) for m in ("shadow", "split")]
    for label, mode, rows, windows, noise in cells:
        r = run_cell(cfg, rng, rows, windows, mode, noise)
        print(
            f"{label:<22} {mode:<7} {rows:>7,} {windows:>5} {r['worse']:>7.1%} {r['better']:>7.1%} "
            f"{r['drift']:>11.1%} {r['gain']:>+10.3f} {r['secs']:>9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
