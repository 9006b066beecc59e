"""The decision rule: correction, minimum effect, insufficient data, dataset verdict, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.checks.decide import DriftSpec, correct, dataset_drift, drift_checks, drift_table
from tasks.checks.outcome import Status
from tasks.config import DriftConfig, Kind
from tasks.reference import fit_profile

NUM = DriftSpec(Kind.NUMERICAL, "ks", "wasserstein", 0.025)
CAT = DriftSpec(Kind.CATEGORICAL, "chisquare", "jensen_shannon", 0.02)


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, n_num: int = 8) -> pd.DataFrame:
    data = {f"n{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(n_num)}
    data["c0"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame(data)


def specs(df: pd.DataFrame) -> dict[str, DriftSpec]:
    return {c: (CAT if c.startswith("c") else NUM) for c in df.columns}


def kinds(df: pd.DataFrame) -> dict[str, Kind]:
    return {c: s.kind for c, s in specs(df).items()}


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh", "none"])
def test_correction_equals_statsmodels(method: str) -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(0, 0.2, 25)
    p[3] = 1e-6
    name = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}.get(method)
    want = p if name is None else multipletests(p, method=name)[1]
    assert np.allclose(correct(p, method), want, rtol=1e-12, atol=0)


def test_no_drift_window_is_not_flagged_and_a_clear_shift_is() -> None:
    rng = np.random.default_rng(42)
    ref = frame(rng, 20_000)
    prof = fit_profile(ref, kinds(ref), "h")
    cfg = DriftConfig()
    quiet = drift_table(prof, frame(rng, 5_000), specs(ref), cfg)
    assert dataset_drift(quiet, cfg, set(ref.columns)).status is Status.PASS
    moved = drift_table(prof, frame(rng, 5_000, shift=0.3), specs(ref), cfg)
    verdict = dataset_drift(moved, cfg, set(ref.columns))
    assert verdict.status is Status.FAIL and "n0" in verdict.message
    assert [d.feature for d in moved if d.drifted] == ["n0"]


def test_significant_but_tiny_effect_is_not_flagged() -> None:
    """At 1M rows a 0.01σ shift is 'significant'; the minimum effect keeps it from alarming."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"n0": rng.normal(0, 1, 1_000_000)})
    cur = pd.DataFrame({"n0": rng.normal(0.012, 1, 1_000_000)})
    (d,) = drift_table(fit_profile(ref, {"n0": Kind.NUMERICAL}, "h"), cur, {"n0": NUM}, DriftConfig())
    assert d.p_adjusted is not None and d.p_adjusted < 0.01
    assert d.status is Status.PASS and "not flagged" in d.message


def test_small_window_warns_insufficient_data_instead_of_alarming() -> None:
    rng = np.random.default_rng(9)
    ref = frame(rng, 5_000)
    prof = fit_profile(ref, kinds(ref), "h")
    table = drift_table(prof, frame(rng, 50, shift=3.0), specs(ref), DriftConfig())
    assert {d.status for d in table} == {Status.WARN}
    assert all("insufficient data" in d.message for d in table)
    assert dataset_drift(table, DriftConfig(), set(ref.columns)).status is Status.WARN


def test_nan_does_not_poison_the_verdict() -> None:
    rng = np.random.default_rng(4)
    ref = frame(rng, 5_000)
    prof = fit_profile(ref, kinds(ref), "h")
    cur = frame(rng, 5_000)
    cur.loc[::3, "n1"] = np.nan  # a third missing: a data-quality problem, not drift
    table = drift_table(prof, cur, specs(ref), DriftConfig())
    n1 = next(d for d in table if d.feature == "n1")
    assert n1.status is Status.PASS and n1.n_current == 5_000 - len(range(0, 5_000, 3))
    dropped = drift_table(prof, cur[["n1"]].dropna(), {"n1": NUM}, DriftConfig())[0]
    assert (n1.statistic, n1.p_value, n1.effect) == (dropped.statistic, dropped.p_value, dropped.effect)


def test_share_rule_and_checks() -> None:
    rng = np.random.default_rng(3)
    ref = frame(rng, 10_000)
    prof = fit_profile(ref, kinds(ref), "h")
    cur = frame(rng, 10_000, shift=0.5)
    table = drift_table(prof, cur, specs(ref), DriftConfig())
    share_rule = DriftConfig(dataset_rule="share", dataset_share=0.3)
    assert dataset_drift(table, share_rule, set(ref.columns)).status is Status.PASS  # 1 of 9 < 30 %
    assert dataset_drift(table, DriftConfig(), set(ref.columns)).status is Status.FAIL  # any
    checks = drift_checks(table)
    assert {c.check for c in checks} == {"feature_drift"} and len(checks) == len(table)


@pytest.mark.slow
def test_false_alarm_rate_on_null_windows_is_within_band() -> None:
    """300 windows drawn from the reference's distribution: any-flag rate must stay under 5 %."""
    rng = np.random.default_rng(2026)
    ref = frame(rng, 20_000, n_num=15)
    prof = fit_profile(ref, kinds(ref), "h")
    cfg = DriftConfig()
    flags = 0
    for i in range(300):
        cur = frame(rng, 300 + 10 * i, n_num=15)
        flags += dataset_drift(drift_table(prof, cur, specs(ref), cfg), cfg, set(ref.columns)).status is Status.FAIL
    assert flags / 300 < 0.05
