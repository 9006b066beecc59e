"""The decision rule: correction (vs statsmodels), minimum effect, insufficient data, errors, the dataset
verdict, and the false-alarm rate / power of the defaults on seeded windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlmon.tasks.checks import drift
from mlmon.tasks.checks.decide import DriftSpec, correct, dataset_drift, drift_checks, drift_table
from mlmon.tasks.checks.outcome import Category, FeatureDrift, Status
from mlmon.tasks.config import DriftConfig, Kind
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.reference import fit_profile

NUM = DriftSpec(Kind.NUMERICAL, "ks", "wasserstein", 0.025)
CAT = DriftSpec(Kind.CATEGORICAL, "chisquare", "jensen_shannon", 0.02)
CFG = DriftConfig()


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, n_num: int = 8) -> pd.DataFrame:
    data = {f"n{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(n_num)}
    data["c0"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame(data)


def specs(df: pd.DataFrame) -> dict[str, DriftSpec]:
    return {c: (CAT if c.startswith("c") else NUM) for c in df.columns}


def profile_of(df: pd.DataFrame):
    return fit_profile(df, {c: s.kind for c, s in specs(df).items()}, "h")


def by_feature(table: list[FeatureDrift]) -> dict[str, FeatureDrift]:
    return {d.feature: d for d in table}


# --------------------------------------------------------------------------- correction


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh", "none"])
def test_correction_equals_statsmodels(method: str) -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 25)
    p[3], p[7], p[8], p[9] = 1e-6, 0.05, 0.05, 1.0  # a tiny one, ties and a one
    name = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}.get(method)
    want = p if name is None else multipletests(p, method=name)[1]
    np.testing.assert_allclose(correct(p, method), want, rtol=1e-12, atol=0)
    assert correct([], method).size == 0


def test_unknown_correction_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="bonferroni, holm, bh, none"):
        correct([0.1], "sidak")


# --------------------------------------------------------------------------- per-column decisions


def test_no_drift_window_is_not_flagged_and_a_clear_shift_is() -> None:
    rng = np.random.default_rng(42)
    ref = frame(rng, 20_000)
    prof = profile_of(ref)
    quiet = drift_table(prof, frame(rng, 5_000), specs(ref), CFG)
    assert {d.status for d in quiet} == {Status.PASS}
    assert dataset_drift(quiet, CFG, set(ref.columns)).status is Status.PASS
    moved = drift_table(prof, frame(rng, 5_000, shift=0.3), specs(ref), CFG)
    assert [d.feature for d in moved if d.drifted] == ["n0"]
    n0 = by_feature(moved)["n0"]
    assert n0.message.startswith("drift: wasserstein 0.") and "p_adj=" in n0.message
    verdict = dataset_drift(moved, CFG, set(ref.columns))
    assert verdict.status is Status.FAIL and "n0" in verdict.message


def test_significant_but_small_effect_is_not_flagged() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"n0": rng.normal(0, 1, 20_000)})
    cur = pd.DataFrame({"n0": rng.normal(0.2, 1, 5_000)})
    big_minimum = DriftSpec(Kind.NUMERICAL, "ks", "wasserstein", 0.5)  # a 0.2 σ shift is below it
    (d,) = drift_table(profile_of(ref), cur, {"n0": big_minimum}, CFG)
    assert d.p_adjusted is not None and d.p_adjusted < 1e-10
    assert d.status is Status.PASS
    assert d.message.startswith("significant (p_adj=") and d.message.endswith("< 0.5: not flagged")


@pytest.mark.slow
def test_significant_but_tiny_shift_is_not_flagged_with_the_defaults() -> None:
    """At 400k rows a 0.015σ shift is 'significant'; the default minimum effect keeps it quiet."""
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"n0": rng.normal(0, 1, 400_000)})
    cur = pd.DataFrame({"n0": rng.normal(0.015, 1, 400_000)})
    (d,) = drift_table(profile_of(ref), cur, {"n0": NUM}, CFG)
    assert d.p_adjusted is not None and d.p_adjusted < CFG.alpha
    assert d.effect is not None and d.effect < NUM.threshold
    assert d.status is Status.PASS and "not flagged" in d.message


def test_large_effect_without_significance_is_not_flagged() -> None:
    ref = pd.DataFrame({"n0": np.arange(300.0)})
    cur = pd.DataFrame({"n0": np.arange(300.0) + 10.0})  # 0.12 σ: too little evidence at 300 rows
    (d,) = drift_table(profile_of(ref), cur, {"n0": NUM}, CFG)
    assert d.status is Status.PASS and "but not significant" in d.message


def test_family_is_the_tested_columns_of_the_call() -> None:
    rng = np.random.default_rng(1)
    ref = frame(rng, 5_000, n_num=3)
    cur = frame(rng, 1_000, n_num=3)
    cur.loc[cur.index[:900], "n2"] = np.nan  # 100 values left: insufficient, so out of the family
    table = by_feature(drift_table(profile_of(ref), cur, specs(ref), CFG))
    tested = [d for d in table.values() if d.p_adjusted is not None]
    assert sorted(d.feature for d in tested) == ["c0", "n0", "n1"]
    for d in tested:
        assert d.p_adjusted == pytest.approx(min(1.0, 3 * d.p_value), rel=1e-12)
    assert table["n2"].p_value is None and table["n2"].p_adjusted is None
    holm = by_feature(drift_table(profile_of(ref), cur, specs(ref), DriftConfig(correction="holm")))
    smallest = min(tested, key=lambda d: d.p_value)
    assert holm[smallest.feature].p_adjusted == pytest.approx(min(1.0, 3 * smallest.p_value), rel=1e-12)


def test_small_window_warns_insufficient_data_instead_of_alarming() -> None:
    rng = np.random.default_rng(9)
    ref = frame(rng, 5_000)
    table = drift_table(profile_of(ref), frame(rng, 150, shift=3.0), specs(ref), CFG)
    assert {d.status for d in table} == {Status.WARN}
    assert {d.message for d in table} == {"insufficient data: 150 rows < min_rows 200"}
    assert all(d.p_value is None and d.effect is None and d.n_current == 150 for d in table)
    verdict = dataset_drift(table, CFG, set(ref.columns))
    assert verdict.status is Status.WARN and verdict.message.startswith("insufficient data")


def test_small_reference_warns_too() -> None:
    rng = np.random.default_rng(10)
    ref = frame(rng, 120, n_num=1)
    table = by_feature(drift_table(profile_of(ref), frame(rng, 5_000, n_num=1), specs(ref), CFG))
    assert table["n0"].status is Status.WARN
    assert table["n0"].message == "insufficient data: 120 reference rows < min_rows 200"


def test_nan_does_not_poison_the_verdict() -> None:
    rng = np.random.default_rng(4)
    ref = frame(rng, 5_000)
    prof = profile_of(ref)
    cur = frame(rng, 5_000)
    cur.loc[::3, "n1"] = np.nan  # a third missing: a data-quality problem, not drift
    cur.loc[::4, "c0"] = None
    table = by_feature(drift_table(prof, cur, specs(ref), CFG))
    for name, spec in (("n1", NUM), ("c0", CAT)):
        d = table[name]
        assert d.status is Status.PASS and d.n_current == cur[name].notna().sum()
        (clean,) = drift_table(prof, cur[[name]].dropna(), {name: spec}, CFG)
        assert (d.statistic, d.p_value, d.effect, d.scores) == (
            clean.statistic,
            clean.p_value,
            clean.effect,
            clean.scores,
        )


def test_extra_scores_are_reported_per_kind() -> None:
    rng = np.random.default_rng(11)
    ref = frame(rng, 5_000, n_num=1)
    table = by_feature(drift_table(profile_of(ref), frame(rng, 2_000, n_num=1), specs(ref), CFG))
    assert set(table["n0"].scores) == {"psi", "jensen_shannon", "kl_div", "wasserstein"}
    assert set(table["c0"].scores) == {"psi", "jensen_shannon", "kl_div"}  # wasserstein is numerical only
    assert table["n0"].scores["wasserstein"] == table["n0"].effect
    assert all(np.isfinite(v) for d in table.values() for v in d.scores.values())


def test_effect_only_column_decides_on_the_effect() -> None:
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({"n0": rng.normal(0, 1, 5_000)})
    spec = DriftSpec(Kind.NUMERICAL, None, "psi", 0.1)
    (moved,) = drift_table(profile_of(ref), pd.DataFrame({"n0": rng.normal(1, 1, 1_000)}), {"n0": spec}, CFG)
    (quiet,) = drift_table(profile_of(ref), pd.DataFrame({"n0": rng.normal(0, 1, 1_000)}), {"n0": spec}, CFG)
    assert moved.status is Status.FAIL and moved.p_value is None and moved.test_method is None
    assert quiet.status is Status.PASS and quiet.effect < 0.1


def test_a_method_that_raises_gives_an_error_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ref: object, current: np.ndarray) -> drift.Score:
        raise ZeroDivisionError("no luck")

    monkeypatch.setitem(drift.METHODS, "boom", drift.Registered("boom", boom, frozenset(Kind), "effect"))
    rng = np.random.default_rng(13)
    ref = frame(rng, 2_000, n_num=2)
    columns = {**specs(ref), "n1": DriftSpec(Kind.NUMERICAL, "ks", "boom", 0.1)}
    table = by_feature(drift_table(profile_of(ref), frame(rng, 1_000, n_num=2), columns, CFG))
    assert table["n1"].status is Status.ERROR
    assert table["n1"].message == "boom failed: ZeroDivisionError: no luck"
    assert table["n0"].p_adjusted == pytest.approx(min(1.0, 2 * table["n0"].p_value))  # n1 left the family
    verdict = dataset_drift(list(table.values()), CFG, set(ref.columns))
    assert verdict.status is Status.ERROR and "could not score n1" in verdict.message
    # an extra method that fails costs its score, not the verdict
    with_extra = DriftConfig(extra_methods=["psi", "boom"])
    n0 = by_feature(drift_table(profile_of(ref), frame(rng, 1_000, n_num=2), specs(ref), with_extra))["n0"]
    assert n0.status is Status.PASS and set(n0.scores) == {"psi"} and "boom failed" in n0.message


def test_unknown_or_misfit_methods_fail_before_any_work() -> None:
    rng = np.random.default_rng(14)
    ref = frame(rng, 500, n_num=1)
    prof = profile_of(ref)
    with pytest.raises(ConfigError, match=r"column 'n0'.*unknown drift method 'kss'.*known methods"):
        drift_table(prof, ref, {"n0": DriftSpec(Kind.NUMERICAL, "kss", "wasserstein", 0.1)}, CFG)
    with pytest.raises(ConfigError, match=r"column 'c0'.*does not apply to categorical"):
        drift_table(prof, ref, {"c0": DriftSpec(Kind.CATEGORICAL, "chisquare", "wasserstein", 0.1)}, CFG)
    with pytest.raises(ConfigError, match="gives no p-value"):
        drift_table(prof, ref, {"n0": DriftSpec(Kind.NUMERICAL, "psi", "wasserstein", 0.1)}, CFG)
    with pytest.raises(ValidationError, match="unknown drift method 'hellinger'"):  # the config refuses it
        DriftConfig(extra_methods=["hellinger"])
    with pytest.raises(ConfigError, match="unknown drift method 'hellinger'"):  # and so does the engine
        drift_table(prof, ref, specs(ref), DriftConfig.model_construct(extra_methods=["hellinger"]))


def test_column_missing_from_profile_or_of_another_kind() -> None:
    rng = np.random.default_rng(15)
    ref = frame(rng, 500, n_num=1)
    cur = ref.assign(extra=1.0)
    columns = {"extra": NUM, "c0": DriftSpec(Kind.NUMERICAL, "ks", "wasserstein", 0.1)}
    table = by_feature(drift_table(profile_of(ref), cur, columns, CFG))
    assert table["extra"].status is Status.WARN and "not in the reference profile" in table["extra"].message
    assert table["c0"].status is Status.ERROR and "profiled categorical" in table["c0"].message


def test_column_absent_from_the_window_is_insufficient_data() -> None:
    rng = np.random.default_rng(16)
    ref = frame(rng, 500, n_num=1)
    (d,) = drift_table(profile_of(ref), ref.drop(columns="n0"), {"n0": NUM}, CFG)
    assert d.status is Status.WARN and d.n_current == 0


# --------------------------------------------------------------------------- dataset verdict and checks


def test_share_rule_any_rule_and_the_checks() -> None:
    rng = np.random.default_rng(3)
    ref = frame(rng, 10_000)
    table = drift_table(profile_of(ref), frame(rng, 10_000, shift=0.5), specs(ref), CFG)
    features = set(ref.columns)
    share_rule = DriftConfig(dataset_rule="share", dataset_share=0.3)
    share = dataset_drift(table, share_rule, features)
    assert share.status is Status.PASS and share.value == pytest.approx(1 / 9) and share.threshold == 0.3
    assert (
        dataset_drift(table, DriftConfig(dataset_rule="share", dataset_share=0.1), features).status
        is Status.FAIL
    )
    anyone = dataset_drift(table, CFG, features, segment="plan=pro")
    assert (anyone.check, anyone.category, anyone.status, anyone.segment) == (
        "dataset_drift", Category.DRIFT, Status.FAIL, "plan=pro"
    )  # fmt: skip
    assert dataset_drift(table, CFG, features - {"n0"}).status is Status.PASS  # n0 not a feature: no vote
    checks = drift_checks(table)
    assert [c.check for c in checks] == ["feature_drift"] * len(table)
    assert [(c.feature, c.status, c.value, c.threshold) for c in checks] == [
        (d.feature, d.status, d.effect, d.effect_threshold) for d in table
    ]


def test_prediction_columns_are_checked_but_do_not_vote() -> None:
    rng = np.random.default_rng(17)
    ref = pd.DataFrame({"n0": rng.normal(0, 1, 5_000), "__score": rng.uniform(0, 1, 5_000)})
    cur = pd.DataFrame({"n0": rng.normal(0, 1, 2_000), "__score": rng.uniform(0.3, 1, 2_000)})
    columns = {"n0": NUM, "__score": NUM}
    table = drift_table(
        fit_profile(ref, {"n0": Kind.NUMERICAL, "__score": Kind.NUMERICAL}, "h"), cur, columns, CFG
    )
    assert {c.feature: c.check for c in drift_checks(table)} == {
        "n0": "feature_drift",
        "__score": "prediction_drift",
    }
    assert by_feature(table)["__score"].drifted
    assert dataset_drift(table, CFG, {"n0"}).status is Status.PASS


# --------------------------------------------------------------------------- the defaults, calibrated


@pytest.mark.slow
def test_false_alarm_rate_on_null_windows_is_within_band() -> None:
    """150 windows drawn from the reference's distribution, 300 to 4,770 rows × 9 columns: the any-flag
    rate should be about alpha (1 %); allow up to 5 % (P(≥ 8 of 150 | 1 %) < 0.1 %)."""
    rng = np.random.default_rng(2026)
    ref = frame(rng, 20_000)
    prof = profile_of(ref)
    flags = sum(
        dataset_drift(
            drift_table(prof, frame(rng, 300 + 30 * i), specs(ref), CFG), CFG, set(ref.columns)
        ).status
        is Status.FAIL
        for i in range(150)
    )
    assert flags / 150 < 0.05


@pytest.mark.slow
def test_a_tenth_sigma_shift_in_one_feature_is_found_at_10k_rows() -> None:
    rng = np.random.default_rng(2027)
    ref = frame(rng, 100_000, n_num=15)
    prof = profile_of(ref)
    found = [
        by_feature(drift_table(prof, frame(rng, 10_000, shift=0.1, n_num=15), specs(ref), CFG))["n0"].drifted
        for _ in range(5)
    ]
    assert all(found)
