"""Calibration of multivariate drift and drift impact (not a test): null false alarms, injected cases.

Reference: 20k rows of 8 features — ``x`` and ``y`` standard normal with correlation +0.6, ``n2``
normal, ``n3`` lognormal, ``n4`` a tied Poisson(5) count, ``n5`` uniform, ``c0`` / ``c1`` categorical —
and a model output ``score`` = sigmoid(1.5·n2 + 0.8·x − 0.5·y + 0.05·n5 + 0.3·[c0 = a]): ``n2`` is
important, ``n5`` nearly ignored. Every window goes through the univariate drift rule (``drift_table`` +
``dataset_drift``, default DriftConfig) and both families with their default settings (fitted once on
the reference), exactly as ``evaluate`` calls them.

Cells:
* ``null``: windows from the reference's own distribution (≥ 200 per size): share failing
  ``multivariate_drift``, share failing the univariate rule, share failing any explanations check;
* ``flip``: the correlation of ``x`` and ``y`` flips to −0.6, both marginals unchanged (still standard
  normal): multivariate must fail while the univariate rule passes;
* ``both drift``: ``n2`` (important) and ``n5`` (unimportant) both shifted by 0.3σ: share of windows
  where ``n2`` ranks above ``n5`` by impact, and where feature_impact fails for n2 only.

    python tests/benchmarks/calibrate_multivariate.py           # 200 null windows per size (~10 min)
    python tests/benchmarks/calibrate_multivariate.py --quick   # 40
    python tests/benchmarks/calibrate_multivariate.py --folds 2 # a setting other than the default
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.decide import dataset_drift, drift_table
from mlmon.tasks.checks.families import family_checks, fit_families
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.evaluate import drift_specs, profile_kinds
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile

RHO = 0.6
FEATURES = {
    **{n: {"type": "numerical"} for n in ("x", "y", "n2", "n3", "n4", "n5")},
    "c0": {"type": "categorical"},
    "c1": {"type": "categorical"},
}


def draw(
    n: int, rng: np.random.Generator, *, rho: float = RHO, shift: dict[str, float] | None = None
) -> pd.DataFrame:
    """``n`` rows: ``rho`` is the correlation of x and y (marginals always N(0, 1)); ``shift`` moves a
    numerical feature's mean by that many of its σ."""
    k = shift or {}
    z = rng.standard_normal((n, 2))
    x, y = z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    f = pd.DataFrame(
        {
            "x": x + k.get("x", 0.0),
            "y": y + k.get("y", 0.0),
            "n2": rng.normal(k.get("n2", 0.0), 1.0, n),
            "n3": rng.lognormal(1.0, 0.5, n),
            "n4": rng.poisson(5.0, n).astype(float),
            "n5": rng.uniform(0, 1, n) + k.get("n5", 0.0) / np.sqrt(12),
            "c0": rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2]),
            "c1": rng.choice(np.array(["u", "v"], dtype=object), n),
        }
    )
    logit = 1.5 * f["n2"] + 0.8 * f["x"] - 0.5 * f["y"] + 0.05 * f["n5"] + 0.3 * (f["c0"] == "a")
    p = 1 / (1 + np.exp(-logit.to_numpy()))
    f[c.SCORE] = p
    f[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    return f


def config(**multivariate: object) -> ModelConfig:
    """The calibration model; ``multivariate`` overrides settings of the domain classifier."""
    return model_from_dict(
        {
            "features": FEATURES,
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            "multivariate_drift": {"enabled": True, **multivariate},
            "explanations": {"enabled": True},
        }
    )


def fitted(ref: pd.DataFrame, cfg: ModelConfig) -> Profile:
    return fit_families(fit_profile(ref, profile_kinds(cfg), "calibration"), ref, cfg)


def run(cur: pd.DataFrame, profile: Profile, cfg: ModelConfig) -> dict[str, object]:
    """Univariate verdict, both families' checks and metrics for one window (seconds per part)."""
    specs = drift_specs(cfg, profile)
    t0 = time.perf_counter()
    table = drift_table(profile, cur, specs, cfg.drift)
    uni = dataset_drift(table, cfg.drift, set(cfg.features))
    t1 = time.perf_counter()
    mv, _ = family_checks(cfg.model_copy(update={"explanations": cfg.explanations.model_copy(update={"enabled": False})}), cur, profile)  # fmt: skip
    t2 = time.perf_counter()
    off = cfg.model_copy(
        update={"multivariate_drift": cfg.multivariate_drift.model_copy(update={"enabled": False})}
    )
    ex, ex_metrics = family_checks(off, cur, profile, drift=tuple(table))
    t3 = time.perf_counter()
    impact = {m.feature: m.value for m in ex_metrics if m.metric == "drift_impact"}
    return {
        "uni": uni.status is Status.FAIL,
        "mv": any(ch.status is Status.FAIL for ch in mv if ch.category is Category.MULTIVARIATE_DRIFT),
        "ex": any(ch.status is Status.FAIL for ch in ex if ch.category is Category.EXPLANATIONS),
        "impact_fail": {ch.feature for ch in ex if ch.check == "feature_impact" and ch.status is Status.FAIL},
        "auc": next(ch.value for ch in mv if ch.check == "multivariate_drift"),
        "impact": impact,
        "seconds": (t1 - t0, t2 - t1, t3 - t2),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--folds", type=int, default=None, help="domain classifier folds (default: the config's)")
    ap.add_argument(
        "--max-iter", type=int, default=None, help="boosting iterations per fold (default: config's)"
    )
    args = ap.parse_args(argv)
    over = {k: v for k, v in (("folds", args.folds), ("max_iter", args.max_iter)) if v is not None}
    cfg = config(**over)
    rng = np.random.default_rng(args.seed)
    ref = draw(20_000, rng)
    t = time.perf_counter()
    profile = fitted(ref, cfg)
    sur = profile.fitted["drift_impact"][1]
    mc = cfg.multivariate_drift
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(
        f"fitted in {time.perf_counter() - t:.1f}s; surrogate R² {sur.r2:.3f}; importance "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(sur.importance.items(), key=lambda kv: -kv[1]))
    )
    print(
        f"multivariate rule: out-of-fold AUC Mann–Whitney p < alpha {cfg.drift.alpha} AND AUC ≥ {mc.min_auc}; "
        f"samples ≤ {mc.max_rows:,} + {mc.max_rows:,} rows, {mc.folds} folds\n"
    )
    n = 40 if args.quick else 200
    injected = max(n // 4, 20)  # 50 windows per injected cell
    cells = [
        ("null", 1_000, n, {}),
        ("null", 10_000, n, {}),
        ("flip", 1_000, injected, {"rho": -RHO}),
        ("flip", 10_000, injected, {"rho": -RHO}),
        ("both drift", 1_000, injected, {"shift": {"n2": 0.3, "n5": 0.3}}),
        ("both drift", 10_000, injected, {"shift": {"n2": 0.3, "n5": 0.3}}),
    ]
    head = f"{'windows':<11} {'rows':>7} {'n':>4} {'mv fail':>8} {'uni fail':>9} {'expl fail':>10} {'AUC mean':>9}"
    print(head + f" {'n2>n5':>6} {'n2 only':>8} {'uni s':>6} {'mv s':>6} {'expl s':>7}")
    for label, rows, windows, kw in cells:
        res = [run(draw(rows, rng, **kw), profile, cfg) for _ in range(windows)]
        share = {key: np.mean([bool(r[key]) for r in res]) for key in ("mv", "uni", "ex")}
        ranked = np.mean([r["impact"].get("n2", 0) > r["impact"].get("n5", 0) for r in res])
        only = np.mean([r["impact_fail"] == {"n2"} for r in res])
        secs = np.mean([r["seconds"] for r in res], axis=0)
        aucs = np.mean([r["auc"] for r in res])
        rank_cols = f"{ranked:>6.0%} {only:>8.0%}" if label == "both drift" else f"{'':>6} {'':>8}"
        print(
            f"{label:<11} {rows:>7,} {windows:>4} {share['mv']:>8.1%} {share['uni']:>9.1%} {share['ex']:>10.1%} "
            f"{aucs:>9.3f} {rank_cols} {secs[0]:>6.2f} {secs[1]:>6.2f} {secs[2]:>7.2f}"
        )


if __name__ == "__main__":
    main()
