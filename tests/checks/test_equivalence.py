"""Before vs after the speed-ups: every registered drift method against an independent exact computation.

The fast paths (KS bounded on a grid, Wasserstein along the quantile axis, categorical counts from codes,
chi-square and KL without SciPy's wrappers, the thread pool, the window's categories converted to codes)
must give the numbers of the straightforward computation they replaced: SciPy on the raw samples, naive
bin and category counts. Seeded samples of many sizes, with ties, missing values and unseen categories.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlmon.tasks.checks import drift
from mlmon.tasks.checks.decide import DriftSpec, drift_table
from mlmon.tasks.checks.drift import EPS, METHODS, Kind, prepare
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.reference import fit_categorical, fit_numerical, fit_profile
from mlmon.tasks.window import Window

SEEDS = range(12)
KS_P_REL = 1e-9
"""How close the KS p-value is to SciPy's: exact except on the branch :func:`drift.kstwo_sf` sums vectorised."""


def numerical_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes from a handful to beyond the exact KS branch; continuous, tied and shifted samples."""
    rng = np.random.default_rng(seed)
    n1, n2 = (int(rng.integers(5, 3_000)), int(rng.integers(5, 3_000))) if seed % 3 else (12_000, 15_001)
    if seed % 4 == 0:
        return rng.normal(0, 1, n1), rng.normal(rng.normal(0, 0.2), 1, n2)
    if seed % 4 == 1:
        return rng.poisson(3, n1).astype(float), rng.poisson(3.2, n2).astype(float)
    if seed % 4 == 2:
        ref = rng.normal(0, 1, n1)
        return ref, np.concatenate([rng.choice(ref, n2 // 2), rng.normal(0, 1, n2 - n2 // 2)])
    return rng.integers(0, 4, n1).astype(float), rng.integers(0, 5, n2).astype(float)


def naive_props(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proportions in right-closed bins (e[i-1], e[i]] by plain comparisons, one bin at a time."""
    bounds = [-np.inf, *edges, np.inf]
    r = np.array([((ref > lo) & (ref <= hi)).sum() for lo, hi in itertools.pairwise(bounds)], dtype=float)
    c = np.array([((cur > lo) & (cur <= hi)).sum() for lo, hi in itertools.pairwise(bounds)], dtype=float)
    return r / r.sum(), c / c.sum()


def naive_category_props(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rc, cc = Counter(str(v) for v in ref if v is not None), Counter(str(v) for v in cur if v is not None)
    keys = sorted(rc) + sorted(set(cc) - set(rc))
    r, c = np.array([rc[k] for k in keys], float), np.array([cc[k] for k in keys], float)
    return r, c


def floor(p: np.ndarray) -> np.ndarray:
    return np.where(p == 0, EPS, p)


def reference_numerical(name: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float | None]:
    prof = fit_numerical(ref)
    if name == "ks":
        res = stats.ks_2samp(ref, cur)
        return float(res.statistic), float(res.pvalue)
    if name == "wasserstein":
        return float(stats.wasserstein_distance(ref, cur)) / prof.std, None
    if name == "anderson":  # SciPy's standardised statistic T = (A² − 1) / σ_N, back to A²
        import warnings

        from mlmon.tasks.checks.drift import _ad_sigma

        r_ok, c_ok = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = stats.anderson_ksamp([r_ok, c_ok], midrank=True).statistic
        return float(t * _ad_sigma(r_ok.size, c_ok.size) + 1), None
    r, c = naive_props(ref, cur, prof.bin_edges)
    if name == "chisquare_binned":  # counts, not proportions
        bounds = [-np.inf, *prof.bin_edges, np.inf]
        rn, cn = (
            np.array([((x > lo) & (x <= hi)).sum() for lo, hi in itertools.pairwise(bounds)])
            for x in (ref, cur)
        )
        keep = (rn + cn) > 0
        res = stats.chi2_contingency(np.vstack([rn[keep], cn[keep]]), correction=False)
        return float(res.statistic), float(res.pvalue)
    if name == "psi":
        return float(np.sum((floor(c) - floor(r)) * np.log(floor(c) / floor(r)))), None
    if name == "jensen_shannon":
        return float(distance.jensenshannon(r, c, base=2)), None
    return float(stats.entropy(floor(c), floor(r))), None  # kl_div


def reference_categorical(name: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float | None]:
    r, c = naive_category_props(ref, cur)
    if name == "chisquare":
        keep = (r + c) > 0
        res = stats.chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
        return float(res.statistic), float(res.pvalue)
    r, c = r / r.sum(), c / c.sum()
    if name == "psi":
        return float(np.sum((floor(c) - floor(r)) * np.log(floor(c) / floor(r)))), None
    if name == "jensen_shannon":
        return float(distance.jensenshannon(r, c, base=2)), None
    return float(stats.entropy(floor(c), floor(r))), None  # kl_div


NUMERICAL = sorted(n for n, m in METHODS.items() if Kind.NUMERICAL in m.kinds)
CATEGORICAL = sorted(n for n, m in METHODS.items() if Kind.CATEGORICAL in m.kinds)


def test_every_registered_method_is_covered() -> None:
    assert set(NUMERICAL) == {
        "ks",
        "anderson",
        "chisquare_binned",
        "wasserstein",
        "psi",
        "jensen_shannon",
        "kl_div",
    }
    assert set(CATEGORICAL) == {"chisquare", "psi", "jensen_shannon", "kl_div"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NUMERICAL)
def test_numerical_methods_equal_the_direct_computation(name: str, seed: int) -> None:
    ref, cur = numerical_pair(seed)
    want_stat, want_p = reference_numerical(name, ref, cur)
    for given in (cur, prepare(Kind.NUMERICAL, cur)):
        got = METHODS[name](fit_numerical(ref), given)
        if name == "ks":  # the same integers over the same sizes: the statistic to the last bit
            assert got.statistic == want_stat
            assert got.p_value == pytest.approx(want_p, rel=KS_P_REL, abs=1e-300)  # see kstwo_sf
        else:
            assert got.statistic == pytest.approx(want_stat, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CATEGORICAL)
def test_categorical_methods_equal_the_direct_computation(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels = np.array([f"l{i}" for i in range(int(rng.integers(2, 12)))], dtype=object)
    ref = rng.choice(levels, int(rng.integers(50, 5_000)))
    cur = rng.choice(np.append(levels, ["new", None]), int(rng.integers(50, 5_000)))
    want_stat, want_p = reference_categorical(name, ref, cur)
    for given in (cur, pd.Categorical(cur), prepare(Kind.CATEGORICAL, cur)):
        got = METHODS[name](fit_categorical(ref), given)
        assert got.statistic == pytest.approx(want_stat, rel=1e-12, abs=1e-15)
        if want_p is not None:
            assert (got.statistic, got.p_value) == (want_stat, want_p)  # chi-square: to the last bit


@pytest.mark.parametrize("cell", [1, 2, 3, 7, 16, 64, 10_000])
def test_ks_statistic_on_any_grid_is_the_maximum_over_every_point(cell: int) -> None:
    for seed in range(40):
        ref, cur = numerical_pair(seed % 12 + 1 if seed % 12 == 0 else seed % 12)
        rng = np.random.default_rng(seed)
        r, x = np.sort(ref[: int(rng.integers(1, ref.size + 1))]), np.sort(cur)
        both = np.concatenate([r, x])
        gaps = np.searchsorted(r, both, "right") / r.size - np.searchsorted(x, both, "right") / x.size
        assert drift._ks_statistic(r, x, cell) == max(float(gaps.max()), float(np.clip(-gaps.min(), 0, 1)))


@pytest.mark.parametrize("n", [141, 1_000, 6_000, 50_000, 200_000])
def test_kstwo_sf_equals_scipy_on_every_branch(n: int) -> None:
    """Statistics from n·d² = 0.01 to 400: SciPy's own branches, and the Smirnov sum summed vectorised
    (2.2 ≤ n·d² < 370) within 1e-9 of SciPy's term-by-term sum."""
    for nxx in np.geomspace(0.01, 400, 41):
        d = float(np.sqrt(nxx / n))
        want = float(stats.kstwo.sf(d, n))
        got = drift.kstwo_sf(d, n)
        if 2.2 <= nxx < 370:
            assert got == pytest.approx(want, rel=KS_P_REL, abs=1e-300), (n, d)
        else:
            assert got == want, (n, d)


def test_drift_verdicts_are_unchanged_on_the_benchmark_workload() -> None:
    """The performance issue's workload (15 normal columns, 5 categorical, +0.2σ on three) at 20k rows:
    the drift rows with the fast KS p-value are the rows with SciPy's ``ks_2samp`` p-value."""
    rng = np.random.default_rng(11)
    n = 20_000
    ref = pd.DataFrame({f"n{j}": rng.normal(j, 1 + 0.1 * j, n) for j in range(15)})
    cur = pd.DataFrame({f"n{j}": rng.normal(j + (0.2 * (1 + 0.1 * j) if j < 3 else 0), 1 + 0.1 * j, n)
                        for j in range(15)})  # fmt: skip
    cfg = ModelConfig.model_validate(
        {"name": "w", "base_dir": ".", "features": {c: {"type": "numerical"} for c in ref},
         "reference": {"path": "r.parquet"}, "task": "none", "drift": {"numerical_test": "ks"}}
    )  # fmt: skip
    profile = fit_profile(ref, profile_kinds(cfg), "w")
    specs = {c: DriftSpec(Kind.NUMERICAL, "ks", "wasserstein", 0.025) for c in ref}
    rows = drift_table(profile, cur, specs, cfg.drift)
    assert {r.feature for r in rows if r.drifted} == {"n0", "n1", "n2"}
    scipy_p = [float(stats.ks_2samp(ref[r.feature], cur[r.feature]).pvalue) for r in rows]
    assert [r.p_value for r in rows] == pytest.approx(scipy_p, rel=KS_P_REL, abs=1e-300)
    assert any(2.2 <= 10_000 * r.statistic**2 < 370 for r in rows)  # the vectorised branch was taken
    from mlmon.tasks.checks.decide import correct

    adjusted = correct(scipy_p, cfg.drift.correction)
    for row, p_adj in zip(rows, adjusted, strict=True):  # same verdict with SciPy's own p-values
        assert (row.p_adjusted < cfg.drift.alpha) == (p_adj < cfg.drift.alpha)


def _workload(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {
        f"n{j}": rng.normal(j + (shift if j < 2 else 0), 1 + 0.1 * j, n) for j in range(4)
    }
    cols["p"] = rng.poisson(4, n).astype(float)
    for i, k in enumerate((4, 8)):
        w = np.arange(k, 0, -1) / np.arange(k, 0, -1).sum()
        cols[f"c{i}"] = np.array([f"v{v}" for v in range(k)], dtype=object)[rng.choice(k, n, p=w)]
    frame = pd.DataFrame(cols)
    frame.loc[frame.index[::97], "n3"] = np.nan
    frame.loc[frame.index[::89], "c1"] = None
    return frame


def _config() -> ModelConfig:
    feats = {n: {"type": "numerical"} for n in ("n0", "n1", "n2", "n3", "p")}
    feats |= {"c0": {"type": "categorical"}, "c1": {"type": "categorical"}}
    body = {
        "name": "eq",
        "base_dir": ".",
        "features": feats,
        "reference": {"path": "r.parquet"},
        "task": "none",
        "drift": {"numerical_test": "ks", "discrete_test": None},  # the specs below, as evaluate builds them
    }
    return ModelConfig.model_validate(body)


@pytest.mark.parametrize("n", [3_000, 60_000])  # below and above the size where columns go to threads
def test_drift_rows_equal_method_by_method_scoring_in_any_dtype_and_thread_count(n: int) -> None:
    cfg = _config()
    ref, cur = _workload(n, 1, 0.0), _workload(n, 2, 0.3)
    profile = fit_profile(ref, profile_kinds(cfg), "eq")
    specs = {
        name: DriftSpec(f.type, "ks" if f.type is Kind.NUMERICAL else "chisquare",
                        "wasserstein" if f.type is Kind.NUMERICAL else "jensen_shannon", 0.025)
        for name, f in cfg.features.items()
    }  # fmt: skip
    rows = drift_table(profile, cur, specs, cfg.drift)
    for row in rows:  # each row's numbers are the registered methods' on the raw column
        col, spec = cur[row.feature], specs[row.feature]
        assert row.n_current == int(col.notna().sum())
        assert METHODS[spec.effect](profile.columns[row.feature], col.to_numpy()).statistic == row.effect
        assert METHODS[spec.test](profile.columns[row.feature], col.to_numpy()).p_value == row.p_value
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    results = []
    for frame in (cur, cur.astype({"c0": "category", "c1": "category"})):
        results.append(evaluate(cfg, profile, Batch(frame=frame), window, computed_at=window.start))
    a, b = results
    assert a.drift == b.drift and a.checks == b.checks and a.metrics == b.metrics
    assert {d.feature for d in a.drift if d.drifted} == {"n0", "n1"}
    table = {(d.feature, d.status, d.effect, d.p_value) for d in a.drift}
    assert table == {(d.feature, d.status, d.effect, d.p_value) for d in rows if d.feature in cfg.features}


def test_prepared_columns_carry_their_proof_only_as_prepared() -> None:
    """A prepared numerical column skips the finite/order checks; anything derived from it does not."""
    rng = np.random.default_rng(3)
    x = prepare(Kind.NUMERICAL, np.append(rng.normal(0, 1, 500), [np.nan, np.inf]))
    assert drift._proven(x) and x.size == 500 and not x.flags.writeable
    assert prepare(Kind.NUMERICAL, x) is x
    for derived in (x[::-1], -x, x + 0, x[rng.permutation(x.size)]):
        assert not drift._proven(derived)
    ref = fit_numerical(rng.normal(0, 1, 800))
    for name in NUMERICAL:  # a reversed (unsorted) copy of a prepared column scores as the column
        assert METHODS[name](ref, x[::-1]) == METHODS[name](ref, x)


def test_histograms_from_the_sorted_columns_equal_the_histograms_from_the_frame() -> None:
    from mlmon.tasks.histograms import histograms

    cfg = _config()
    ref, cur = _workload(5_000, 1, 0.0), _workload(5_000, 2, 0.3)
    profile = fit_profile(ref, profile_kinds(cfg), "eq")
    names = list(cfg.features)
    kinds = {n: f.type for n, f in cfg.features.items()}
    ready = {n: prepare(kinds[n], cur[n]) for n in names}
    want = histograms(profile, cur, names)
    assert histograms(profile, cur, names, ready) == want
    coded = cur.astype({"c0": "category", "c1": "category"})
    assert histograms(profile, coded, names, ready) == want
