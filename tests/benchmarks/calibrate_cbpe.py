"""Calibration of the estimated-performance family (CBPE; not a test): false alarms and band coverage
on null windows with labels, and an input shift into a region where the model is less sure.

Data: a binary classifier on two numerical inputs and a categorical one; the true P(positive) is a
logistic function of them, the model's logged score is *overconfident* (its logit ×1.6), so the
reference shows miscalibration and the isotonic calibrator is fitted (``calibration: auto``). A
multiclass model (3 classes, softmax of linear scores, also overconfident) is run the same way.
Reference: 20k labelled rows. Null windows: fresh draws of the same population; ``fail`` = share of
windows where any of the five ``estimated_<metric>`` checks fails; ``coverage`` = share of windows whose
realized metric (computed by the performance family on the window's labels) lies inside the estimate's
band. Shifted windows: ``x1`` concentrated near the decision boundary (N(0.2, 0.35) instead of N(0, 1)):
the model is less sure, accuracy really drops, and the estimate shows it with no label used.
Cost: seconds per window at 100k and 1M rows (the fit is printed once).

    python tests/benchmarks/calibrate_cbpe.py           # 200 windows per null cell (~2 min)
    python tests/benchmarks/calibrate_cbpe.py --quick   # 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.estimated import METRICS, estimate_window, estimated_checks, fit_cbpe
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.checks.performance import model_scores
from mlmon.tasks.config import ModelConfig, model_from_dict

OVERCONFIDENCE = 1.6


def config(task: str) -> ModelConfig:
    classes = ["neg", "pos"] if task == "binary" else ["a", "b", "c"]
    return model_from_dict(
        {
            "task": task,
            "classes": classes,
            **({"positive_class": "pos"} if task == "binary" else {}),
            "features": {
                "x1": {"type": "numerical"},
                "x2": {"type": "numerical"},
                "g": {"type": "categorical"},
            },
            "estimated_performance": {"enabled": True},
        }
    )


def draw(task: str, n: int, rng: np.random.Generator, shifted: bool = False) -> pd.DataFrame:
    """``n`` rows of the model's logs with labels (see the module doc)."""
    x1 = rng.normal(0.2, 0.35, n) if shifted else rng.normal(0.0, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    g = rng.choice(np.array(["u", "v", "w"], dtype=object), n, p=[0.5, 0.3, 0.2])
    ge = pd.Series(g).map({"u": 0.0, "v": 0.4, "w": -0.6}).to_numpy()
    frame = pd.DataFrame({"x1": x1, "x2": x2, "g": g})
    if task == "binary":
        logit = 2.0 * x1 + 0.8 * x2 + ge - 0.3
        p_true = 1 / (1 + np.exp(-logit))
        score = 1 / (1 + np.exp(-OVERCONFIDENCE * logit))
        frame[c.SCORE] = score
        frame[c.PREDICTION] = np.where(score >= 0.5, "pos", "neg").astype(object)
        frame[c.TARGET] = np.where(rng.random(n) < p_true, "pos", "neg").astype(object)
        return frame
    z = np.column_stack([1.5 * x1 + ge, -1.5 * x1 + 0.3, 1.6 * x2 - 0.2])
    p_true = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    zs = OVERCONFIDENCE * z
    score = np.exp(zs) / np.exp(zs).sum(axis=1, keepdims=True)
    classes = np.array(["a", "b", "c"], dtype=object)
    for j, k in enumerate(classes):
        frame[f"{c.PROBA_PREFIX}{k}"] = score[:, j]
    frame[c.SCORE] = score.max(axis=1)
    frame[c.PREDICTION] = classes[score.argmax(axis=1)]
    u = rng.random(n)[:, None]
    frame[c.TARGET] = classes[(u > np.cumsum(p_true, axis=1)).sum(axis=1).clip(0, 2)]
    return frame


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    n = 40 if args.quick else 200
    for task in ("binary", "multiclass"):
        cfg = config(task)
        ec = cfg.estimated_performance
        rng = np.random.default_rng([args.seed, len(task)])
        ref = draw(task, 20_000, rng)
        t = time.perf_counter()
        model = fit_cbpe(ref, cfg)
        calibrated = sum(cal is not None for cal in model.calibrators)
        assert model.whole is not None
        print(
            f"\n== {task}: fitted in {time.perf_counter() - t:.2f}s on 20,000 labelled rows; isotonic "
            f"calibrators kept: {calibrated}/{len(model.calibrators)}; reference estimate vs realized: "
            + ", ".join(f"{k} {model.whole.reference[k]:.3f}/{model.whole.realized[k]:.3f}" for k in METRICS)
        )
        print(
            f"rule: band ±{ec.band_sigmas:g}·√(σ_real(n)² + σ_real(N_lab)²); fail below reference − "
            f"max({ec.alert_sigmas:g}σ_drop, {ec.min_drop})"
        )
        head = " ".join(f"{'cov ' + k:>12}" for k in METRICS)
        print(
            f"{'windows':<10} {'rows':>9} {'n':>4} {'fail':>6} {'est acc':>8} {'real acc':>8} {head} {'s/win':>7}"
        )
        cells = [("null", 1_000, n, False), ("null", 10_000, n, False)]
        cells += [("shifted", 1_000, n // 4, True), ("shifted", 10_000, n // 4, True)]
        cells += [("cost", 100_000, 3, False), ("cost", 1_000_000, 2, False)]
        for label, rows, windows, shifted in cells:
            fails, secs, est_acc, real_acc = 0, 0.0, [], []
            inside = {k: [] for k in METRICS}
            for _ in range(windows):
                w = draw(task, rows, rng, shifted)
                t = time.perf_counter()
                checks, _ = estimated_checks(w, model, ec)
                secs += time.perf_counter() - t
                fails += any(ch.status is Status.FAIL for ch in checks)
                est = {e.metric: e for e in estimate_window(w, model, ec).estimates}
                real = model_scores(w, cfg).values
                est_acc.append(est["accuracy"].value)
                real_acc.append(real["accuracy"])
                for k in METRICS:
                    if k in est and k in real:
                        inside[k].append(est[k].lower <= real[k] <= est[k].upper)
            cov = " ".join(f"{np.mean(inside[k]) if inside[k] else np.nan:>12.1%}" for k in METRICS)
            print(
                f"{label:<10} {rows:>9,} {windows:>4} {fails / windows:>6.1%} {np.mean(est_acc):>8.3f} "
                f"{np.mean(real_acc):>8.3f} {cov} {secs / windows:>7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
