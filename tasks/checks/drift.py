"""Per-column drift methods: one registry of pure functions ``(reference profile, current values) -> Score``.

Statistic apart from decision: these only score. Thresholds, multiple-testing correction and the verdict
live in :mod:`tasks.checks.decide`. Reference-side work (sorting, binning, category counts) was done
once when the profile was fitted; each method only processes the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from tasks.config import Kind
from tasks.errors import ConfigError
from tasks.profile import CategoricalProfile, ColumnProfile, NumericalProfile

EPS = 1e-4  # floor for empty bins in PSI / KL (same role as Evidently's 0.0001), documented per method


@dataclass(frozen=True)
class Score:
    method: str
    statistic: float
    p_value: float | None = None


Method = Callable[[ColumnProfile, np.ndarray], Score]


@dataclass(frozen=True)
class Registered:
    name: str
    func: Method
    kinds: frozenset[Kind]
    role: str  # "test" (gives a p-value) or "effect"


METHODS: dict[str, Registered] = {}


def register(name: str, *, kinds: set[Kind], role: str) -> Callable[[Method], Method]:
    def deco(func: Method) -> Method:
        METHODS[name] = Registered(name, func, frozenset(kinds), role)
        return func

    return deco


def get_method(name: str, kind: Kind | None = None) -> Registered:
    """Resolve a method name once; unknown or wrong-kind names fail with the list of known names."""
    reg = METHODS.get(name)
    if reg is None:
        raise ConfigError(f"unknown drift method {name!r}; known methods: {', '.join(sorted(METHODS))}")
    if kind is not None and kind not in reg.kinds:
        ok = sorted(n for n, r in METHODS.items() if kind in r.kinds)
        raise ConfigError(f"drift method {name!r} does not apply to {kind.value} columns; use one of {ok}")
    return reg


def clean(current: np.ndarray | pd.Series, kind: Kind) -> np.ndarray:
    """Drop missing values: NaN never reaches a test (missing share is a data-quality check)."""
    if kind is Kind.NUMERICAL:
        arr = np.asarray(current, dtype=np.float64)
        return arr[np.isfinite(arr)]
    s = pd.Series(current, dtype=object)
    return s[s.notna()].astype(str).to_numpy(dtype=object)


# --------------------------------------------------------------------------- distributions


def numeric_hist(ref: NumericalProfile, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current proportions over the reference's fitted bins."""
    cur_counts = np.bincount(
        np.searchsorted(ref.bin_edges, current, side="right"), minlength=ref.bin_counts.size
    )
    return _props(ref.bin_counts), _props(cur_counts)


def category_counts(ref: CategoricalProfile, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference and current counts over the union of categories (unseen ones appended)."""
    vc = pd.Series(current, dtype=object).value_counts()
    known = {k: i for i, k in enumerate(ref.categories)}
    extra = sorted(k for k in vc.index if k not in known)
    cats = [*ref.categories, *extra]
    ref_counts = np.concatenate([ref.counts.astype(np.float64), np.zeros(len(extra))])
    cur_counts = np.zeros(len(cats))
    for k, v in vc.items():
        cur_counts[known[k] if k in known else len(ref.categories) + extra.index(k)] = v
    return ref_counts, cur_counts, cats


def _props(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=np.float64)


def distributions(ref: ColumnProfile, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(ref, NumericalProfile):
        return numeric_hist(ref, current)
    r, c, _ = category_counts(ref, current)
    return _props(r), _props(c)


# --------------------------------------------------------------------------- tests (p-values)


@register("ks", kinds={Kind.NUMERICAL}, role="test")
def ks(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Two-sample Kolmogorov–Smirnov test, two-sided (Hodges 1958; equals ``scipy.stats.ks_2samp``)."""
    assert isinstance(ref, NumericalProfile)
    res = stats.ks_2samp(ref.sorted_values, current)
    return Score("ks", float(res.statistic), float(res.pvalue))


@register("chisquare", kinds={Kind.CATEGORICAL}, role="test")
def chisquare(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Pearson's chi-square test of homogeneity on the 2×k table of reference vs current counts
    (equals ``scipy.stats.chi2_contingency(table, correction=False)``); categories new in the window count."""
    assert isinstance(ref, CategoricalProfile)
    r, c, _ = category_counts(ref, current)
    keep = (r + c) > 0
    table = np.vstack([r[keep], c[keep]])
    if table.shape[1] < 2:
        return Score("chisquare", 0.0, 1.0)
    res = stats.chi2_contingency(table, correction=False)
    return Score("chisquare", float(res.statistic), float(res.pvalue))


# --------------------------------------------------------------------------- effect sizes


@register("wasserstein", kinds={Kind.NUMERICAL}, role="effect")
def wasserstein(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Wasserstein-1 (earth mover's) distance divided by the reference standard deviation, so the value
    reads as a shift in σ (Evidently's "normed" variant). Constant reference: the unnormalised distance."""
    assert isinstance(ref, NumericalProfile)
    d = float(stats.wasserstein_distance(ref.sorted_values, current))
    return Score("wasserstein", d / ref.std if ref.std > 0 else d)


@register("psi", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def psi(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Population stability index Σ (c−r)·ln(c/r) over the reference's bins or categories (Yurdakul 2018);
    empty bins are floored at ``EPS``."""
    r, c = distributions(ref, current)
    r, c = np.maximum(r, EPS), np.maximum(c, EPS)
    return Score("psi", float(np.sum((c - r) * np.log(c / r))))


@register("jensen_shannon", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def jensen_shannon(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Jensen–Shannon distance, base 2, in [0, 1] (Lin 1991; ``scipy.spatial.distance.jensenshannon``)."""
    r, c = distributions(ref, current)
    if r.sum() == 0 or c.sum() == 0:
        return Score("jensen_shannon", float("nan"))
    return Score("jensen_shannon", float(distance.jensenshannon(r, c, base=2)))


@register("kl_div", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def kl_div(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Kullback–Leibler divergence KL(current ‖ reference) in nats (``scipy.stats.entropy``); empty bins
    are floored at ``EPS`` so the value stays finite."""
    r, c = distributions(ref, current)
    return Score("kl_div", float(stats.entropy(np.maximum(c, EPS), np.maximum(r, EPS))))
