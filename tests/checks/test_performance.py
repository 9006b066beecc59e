"""Model-quality metrics equal scikit-learn's (tiny hand-made and larger random inputs), and the checks built
on them: insufficient labels, undefined metrics, degradation direction, absolute thresholds."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn import metrics as skm

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Category, Status
from mlmon.tasks.checks.performance import (
    model_scores,
    performance_checks,
    reference_performance,
    vs_reference,
)
from mlmon.tasks.config import ModelConfig, PerformanceConfig
from mlmon.tasks.profile import CategoricalProfile, Profile
from tests.checks.results import by_name, metrics_of

TOL = 1e-12


def make_cfg(task: str, **kw: Any) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "m",
            "features": {"x": {"type": "numerical"}},
            "reference": {"path": "r.parquet"},
            "base_dir": ".",
            "task": task,
            **kw,
        }
    )


def make_profile(performance: dict[str, float] | None = None, **columns: Any) -> Profile:
    return Profile(reference_hash="h", n_rows=100, columns=columns, performance=performance or {})


def cls_frame(
    y_true: Any, y_pred: Any, score: Any = None, proba: dict[str, Any] | None = None
) -> pd.DataFrame:
    data: dict[str, Any] = {
        c.TARGET: pd.Series(y_true, dtype=object),
        c.PREDICTION: pd.Series(y_pred, dtype=object),
    }
    if score is not None:
        data[c.SCORE] = np.asarray(score, dtype=np.float64)
    for k, v in (proba or {}).items():
        data[c.PROBA_PREFIX + k] = np.asarray(v, dtype=np.float64)
    return pd.DataFrame(data)


def reg_frame(y_true: Any, y_pred: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {c.TARGET: np.asarray(y_true, np.float64), c.PREDICTION: np.asarray(y_pred, np.float64)}
    )


def assert_close(ours: dict[str, float], expected: dict[str, float]) -> None:
    assert set(ours) == set(expected), (sorted(ours), sorted(expected))
    for k, v in expected.items():
        assert abs(ours[k] - v) <= TOL, (k, ours[k], v)


def sk_binary(y_true, y_pred, score, pos) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    is_pos = y_true == pos
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "roc_auc": skm.roc_auc_score(is_pos, score),
        "log_loss": skm.log_loss(is_pos, y_proba=np.asarray(score), labels=[False, True]),
    }


def sk_multiclass(y_true, y_pred, proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes, average="macro"),
        "log_loss": skm.log_loss(y_true, y_proba=proba, labels=classes),
    }


def sk_regression(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    nz = y_true != 0
    return {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "rmse": skm.root_mean_squared_error(y_true, y_pred),
        "mape": skm.mean_absolute_percentage_error(y_true[nz], y_pred[nz]),
        "r2": skm.r2_score(y_true, y_pred),
    }


# --------------------------------------------------------------------------- binary


def test_binary_tiny_equals_sklearn():
    y_true = ["yes", "no", "yes", "yes", "no", "no", "yes", "no"]
    y_pred = ["yes", "no", "no", "yes", "yes", "no", "yes", "no"]
    score = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.4, 0.4]  # ties at 0.4 across classes
    scores = model_scores(cls_frame(y_true, y_pred, score), make_cfg("binary", classes=["no", "yes"]))
    assert scores.n == 8 and not scores.undefined
    assert_close(scores.values, sk_binary(y_true, y_pred, score, "yes"))
    assert scores.values["accuracy"] == 0.75  # by hand: 6 of 8
    assert scores.values["precision"] == 0.75 and scores.values["recall"] == 0.75


def test_binary_positive_class_not_sorted_last():
    # positive_class "churn" sorts before "stay": __score is p(churn)
    rng = np.random.default_rng(5)
    y_true = rng.choice(["churn", "stay"], 300, p=[0.3, 0.7])
    y_pred = np.where(rng.random(300) < 0.8, y_true, rng.choice(["churn", "stay"], 300))
    score = np.clip((y_true == "churn") * 0.3 + rng.random(300) * 0.7, 0, 1)
    cfg = make_cfg("binary", classes=["stay", "churn"], positive_class="churn")
    scores = model_scores(cls_frame(y_true, y_pred, score), cfg)
    assert_close(scores.values, sk_binary(y_true, y_pred, score, "churn"))


def test_binary_positive_defaults_to_sorted_second_label():
    y_true, y_pred, score = ["a", "b", "b", "a"], ["a", "b", "a", "a"], [0.1, 0.9, 0.4, 0.3]
    scores = model_scores(cls_frame(y_true, y_pred, score), make_cfg("binary"))
    assert_close(scores.values, sk_binary(y_true, y_pred, score, "b"))


def test_binary_random_large_with_ties_and_missing():
    rng = np.random.default_rng(42)
    n = 50_000
    y_true = rng.choice(np.array(["neg", "pos"], dtype=object), n, p=[0.8, 0.2])
    score = np.round(np.clip((y_true == "pos") * 0.25 + rng.beta(2, 5, n), 0, 1), 2)  # many ties
    score[:10] = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0]  # clipped log-loss extremes
    y_pred = np.where(score > 0.45, "pos", "neg").astype(object)
    y_true_logged = y_true.copy()
    y_true_logged[rng.random(n) < 0.3] = None  # unlabelled rows are not evaluated
    df = cls_frame(y_true_logged, y_pred, score)
    scores = model_scores(df[df[c.TARGET].notna()], make_cfg("binary", classes=["neg", "pos"]))
    keep = y_true_logged != None  # noqa: E711 (elementwise on an object array)
    assert_close(scores.values, sk_binary(y_true[keep], y_pred[keep], score[keep], "pos"))


def test_binary_rows_without_prediction_or_score_are_left_out():
    y_true = ["yes", "no", "yes", "no", "yes"]
    y_pred = ["yes", None, "no", "no", "yes"]
    score = [0.9, 0.5, np.nan, 0.2, 0.7]
    scores = model_scores(cls_frame(y_true, y_pred, score), make_cfg("binary", classes=["no", "yes"]))
    assert scores.n == 4
    label_only = sk_binary(
        ["yes", "yes", "no", "yes"], ["yes", "no", "no", "yes"], [0.9, 0.0, 0.2, 0.7], "yes"
    )
    prob = sk_binary(["yes", "no", "yes"], ["yes", "no", "yes"], [0.9, 0.2, 0.7], "yes")
    assert_close(
        scores.values,
        {k: label_only[k] for k in ("accuracy", "precision", "recall", "f1")}
        | {k: prob[k] for k in ("roc_auc", "log_loss")},
    )


def test_binary_single_class_window():
    df = cls_frame(["no"] * 60, ["no"] * 55 + ["yes"] * 5, [0.1] * 55 + [0.7] * 5)
    cfg = make_cfg("binary", classes=["no", "yes"])
    prof = make_profile({"accuracy": 0.9, "roc_auc": 0.8, "recall": 0.7, "precision": 0.6})
    checks, metrics = performance_checks(df, prof, cfg)
    named, m = by_name(checks), metrics_of(metrics)
    assert "roc_auc" not in m and "recall" not in m
    assert named["roc_auc_undefined"].status is Status.WARN
    assert named["roc_auc_undefined"].message == "roc_auc undefined: only one class among labelled rows"
    assert "no row labelled with the positive class 'yes'" in named["recall_undefined"].message
    assert m["precision"] == 0.0  # 5 positive predictions, none right: defined and 0
    assert named["precision_vs_reference"].status is Status.FAIL
    assert named["accuracy_vs_reference"].status is Status.PASS  # 55/60 = 0.917 ≥ 0.81
    assert m["log_loss"] == pytest.approx(
        skm.log_loss([False] * 60, y_proba=[0.1] * 55 + [0.7] * 5, labels=[False, True])
    )
    assert "roc_auc_vs_reference" not in named and "recall_vs_reference" not in named


def test_binary_positive_unknown_when_only_one_label_seen():
    df = cls_frame(["a"] * 60, ["a"] * 60, [0.2] * 60)
    scores = model_scores(df, make_cfg("binary"))
    assert scores.values == {"accuracy": 1.0}
    assert "positive class unknown" in scores.undefined["f1"]
    # the reference's predicted classes (from the profile) settle it: "b" is positive, never seen here
    prof = make_profile(**{c.PREDICTION: CategoricalProfile(("a", "b"), np.array([5, 5]), 0)})
    checks, metrics = performance_checks(df, prof, make_cfg("binary"))
    assert set(metrics_of(metrics)) == {"n_labelled", "label_coverage", "accuracy", "log_loss"}
    assert {x.check for x in checks if x.status is Status.WARN} == {
        "precision_undefined",
        "recall_undefined",
        "f1_undefined",
        "roc_auc_undefined",
    }
    assert metrics_of(metrics)["log_loss"] == pytest.approx(
        skm.log_loss([False] * 60, y_proba=[0.2] * 60, labels=[False, True]), abs=TOL
    )


def test_binary_unexpected_label_does_not_crash():
    df = cls_frame(["no", "yes", "yes", "no"], ["no", "yes", "maybe", "<b>"], [0.1, 0.9, 0.5, 0.3])
    scores = model_scores(df, make_cfg("binary", classes=["no", "yes"]))
    assert scores.values["accuracy"] == 0.5
    assert scores.values["recall"] == 0.5 and scores.values["precision"] == 1.0


# --------------------------------------------------------------------------- multiclass


def test_multiclass_tiny_equals_sklearn():
    classes = ["bird", "cat", "dog"]
    y_true = ["cat", "dog", "bird", "cat", "dog", "bird", "cat"]
    y_pred = ["cat", "cat", "bird", "dog", "dog", "cat", "cat"]
    proba = np.array(
        [
            [0.1, 0.7, 0.2],
            [0.2, 0.5, 0.3],
            [0.6, 0.2, 0.2],
            [0.1, 0.4, 0.5],
            [0.0, 0.3, 0.7],
            [0.3, 0.4, 0.3],
            [0.2, 0.6, 0.2],
        ]
    )
    df = cls_frame(y_true, y_pred, proba.max(axis=1), {k: proba[:, i] for i, k in enumerate(classes)})
    scores = model_scores(df, make_cfg("multiclass", classes=classes))
    assert_close(scores.values, sk_multiclass(y_true, y_pred, proba, classes))


def test_multiclass_random_large():
    rng = np.random.default_rng(7)
    n, classes = 20_000, ["a", "b", "c", "d"]
    logits = rng.normal(size=(n, 4))
    y_true = np.array(classes, dtype=object)[rng.integers(0, 4, n)]
    logits[np.arange(n), pd.Index(classes).get_indexer(y_true)] += 1.0
    proba = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 3)
    proba[:, -1] = 1.0 - proba[:, :-1].sum(axis=1)  # rows sum to 1 (sklearn's ovr requires it)
    y_pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
    y_pred[:50] = "e"  # a predicted label the truth never has: counts in the macro average
    df = cls_frame(y_true, y_pred, proba.max(axis=1), {k: proba[:, i] for i, k in enumerate(classes)})
    ours = model_scores(df, make_cfg("multiclass")).values
    expected = sk_multiclass(y_true, y_pred, proba, classes)
    assert_close(ours, expected)


def test_multiclass_class_missing_from_window_and_label_without_probability():
    classes = ["a", "b", "c"]
    proba = {"a": [0.7, 0.2, 0.6, 0.1], "b": [0.2, 0.7, 0.3, 0.8], "c": [0.1, 0.1, 0.1, 0.1]}
    df = cls_frame(["a", "b", "a", "b"], ["a", "b", "a", "b"], None, proba)
    scores = model_scores(df, make_cfg("multiclass", classes=classes))
    # "c" never labelled: one-vs-rest over the classes present (sklearn would give NaN)
    expected_auc = np.mean(
        [skm.roc_auc_score([1, 0, 1, 0], proba["a"]), skm.roc_auc_score([0, 1, 0, 1], proba["b"])]
    )
    assert abs(scores.values["roc_auc"] - expected_auc) <= TOL
    assert (
        abs(
            scores.values["log_loss"]
            - skm.log_loss(df[c.TARGET], y_proba=np.column_stack(list(proba.values())), labels=classes)
        )
        <= TOL
    )

    df = cls_frame(["a", "zz"], ["a", "a"], None, {"a": [0.9, 0.9], "b": [0.1, 0.1]})
    scores = model_scores(df, make_cfg("multiclass"))
    assert "log_loss" not in scores.values and "'zz'" in scores.undefined["log_loss"]


def test_multiclass_without_probabilities_has_label_metrics_only():
    y_true, y_pred = ["a", "b", "c", "a"], ["a", "c", "c", "b"]
    scores = model_scores(cls_frame(y_true, y_pred), make_cfg("multiclass"))
    assert set(scores.values) == {"accuracy", "precision", "recall", "f1"}
    assert not scores.undefined


def test_hostile_labels():
    hostile = ["<script>alert(1)</script>", "a\nb", "x" * 5000]
    df = cls_frame(hostile * 20, hostile[::-1] * 20)
    checks, _ = performance_checks(df, make_profile(), make_cfg("multiclass"))
    for x in checks:
        assert "\n" not in x.message


# --------------------------------------------------------------------------- regression


def test_regression_tiny_equals_sklearn():
    y_true = [3.0, -0.5, 2.0, 7.0, 0.0]
    y_pred = [2.5, 0.0, 2.0, 8.0, 0.3]
    scores = model_scores(reg_frame(y_true, y_pred), make_cfg("regression"))
    assert_close(scores.values, sk_regression(y_true, y_pred))
    assert scores.values["mae"] == pytest.approx(0.46, abs=TOL)
    assert scores.notes == ("mape skips 1 rows with a zero target",)


def test_regression_random_large():
    rng = np.random.default_rng(11)
    y_true = rng.normal(100, 20, 100_000)
    y_pred = y_true + rng.normal(0, 5, y_true.size)
    y_true[:100] = 0.0
    df = reg_frame(y_true, y_pred)
    df.loc[100:199, c.PREDICTION] = np.nan  # not evaluated
    scores = model_scores(df, make_cfg("regression"))
    keep = np.ones(y_true.size, bool)
    keep[100:200] = False
    assert_close(scores.values, sk_regression(y_true[keep], y_pred[keep]))
    assert scores.n == keep.sum()


def test_regression_degenerate_targets():
    scores = model_scores(reg_frame([0.0, 0.0, 0.0], [1.0, 0.0, 2.0]), make_cfg("regression"))
    assert scores.undefined == {"mape": "every target is zero", "r2": "constant target (0)"}
    assert scores.values["mae"] == 1.0
    scores = model_scores(reg_frame([5.0], [4.0]), make_cfg("regression"))
    assert "r2" in scores.undefined


def test_mape_note_is_in_the_summary_message():
    df = reg_frame([0.0] * 10 + [1.0] * 50, [1.0] * 60)
    checks, _ = performance_checks(df, make_profile(), make_cfg("regression"))
    assert "mape skips 10 rows with a zero target" in by_name(checks)["model_quality"].message


# --------------------------------------------------------------------------- labels and checks


def test_no_labels():
    df = cls_frame([None] * 10, ["a"] * 10)
    checks, metrics = performance_checks(df, make_profile({"accuracy": 0.9}), make_cfg("binary"))
    assert metrics_of(metrics) == {"n_labelled": 0.0, "label_coverage": 0.0}
    assert [(x.check, x.status, x.message) for x in checks] == [
        ("model_quality", Status.WARN, "insufficient labels: 0 < 50 (min_labelled)")
    ]
    # no target column at all, and an empty frame
    checks, _ = performance_checks(df.drop(columns=c.TARGET), make_profile(), make_cfg("binary"))
    assert by_name(checks)["model_quality"].status is Status.WARN
    checks, metrics = performance_checks(pd.DataFrame(), make_profile(), make_cfg("regression"))
    assert metrics_of(metrics) == {"n_labelled": 0.0}
    assert [x.check for x in checks] == ["model_quality"]


def test_insufficient_labels_means_no_metric_checks():
    df = cls_frame(["a", "b"] * 10 + [None] * 80, ["a"] * 100, [0.3] * 100)
    cfg = make_cfg(
        "binary", performance={"min_labelled": 21, "min_label_coverage": 0.5, "thresholds": {"f1": 0.9}}
    )
    checks, metrics = performance_checks(df, make_profile({"accuracy": 0.99}), cfg)
    named = by_name(checks)
    assert set(named) == {"model_quality", "label_coverage"}
    assert named["model_quality"].message == "insufficient labels: 20 < 21 (min_labelled)"
    cov = named["label_coverage"]
    assert (cov.status, cov.value, cov.threshold) == (Status.WARN, 0.2, 0.5)
    assert metrics_of(metrics) == {"n_labelled": 20.0, "label_coverage": 0.2}
    cfg = make_cfg("binary", performance={"min_labelled": 20})
    checks, metrics = performance_checks(df, make_profile({"accuracy": 0.99}), cfg)
    assert by_name(checks)["accuracy_vs_reference"].status is Status.FAIL
    assert "label_coverage" not in by_name(checks)  # min_label_coverage 0: not checked
    assert metrics_of(metrics)["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("name", "value", "ref", "status", "limit"),
    [
        ("accuracy", 0.80, 0.90, Status.FAIL, 0.81),  # higher is better: a 11% drop
        ("accuracy", 0.81, 0.90, Status.PASS, 0.81),  # exactly at the limit
        ("f1", 0.95, 0.90, Status.PASS, 0.81),  # an improvement
        ("roc_auc", 0.70, 0.80, Status.FAIL, 0.72),
        ("mae", 1.2, 1.0, Status.FAIL, 1.1),  # lower is better: a 20% rise
        ("mae", 0.5, 1.0, Status.PASS, 1.1),  # an improvement
        ("log_loss", 0.33, 0.30, Status.PASS, 0.33),
        ("rmse", 0.1, 0.0, Status.FAIL, 0.0),  # perfect reference: any error is worse
        ("r2", 0.65, 0.80, Status.FAIL, 0.70),  # absolute for r2
        ("r2", -0.05, 0.02, Status.PASS, -0.08),  # near-zero / negative r2: still sensible
        ("r2", -0.5, -0.3, Status.FAIL, -0.4),
    ],
)
def test_degradation_direction(name, value, ref, status, limit):
    r = vs_reference(name, value, ref, 0.1)
    assert r.check == f"{name}_vs_reference"
    assert r.status is status
    assert r.threshold == pytest.approx(limit, abs=1e-12)
    assert r.value == value and r.category is Category.PERFORMANCE


def test_degradation_messages():
    assert vs_reference("f1", 0.7, 0.8, 0.1).message == "f1: 0.7 < 0.72 (reference 0.8 − 10%)"
    assert vs_reference("mae", 1.0, 1.0, 0.1).message == "mae: 1 ≤ 1.1 (reference 1 + 10%)"
    assert vs_reference("r2", 0.5, 0.8, 0.1).message == "r2: 0.5 < 0.7 (reference 0.8 − 0.1 absolute)"


def test_absolute_thresholds_and_unknown_names():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 2, 200)
    df = reg_frame(y, y + 1.0)
    thresholds = {"mae": 0.5, "r2": 0.1, "f1": 0.5, "f1score": 0.5}
    with pytest.raises(ValidationError, match="unknown metric 'f1score'"):  # the config refuses them
        make_cfg("regression", performance={"thresholds": thresholds})
    with pytest.raises(ValidationError, match="'f1' is not a regression metric"):
        make_cfg("regression", performance={"thresholds": {"f1": 0.5}})
    # and the engine still says so for a config built without validation
    cfg = make_cfg("regression").model_copy(
        update={"performance": PerformanceConfig.model_construct(thresholds=thresholds)}
    )
    checks, _ = performance_checks(df, make_profile(), cfg)
    named = by_name(checks)
    assert (
        named["mae_threshold"].status is Status.FAIL
        and named["mae_threshold"].message == "mae: 1 > 0.5 maximum"
    )
    assert named["r2_threshold"].status is Status.PASS
    assert (
        named["f1_threshold"].status is Status.ERROR
        and "not a regression metric" in named["f1_threshold"].message
    )
    assert named["f1score_threshold"].status is Status.ERROR
    assert "unknown metric; use one of mae, rmse, mape, r2" in named["f1score_threshold"].message


def test_threshold_on_metric_not_computed_warns():
    df = cls_frame(["a", "b"] * 30, ["a", "b"] * 30)
    cfg = make_cfg("binary", performance={"thresholds": {"roc_auc": 0.7, "accuracy": 0.9}})
    named = by_name(performance_checks(df, make_profile(), cfg)[0])
    assert named["roc_auc_threshold"].status is Status.WARN
    assert named["accuracy_threshold"].status is Status.PASS


def test_task_none_has_no_checks_and_no_metrics():
    df = cls_frame(["a"] * 100, ["a"] * 100)
    assert performance_checks(df, make_profile({"accuracy": 1.0}), make_cfg("none")) == ([], [])
    assert reference_performance(df, make_cfg("none")) == {}


def test_reference_performance_is_the_window_metric_dict():
    rng = np.random.default_rng(9)
    y_true = rng.choice(["no", "yes"], 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, "no")
    score = rng.random(500)
    df = cls_frame(y_true, y_pred, score)
    df.loc[:99, c.TARGET] = None
    cfg = make_cfg("binary", classes=["no", "yes"])
    ref = reference_performance(df, cfg)
    keep = slice(100, None)
    assert_close(ref, sk_binary(y_true[keep], y_pred[keep], score[keep], "yes"))
    # the same frame as a window, against its own reference: every check passes
    checks, metrics = performance_checks(df, make_profile(ref), cfg)
    assert {x.status for x in checks} == {Status.PASS}
    assert {x.check for x in checks} >= {f"{k}_vs_reference" for k in ref}
    assert {k: v for k, v in metrics_of(metrics).items() if k in ref} == ref
    assert reference_performance(df.drop(columns=c.TARGET), cfg) == {}


def test_segment_names_and_messages():
    df = cls_frame(["a", "b"] * 40, ["a", "b", "b", "b"] * 20, [0.2, 0.8] * 40)
    checks, metrics = performance_checks(
        df, make_profile({"f1": 0.9}), make_cfg("binary"), segment="plan=pro"
    )
    assert {x.segment for x in checks} == {"plan=pro"} and {m.segment for m in metrics} == {"plan=pro"}
    for x in checks:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", x.check) and "\n" not in x.message
    checks, _ = performance_checks(df, make_profile(), make_cfg("binary"))
    assert {x.segment for x in checks} == {ALL}


def test_the_noise_band_printed_is_the_one_the_rule_uses_and_the_standard_error_is_right() -> None:
    """6,040 labelled rows: the bootstrap standard error of log loss equals the closed form sd/√n (within
    15 %), the message prints 2.33 of them, and log loss 20 % worse than the reference (10 % allowed)
    fails while 10.5 % worse is within noise."""
    from tests import factories

    cfg = factories.config()
    window = factories.frame(10_000, seed=1, labelled=0.6)
    lab = window[window[c.TARGET].notna()]
    p = lab[c.SCORE].to_numpy(float)
    loss = -np.log(np.where((lab[c.TARGET] == "churn").to_numpy(), p, 1 - p))
    se = loss.std(ddof=1) / np.sqrt(loss.size)
    value = float(loss.mean())

    def check(worse_by: float) -> Any:
        prof = make_profile({"log_loss": value / (1 + worse_by)})
        return by_name(performance_checks(window, prof, cfg)[0])["log_loss_vs_reference"]

    failed = check(0.20)
    assert failed.status is Status.FAIL
    band = float(re.search(r"> ±([0-9.]+) = 2\.33 standard errors of ([0-9.]+)", failed.message).group(1))
    printed_se = float(re.search(r"standard errors of ([0-9.]+)", failed.message).group(1))
    assert printed_se == pytest.approx(se, rel=0.15)
    assert band == pytest.approx(2.33 * printed_se, rel=0.02)
    passed = check(0.105)
    assert passed.status is Status.PASS and "within sampling noise" in passed.message
    assert "2.33 standard errors" in passed.message
