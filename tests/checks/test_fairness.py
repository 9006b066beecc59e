"""Fairness family: mlmon's per-group rates and gaps equal fairlearn's on the same data; the verdict
is a significance test against the limit (not a raw comparison), small groups warn, config resolves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from sklearn.metrics import mean_absolute_error

from mlmon.tasks import contract as c
from mlmon.tasks.checks.fairness import (
    Rate,
    _lower_difference,
    fairness_checks,
    group_rates,
)
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import model_from_dict
from mlmon.tasks.errors import ConfigError

FEATURES = {"x": {"type": "numerical"}, "plan": {"type": "categorical"}}


def config(task: str = "binary", **fairness):
    body = {
        "task": task,
        "features": FEATURES,
        "business_fields": {"region": {"path": "customer.region", "type": "categorical"}},
        "fairness": {"enabled": True, "attributes": ["region"], **fairness},
    }
    if task == "binary":
        body |= {"classes": ["stay", "churn"], "positive_class": "churn"}
    if task == "multiclass":
        body |= {"classes": ["a", "b", "c"]}
    return model_from_dict(body)


def binary_frame(n: int, seed: int, rates: dict[str, float], label_share: float = 0.7) -> pd.DataFrame:
    """Groups with the given selection rates of ``churn``; labels agree with the prediction 80% of the
    time; ``label_share`` of the rows labelled."""
    rng = np.random.default_rng(seed)
    groups = np.array(list(rates))
    region = groups[rng.integers(0, len(groups), n)]
    p = np.array([rates[g] for g in region])
    pred = np.where(rng.random(n) < p, "churn", "stay").astype(object)
    agree = rng.random(n) < 0.8
    target = np.where(agree, pred, np.where(pred == "churn", "stay", "churn")).astype(object)
    target[rng.random(n) >= label_share] = None
    return pd.DataFrame(
        {"x": rng.normal(size=n), "plan": "a", "region": region.astype(object), c.PREDICTION: pred,
         c.TARGET: target}
    )  # fmt: skip


def by(checks, name, feature="region"):
    (ch,) = [x for x in checks if x.check == name and x.feature == feature]
    return ch


def metric(metrics, name, feature):
    (m,) = [x for x in metrics if x.metric == name and x.feature == feature]
    return m.value


def test_binary_rates_and_gaps_equal_fairlearns() -> None:
    df = binary_frame(6_000, 1, {"north": 0.4, "south": 0.2, "east": 0.3})
    cfg = config(metrics={
        "demographic_parity_difference": None, "demographic_parity_ratio": None,
        "equal_opportunity_difference": None, "equalized_odds_difference": None, "accuracy_difference": None,
    })  # fmt: skip
    checks, metrics = fairness_checks(df, cfg)
    lab = df[df[c.TARGET].notna()]
    y_all = (df[c.PREDICTION] == "churn").astype(int)  # demographic parity ignores y_true
    y_pred, y_true = (lab[c.PREDICTION] == "churn").astype(int), (lab[c.TARGET] == "churn").astype(int)
    sel = fm.MetricFrame(metrics=fm.selection_rate, y_true=y_all, y_pred=y_all, sensitive_features=df.region)
    rates = fm.MetricFrame(
        metrics={"tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=lab.region,
    )  # fmt: skip
    for g in ("north", "south", "east"):
        f = f"region={g}"
        assert metric(metrics, "fairness_selection_rate", f) == pytest.approx(sel.by_group[g], abs=1e-12)
        assert metric(metrics, "fairness_tpr", f) == pytest.approx(rates.by_group.loc[g, "tpr"], abs=1e-12)
        assert metric(metrics, "fairness_fpr", f) == pytest.approx(rates.by_group.loc[g, "fpr"], abs=1e-12)
        assert metric(metrics, "fairness_rows", f) == (df.region == g).sum()
    kw = {"sensitive_features": df.region}
    assert by(checks, "demographic_parity_difference").value == pytest.approx(
        fm.demographic_parity_difference(y_all, y_all, **kw), abs=1e-12
    )
    assert by(checks, "demographic_parity_ratio").value == pytest.approx(
        fm.demographic_parity_ratio(y_all, y_all, **kw), abs=1e-12
    )
    kw = {"sensitive_features": lab.region}
    assert by(checks, "equal_opportunity_difference").value == pytest.approx(
        fm.equal_opportunity_difference(y_true, y_pred, **kw), abs=1e-12
    )
    assert by(checks, "equalized_odds_difference").value == pytest.approx(
        fm.equalized_odds_difference(y_true, y_pred, **kw), abs=1e-12
    )
    assert by(checks, "accuracy_difference").value == pytest.approx(
        fm.accuracy_score_difference(y_true, y_pred, **kw), abs=1e-12
    )
    # a 20-point selection gap on 2,000 rows a group is beyond 0.1 significantly; four-fifths broken
    assert by(checks, "demographic_parity_difference").status is Status.FAIL
    assert by(checks, "demographic_parity_ratio").status is Status.FAIL


def test_multiclass_is_one_vs_rest_per_class_like_fairlearn() -> None:
    rng = np.random.default_rng(2)
    n = 5_000
    region = rng.choice(["n", "s"], n).astype(object)
    pred = np.where(region == "n", rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
                    rng.choice(["a", "b", "c"], n, p=[0.3, 0.3, 0.4])).astype(object)  # fmt: skip
    target = np.where(rng.random(n) < 0.7, pred, rng.choice(["a", "b", "c"], n)).astype(object)
    df = pd.DataFrame({"x": 0.0, "plan": "a", "region": region, c.PREDICTION: pred, c.TARGET: target})
    checks, metrics = fairness_checks(df, config("multiclass"))
    for k in ("a", "b", "c"):
        yp, yt = (df[c.PREDICTION] == k).astype(int), (df[c.TARGET] == k).astype(int)
        feature = f"region;class={k}"
        assert by(checks, "demographic_parity_difference", feature).value == pytest.approx(
            fm.demographic_parity_difference(yt, yp, sensitive_features=df.region), abs=1e-12
        )
        assert by(checks, "equalized_odds_difference", feature).value == pytest.approx(
            fm.equalized_odds_difference(yt, yp, sensitive_features=df.region), abs=1e-12
        )
        mf = fm.MetricFrame(metrics=fm.selection_rate, y_true=yt, y_pred=yp, sensitive_features=df.region)
        assert metric(metrics, "fairness_selection_rate", f"region=n;class={k}") == pytest.approx(
            mf.by_group["n"], abs=1e-12
        )
    # class a: 50% vs 30% selected; class b: the same 30% in both groups
    assert by(checks, "demographic_parity_difference", "region;class=a").status is Status.FAIL
    assert by(checks, "demographic_parity_difference", "region;class=b").status is Status.PASS


def test_regression_gaps_in_mean_prediction_and_error_equal_metricframes() -> None:
    rng = np.random.default_rng(3)
    n = 4_000
    region = rng.choice(["n", "s", "e"], n).astype(object)
    y = rng.normal(10, 2, n) + np.where(region == "s", 3.0, 0.0)
    t = y + rng.normal(0, np.where(region == "e", 2.0, 1.0))
    t[rng.random(n) < 0.3] = np.nan
    df = pd.DataFrame({"x": 0.0, "plan": "a", "region": region, c.PREDICTION: y, c.TARGET: t})
    cfg = config(
        "regression", metrics={"mean_prediction_difference": 1.0, "mean_absolute_error_difference": 0.5}
    )
    checks, metrics = fairness_checks(df, cfg)
    mean = fm.MetricFrame(
        metrics=lambda yt, yp: float(np.mean(yp)), y_true=y, y_pred=y, sensitive_features=region
    )
    ok = ~np.isnan(t)
    mae = fm.MetricFrame(
        metrics=mean_absolute_error, y_true=t[ok], y_pred=y[ok], sensitive_features=region[ok]
    )
    assert by(checks, "mean_prediction_difference").value == pytest.approx(mean.difference(), abs=1e-9)
    assert by(checks, "mean_absolute_error_difference").value == pytest.approx(mae.difference(), abs=1e-9)
    assert metric(metrics, "fairness_mae", "region=e") == pytest.approx(mae.by_group["e"], abs=1e-9)
    assert by(checks, "mean_prediction_difference").status is Status.FAIL  # 3 units ≫ 1
    assert by(checks, "mean_absolute_error_difference").status is Status.FAIL  # ~0.8 vs limit 0.5


def test_newcombe_hybrid_score_interval_matches_the_paper() -> None:
    """Newcombe (1998), table II example (56/70 vs 48/80): 95% interval 0.0524 to 0.3339 (method 10)."""
    hi, lo = Rate(56 / 70, 70, 0.0), Rate(48 / 80, 80, 0.0)
    assert _lower_difference(hi, lo, 1.959964, True) == pytest.approx(0.0524, abs=5e-5)
    assert -_lower_difference(lo, hi, 1.959964, True) == pytest.approx(0.3339, abs=5e-5)


@pytest.mark.parametrize(
    "n, rates, expected",
    [
        (1_000_000, {"n": 0.30, "s": 0.22}, Status.PASS),  # 8 points, measured tightly: below the limit
        (300, {"n": 0.36, "s": 0.22}, Status.PASS),  # 14 points on 150 rows a group: not significant
        (20_000, {"n": 0.36, "s": 0.22}, Status.FAIL),  # the same 14 points, measured well: beyond 0.1
    ],
)
def test_the_verdict_is_a_test_against_the_limit_not_a_raw_comparison(n, rates, expected) -> None:
    checks, _ = fairness_checks(binary_frame(n, 4, rates), config(min_group_rows=100))
    assert by(checks, "demographic_parity_difference").status is expected


def test_small_groups_are_insufficient_data_not_an_alarm() -> None:
    df = binary_frame(3_000, 5, {"n": 0.3, "s": 0.3})
    tiny = binary_frame(40, 6, {"rare": 0.0})
    checks, metrics = fairness_checks(pd.concat([df, tiny], ignore_index=True), config())
    ch = by(checks, "demographic_parity_difference")
    assert ch.status is Status.WARN and "insufficient data" in ch.message and "rare" in ch.message
    assert metric(metrics, "fairness_rows", "region=rare") == 40  # still reported per group
    checks, _ = fairness_checks(tiny, config())
    assert all(x.status is Status.WARN and "insufficient data" in x.message for x in checks)
    unlabelled = df.assign(**{c.TARGET: None})
    checks, _ = fairness_checks(unlabelled, config())
    assert by(checks, "equal_opportunity_difference").status is Status.WARN
    assert by(checks, "demographic_parity_difference").status is Status.PASS


def test_a_boolean_business_field_or_a_categorical_feature_is_an_attribute() -> None:
    df = binary_frame(3_000, 7, {"n": 0.3, "s": 0.3}).assign(vip=lambda d: (d.region == "n").astype(float))
    cfg = model_from_dict({
        "task": "binary", "classes": ["stay", "churn"], "features": FEATURES,
        "business_fields": {"vip": {"path": "customer.vip", "type": "boolean"}},
        "fairness": {"enabled": True, "attributes": ["vip", "plan"]},
    })  # fmt: skip
    checks, metrics = fairness_checks(df.assign(plan=df.region), cfg)
    assert {m.feature for m in metrics if m.metric == "fairness_rows"} == {
        "vip=1",
        "vip=0",
        "plan=n",
        "plan=s",
    }
    assert by(checks, "demographic_parity_difference", "vip").status is Status.PASS


@pytest.mark.parametrize(
    "fairness, task, needle",
    [
        ({"attributes": ["nope"]}, "binary", "neither a business field nor a feature"),
        ({"attributes": ["x"]}, "binary", "numerical"),
        ({"attributes": []}, "binary", "at least one sensitive attribute"),
        ({"attributes": ["region"], "metrics": {"dp": 0.1}}, "binary", "not a binary fairness metric"),
        ({"attributes": ["region"], "metrics": {"demographic_parity_ratio": 1.5}}, "binary", "out of range"),
        ({"attributes": ["region"]}, "regression", "limits in the target's unit"),
        (
            {"attributes": ["region"], "metrics": {"mean_prediction_difference": None}},
            "regression",
            "give a limit",
        ),
    ],
)
def test_the_config_is_resolved_when_it_loads(fairness, task, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        model_from_dict({
            "task": task, "features": FEATURES,
            "business_fields": {"region": {"path": "customer.region", "type": "categorical"}},
            "fairness": {"enabled": True, **fairness},
        })  # fmt: skip


def test_rows_without_the_attribute_or_a_prediction_are_not_counted() -> None:
    df = binary_frame(2_000, 8, {"n": 0.3, "s": 0.3})
    df.loc[:99, "region"] = None
    df.loc[100:149, c.PREDICTION] = None
    groups, missing = group_rates(df, "region", config())
    assert missing == 100 and sum(g.n for g in groups) == 2_000 - 150
