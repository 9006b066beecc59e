"""Estimated performance (CBPE): the formulas against scikit-learn, the estimate against the realized
expectation on calibrated data, band coverage, multiclass, and the cases without an estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlmon.tasks import contract as c
from mlmon.tasks.checks.estimated import (
    METRICS,
    Skip,
    binary_metrics,
    estimate_window,
    estimated_checks,
    fit_cbpe,
    multiclass_metrics,
)
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.checks.performance import model_scores
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.errors import ConfigError

FEATURES = {"x1": {"type": "numerical"}, "x2": {"type": "numerical"}}


def config(task: str = "binary", **section) -> ModelConfig:
    extra = {"classes": ["neg", "pos"], "positive_class": "pos"} if task == "binary" else {}
    return model_from_dict(
        {"task": task, **extra, "features": FEATURES, "estimated_performance": {"enabled": True, **section}}
    )


def binary_frame(n: int, rng: np.random.Generator, *, shift: bool = False, confidence: float = 1.0):
    """Labels drawn from p_true = sigmoid(logit); the logged score is sigmoid(confidence × logit)."""
    x1 = rng.normal(0.2, 0.3, n) if shift else rng.normal(0, 1, n)
    x2 = rng.normal(0, 1, n)
    logit = 2 * x1 + 0.8 * x2 - 0.3
    score = 1 / (1 + np.exp(-confidence * logit))
    truth = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            c.SCORE: score,
            c.PREDICTION: np.where(score >= 0.5, "pos", "neg").astype(object),
            c.TARGET: np.where(truth, "pos", "neg").astype(object),
        }
    )


def multiclass_frame(n: int, rng: np.random.Generator, *, shift: bool = False) -> pd.DataFrame:
    x1 = rng.normal(0, 0.2, n) if shift else rng.normal(0, 1, n)
    x2 = rng.normal(0, 0.2, n) if shift else rng.normal(0, 1, n)
    z = np.column_stack([1.5 * x1, -1.5 * x1 + 0.3, 1.6 * x2 - 0.2])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    classes = np.array(["a", "b", "c"], dtype=object)
    frame = pd.DataFrame({"x1": x1, "x2": x2})
    for j, k in enumerate(classes):
        frame[f"{c.PROBA_PREFIX}{k}"] = p[:, j]
    frame[c.SCORE] = p.max(axis=1)
    frame[c.PREDICTION] = classes[p.argmax(axis=1)]
    frame[c.TARGET] = classes[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)]
    return frame


def test_with_the_labels_as_probabilities_the_formulas_are_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.4
    score = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1).round(2)  # ties on purpose
    y_hat = score >= 0.5
    got = binary_metrics(y.astype(float), score, y_hat)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, y_hat), abs=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(y, y_hat), abs=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, y_hat), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, y_hat), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)

    frame = multiclass_frame(600, rng)
    classes = ["a", "b", "c"]
    truth = frame[c.TARGET].to_numpy()
    onehot = (truth[:, None] == np.array(classes)[None, :]).astype(float)
    scores = frame[[f"{c.PROBA_PREFIX}{k}" for k in classes]].to_numpy()
    pred = pd.Index(classes).get_indexer(frame[c.PREDICTION])
    got = multiclass_metrics(onehot, scores, pred)
    y_pred = frame[c.PREDICTION].to_numpy()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, y_pred), abs=1e-12)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[name] == pytest.approx(fn(truth, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, scores, multi_class="ovr"), abs=1e-12)


def test_on_calibrated_probabilities_the_estimate_is_the_expected_realized_value() -> None:
    """Fixed rows with known calibrated p: the estimate equals the mean of the realized metric over
    many label draws (closed form for accuracy; Monte Carlo within 4 standard errors otherwise)."""
    rng = np.random.default_rng(1)
    p = rng.beta(2, 3, 400)
    y_hat = p >= 0.5
    est = binary_metrics(p, p, y_hat)
    assert est["accuracy"] == pytest.approx(np.mean(np.where(y_hat, p, 1 - p)), abs=1e-12)
    draws = [binary_metrics((rng.random(p.size) < p).astype(float), p, y_hat) for _ in range(4000)]
    for name in METRICS:
        v = np.array([d[name] for d in draws])
        se = v.std() / np.sqrt(v.size)
        # ratio metrics are ratios of expectations: a bias of O(1/n) on top of the noise
        assert abs(est[name] - v.mean()) < 4 * se + 2e-3, (name, est[name], v.mean(), se)


def test_isotonic_calibration_only_when_the_reference_is_miscalibrated() -> None:
    rng = np.random.default_rng(2)
    assert fit_cbpe(binary_frame(10_000, rng), config()).calibrators == (None,)
    over = fit_cbpe(binary_frame(10_000, rng, confidence=2.0), config())
    assert over.calibrators[0] is not None
    raw = fit_cbpe(binary_frame(10_000, rng, confidence=2.0), config(calibration="none"))
    window = binary_frame(5_000, rng, confidence=2.0)
    realized = model_scores(window, config()).values["accuracy"]
    est = {e.metric: e.value for e in estimate_window(window, over, config().estimated_performance).estimates}
    naive = {
        e.metric: e.value for e in estimate_window(window, raw, config().estimated_performance).estimates
    }
    # overconfident scores over-promise: calibrated, the estimate lands on the realized value
    assert abs(est["accuracy"] - realized) < 0.015 < naive["accuracy"] - realized


def test_band_covers_the_realized_value_and_null_windows_do_not_fail() -> None:
    """A cheap version of tests/benchmarks/calibrate_cbpe.py: 60 null windows of 1,000 rows."""
    rng = np.random.default_rng(3)
    cfg = config()
    model = fit_cbpe(binary_frame(10_000, rng, confidence=1.6), cfg)
    inside = {k: 0 for k in METRICS}
    fails = 0
    for _ in range(60):
        w = binary_frame(1_000, rng, confidence=1.6)
        checks, metrics = estimated_checks(w, model, cfg.estimated_performance)
        fails += any(ch.status is Status.FAIL for ch in checks)
        real = model_scores(w, cfg).values
        by = {m.metric: m.value for m in metrics}
        for k in METRICS:
            inside[k] += by[f"estimated_{k}_lower"] <= real[k] <= by[f"estimated_{k}_upper"]
    assert fails <= 2
    assert all(v >= 54 for v in inside.values()), inside


def test_inputs_moved_towards_the_boundary_fail_before_any_label() -> None:
    rng = np.random.default_rng(4)
    cfg = config()
    model = fit_cbpe(binary_frame(10_000, rng, confidence=1.6), cfg)
    window = binary_frame(2_000, rng, shift=True, confidence=1.6).drop(columns=[c.TARGET])
    checks, metrics = estimated_checks(window, model, cfg.estimated_performance)
    by = {ch.check: ch for ch in checks}
    assert by["estimated_accuracy"].status is Status.FAIL
    assert by["estimated_accuracy"].category is Category.ESTIMATED_PERFORMANCE
    assert by["estimated_roc_auc"].status is Status.FAIL
    assert {"estimated_accuracy", "estimated_accuracy_lower", "estimated_accuracy_upper"} <= {
        m.metric for m in metrics
    }


def test_multiclass_one_vs_rest_macro() -> None:
    rng = np.random.default_rng(5)
    cfg = config("multiclass")
    model = fit_cbpe(multiclass_frame(10_000, rng), cfg)
    assert model.classes == ("a", "b", "c")
    window = multiclass_frame(5_000, rng)
    est = {e.metric: e for e in estimate_window(window, model, cfg.estimated_performance).estimates}
    real = model_scores(window, cfg).values
    assert set(est) == set(METRICS)
    for k in METRICS:
        assert est[k].lower <= real[k] <= est[k].upper, (k, est[k], real[k])
        assert abs(est[k].value - real[k]) < 0.03
    checks, _ = estimated_checks(multiclass_frame(3_000, rng, shift=True), model, cfg.estimated_performance)
    assert {ch.check: ch.status for ch in checks}["estimated_accuracy"] is Status.FAIL


def test_without_probabilities_a_clear_warning_not_a_crash() -> None:
    rng = np.random.default_rng(6)
    cfg = config()
    ec = cfg.estimated_performance
    ref = binary_frame(2_000, rng)
    model = fit_cbpe(ref, cfg)
    (check,), metrics = estimated_checks(binary_frame(1_000, rng).drop(columns=[c.SCORE]), model, ec)
    assert check.status is Status.WARN and "no class probabilities" in check.message and not metrics
    blind = fit_cbpe(ref.drop(columns=[c.SCORE]), cfg)
    assert blind.skip is Skip.NO_PROBABILITIES
    (check,), _ = estimated_checks(binary_frame(1_000, rng), blind, ec)
    assert check.status is Status.WARN and "no class probabilities" in check.message
    unlabelled = fit_cbpe(ref.drop(columns=[c.TARGET]), cfg)
    assert unlabelled.skip is Skip.NO_REFERENCE_LABELS
    (check,), _ = estimated_checks(binary_frame(50, rng), model, ec)
    assert check.status is Status.WARN and check.message.startswith("insufficient data")
    multi = fit_cbpe(multiclass_frame(2_000, rng).filter(regex="^(?!__proba)"), config("multiclass"))
    assert multi.skip is Skip.NO_PROBABILITIES


def test_a_regressor_cannot_enable_it() -> None:
    with pytest.raises(ConfigError, match="estimated_performance: needs task binary or multiclass"):
        model_from_dict(
            {"task": "regression", "features": FEATURES, "estimated_performance": {"enabled": True}}
        )


def test_a_segment_is_judged_against_its_own_reference() -> None:
    """A segment whose model is naturally less accurate must not fail against the whole reference."""
    rng = np.random.default_rng(7)
    easy, hard = binary_frame(6_000, rng), binary_frame(6_000, rng, shift=True)
    ref = pd.concat([easy.assign(grp="easy"), hard.assign(grp="hard")], ignore_index=True)
    cfg = model_from_dict(
        {
            "task": "binary",
            "classes": ["neg", "pos"],
            "positive_class": "pos",
            "features": {**FEATURES, "grp": {"type": "categorical"}},
            "segments": ["grp"],
            "estimated_performance": {"enabled": True},
        }
    )
    model = fit_cbpe(ref, cfg)
    assert set(model.segments) == {"grp=easy", "grp=hard"}
    window = binary_frame(2_000, rng, shift=True).assign(grp="hard")
    checks, _ = estimated_checks(window, model, cfg.estimated_performance, segment="grp=hard")
    assert all(ch.status is Status.PASS for ch in checks), [ch.message for ch in checks]
    checks, _ = estimated_checks(window, model, cfg.estimated_performance)  # against the whole reference
    assert any(ch.status is Status.FAIL for ch in checks)
    (check,), _ = estimated_checks(window, model, cfg.estimated_performance, segment="grp=new")
    assert check.status is Status.WARN and "insufficient data" in check.message and "grp=new" in check.message


def test_a_failed_estimate_is_its_own_incident() -> None:
    from dataclasses import replace

    from mlmon.tasks import incidents
    from mlmon.tasks.checks.outcome import CheckResult
    from tests import factories as fx

    msg = "estimated drop: estimated recall 0.470 (band 0.400–0.540) on 2,400 rows, reference 0.580"
    ch = CheckResult("estimated_recall", Category.ESTIMATED_PERFORMANCE, Status.FAIL, 0.47, 0.55, msg)
    r = fx.result()
    found = {i.subject: i for i in incidents.group(replace(r, checks=(*r.checks, ch)))}
    assert found["estimated performance"].checks == ("estimated_recall",)
    assert found["estimated performance"].sentence == f"estimated performance: {msg}"
    assert "estimated_recall" not in found["log documents"].checks


def test_doctests() -> None:
    import doctest

    from mlmon.tasks.checks import estimated

    assert doctest.testmod(estimated).failed == 0
