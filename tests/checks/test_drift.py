"""Drift methods: every method against SciPy (or a closed form) on hand-made inputs and known
distributions, one contract test over every registered method, and agreement with Evidently where both
compute the same thing."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlmon.tasks.checks import drift
from mlmon.tasks.checks.drift import EPS, METHODS, STD_FLOOR, category_counts, get_method, prepare, register
from mlmon.tasks.config import Kind
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.reference import fit_categorical, fit_numerical

CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)


def num(ref: np.ndarray, cur: np.ndarray, method: str) -> drift.Score:
    return METHODS[method](fit_numerical(ref), cur)


def cat(ref: list[str | None] | np.ndarray, cur: list[str | None] | np.ndarray, method: str) -> drift.Score:
    return METHODS[method](fit_categorical(ref), np.asarray(cur, dtype=object))


def right_closed_props(ref: np.ndarray, cur: np.ndarray, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Independent binning: pandas' right-closed intervals on the reference's inverted-CDF quantiles."""
    edges = np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins, method="inverted_cdf"))
    bins = [-np.inf, *edges, np.inf]
    r = pd.Series(pd.cut(ref, bins, right=True)).value_counts(sort=False).to_numpy()
    c = pd.Series(pd.cut(cur, bins, right=True)).value_counts(sort=False).to_numpy()
    return r / r.sum(), c / c.sum()


# --------------------------------------------------------------------------- ks


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], [3.5, 4.5, 5.5, 6.5]),
        ([0.0, 0.0, 1.0, 1.0, 2.0], [1.0, 1.0, 2.0, 2.0, 2.0, 3.0]),  # ties within and across samples
        ([5.0, 1.0, 3.0], [2.0, 4.0]),
    ],
)
def test_ks_equals_scipy_on_tiny_inputs(ref: list[float], cur: list[float]) -> None:
    got = num(np.array(ref), np.array(cur), "ks")
    want = stats.ks_2samp(ref, cur)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-15)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-12)


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift", "discrete"),
    [
        (3_000, 2_000, 0.0, False),  # exact null distribution (both <= 10k)
        (20_000, 15_000, 0.0, False),  # asymptotic branch
        (20_000, 15_000, 0.05, False),
        (50_000, 300, 0.3, False),
        (20_000, 12_000, 0.1, True),  # integer values: ties everywhere
        (12_000, 40_000, 0.02, False),  # window larger than the reference
        (11_000, 30_000, 0.1, True),
    ],
)
def test_ks_equals_scipy_on_known_distributions(n_ref: int, n_cur: int, shift: float, discrete: bool) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    if discrete:
        ref, cur = rng.poisson(4, n_ref).astype(float), rng.poisson(4 + shift, n_cur).astype(float)
    else:
        ref, cur = rng.normal(0, 1, n_ref), rng.normal(shift, 1, n_cur)
    got = num(ref, cur, "ks")
    want = stats.ks_2samp(ref, cur)
    assert got.statistic == want.statistic  # same set of CDF differences: bit-identical
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)  # see drift.kstwo_sf


@pytest.mark.parametrize("seed", range(5))
def test_ks_statistic_equals_scipy_on_tie_heavy_samples_of_any_sizes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n1, n2 = rng.integers(1, 60, 2)
        r = np.sort(rng.integers(0, 8, n1).astype(float))
        x = np.sort(rng.integers(0, 8, n2).astype(float) + rng.choice([0.0, 0.5]))
        # method="asymp" leaves D as computed from the CDFs (the exact branch re-derives it as a ratio,
        # which can differ in the last bit)
        assert drift._ks_statistic(r, x) == stats.ks_2samp(r, x, method="asymp").statistic, (r, x)


def test_ks_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 20_000)
    assert num(ref, rng.normal(0, 1, 5_000), "ks").p_value > 1e-3
    assert num(ref, rng.normal(0.2, 1, 5_000), "ks").p_value < 1e-10


# --------------------------------------------------------------------------- chisquare


def test_chisquare_equals_chi2_contingency_with_an_unseen_category() -> None:
    ref = ["a"] * 30 + ["b"] * 20
    cur = ["a"] * 10 + ["b"] * 25 + ["c"] * 5 + [None] * 7  # "c" is new; None is dropped
    got = cat(ref, cur, "chisquare")
    want = stats.chi2_contingency(np.array([[30, 20, 0], [10, 25, 5]]), correction=False)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-12)


def test_chisquare_two_categories_uses_no_yates_correction() -> None:
    got = cat(["x"] * 40 + ["y"] * 60, ["x"] * 55 + ["y"] * 45, "chisquare")
    want = stats.chi2_contingency(np.array([[40, 60], [55, 45]]), correction=False)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-12)


def test_chisquare_on_known_distributions() -> None:
    rng = np.random.default_rng(2)
    p = [0.4, 0.3, 0.2, 0.08, 0.02]
    ref = rng.choice(CATS, 20_000, p=p)
    same, moved = rng.choice(CATS, 5_000, p=p), rng.choice(CATS, 5_000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    assert cat(ref, same, "chisquare").p_value > 1e-3
    assert cat(ref, moved, "chisquare").p_value < 1e-10
    table = np.vstack(
        [pd.Series(ref).value_counts().sort_index().to_numpy(), pd.Series(same).value_counts().sort_index()]
    )
    assert cat(ref, same, "chisquare").statistic == pytest.approx(
        stats.chi2_contingency(table, correction=False).statistic, rel=1e-12
    )


def test_chisquare_single_category_has_nothing_to_test() -> None:
    assert cat(["a"] * 10, ["a"] * 20, "chisquare") == drift.Score("chisquare", 0.0, 1.0)


# --------------------------------------------------------------------------- wasserstein


def test_wasserstein_closed_form_and_scipy() -> None:
    ref, cur = np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0])
    got = num(ref, cur, "wasserstein").statistic
    assert got == pytest.approx(5.0 / np.std(ref), rel=1e-12)  # a pure shift of 5
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-12)


@pytest.mark.parametrize("discrete", [False, True])
def test_wasserstein_equals_scipy_over_sigma(discrete: bool) -> None:
    rng = np.random.default_rng(3)
    if discrete:
        ref, cur = rng.poisson(4, 30_000).astype(float), rng.poisson(4.3, 7_000).astype(float)
    else:
        ref, cur = rng.lognormal(3, 0.5, 30_000), rng.lognormal(3.05, 0.5, 7_000)
    got = num(ref, cur, "wasserstein").statistic
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-12)


def test_wasserstein_reads_as_a_shift_in_sigma() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(10, 3, 50_000)
    assert num(ref, ref + 0.1 * ref.std(), "wasserstein").statistic == pytest.approx(0.1, rel=1e-9)


def test_wasserstein_constant_reference_is_normed_by_the_floor() -> None:
    ref = np.full(500, 7.0)
    assert num(ref, np.full(300, 7.0), "wasserstein").statistic == 0.0
    assert num(ref, np.full(300, 7.5), "wasserstein").statistic == pytest.approx(0.5 / STD_FLOOR)


# --------------------------------------------------------------------------- binned methods


def test_psi_categorical_by_hand() -> None:
    got = cat(["a"] * 50 + ["b"] * 50, ["a"] * 80 + ["b"] * 20, "psi").statistic
    assert got == pytest.approx(0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5), rel=1e-12)


def test_psi_floors_an_empty_category_at_eps() -> None:
    got = cat(["a"] * 50 + ["b"] * 50, ["a"] * 50 + ["b"] * 40 + ["z"] * 10, "psi").statistic
    want = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - EPS) * math.log(0.1 / EPS)
    assert got == pytest.approx(want, rel=1e-12)


def test_binned_methods_use_the_reference_quantile_bins() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 1, 20_000), rng.normal(0.2, 1.1, 6_000)
    r, c = right_closed_props(ref, cur)
    assert r.size == 20 and np.allclose(r, 0.05, atol=1e-3)
    rf, cf = np.where(r == 0, EPS, r), np.where(c == 0, EPS, c)
    assert num(ref, cur, "psi").statistic == pytest.approx(np.sum((cf - rf) * np.log(cf / rf)), rel=1e-12)
    assert num(ref, cur, "jensen_shannon").statistic == pytest.approx(
        distance.jensenshannon(r, c, base=2), rel=1e-12
    )
    assert num(ref, cur, "kl_div").statistic == pytest.approx(stats.entropy(cf, rf), rel=1e-12)


def test_binned_methods_on_integer_values_give_each_value_its_bin() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.poisson(4, 20_000).astype(float), rng.poisson(4.5, 5_000).astype(float)
    r, c = right_closed_props(ref, cur)
    assert num(ref, cur, "jensen_shannon").statistic == pytest.approx(
        distance.jensenshannon(r, c, base=2), rel=1e-12
    )


def test_jensen_shannon_and_kl_categorical_against_scipy() -> None:
    ref = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    cur = ["a"] * 20 + ["b"] * 50 + ["d"] * 30
    r, c = np.array([0.6, 0.3, 0.1, 0.0]), np.array([0.2, 0.5, 0.0, 0.3])  # union: a, b, c, then unseen d
    assert cat(ref, cur, "jensen_shannon").statistic == pytest.approx(
        distance.jensenshannon(r, c, base=2), rel=1e-12
    )
    rf, cf = np.where(r == 0, EPS, r), np.where(c == 0, EPS, c)
    assert cat(ref, cur, "kl_div").statistic == pytest.approx(stats.entropy(cf, rf), rel=1e-12)


def test_jensen_shannon_is_one_for_disjoint_supports() -> None:
    assert cat(["a"] * 10, ["b"] * 10, "jensen_shannon").statistic == pytest.approx(1.0, abs=1e-12)


def test_category_counts_union_order_and_non_string_values() -> None:
    cats, r, c = category_counts(
        fit_categorical(["b", "a", "a"]), np.array(["z", 1, "a", None, "1", "y"], object)
    )
    assert cats == ("a", "b", "1", "y", "z")  # reference categories first, then unseen ones sorted
    assert r.tolist() == [2, 1, 0, 0, 0] and c.tolist() == [1, 0, 2, 1, 1]  # 1 and "1" are one category


# --------------------------------------------------------------------------- the registry


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown drift method 'kss'.*chisquare, chisquare_binned, jensen_shannon"
    ):
        get_method("kss")


def test_method_of_the_wrong_kind_or_role_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"does not apply to categorical.*chisquare"):
        get_method("ks", Kind.CATEGORICAL)
    with pytest.raises(ConfigError, match=r"gives no p-value.*'ks'"):
        get_method("psi", Kind.NUMERICAL, role="test")


def test_register_refuses_bad_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        register("KS-2", kinds={Kind.NUMERICAL}, role="test")
    with pytest.raises(ValueError, match="registered twice"):
        register("ks", kinds={Kind.NUMERICAL}, role="test")(drift.ks)


# --------------------------------------------------------------------------- one contract, every method


def _sample(kind: Kind, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind is Kind.NUMERICAL:
        return np.concatenate([rng.normal(0, 1, n - n // 4), rng.poisson(3, n // 4).astype(float)])
    return rng.choice(CATS, n, p=[0.4, 0.3, 0.2, 0.08, 0.02])


def _with_missing(kind: Kind, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gaps = [np.nan, np.inf, -np.inf] if kind is Kind.NUMERICAL else [None, np.nan]
    out = np.concatenate([x, np.array(gaps * 20, dtype=x.dtype)])
    return out[rng.permutation(out.size)]


CASES = [(name, kind) for name, reg in sorted(METHODS.items()) for kind in sorted(reg.kinds)]


@pytest.mark.parametrize("size", [3_000, 20_000])  # exact and asymptotic branches of ks
@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k.value}" for n, k in CASES])
def test_contract(name: str, kind: Kind, size: int) -> None:
    reg = METHODS[name]
    rng = np.random.default_rng(7)
    raw = _sample(kind, size, rng)
    ref = fit_numerical(raw) if kind is Kind.NUMERICAL else fit_categorical(raw)
    cur = _sample(kind, size // 2, rng)

    same = reg(ref, raw)  # identical samples: no drift
    assert same.method == name
    assert same.statistic == pytest.approx(0.0, abs=1e-12)
    if reg.role == "test":
        assert same.p_value == pytest.approx(1.0, abs=1e-9)
    else:
        assert same.p_value is None

    base = reg(ref, cur)
    assert np.isfinite(base.statistic) and base.statistic >= 0
    if reg.role == "test":
        assert base.p_value is not None and 0.0 <= base.p_value <= 1.0
    for variant in (
        _with_missing(kind, cur, rng),  # missing values are ignored
        cur[rng.permutation(cur.size)],  # order does not matter
        cur.copy(),  # deterministic
        prepare(kind, cur),  # the prepared window gives the same score as the raw one
        pd.Series(cur),
    ):
        again = reg(ref, variant)
        assert again.statistic == pytest.approx(base.statistic, rel=1e-12, abs=1e-15)
        if reg.role == "test":
            assert again.p_value == pytest.approx(base.p_value, rel=1e-12, abs=1e-300)

    empty = np.array([np.nan] if kind is Kind.NUMERICAL else [None], dtype=raw.dtype)
    with pytest.raises(ValueError):
        reg(ref, empty)


def test_every_method_has_a_docstring_citing_a_reference() -> None:
    for name, reg in METHODS.items():
        assert re.search(r"\(\d{4}\)", reg.func.__doc__ or ""), (
            f"{name}: cite the paper or book, with its year"
        )


# --------------------------------------------------------------------------- agreement with Evidently
#
# Same computation, same numbers: the KS p-value (both call ks_2samp) and the normed Wasserstein distance
# (both divide SciPy's distance by the reference's population σ; Evidently floors σ at 0.001 where we
# only replace σ = 0).
# Deliberately different, so not compared:
# * chisquare: Evidently runs a goodness-of-fit test of the window against the reference proportions
#   (``scipy.stats.chisquare(f_obs, f_exp)``, reference treated as exact); we test homogeneity of the 2×k
#   table, which accounts for the reference's own sampling noise.
# * psi, jensen_shannon, kl_div on numerical columns: Evidently bins the union of both samples
#   (Sturges bins over reference + current, a new grid every window); we bin on the reference's quantiles,
#   fitted once, so the scores of different windows are comparable.
# * kl_div: Evidently computes KL(reference ‖ current); we compute KL(current ‖ reference). Its empty-bin
#   floor also depends on the smallest non-empty proportion; ours is the fixed EPS.


@pytest.mark.parametrize(("n_ref", "n_cur"), [(5_000, 800), (20_000, 800), (20_000, 25_000)])
def test_ks_and_normed_wasserstein_agree_with_evidently(n_ref: int, n_cur: int) -> None:
    from evidently.legacy.calculations.stattests import ks_stat_test, wasserstein_stat_test
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(8)
    ref, cur = rng.lognormal(3, 0.5, n_ref), rng.lognormal(3.02, 0.5, n_cur)
    profile = fit_numerical(ref)
    ev_ks = ks_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.05)
    ev_wd = wasserstein_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.1)
    assert METHODS["ks"](profile, cur).p_value == pytest.approx(ev_ks.drift_score, rel=1e-12)
    assert METHODS["wasserstein"](profile, cur).statistic == pytest.approx(ev_wd.drift_score, rel=1e-12)


def test_many_categories_take_the_hash_count_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    ref = fit_categorical(rng.choice(CATS, 2_000))
    cur = rng.choice(np.append(CATS, "new"), 1_000)
    want = {name: METHODS[name](ref, cur) for name in ("chisquare", "psi", "jensen_shannon", "kl_div")}
    monkeypatch.setattr(drift, "MAX_RUNS", 2)  # as if the column were id-like: no run counting, no sort
    for name, score in want.items():
        assert METHODS[name](ref, prepare(Kind.CATEGORICAL, cur)) == score
        assert METHODS[name](ref, cur) == score


# --------------------------------------------------------------------------- anderson, chisquare_binned


@pytest.mark.parametrize("shift", [0.0, 0.08, 0.12])
def test_anderson_statistic_is_scipys_and_p_agrees_inside_scipys_table(shift: float) -> None:
    import warnings

    rng = np.random.default_rng(11)
    ref, cur = rng.normal(0, 1, 4_000), rng.normal(shift, 1, 1_500)
    got = num(ref, cur, "anderson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = stats.anderson_ksamp([np.sort(ref), np.sort(cur)], midrank=True)
    a2 = want.statistic * drift._ad_sigma(ref.size, cur.size) + 1
    assert got.statistic == pytest.approx(a2, rel=1e-9)
    if 0.001 < want.pvalue < 0.25:  # SciPy's interpolated table, uncapped there
        assert got.p_value == pytest.approx(want.pvalue, rel=0.15)


def test_anderson_limiting_distribution_known_quantiles() -> None:
    # Anderson & Darling (1954): the 10%, 5% and 1% points of the limiting A² are 1.933, 2.492, 3.878 (Marsaglia & Marsaglia 2004)
    for z, p in ((1.933, 0.10), (2.492, 0.05), (3.878, 0.01)):
        assert drift._ad_sf(z) == pytest.approx(p, rel=0.01)
    tail = [drift._ad_sf(z) for z in (7.0, 8.0, 8.0001, 10.0, 20.0)]
    assert all(a > b > 0 for a, b in itertools.pairwise(tail))  # monotone, no collapse to 0


def test_anderson_finds_a_tied_shift_that_ks_misses() -> None:
    """A count column with many ties: KS is conservative there, Anderson–Darling (midranks) is not."""
    rng = np.random.default_rng(3)
    ref = fit_numerical(rng.poisson(15, 50_000).astype(float))
    hits = {"ks": 0, "anderson": 0}
    for _ in range(20):
        cur = rng.poisson(15 + 0.1 * np.sqrt(15), 1_200).astype(float)
        for m in hits:
            hits[m] += METHODS[m](ref, cur).p_value < 0.01  # type: ignore[operator]
    assert hits["anderson"] > hits["ks"]


def test_chisquare_binned_equals_chi2_contingency_on_the_reference_bins() -> None:
    rng = np.random.default_rng(5)
    ref_values = rng.poisson(6, 5_000).astype(float)
    ref = fit_numerical(ref_values)
    cur = rng.poisson(6.4, 800).astype(float)
    got = METHODS["chisquare_binned"](ref, cur)
    r, c = ref.bin_counts, drift.bin_counts(ref, cur)
    keep = (r + c) > 0
    want = stats.chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-12)


def test_numerical_test_is_chosen_once_by_column_shape() -> None:
    from mlmon.tasks.checks.decide import numerical_test
    from mlmon.tasks.config import DriftConfig

    cfg = DriftConfig(numerical_test="anderson", discrete_test="chisquare_binned", discrete_max_values=50)
    counts = fit_numerical(np.random.default_rng(1).poisson(15, 10_000).astype(float))
    smooth = fit_numerical(np.random.default_rng(1).normal(0, 1, 10_000))
    assert 10 < counts.n_distinct <= 50 and smooth.n_distinct == 10_000
    assert numerical_test(cfg, counts) == "chisquare_binned"
    assert numerical_test(cfg, smooth) == "anderson"
    # opt-in by shape: Anderson–Darling for a tied count column, KS for a smooth one; the default is KS
    # for both (README: anderson flagged a clean demo day's count column)
    shape = DriftConfig(discrete_test="anderson")
    assert (numerical_test(shape, counts), numerical_test(shape, smooth)) == ("anderson", "ks")
    assert (numerical_test(DriftConfig(), counts), numerical_test(DriftConfig(), smooth)) == ("ks", "ks")
    assert numerical_test(DriftConfig(discrete_test=None), counts) == "ks"  # no discrete_test: one test
