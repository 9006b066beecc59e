"""Impact of drift: which drifted features can move the model's predictions, and which did.

A drifted feature the model ignores is a curiosity; a drifted feature the model leans on is an incident.
Fit once, score many: :func:`fit_explanations` fits a *surrogate* (a histogram gradient-boosting
regressor) to the model's output as logged in the reference (the score, or the numeric prediction, or
the indicator of the positive / most frequent class), so no access to the model is needed
(model-agnostic), and measures each feature's permutation importance on held-out reference rows (the
R² of the surrogate lost when the feature is shuffled), normalised to shares that sum to 1.

Per window (statistic apart from decision):

* the *impact* of a feature is its importance share × its drift effect relative to the effect's
  threshold (from the drift checks of the same window): the report ranks the drifted features by it;
* the *attribution* of the prediction's drift to a feature is how much the surrogate's mean output moves
  when that feature alone takes the window's values (a seeded draw) in the reference rows, against the
  same rows with the feature shuffled within the reference (so dependence is broken alike on both sides);
  the attributions of all features are compared with the observed shift of the mean output.

:func:`decide_impact` fails ``feature_impact`` for a drifted feature (drifted by the univariate rule,
so the false-alarm rate is that rule's) whose importance share is at least ``min_importance``;
:func:`decide_attribution` fails ``prediction_drift_attribution`` when the model's output drifted (same
rule), naming the features that explain it and the share they explain.

Breiman (2001) "Random forests" (permutation importance); Fisher, Rudin & Dominici (2019) "All models
are wrong, but many are useful" (model reliance); Molnar, "Interpretable Machine Learning" (global
surrogates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.multivariate import Encoding, encode, fit_encoding
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Metric, Status
from mlmon.tasks.config import ExplanationsConfig, ModelConfig, TaskType


@dataclass(frozen=True)
class Surrogate:
    """What :func:`fit_explanations` keeps (``surrogate`` is None when the reference logs no output)."""

    output: str  # what the surrogate reproduces, e.g. "score", "prediction", "P(prediction = churn)"
    column: str  # the drift-table column of that output (c.SCORE or c.PREDICTION); "" when none
    encoding: Encoding
    surrogate: object | None  # sklearn HistGradientBoostingRegressor
    r2: float  # fidelity: R² of the surrogate on held-out reference rows
    importance: dict[str, float]  # share of the importance (sums to 1 over the features; ≥ 0)
    sample: np.ndarray  # encoded held-out reference rows the attributions move
    reference_mean: float  # mean logged output of the reference
    # per feature: mean surrogate output over ``sample`` with that feature shuffled within the sample
    # (the attributions' baseline: it does not depend on the window, so it is computed once, at the fit;
    # None in a profile fitted before it was kept: computed per window then)
    shuffled: np.ndarray | None = None


def _output(frame: pd.DataFrame, cfg: ModelConfig) -> tuple[str, str, np.ndarray | None]:
    """The model output the surrogate learns: (its name, its drift column, its values as float)."""
    if c.SCORE in frame and pd.to_numeric(frame[c.SCORE], errors="coerce").notna().any():
        return "score", c.SCORE, pd.to_numeric(frame[c.SCORE], errors="coerce").to_numpy(np.float64)
    if c.PREDICTION not in frame:
        return "", "", None
    pred = frame[c.PREDICTION]
    if cfg.task is TaskType.REGRESSION:
        return "prediction", c.PREDICTION, pd.to_numeric(pred, errors="coerce").to_numpy(np.float64)
    labels = pred.dropna().astype(str)
    if labels.empty:
        return "", "", None
    cls = cfg.positive_class if cfg.positive_class in set(labels) else str(labels.value_counts().index[0])
    values = np.where(pred.isna(), np.nan, (pred.astype(str) == cls).to_numpy(np.float64))
    return f"P(prediction = {cls})", c.PREDICTION, values


def fit_explanations(frame: pd.DataFrame, cfg: ModelConfig) -> Surrogate:
    """Fit the surrogate and the permutation importances on seeded reference samples."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    ec = cfg.explanations
    enc = fit_encoding(frame, cfg)
    name, column, y = _output(frame, cfg)
    empty = Surrogate(name, column, enc, None, math.nan, {}, np.zeros((0, len(enc.names))), math.nan)
    if y is None or not enc.names:
        return empty
    keep = np.flatnonzero(np.isfinite(y))
    if len(keep) < 2 * 100:
        return empty
    order = np.random.default_rng(ec.seed).permutation(keep)
    half = len(order) // 2
    fit_idx, hold_idx = order[: min(half, ec.max_fit_rows)], order[half:][: ec.max_rows]
    x_fit, x_hold = encode(enc, frame.iloc[fit_idx]), encode(enc, frame.iloc[hold_idx])
    with threadpool_limits(1):  # small fits: OpenMP threads cost more than they give on a shared host
        model = HistGradientBoostingRegressor(
            max_iter=50,
            categorical_features=enc.categorical_mask if enc.categorical else None,
            random_state=ec.seed,
        ).fit(x_fit, y[fit_idx])
        r2 = float(model.score(x_hold, y[hold_idx]))
        perm = permutation_importance(
            model, x_hold, y[hold_idx], n_repeats=ec.n_repeats, random_state=ec.seed, n_jobs=1
        )
        baseline = shuffled_means(model, x_hold, ec.seed)
    lost = np.clip(perm.importances_mean, 0, None)
    total = float(lost.sum())
    shares = {n: float(v / total) if total > 0 else 0.0 for n, v in zip(enc.names, lost, strict=True)}
    return Surrogate(name, column, enc, model, r2, shares, x_hold, float(np.nanmean(y)), baseline)


def shuffled_means(model: object, sample: np.ndarray, seed: int) -> np.ndarray:
    """Per feature: the mean output of ``model`` over ``sample`` with that feature shuffled within it
    (dependence on the other features broken; the baseline a window's values are compared with)."""
    rng = np.random.default_rng([seed, 1])
    n, k = sample.shape
    stacked = np.tile(sample, (k, 1))  # one copy per feature, all scored in one call
    for j in range(k):
        stacked[j * n : (j + 1) * n, j] = sample[rng.permutation(n), j]
    return model.predict(stacked).reshape(k, n).mean(axis=1)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- per window


@dataclass(frozen=True)
class FeatureImpact:
    """One feature's importance, drift and impact in a window (one row of the report's ranking)."""

    feature: str
    importance: float  # share of the surrogate's permutation importance
    ratio: float  # drift effect / its threshold (0 when not computable)
    impact: float  # importance × ratio
    drifted: bool
    attribution: float  # shift of the mean output when only this feature takes the window's values


def attributions(s: Surrogate, frame: pd.DataFrame, ec: ExplanationsConfig) -> dict[str, float]:
    """Per feature: mean surrogate output with the feature drawn from the window minus with it shuffled
    within the reference (the other features keep their reference values; the shuffled baseline is the
    fit's, see :func:`shuffled_means`)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(ec.seed)
    cur = encode(s.encoding, frame)
    n, k = len(s.sample), len(s.encoding.names)
    stacked = np.tile(s.sample, (k, 1))  # per feature one copy of the reference rows, moved
    for j in range(k):
        stacked[j * n : (j + 1) * n, j] = cur[rng.integers(0, len(cur), n), j]
    with threadpool_limits(1):
        means = s.surrogate.predict(stacked).reshape(k, n).mean(axis=1)  # type: ignore[attr-defined]
        baseline = s.shuffled if s.shuffled is not None else shuffled_means(s.surrogate, s.sample, ec.seed)
    return {name: float(means[j] - baseline[j]) for j, name in enumerate(s.encoding.names)}


def impacts(s: Surrogate, drift: list[FeatureDrift], attributed: dict[str, float]) -> list[FeatureImpact]:
    """Every feature of the drift table with its impact, highest impact first."""
    rows = []
    for d in drift:
        if d.feature not in s.importance:
            continue
        ratio = 0.0
        if d.effect is not None and math.isfinite(d.effect):
            ratio = d.effect / d.effect_threshold if d.effect_threshold > 0 else d.effect
        imp = s.importance[d.feature]
        rows.append(
            FeatureImpact(d.feature, imp, ratio, imp * ratio, d.drifted, attributed.get(d.feature, 0.0))
        )
    return sorted(rows, key=lambda r: (-r.impact, r.feature))


def decide_impact(row: FeatureImpact, ec: ExplanationsConfig, segment: str = ALL) -> CheckResult:
    """A drifted feature fails when the model leans on it (importance share ≥ ``min_importance``)."""
    text = f"impact {row.impact:.3g} = importance {row.importance:.3f} × effect/threshold {row.ratio:.3g}"
    failed = row.importance >= ec.min_importance
    msg = (
        f"drifted feature the model relies on: {text}; it moves the mean output by {row.attribution:+.3g}"
        if failed
        else f"drifted but the model barely uses it: {text} (importance < {ec.min_importance:g})"
    )
    return CheckResult(
        "feature_impact",
        Category.EXPLANATIONS,
        Status.FAIL if failed else Status.PASS,
        row.impact,
        ec.min_importance,
        msg,
        feature=row.feature,
        segment=segment,
    )


def decide_attribution(
    s: Surrogate, out: FeatureDrift | None, observed: float, rows: list[FeatureImpact], ec: ExplanationsConfig,
    segment: str = ALL,
) -> CheckResult:  # fmt: skip
    """Fail when the model's output drifted, naming the features whose drift explains the shift."""
    name, cat = "prediction_drift_attribution", Category.EXPLANATIONS
    same_sign = [r for r in rows if r.attribution * observed > 0]
    top = sorted(same_sign, key=lambda r: -abs(r.attribution))[: ec.top_k]
    named = ", ".join(f"{r.feature} ({r.attribution:+.3g})" for r in top) or "no feature"
    explained = sum(r.attribution for r in rows)
    share = explained / observed if observed else 0.0
    fidelity = f"surrogate of the {s.output}, R² {s.r2:.2f} on held-out reference rows"
    if out is None or not out.drifted:
        msg = f"the model's output did not drift (mean {s.output} {observed:+.3g} vs reference); {fidelity}"
        return CheckResult(name, cat, Status.PASS, share, None, msg, segment=segment)
    msg = (
        f"the {s.output} drifted (mean {observed:+.3g} vs reference); explained by {named}: the features' "
        f"own drift accounts for {share:.0%} of the shift; {fidelity}"
    )
    return CheckResult(name, cat, Status.FAIL, share, None, msg, segment=segment)


def explanation_checks(inp: FamilyInput) -> Findings:
    """The family for one window or segment, on that window's drift table."""
    s: Surrogate = inp.fitted
    ec = inp.cfg.explanations
    seg = inp.segment
    if s.surrogate is None:
        msg = "no model output logged in the reference (score or prediction): feature importance unknown"
        return [CheckResult("prediction_drift_attribution", Category.EXPLANATIONS, Status.WARN, None, None,
                            msg, segment=seg)], []  # fmt: skip
    drift = list(inp.drift) if inp.drift is not None else _drift_table(inp)
    frame = inp.frame
    if len(frame) > ec.max_rows:
        frame = frame.iloc[
            np.sort(np.random.default_rng(ec.seed).choice(len(frame), ec.max_rows, replace=False))
        ]
    attributed = attributions(s, frame, ec) if len(frame) else {}
    rows = impacts(s, drift, attributed)
    _, _, y = _output(inp.frame, inp.cfg)
    observed = float(np.nanmean(y)) - s.reference_mean if y is not None and np.isfinite(y).any() else 0.0
    out = next((d for d in drift if d.feature == s.column), None)
    checks = [decide_impact(r, ec, seg) for r in rows if r.drifted]
    checks.append(decide_attribution(s, out, observed, rows, ec, seg))
    metrics = [Metric("surrogate_r2", s.r2, "", seg)] if math.isfinite(s.r2) else []
    metrics += [Metric("prediction_shift", observed, "", seg)]
    for r in rows:
        metrics += [
            Metric("feature_importance", r.importance, r.feature, seg),
            Metric("drift_impact", r.impact, r.feature, seg),
            Metric("prediction_shift_attribution", r.attribution, r.feature, seg),
        ]
    return checks, metrics


def _drift_table(inp: FamilyInput) -> list[FeatureDrift]:
    """The window's drift table when the caller did not pass it (the same rule as the drift checks)."""
    from mlmon.tasks.checks.decide import drift_table
    from mlmon.tasks.evaluate import drift_specs

    if inp.frame.empty:
        return []
    specs = drift_specs(inp.cfg, inp.profile)
    field = None if inp.segment == ALL else inp.segment.split("=", 1)[0]
    present = {k: v for k, v in specs.items() if k in inp.frame.columns and k != field}
    return drift_table(inp.profile, inp.frame, present, inp.cfg.drift, segment=inp.segment)


@method(
    "drift_impact",
    category=Category.EXPLANATIONS,
    config="explanations",
    fit=fit_explanations,
    example={"max_fit_rows": 2_000, "n_repeats": 2},
)
def drift_impact(inp: FamilyInput) -> Findings:
    """Drifted features ranked by impact (importance × drift); prediction drift attributed to features."""
    return explanation_checks(inp)
