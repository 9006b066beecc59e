"""Quality checks: missing / out-of-range / unseen shares against hand-computed answers, window-level checks,
and the boundary cases (empty window, absent feature, hostile category strings)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks.checks.outcome import ALL, Category, Status
from mlmon.tasks.checks.quality import quality_checks
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.profile import CategoricalProfile, NumericalProfile, Profile

# --------------------------------------------------------------------------- builders


def make_cfg(features: dict[str, Any] | None = None, **kw: Any) -> ModelConfig:
    features = features or {"age": {"type": "numerical"}, "plan": {"type": "categorical"}}
    return ModelConfig.model_validate(
        {"name": "m", "features": features, "reference": {"path": "ref.parquet"}, "base_dir": ".", **kw}
    )


def num_profile(values: list[float] | np.ndarray) -> NumericalProfile:
    v = np.asarray(values, dtype=np.float64)
    finite = np.sort(v[~np.isnan(v)])
    return NumericalProfile(
        sorted_values=finite,
        n_missing=int(np.isnan(v).sum()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
        quantiles={q: float(np.quantile(finite, q)) for q in (0.01, 0.5, 0.99)},
        bin_edges=np.quantile(finite, [0.5]),
        bin_counts=np.array([finite.size // 2, finite.size - finite.size // 2]),
    )


def cat_profile(values: list[str | None]) -> CategoricalProfile:
    s = pd.Series(values, dtype=object)
    counts = s.value_counts().sort_index()
    return CategoricalProfile(
        categories=tuple(counts.index), counts=counts.to_numpy(np.int64), n_missing=int(s.isna().sum())
    )


def make_profile(**columns: Any) -> Profile:
    return Profile(reference_hash="h", n_rows=100, columns=columns)


REF = make_profile(
    age=num_profile([*range(18, 100), np.nan]),  # 82 values in [18, 99], 1 missing
    plan=cat_profile(["basic"] * 60 + ["pro"] * 39 + [None]),
)


def frame(age: list[float], plan: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"age": np.asarray(age, dtype=np.float64), "plan": pd.Series(plan, dtype=object)})


def run(df: pd.DataFrame, cfg: ModelConfig | None = None, profile: Profile = REF, **kw: Any):
    kw.setdefault("n_quarantined", 0)
    return quality_checks(df, profile, cfg or make_cfg(), **kw)


def one(checks, name: str, feature: str = ""):
    found = [c for c in checks if c.check == name and c.feature == feature]
    assert len(found) == 1, (name, feature, checks)
    return found[0]


def metric(metrics, name: str, feature: str = "") -> float:
    found = [m.value for m in metrics if m.metric == name and m.feature == feature]
    assert len(found) == 1, (name, feature, metrics)
    return found[0]


# --------------------------------------------------------------------------- missing share


def test_missing_share_against_reference_plus_allowed():
    # 31 missing of 100, reference 1/83 missing, allowed 5%
    df = frame([np.nan] * 31 + [40.0] * 69, ["basic"] * 100)
    checks, metrics = run(df)
    c = one(checks, "missing_share", "age")
    ref_share = 1 / 83
    assert c.status is Status.FAIL and c.category is Category.QUALITY
    assert c.value == pytest.approx(0.31, abs=1e-15)
    assert c.threshold == pytest.approx(ref_share + 0.05, abs=1e-15)
    assert c.message == "age: 31.0% missing > 6.2% allowed (reference 1.2% + 5.0%)"
    assert metric(metrics, "missing_share", "age") == pytest.approx(0.31, abs=1e-15)
    assert one(checks, "missing_share", "plan").status is Status.PASS


def test_missing_share_boundary_is_inclusive_and_feature_override_wins():
    cfg = make_cfg({"age": {"type": "numerical", "max_missing_share": 0.5}, "plan": {"type": "categorical"}})
    prof = make_profile(age=num_profile([1.0, 2.0]), plan=cat_profile(["a"] * 99 + [None]))
    # plan: 6% missing vs reference 1% + 5% -> exactly at the threshold: pass
    df = frame([np.nan] * 50 + [1.0] * 50, [None] * 6 + ["a"] * 94)
    checks, _ = run(df, cfg, prof)
    assert one(checks, "missing_share", "age").status is Status.PASS  # 50% ≤ 0% + 50%
    assert one(checks, "missing_share", "age").threshold == 0.5
    plan = one(checks, "missing_share", "plan")
    assert plan.threshold == pytest.approx(0.06)
    assert plan.status is Status.PASS
    # just over the limit on 100 rows is within sampling noise: reported, not flagged
    df = frame([np.nan] * 51 + [1.0] * 49, [None] * 7 + ["a"] * 93)
    checks, _ = run(df, cfg, prof)
    age = one(checks, "missing_share", "age")
    assert (
        age.status is Status.PASS
        and "51.0% missing > 50.0%" in age.message
        and "not significant" in age.message
    )
    # clearly over the limit on 10k rows is flagged
    df = frame([np.nan] * 5300 + [1.0] * 4700, [None] * 800 + ["a"] * 9200)
    checks, _ = run(df, cfg, prof)
    assert one(checks, "missing_share", "age").status is Status.FAIL
    assert one(checks, "missing_share", "plan").status is Status.FAIL


def test_share_checks_do_not_swing_with_sample_size():
    from mlmon.tasks.checks.quality import significant_excess

    assert not significant_excess(3, 200, 0.01)  # 1.5 % of 200: noise at a 1 % limit
    assert significant_excess(1_500, 100_000, 0.01)  # 1.5 % of 100k: real
    assert not significant_excess(1_000, 100_000, 0.01)  # at the limit
    assert significant_excess(1, 10, 0.0)  # a zero tolerance is strict


def test_feature_zero_override_is_not_replaced_by_default():
    cfg = make_cfg({"age": {"type": "numerical", "max_missing_share": 0.0}})
    prof = make_profile(age=num_profile([1.0, 2.0]))
    checks, _ = run(frame([np.nan] + [1.0] * 99, ["a"] * 100).drop(columns="plan"), cfg, prof)
    assert one(checks, "missing_share", "age").status is Status.FAIL


@pytest.mark.parametrize("absent", ["column", "all_nan"])
def test_feature_never_present_is_a_missing_field(absent):
    df = frame([1.0] * 10, [None] * 10)
    if absent == "column":
        df = df.drop(columns=["age", "plan"])
    else:
        df["age"] = np.nan
    checks, metrics = run(df)
    for name in ("age", "plan"):
        c = one(checks, "missing_share", name)
        assert c.status is Status.FAIL
        assert c.value == 1.0
        assert "never present: missing field?" in c.message
        assert metric(metrics, "missing_share", name) == 1.0
    # nothing else is computed for a column with no values
    assert not [c for c in checks if c.check in ("out_of_range", "unseen_categories")]
    assert not [m for m in metrics if m.metric in ("mean", "std", "p50", "unseen_share")]


# --------------------------------------------------------------------------- numerical


def test_out_of_range_uses_reference_bounds_inclusive_and_ignores_nan():
    # reference range [18, 99]: 18 and 99 are in range, 17.999 / 99.5 / ±inf are not
    values = [18.0, 99.0, 17.999, 99.5, np.inf, -np.inf, np.nan, 50.0, 50.0, 50.0]
    checks, metrics = run(frame(values, ["basic"] * 10))
    c = one(checks, "out_of_range", "age")
    assert c.value == pytest.approx(4 / 9, abs=1e-15)
    assert c.threshold == 0.01
    assert c.status is Status.FAIL
    assert "reference range [18, 99]" in c.message
    assert metric(metrics, "out_of_range_share", "age") == c.value


def test_out_of_range_configured_range_overrides_reference():
    cfg = make_cfg({"age": {"type": "numerical", "range": [0, 10]}})
    checks, _ = run(frame([5.0] * 98 + [11.0, 10.0], ["a"] * 100).drop(columns="plan"), cfg)
    c = one(checks, "out_of_range", "age")
    assert c.value == pytest.approx(0.01) and c.status is Status.PASS  # 1% ≤ 1%: pass
    assert "configured range [0, 10]" in c.message


def test_out_of_range_skipped_without_any_bounds():
    checks, metrics = run(frame([1.0, 2.0], ["a", "a"]), profile=make_profile())
    assert not [c for c in checks if c.check == "out_of_range"]
    assert metric(metrics, "mean", "age") == 1.5


def test_summary_metrics_match_numpy_on_finite_values():
    rng = np.random.default_rng(1)
    x = rng.normal(40, 12, 10_001)
    x[rng.random(x.size) < 0.1] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    _, metrics = run(frame(x, ["basic"] * x.size))
    finite = x[np.isfinite(x)]
    assert metric(metrics, "mean", "age") == pytest.approx(finite.mean(), rel=1e-12)
    assert metric(metrics, "std", "age") == pytest.approx(
        np.std(finite), rel=1e-12
    )  # population, like the profile
    assert metric(metrics, "p50", "age") == np.median(finite)


def test_numerical_column_of_wrong_dtype_is_coerced():
    df = pd.DataFrame({"age": pd.Series([1, 2, None, "x"], dtype=object), "plan": ["basic"] * 4})
    checks, _ = run(df)
    assert one(checks, "missing_share", "age").value == 0.5


# --------------------------------------------------------------------------- categorical


def test_unseen_share_and_listed_values():
    plan = ["basic"] * 90 + ["gold"] * 5 + ["trial"] * 3 + [None] * 2
    checks, metrics = run(frame([40.0] * 100, plan))
    c = one(checks, "unseen_categories", "plan")
    assert c.value == pytest.approx(8 / 98, abs=1e-15)
    assert c.threshold == 0.01
    assert c.status is Status.FAIL
    assert "'gold', 'trial'" in c.message  # most frequent first
    assert "reference categories" in c.message
    assert metric(metrics, "unseen_share", "plan") == c.value


def test_unseen_allowed_list_overrides_reference_and_passes_at_threshold():
    cfg = make_cfg({"plan": {"type": "categorical", "allowed": ["basic", "gold"]}})
    df = frame([0.0] * 100, ["basic"] * 94 + ["gold"] * 5 + ["pro"]).drop(columns="age")
    c = one(run(df, cfg)[0], "unseen_categories", "plan")
    assert c.value == pytest.approx(0.01) and c.status is Status.PASS
    assert "configured categories: 'pro'" in c.message


def test_unseen_lists_at_most_five_values_truncated():
    long = "x" * 500
    plan = ["basic"] * 10 + [f"v{i}" for i in range(8)] + [long] * 20
    c = one(run(frame([1.0] * 38, plan))[0], "unseen_categories", "plan")
    assert "(+4 more)" in c.message
    assert long not in c.message
    assert "'" + "x" * 40 + "…'" in c.message
    assert len(c.message) < 300


def test_hostile_category_strings_do_not_break_the_one_line_message():
    hostile = [
        "<script>alert(1)</script>",
        "a\nb\r\nc",
        "'; DROP TABLE checks; --",
        "\x00\x1b[31m",
        "🙂" * 50,
    ]
    plan = ["basic"] * 5 + hostile
    checks, _ = run(frame([1.0] * 10, plan))
    c = one(checks, "unseen_categories", "plan")
    assert c.status is Status.FAIL
    assert "\n" not in c.message and "\r" not in c.message and "\x00" not in c.message
    assert "<script>alert(1)</script>" in c.message  # not escaped here: the renderer escapes
    assert c.value == 0.5


def test_categorical_dtype_and_unknown_profile():
    df = pd.DataFrame(
        {"plan": pd.Categorical(["basic", "pro", "new", None], categories=["basic", "pro", "new", "zz"])}
    )
    cfg = make_cfg({"plan": {"type": "categorical"}})
    checks, _ = run(df, cfg)
    c = one(checks, "unseen_categories", "plan")
    assert c.value == pytest.approx(1 / 3)
    assert "'zz'" not in c.message  # a level with no rows is not "seen"
    # no profile for the column and no allowed list: only the missing share is checked
    checks, _ = run(df, cfg, make_profile())
    assert [x.check for x in checks if x.feature == "plan"] == ["missing_share"]


# --------------------------------------------------------------------------- window level


def test_empty_window_is_a_volume_failure_not_a_crash():
    df = frame([], [])
    checks, metrics = run(df)
    v = one(checks, "volume")
    assert v.status is Status.FAIL and v.message == "no predictions in window" and v.value == 0.0
    assert metric(metrics, "row_count") == 0.0
    assert not [c for c in checks if c.feature]
    # a frame without any column is fine too
    checks, _ = run(pd.DataFrame())
    assert one(checks, "volume").status is Status.FAIL


@pytest.mark.parametrize(
    ("rows", "lo", "hi", "status", "threshold"),
    [
        (5, None, None, Status.PASS, None),
        (5, 10, None, Status.FAIL, 10.0),
        (10, 10, 20, Status.PASS, 10.0),
        (20, 10, 20, Status.PASS, 10.0),
        (21, 10, 20, Status.FAIL, 20.0),
        (21, None, 20, Status.FAIL, 20.0),
    ],
)
def test_volume_against_expected(rows, lo, hi, status, threshold):
    cfg = make_cfg(quality={"expected_volume": {"min": lo, "max": hi}})
    v = one(run(frame([1.0] * rows, ["basic"] * rows), cfg)[0], "volume")
    assert (v.status, v.value, v.threshold) == (status, float(rows), threshold)


@pytest.mark.parametrize(("n_q", "status"), [(0, Status.PASS), (1, Status.WARN), (2, Status.FAIL)])
def test_quarantined_share(n_q, status):
    # 1 of 100 documents = 1% ≤ 1% allowed -> warn; 2 of 101 -> fail
    rows = 100 - (n_q == 1)
    checks, metrics = run(frame([1.0] * rows, ["basic"] * rows), n_quarantined=n_q)
    c = one(checks, "quarantined_share")
    assert c.status is status
    assert c.value == pytest.approx(n_q / (rows + n_q))
    assert metric(metrics, "quarantined_share") == c.value


def test_quarantined_everything():
    c = one(run(frame([], []), n_quarantined=7)[0], "quarantined_share")
    assert c.status is Status.FAIL and c.value == 1.0


def test_unexpected_fields():
    df = frame([1.0], ["basic"])
    assert not [c for c in run(df)[0] if c.check == "unexpected_fields"]  # not computed -> no check
    assert one(run(df, unexpected_fields={})[0], "unexpected_fields").status is Status.PASS
    fields = {f"features.f{i}": i for i in range(1, 13)} | {"features.<b>" + "y" * 100: 50}
    c = one(run(df, unexpected_fields=fields)[0], "unexpected_fields")
    assert c.status is Status.WARN and c.value == 13.0
    assert c.message.startswith("13 unmapped field(s) in documents: 'features.<b>yyy")
    assert "(+3 more)" in c.message and "(50)" in c.message


def test_segment_is_passed_through_and_window_checks_are_window_level_only():
    df = frame([1.0, np.nan], ["basic", "zzz"])
    checks, metrics = run(df, segment="model_version=v2", window_level=False, n_quarantined=3)
    assert checks and metrics
    assert {c.segment for c in checks} == {"model_version=v2"}
    assert {m.segment for m in metrics} == {"model_version=v2"}
    names = {c.check for c in checks}
    assert names == {"missing_share", "out_of_range", "unseen_categories"}
    assert "row_count" not in {m.metric for m in metrics}
    checks, metrics = run(df)
    assert {c.segment for c in checks} == {ALL}


def test_check_names_are_stable_snake_case_and_messages_one_line():
    cfg = make_cfg(quality={"expected_volume": {"min": 1}})
    rng = np.random.default_rng(3)
    df = frame(rng.normal(50, 40, 500), list(rng.choice(["basic", "pro", "x\ny", None], 500)))
    checks, metrics = run(df, cfg, n_quarantined=4, unexpected_fields={"features.z": 1})
    for c in checks:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.check)
        assert "\n" not in c.message and c.message
        assert c.category is Category.QUALITY
    for m in metrics:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", m.metric) and np.isfinite(m.value)
    # deterministic
    again = run(df, cfg, n_quarantined=4, unexpected_fields={"features.z": 1})
    assert again == (checks, metrics)
