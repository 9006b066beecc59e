"""Drift methods against SciPy (tiny hand-made inputs and known distributions), Evidently where both
compute the same thing, and one contract test over every registered method."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from tasks.checks.drift import EPS, METHODS, category_counts, clean, get_method, numeric_hist
from tasks.config import Kind
from tasks.errors import ConfigError
from tasks.reference import fit_categorical, fit_numerical

REF = np.array([0.1, 0.4, 0.4, 1.3, 2.2, 2.9, 3.5, 4.0, 5.5, 7.1])
CUR = np.array([0.3, 1.1, 2.5, 3.3, 4.1, 6.0, 6.6, 8.2])
CAT_REF = ["a", "a", "a", "b", "b", "c", None]
CAT_CUR = ["a", "b", "b", "b", "c", "c", "d"]


def score(name: str, ref: object, cur: object, kind: Kind) -> tuple[float, float | None]:
    prof = fit_numerical(np.asarray(ref, dtype=float)) if kind is Kind.NUMERICAL else fit_categorical(ref)
    s = get_method(name, kind).func(prof, clean(cur, kind))
    return s.statistic, s.p_value


def test_ks_equals_scipy_on_tiny_input() -> None:
    stat, p = score("ks", REF, CUR, Kind.NUMERICAL)
    want = stats.ks_2samp(REF, CUR)
    assert stat == pytest.approx(want.statistic, abs=1e-12) and p == pytest.approx(want.pvalue, abs=1e-12)


def test_wasserstein_normed_equals_scipy_over_reference_std() -> None:
    stat, p = score("wasserstein", REF, CUR, Kind.NUMERICAL)
    assert stat == pytest.approx(stats.wasserstein_distance(REF, CUR) / np.std(REF), rel=1e-12)
    assert p is None


def test_chisquare_equals_scipy_contingency_with_unseen_category() -> None:
    stat, p = score("chisquare", CAT_REF, CAT_CUR, Kind.CATEGORICAL)
    table = np.array([[3, 2, 1, 0], [1, 3, 2, 1]])  # a, b, c, d (None dropped)
    want = stats.chi2_contingency(table, correction=False)
    assert stat == pytest.approx(want.statistic, rel=1e-12) and p == pytest.approx(want.pvalue, rel=1e-12)


def test_binned_methods_equal_scipy_on_the_reference_bins() -> None:
    prof = fit_categorical(CAT_REF)
    r, c, cats = category_counts(prof, np.array(CAT_CUR, dtype=object))
    assert cats == ["a", "b", "c", "d"]
    rp, cp = r / r.sum(), c / c.sum()
    js, _ = score("jensen_shannon", CAT_REF, CAT_CUR, Kind.CATEGORICAL)
    assert js == pytest.approx(distance.jensenshannon(rp, cp, base=2), rel=1e-12)
    kl, _ = score("kl_div", CAT_REF, CAT_CUR, Kind.CATEGORICAL)
    assert kl == pytest.approx(stats.entropy(np.maximum(cp, EPS), np.maximum(rp, EPS)), rel=1e-12)
    psi, _ = score("psi", CAT_REF, CAT_CUR, Kind.CATEGORICAL)
    rr, cc = np.maximum(rp, EPS), np.maximum(cp, EPS)
    assert psi == pytest.approx(float(np.sum((cc - rr) * np.log(cc / rr))), rel=1e-12)


def test_numerical_bins_come_from_reference_quantiles() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 10_000)
    prof = fit_numerical(ref)
    rp, _ = numeric_hist(prof, ref)
    assert rp.size == 20 and np.allclose(rp, 0.05, atol=1e-3)  # equal-mass bins on the reference itself


def test_known_distributions() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 20_000)
    same = rng.normal(0, 1, 20_000)
    shifted = rng.normal(0.5, 1, 20_000)
    _, p_same = score("ks", ref, same, Kind.NUMERICAL)
    _, p_shift = score("ks", ref, shifted, Kind.NUMERICAL)
    assert p_same > 0.01 and p_shift < 1e-100
    w, _ = score("wasserstein", ref, shifted, Kind.NUMERICAL)
    assert w == pytest.approx(0.5, abs=0.03)  # a mean shift of 0.5σ reads as 0.5


def test_unknown_or_misapplied_method_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known methods: chisquare, jensen_shannon, kl_div, ks, psi"):
        get_method("kolmogorov")
    with pytest.raises(ConfigError, match="does not apply to categorical"):
        get_method("ks", Kind.CATEGORICAL)


# --------------------------------------------------------------------------- contract over the registry


def _cases() -> list[tuple[str, Kind]]:
    return [(name, kind) for name, reg in sorted(METHODS.items()) for kind in sorted(reg.kinds)]


@pytest.mark.parametrize(("name", "kind"), _cases(), ids=lambda x: str(getattr(x, "value", x)))
def test_contract_every_method(name: str, kind: Kind) -> None:
    rng = np.random.default_rng(3)
    if kind is Kind.NUMERICAL:
        ref = rng.normal(10, 2, 3000)
        cur = ref.copy()
        with_nan = np.concatenate([cur, [np.nan, np.nan, np.inf]])
        prof = fit_numerical(ref)
    else:
        ref = rng.choice(np.array(["x", "y", "z"], dtype=object), 3000)
        cur = ref.copy()
        with_nan = np.concatenate([cur, np.array([None, np.nan], dtype=object)])
        prof = fit_categorical(ref)
    fn = METHODS[name].func
    same = fn(prof, clean(cur, kind))
    assert np.isfinite(same.statistic)
    if same.p_value is not None:
        assert same.p_value > 0.99  # identical samples: no drift
    else:
        assert abs(same.statistic) < 1e-9  # identical samples: zero effect
    assert fn(prof, clean(with_nan, kind)) == same  # missing values never change a score
    assert fn(prof, clean(cur[::-1].copy(), kind)) == same  # order-independent
    assert fn(prof, clean(cur, kind)) == same  # deterministic


# --------------------------------------------------------------------------- agreement with Evidently


def test_agrees_with_evidently_where_both_compute_the_same_thing() -> None:
    """KS p-value and normed Wasserstein are computed identically by Evidently and by us.

    PSI, Jensen–Shannon and KL differ by design: Evidently bins both samples on bins fitted to their
    union each run; we fit the bins once on the reference (fit once, score many).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 2000)})
    cur = pd.DataFrame({"x": rng.normal(0.2, 1.1, 1500)})
    dd = DataDefinition(numerical_columns=["x"])
    got = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("ks", "wasserstein"):
            snap = Report([ValueDrift(column="x", method=method)]).run(
                Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
            )
            got[method] = float(snap.dict()["metrics"][0]["value"])
    ks_stat, ks_p = score("ks", ref["x"].to_numpy(), cur["x"].to_numpy(), Kind.NUMERICAL)
    w, _ = score("wasserstein", ref["x"].to_numpy(), cur["x"].to_numpy(), Kind.NUMERICAL)
    assert ks_p == pytest.approx(got["ks"], rel=1e-9)
    assert w == pytest.approx(got["wasserstein"], rel=1e-9)
