"""The one place where drift scores become verdicts: correction, thresholds, dataset-level rule.

A column drifts when its corrected p-value is below ``alpha`` AND its effect size reaches the minimum:
the first guards small windows against noise, the second guards big windows against alarms about
differences too small to matter. Columns with too little data are not tested (``warn``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.checks.drift import clean, get_method
from tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Status
from tasks.config import DriftConfig, Kind
from tasks.profile import Profile


@dataclass(frozen=True)
class DriftSpec:
    kind: Kind
    test: str | None  # method giving the p-value; None = decide on the effect alone
    effect: str
    threshold: float


def correct(p_values: np.ndarray | list[float], method: str) -> np.ndarray:
    """Adjusted p-values (family = the columns of one window). Matches statsmodels' ``multipletests``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1)) * ranked[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; use bonferroni, holm, bh or none")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def drift_table(
    profile: Profile,
    current: pd.DataFrame,
    columns: dict[str, DriftSpec],
    cfg: DriftConfig,
    segment: str = ALL,
) -> list[FeatureDrift]:
    """Score every column, correct the p-values across the family, and decide per column."""
    rows: list[dict[str, object]] = []
    for name, spec in columns.items():
        ref = profile.columns.get(name)
        row: dict[str, object] = {
            "feature": name, "kind": spec.kind.value, "test_method": spec.test, "effect_method": spec.effect,
            "effect_threshold": spec.threshold, "segment": segment, "statistic": None, "p_value": None,
            "effect": None, "scores": {}, "n_reference": 0, "n_current": 0,
        }  # fmt: skip
        rows.append(row)
        if ref is None:
            row.update(status=Status.WARN, message=f"{name}: not in the reference profile; not tested")
            continue
        values = clean(current[name].to_numpy() if name in current else np.array([]), spec.kind)
        row.update(n_reference=ref.n, n_current=int(values.size))
        if values.size < cfg.min_rows or ref.n < cfg.min_rows:
            row.update(
                status=Status.WARN,
                message=f"insufficient data: {values.size} window / {ref.n} reference values < {cfg.min_rows}",
            )
            continue
        try:
            effect = get_method(spec.effect, spec.kind).func(ref, values)
            row["effect"] = effect.statistic
            if spec.test:
                test = get_method(spec.test, spec.kind).func(ref, values)
                row.update(statistic=test.statistic, p_value=test.p_value)
            scores: dict[str, float] = {}
            for extra in cfg.extra_methods:
                reg = get_method(extra)
                if spec.kind in reg.kinds and extra not in (spec.effect, spec.test):
                    scores[extra] = reg.func(ref, values).statistic
            row["scores"] = scores
        except (ValueError, FloatingPointError, ZeroDivisionError) as e:
            row.update(status=Status.ERROR, message=f"{name}: could not score drift: {e}")
    family = [r for r in rows if "status" not in r and r["p_value"] is not None]
    adjusted = correct([float(r["p_value"]) for r in family], cfg.correction)  # type: ignore[arg-type]
    for r, p_adj in zip(family, adjusted, strict=True):
        r["p_adjusted"] = float(p_adj)
    out = []
    for r in rows:
        if "status" not in r:
            r["status"], r["message"] = _decide(r, cfg)
        out.append(FeatureDrift(**{"p_adjusted": None, **r}))  # type: ignore[arg-type]
    return out


def _decide(r: dict[str, object], cfg: DriftConfig) -> tuple[Status, str]:
    name, effect, thr = r["feature"], float(r["effect"]), float(r["effect_threshold"])  # type: ignore[arg-type]
    big = bool(np.isfinite(effect)) and effect >= thr
    eff = f"{r['effect_method']} {effect:.3g}"
    if r["test_method"] is None:
        if big:
            return Status.FAIL, f"{name}: drift: {eff} ≥ {thr:g}"
        return Status.PASS, f"{name}: no drift: {eff} < {thr:g}"
    p_adj = float(r["p_adjusted"])  # type: ignore[arg-type]
    sig = p_adj < cfg.alpha
    if sig and big:
        return Status.FAIL, f"{name}: drift: {eff} ≥ {thr:g} and p_adj={p_adj:.2g} < {cfg.alpha:g}"
    if sig:
        return Status.PASS, f"{name}: significant (p_adj={p_adj:.2g}) but {eff} < {thr:g}: not flagged"
    return Status.PASS, f"{name}: no drift (p_adj={p_adj:.2g}, {eff})"


def dataset_drift(
    table: list[FeatureDrift], cfg: DriftConfig, features: set[str], segment: str = ALL
) -> CheckResult:
    """The window-level verdict over the features (not the prediction columns)."""
    rows = [d for d in table if d.feature in features]
    tested = [d for d in rows if d.status in (Status.PASS, Status.FAIL)]
    drifted = [d.feature for d in rows if d.drifted]
    share = len(drifted) / len(tested) if tested else 0.0
    if not tested:
        return CheckResult("dataset_drift", Category.DRIFT, Status.WARN, None, None,
                           "insufficient data: no feature could be tested", segment=segment)  # fmt: skip
    names = ", ".join(drifted[:5]) + (" …" if len(drifted) > 5 else "")
    if cfg.dataset_rule == "any":
        status = Status.FAIL if drifted else Status.PASS
        thr = 1.0 / len(tested)
        msg = (
            f"{len(drifted)} of {len(tested)} features drifted: {names}"
            if drifted
            else f"no drift in {len(tested)} features"
        )
    else:
        status = Status.FAIL if share >= cfg.dataset_share else Status.PASS
        thr = cfg.dataset_share
        msg = f"{share:.0%} of features drifted (limit {cfg.dataset_share:.0%})" + (
            f": {names}" if drifted else ""
        )
    return CheckResult("dataset_drift", Category.DRIFT, status, share, thr, msg, segment=segment)


def drift_checks(table: list[FeatureDrift]) -> list[CheckResult]:
    """One check per column: ``feature_drift`` for features, ``prediction_drift`` for the model's outputs."""
    return [
        CheckResult(
            "prediction_drift" if d.feature.startswith("__") else "feature_drift",
            Category.DRIFT,
            d.status,
            d.effect,
            d.effect_threshold,
            d.message,
            feature=d.feature,
            segment=d.segment,
        )  # fmt: skip
        for d in table
    ]
