"""Per-column drift methods: one registry of pure functions ``(reference profile, current values) -> Score``.

Statistic apart from decision: methods only score. Thresholds, multiple-testing correction and verdicts
live in :mod:`mlmon.tasks.checks.decide`. Fit once, score many: the reference side (sorted values, quantile
bins and their counts, category counts) was fitted once into the profile; a method only processes the
window, vectorised (binary searches against the sorted reference, no Python loop over rows).

Every method

* drops missing values first (NaN/±inf for numerical, None/NaN for categorical): a missing value never
  poisons a verdict, the missing share is a data-quality check;
* is order-independent and deterministic, and returns a finite :class:`Score`;
* raises ``ValueError`` when the window or the reference has no usable value.

``decide`` calls :func:`prepare` once per column (numerical values are sorted once) and hands the
prepared array to every method; a method given an already prepared array skips that work (an O(n)
check), so passing raw values is always correct, only slower.

>>> from mlmon.tasks.reference import fit_numerical
>>> ref = fit_numerical(np.arange(1000.0))
>>> round(get_method("wasserstein")(ref, np.arange(1000.0) + 28.87).statistic, 3)  # a shift of 0.1 σ
0.1
>>> sorted(METHODS)
['anderson', 'chisquare', 'chisquare_binned', 'jensen_shannon', 'kl_div', 'ks', 'psi', 'wasserstein']
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial import distance
from scipy.stats import _stats_py as _scipy_ks  # its exact KS branch, see ks()

from mlmon.tasks.config import Kind
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.profile import CategoricalProfile, ColumnProfile, NumericalProfile

EPS = 1e-4
"""Proportion given to an empty bin or category in PSI and KL, which are infinite otherwise.

The usual choice in practice (Evidently's ``get_binned_data`` uses the same 0.0001). A category present
on one side only therefore contributes about ``p·ln(p/1e-4)``: large, finite and comparable."""

STD_FLOOR = 1e-3
"""Scale used to norm the Wasserstein distance when the reference is constant (σ = 0).

Evidently floors σ at this value; we use it only at σ = 0 (for 0 < σ < 0.001 we keep dividing by σ so
the value still reads as "shift in σ"). A constant reference that starts moving then scores large."""

MAX_RUNS = 10_000
"""A prepared categorical window with more distinct values than this is id-like: its keys stay unsorted."""

KS_GRID = 8
"""The grid bounding the KS statistic has a cell of about √n / KS_GRID reference values (see
:func:`_ks_statistic`): fine enough that few cells need a closer look, coarse enough to be cheap."""

KS_EXACT_MAX_N = 10_000
"""``scipy.stats.ks_2samp(method="auto")`` uses the exact null distribution up to this sample size."""

Role = Literal["test", "effect"]


@dataclass(frozen=True)
class Score:
    """What a method computed: its statistic and, for a significance test, the two-sided p-value."""

    method: str
    statistic: float
    p_value: float | None = None


Method = Callable[[ColumnProfile, np.ndarray], Score]


@dataclass(frozen=True)
class Registered:
    """A registered method: its stable name, the column kinds it applies to and its role."""

    name: str
    func: Method
    kinds: frozenset[Kind]
    role: Role  # "test": gives a p-value; "effect": a distance / divergence only

    def __call__(self, ref: ColumnProfile, current: np.ndarray) -> Score:
        return self.func(ref, current)


METHODS: dict[str, Registered] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register(name: str, *, kinds: set[Kind], role: Role) -> Callable[[Method], Method]:
    """Add a method to the registry under a stable snake_case name (stored as-is in YAML and Postgres)."""
    if not _NAME.match(name):
        raise ValueError(f"drift method names are snake_case, got {name!r}")
    if role not in ("test", "effect"):
        raise ValueError(f"role must be 'test' or 'effect', got {role!r}")

    def deco(func: Method) -> Method:
        if name in METHODS:
            raise ValueError(f"drift method {name!r} is registered twice")
        METHODS[name] = Registered(name, func, frozenset(kinds), role)
        return func

    return deco


def get_method(name: str, kind: Kind | None = None, role: Role | None = None) -> Registered:
    """Resolve a method name; unknown names, or names not fit for ``kind``/``role``, fail with the options."""
    reg = METHODS.get(name)
    if reg is None:
        raise ConfigError(f"unknown drift method {name!r}; known methods: {', '.join(sorted(METHODS))}")
    if kind is not None and kind not in reg.kinds:
        ok = sorted(n for n, r in METHODS.items() if kind in r.kinds and (role is None or r.role == role))
        raise ConfigError(f"drift method {name!r} does not apply to {kind.value} columns; use one of {ok}")
    if role == "test" and reg.role != "test":
        ok = sorted(n for n, r in METHODS.items() if r.role == "test" and (kind is None or kind in r.kinds))
        raise ConfigError(f"drift method {name!r} gives no p-value, it cannot be a test; tests: {ok}")
    return reg


# --------------------------------------------------------------------------- preparing the window


@dataclass(frozen=True)
class Counted:
    """A categorical window reduced to its distinct non-missing values (``str``) and their counts.

    What :func:`prepare` makes of a categorical column: every categorical method only needs the counts,
    so the column is counted once (category codes and ``bincount``) and never sorted or hashed again.
    """

    keys: np.ndarray  # object array of str, distinct
    counts: np.ndarray  # int64, aligned with keys, all > 0

    @property
    def size(self) -> int:
        """Non-missing values counted (the number of rows the methods use)."""
        return int(self.counts.sum())


class SortedFinite(np.ndarray):
    """What :func:`prepare` makes of a numerical column: its finite float64 values, ascending, read-only.

    A plain array in every use; only the object :func:`prepare` returned carries the proof that it is
    sorted and finite, so the methods given it skip those two O(n) passes (six methods per column would
    otherwise re-check it six times). An array derived from it (a slice, arithmetic) carries no proof.
    """

    _proof = False

    def __array_finalize__(self, obj: object) -> None:
        self._proof = False


def _sorted_finite(x: np.ndarray) -> SortedFinite:
    out = x.view(SortedFinite)
    out.flags.writeable = False
    out._proof = True
    return out


def _proven(values: object) -> bool:
    return getattr(values, "_proof", False) is True


Prepared = np.ndarray | Counted
"""A prepared window column: :class:`SortedFinite` (numerical) or :class:`Counted` (categorical)."""


def prepare(kind: Kind, values: np.ndarray | pd.Series | Counted) -> Prepared:
    """The non-missing values of a column, ready for every method.

    Numerical: finite float64 values, sorted (one sort per column, shared by every method).
    Categorical: :class:`Counted`, keys in sorted order (id-like columns with more than
    :data:`MAX_RUNS` distinct values keep the order of first appearance: sorting them would only cost).
    """
    if kind is Kind.NUMERICAL:
        if _proven(values):
            return values  # type: ignore[return-value]
        return _sorted_finite(_finite_sorted(values))  # type: ignore[arg-type]
    keys, counts = value_counts(values)
    if keys.size > MAX_RUNS:
        return Counted(keys, counts)
    order = np.argsort(keys, kind="stable")
    return Counted(keys[order], counts[order])


def value_counts(values: np.ndarray | pd.Series | Counted) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-missing values (as ``str``, object array) and their counts (all > 0).

    One pass over the rows: category codes and ``bincount`` for a categorical dtype, else one hash
    pass (``pd.factorize``) to codes first. Keys come in the order of first appearance (object input)
    or of the dtype's categories.
    """
    if isinstance(values, Counted):
        return values.keys, values.counts
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array  # type: ignore[assignment]
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes, np.asarray(values.categories, dtype=object)
    else:
        x = (
            values.to_numpy(dtype=object)
            if isinstance(values, pd.Series)
            else np.asarray(values, dtype=object)
        )
        codes, uniques = pd.factorize(x.ravel(), use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
    codes = np.asarray(codes)
    present = codes[codes >= 0] if (codes < 0).any() else codes
    counts = np.bincount(present.astype(np.intp, copy=False), minlength=uniques.size).astype(np.int64)
    keep = counts > 0
    keys, counts = uniques[keep], counts[keep]
    if not all(isinstance(k, str) for k in keys):  # e.g. 1 and "1" are the same category
        merged: dict[str, int] = {}
        for k, n in zip(keys, counts, strict=True):
            merged[str(k)] = merged.get(str(k), 0) + int(n)
        keys = np.array(list(merged), dtype=object)
        counts = np.array(list(merged.values()), dtype=np.int64)
    return keys, counts


def prepare_columns(
    frame: pd.DataFrame, kinds: dict[str, Kind], *, workers: int | None = None
) -> dict[str, Prepared]:
    """:func:`prepare` every column of ``kinds`` present in ``frame``, in a small thread pool on big frames.

    NumPy's sort releases the GIL, so on a 2-core machine two columns sort at once. Columns that cannot
    be read are left out (:func:`~mlmon.tasks.checks.decide.drift_table` reports them).
    """
    names = [n for n in kinds if n in frame.columns]

    def one(name: str) -> tuple[str, Prepared | None]:
        try:
            return name, prepare(kinds[name], frame[name])
        except (TypeError, ValueError):
            return name, None

    n_workers = parallel_workers(len(frame), len(names)) if workers is None else workers
    if n_workers <= 1:
        done = [one(n) for n in names]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            done = list(pool.map(one, names))
    return {n: v for n, v in done if v is not None}


PARALLEL_MIN_ROWS = 50_000
"""Below this many rows a thread pool costs more than it saves."""


def parallel_workers(rows: int, tasks: int) -> int:
    """Threads for column-wise work: up to the CPU count (at most 4), only on big frames."""
    if rows < PARALLEL_MIN_ROWS or tasks < 2:
        return 1
    return max(1, min(4, os.cpu_count() or 1, tasks))


def _finite(values: np.ndarray | pd.Series) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(arr)
    return arr if ok.all() else arr[ok]


def _is_sorted(x: np.ndarray) -> bool:
    return x.size < 2 or not bool((x[1:] < x[:-1]).any())


def _finite_sorted(values: np.ndarray | pd.Series) -> np.ndarray:
    if _proven(values):
        return values  # type: ignore[return-value]
    x = _finite(values)
    return x if _is_sorted(x) else np.sort(x)


def _numerical(ref: ColumnProfile, current: np.ndarray, method: str) -> tuple[NumericalProfile, np.ndarray]:
    if not isinstance(ref, NumericalProfile):
        raise TypeError(f"{method} needs a numerical reference profile, got {type(ref).__name__}")
    if ref.n == 0:
        raise ValueError(f"{method}: the reference has no finite value")
    x = _finite_sorted(current)
    if x.size == 0:
        raise ValueError(f"{method}: the window has no finite value")
    return ref, x


def _ks_statistic(r: np.ndarray, x: np.ndarray, cell: int | None = None) -> float:
    """Two-sided KS statistic of two sorted samples, equal to ``ks_2samp``'s to the last bit.

    ``ks_2samp`` takes max |F_r − F_x| over every point of both samples, each difference computed as
    ``#r≤v / n1 − #x≤v / n2``. Most points cannot be the maximum, and a coarse grid proves it: on a cell
    ``[lo, hi)`` between two grid values (every ``cell``-th reference value) both counts are bounded by
    their values at the cell's ends, so the difference inside the cell is at most
    ``#r<hi / n1 − #x≤lo / n2`` (and symmetrically), the same float operations on larger or smaller
    integers. Only cells whose bound beats the best difference seen at the grid values are evaluated
    point by point. Exact, and a few thousand binary searches instead of one per row.
    """
    n1, n2 = r.size, x.size
    if cell is None:
        cell = max(16, int(np.sqrt(n1)) // KS_GRID)
    g = np.unique(r[cell - 1 :: cell])  # grid values are reference values: points ks_2samp evaluates
    r_le, r_lt = np.searchsorted(r, g, side="right"), np.searchsorted(r, g, side="left")
    x_le, x_lt = np.searchsorted(x, g, side="right"), np.searchsorted(x, g, side="left")
    best = float(np.abs(r_le / n1 - x_le / n2).max()) if g.size else 0.0
    zero, n1a, n2a = np.zeros(1, dtype=np.intp), np.array([n1]), np.array([n2])
    # cells (-inf, g0), [g0, g1), …, [g_last, inf): counts at their lower and upper ends
    lo_r_le, lo_x_le = np.concatenate((zero, r_le)), np.concatenate((zero, x_le))
    lo_r_lt, lo_x_lt = np.concatenate((zero, r_lt)), np.concatenate((zero, x_lt))
    hi_r_lt, hi_x_lt = np.concatenate((r_lt, n1a)), np.concatenate((x_lt, n2a))
    bound = np.maximum(hi_r_lt / n1 - lo_x_le / n2, hi_x_lt / n2 - lo_r_le / n1)
    open_ = np.flatnonzero(bound > best)
    if open_.size:
        v = np.concatenate(
            (
                r[_ranges(lo_r_lt[open_], hi_r_lt[open_])],
                x[_ranges(lo_x_lt[open_], hi_x_lt[open_])],
            )
        )
        gaps = np.searchsorted(r, v, side="right") / n1 - np.searchsorted(x, v, side="right") / n2
        if gaps.size:
            best = max(best, float(np.abs(gaps).max()))
    return best


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``[starts[i], stops[i])``."""
    lengths = (stops - starts).astype(np.intp)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.intp)
    offsets = np.repeat(starts.astype(np.intp) - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total, dtype=np.intp) + offsets


def _wasserstein_distance(r: np.ndarray, x: np.ndarray) -> float:
    """W1 of two sorted samples as ∫₀¹ |Q_r(u) − Q_x(u)| du (quantile functions), no search at all.

    The same distance as SciPy's ∫ |F_r − F_x| dt (both are the area between the two step functions,
    read along the other axis); equal to it to rounding. The quantile functions step at ``i/n1`` and
    ``j/n2``: on the integer grid ``u·n1·n2`` the union of the steps merges two arithmetic progressions,
    whose positions are known in closed form. Equal sizes: the mean of |r_i − x_i|.
    """
    n1, n2 = r.size, x.size
    if n1 == n2:
        return float(np.abs(r - x).sum() / n1)
    i = np.arange(1, n1 + 1, dtype=np.int64)
    pos = i - 1 + (i * n2) // n1  # before a_i = i·n2 come the b_j = j·n1 ≤ a_i: ⌊i·n2/n1⌋ of them
    c = np.empty(n1 + n2, dtype=np.int64)
    is_a = np.zeros(n1 + n2, dtype=np.int64)
    is_a[pos] = 1
    c[pos] = i * n2
    c[is_a == 0] = np.arange(1, n2 + 1, dtype=np.int64) * n1
    width = np.diff(c, prepend=0).astype(np.float64)
    # on the segment ending at c_k: Q_r = r[#a before k], Q_x = x[#b before k] (a tie has width 0)
    ir = np.cumsum(is_a)
    ir -= is_a
    ix = np.arange(n1 + n2, dtype=np.int64)
    ix -= ir
    np.minimum(ix, n2 - 1, out=ix)  # only zero-width tail segments can reach past the last x
    gap = np.abs(r[ir] - x[ix])
    return float(np.sum(width * gap) / (float(n1) * float(n2)))  # not a BLAS dot: threads stall here


def category_counts(
    ref: CategoricalProfile, current: np.ndarray
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Categories (the reference's, then unseen ones, sorted) with reference and current counts.

    Missing values are dropped; non-string values are counted as their ``str``.
    """
    keys, counts = value_counts(current)
    if len(ref.categories) <= 1_000:  # a dict beats building a hash index for the usual few categories
        index = {k: i for i, k in enumerate(ref.categories)}
        pos = np.fromiter((index.get(k, -1) for k in keys), dtype=np.intp, count=keys.size)
    else:
        pos = pd.Index(ref.categories, dtype=object).get_indexer(keys)
    seen = pos >= 0
    unseen = keys[~seen]
    order = np.argsort(unseen, kind="stable")
    k = len(ref.categories)
    cur = np.zeros(k + unseen.size, dtype=np.int64)
    cur[pos[seen]] = counts[seen]
    cur[k:] = counts[~seen][order]
    ref_counts = np.concatenate([ref.counts.astype(np.int64), np.zeros(unseen.size, dtype=np.int64)])
    return (*ref.categories, *unseen[order].tolist()), ref_counts, cur


def bin_counts(ref: NumericalProfile, current: np.ndarray) -> np.ndarray:
    """Current counts in the reference's right-closed bins ``(e[i-1], e[i]]`` (finite values only)."""
    x = current if _proven(current) else _finite(current)
    if _proven(x) or _is_sorted(x):  # prepared windows: one binary search per edge
        below = np.searchsorted(x, ref.bin_edges, side="right")
        return np.diff(np.concatenate(([0], below, [x.size])))
    return np.bincount(np.searchsorted(ref.bin_edges, x, side="left"), minlength=ref.bin_edges.size + 1)


def distributions(ref: ColumnProfile, current: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current proportions over the reference's bins (numerical) or the union of
    categories (categorical)."""
    if isinstance(ref, NumericalProfile):
        r, c = ref.bin_counts, bin_counts(ref, current)
    else:
        _, r, c = category_counts(ref, current)
    if r.sum() == 0:
        raise ValueError(f"{method}: the reference has no value")
    if c.sum() == 0:
        raise ValueError(f"{method}: the window has no non-missing value")
    return r / r.sum(), c / c.sum()


def _floor(p: np.ndarray) -> np.ndarray:
    return np.where(p == 0, EPS, p)


# --------------------------------------------------------------------------- tests (p-values)


@register("ks", kinds={Kind.NUMERICAL}, role="test")
def ks(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Two-sample Kolmogorov–Smirnov test, two-sided; equal to ``scipy.stats.ks_2samp(reference, current)``.

    Smirnov (1939), "On the estimation of the discrepancy between empirical curves of distribution for
    two independent samples". The statistic comes from binary searches between the sorted window and the
    profile's sorted reference, bounded on a grid first (:func:`_ks_statistic`); the p-value from SciPy's own null
    distributions, chosen as SciPy chooses them.
    """
    ref, x = _numerical(ref, current, "ks")
    r = ref.sorted_values
    n1, n2 = r.size, x.size
    d = _ks_statistic(r, x)
    if max(n1, n2) <= KS_EXACT_MAX_N:  # SciPy's exact null distribution, as ks_2samp(method="auto")
        exact = getattr(_scipy_ks, "_attempt_exact_2kssamp", None)  # without ks_2samp's wrappers
        ok, d_exact, p_exact = exact(n1, n2, math.gcd(n1, n2), d, "two-sided") if exact else (False, d, 0.0)
        if not ok:  # SciPy falls back to the asymptotic distribution (with a warning): let it
            res = stats.ks_2samp(r, x)
            return Score("ks", float(res.statistic), float(res.pvalue))
        return Score("ks", float(d_exact), float(np.clip(p_exact, 0, 1)))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = float(np.clip(kstwo_sf(d, int(np.round(m * n / (m + n)))), 0, 1))  # ks_2samp's 'asymp' branch
    return Score("ks", d, p)


def kstwo_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``: SciPy's own branches (Simard & L'Ecuyer 2011), with its costliest
    one, 2·``smirnov(n, d)`` for ``n > 140`` and ``2.2 ≤ n·d² < 370``, summed vectorised.

    That branch is where a clearly drifted column lands at 100k rows: SciPy sums the n·(1 − d) terms of
    the Birnbaum–Tingey formula one at a time (0.1–0.2 s at n = 50k, 2 s at 500k, holding a core);
    :func:`_smirnov_sf` sums the same terms as one NumPy expression, about ten times faster. The two agree
    to about 1e-9 relative (both work in log space with ``lgamma``, whose rounding at n ~ 1e5 is that
    size), far below any threshold (tests/checks/test_equivalence.py). Every other branch is SciPy's.
    """
    nxx = n * d * d
    if n > 140 and 1.0 < n * d < n - 1 and d < 0.5 and 2.2 <= nxx < 370.0:
        return float(min(1.0, max(0.0, 2.0 * _smirnov_sf(n, d))))
    return float(stats.kstwo.sf(d, n))


def _smirnov_sf(n: int, d: float) -> float:
    """P(D⁺ₙ ≥ d), the one-sided one-sample KS survival function ``scipy.special.smirnov(n, d)``.

    Birnbaum & Tingey (1951): d·Σ_{v=0}^{⌊n(1−d)⌋} C(n, v)·(d + v/n)^(v−1)·(1 − d − v/n)^(n−v), each term in
    log space, summed relative to the largest (no underflow: the sum can be 1e-300).
    """
    v = np.arange(0, math.floor(n * (1.0 - d)) + 1, dtype=np.float64)
    a = d + v / n
    with np.errstate(divide="ignore"):  # the last term can have 1 − a = 0: log 0 = −inf, term 0
        log_t = special.gammaln(n + 1.0) - special.gammaln(v + 1.0) - special.gammaln(n - v + 1.0)
        log_t += (v - 1.0) * np.log(a) + (n - v) * np.log1p(-a)
    top = float(log_t.max())
    return d * math.exp(top) * float(np.exp(log_t - top).sum())


@register("chisquare", kinds={Kind.CATEGORICAL}, role="test")
def chisquare(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Pearson's chi-square test of homogeneity on the 2×k table of reference vs current counts.

    Pearson (1900); equal to ``scipy.stats.chi2_contingency(table, correction=False)``. The k columns are
    the union of categories: one new in the window counts against it. One category only: no variation
    to test, statistic 0 and p-value 1.
    """
    if not isinstance(ref, CategoricalProfile):
        raise TypeError(f"chisquare needs a categorical reference profile, got {type(ref).__name__}")
    _, r, c = category_counts(ref, current)
    if r.sum() == 0 or c.sum() == 0:
        raise ValueError("chisquare: the reference or the window has no non-missing value")
    keep = (r + c) > 0
    if keep.sum() < 2:
        return Score("chisquare", 0.0, 1.0)
    statistic, p_value = _chi2_homogeneity(np.vstack([r[keep], c[keep]]))
    return Score("chisquare", statistic, p_value)


def _chi2_homogeneity(observed: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.chi2_contingency(observed, correction=False)``'s statistic and p-value, to the bit.

    The same operations in the same order (expected = row sums × column sums / total, Pearson's terms
    summed over the flattened table, ``chdtrc`` for the p-value) without SciPy's array-API wrappers,
    which cost more than the test on a small table.
    """
    table = observed.astype(np.float64)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return 0.0, 1.0
    statistic = np.sum((observed - expected) ** 2 / expected)
    return float(statistic), float(special.chdtrc(dof, statistic))


AD_SIGMA_INF = math.sqrt(2 * (math.pi**2 - 9) / 3)
"""Standard deviation of the limiting two-sample Anderson–Darling statistic (its mean is 1)."""

AD_TAIL_FROM = 8.0


def _ad_sf(z: float) -> float:
    """P(A² > z) under the limiting Anderson–Darling distribution (Marsaglia & Marsaglia 2004, ``adinf``).

    Max absolute error about 2e-6. Beyond z = 8 (p ≈ 1e-4) the fitted polynomial falls off too fast, so
    the tail continues as the first term of the series A² = Σ χ²₁/(j(j+1)) does: ∝ z^(-1/2)·e^(-z)."""
    if z <= 0:
        return 1.0
    if z > AD_TAIL_FROM:
        return _ad_sf(AD_TAIL_FROM) * math.sqrt(AD_TAIL_FROM / z) * math.exp(AD_TAIL_FROM - z)
    if z < 2:
        poly = 2.00012 + (0.247105 - (0.0649821 - (0.0347962 - (0.011672 - 0.00168691 * z) * z) * z) * z) * z
        return float(min(1.0, max(0.0, 1 - math.exp(-1.2337141 / z) / math.sqrt(z) * poly)))
    g = 1.0776 - (2.30695 - (0.43424 - (0.082433 - (0.008056 - 0.0003146 * z) * z) * z) * z) * z
    return float(-math.expm1(-math.exp(g)))


def _ad_sigma(n1: int, n2: int) -> float:
    """σ_N of the two-sample A²: the finite-sample variance of Scholz & Stephens (1987), eq. 4 (as SciPy)."""
    k, n_total = 2, n1 + n2
    big_h = 1.0 / n1 + 1.0 / n2
    hs_cs = np.cumsum(1.0 / np.arange(n_total - 1, 1, -1))
    h = float(hs_cs[-1]) + 1
    g = float((hs_cs / np.arange(2, n_total)).sum())
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * big_h
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * big_h - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * big_h + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    n = float(n_total)
    return math.sqrt((a * n**3 + b * n**2 + c * n + d) / ((n - 1) * (n - 2) * (n - 3)))


@register("anderson", kinds={Kind.NUMERICAL}, role="test")
def anderson(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Two-sample Anderson–Darling test (midranks, so ties are handled); more weight in the tails than KS.

    Scholz & Stephens (1987), "K-sample Anderson–Darling tests", JASA 82. The statistic is A²_akN, from
    SciPy's standardised ``anderson_ksamp([reference, current]).statistic`` T = (A² − 1) / σ_N. The p-value
    maps T onto the limiting distribution (A²_∞ = 1 + T·σ_∞, Marsaglia & Marsaglia 2004) instead of
    SciPy's table, which caps p at [0.001, 0.25] — too coarse for a corrected family of tests; inside
    that range both agree (tests/checks/test_drift.py).
    """
    ref, x = _numerical(ref, current, "anderson")
    r = ref.sorted_values
    if r[0] == r[-1] and x[0] == x[-1] and r[0] == x[0]:
        return Score("anderson", 0.0, 1.0)  # one value on both sides: nothing to test
    if r.size + x.size < 4:
        raise ValueError("anderson: needs at least 4 values in all")
    with warnings.catch_warnings():  # SciPy warns that its tabulated p-value is capped; we do not use it
        warnings.simplefilter("ignore")
        t = float(stats.anderson_ksamp([r, x], midrank=True).statistic)
    a2 = max(0.0, t * _ad_sigma(r.size, x.size) + 1.0)
    return Score("anderson", a2 if a2 > 1e-9 else 0.0, _ad_sf(1.0 + t * AD_SIGMA_INF))


@register("chisquare_binned", kinds={Kind.NUMERICAL}, role="test")
def chisquare_binned(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Pearson's chi-square test of homogeneity on the reference's bins: tie-aware for count-like columns.

    Pearson (1900). The bins are the profile's (right-closed, at the reference's observed quantiles and
    de-duplicated), so on a column with few distinct values each frequent value is its own bin and ties
    cost nothing, where KS turns conservative. Equal to
    ``scipy.stats.chi2_contingency([ref.bin_counts, current counts], correction=False)``.
    """
    if not isinstance(ref, NumericalProfile):
        raise TypeError(f"chisquare_binned needs a numerical reference profile, got {type(ref).__name__}")
    ref, x = _numerical(ref, current, "chisquare_binned")
    r, c = ref.bin_counts.astype(np.int64), bin_counts(ref, x)
    keep = (r + c) > 0
    if keep.sum() < 2:
        return Score("chisquare_binned", 0.0, 1.0)
    res = stats.chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    return Score("chisquare_binned", float(res.statistic), float(res.pvalue))


# --------------------------------------------------------------------------- effect sizes


@register("wasserstein", kinds={Kind.NUMERICAL}, role="effect")
def wasserstein(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Wasserstein-1 (earth mover's) distance divided by the reference σ: a shift of 0.1 σ scores 0.1.

    Vaserstein (1969); Villani (2009), *Optimal Transport*, ch. 6. The distance equals
    ``scipy.stats.wasserstein_distance(reference, current)`` to rounding (same CDF-difference formula,
    but merging two sorted arrays instead of sorting both); normed as Evidently's ``wasserstein``
    (population σ). A constant reference is normed by :data:`STD_FLOOR` instead.
    """
    ref, x = _numerical(ref, current, "wasserstein")
    w = _wasserstein_distance(ref.sorted_values, x)
    return Score("wasserstein", w / (ref.std if ref.std > 0 else STD_FLOOR))


@register("psi", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def psi(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Population stability index Σ (c − r)·ln(c / r) over the reference's bins or the categories.

    Siddiqi (2006), *Credit Risk Scorecards*, ch. 8; Yurdakul (2018), "Statistical properties of the
    population stability index". Empty bins get the proportion :data:`EPS` (not renormalised).
    Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    r, c = distributions(ref, current, "psi")
    r, c = _floor(r), _floor(c)
    return Score("psi", float(np.sum((c - r) * np.log(c / r))))


@register("jensen_shannon", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def jensen_shannon(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Jensen–Shannon distance (square root of the divergence), base 2, in [0, 1].

    Lin (1991), "Divergence measures based on the Shannon entropy"; Endres & Schindelin (2003) for the
    metric. ``scipy.spatial.distance.jensenshannon(r, c, base=2)`` over the reference's bins or the
    union of categories; needs no smoothing.
    """
    r, c = distributions(ref, current, "jensen_shannon")
    with np.errstate(invalid="ignore"):  # sqrt of a rounding-level negative divergence when r == c
        d = float(distance.jensenshannon(r, c, base=2))
    return Score("jensen_shannon", 0.0 if np.isnan(d) else d)


@register("kl_div", kinds={Kind.NUMERICAL, Kind.CATEGORICAL}, role="effect")
def kl_div(ref: ColumnProfile, current: np.ndarray) -> Score:
    """Kullback–Leibler divergence KL(current ‖ reference) in nats: ``scipy.stats.entropy(c, r)``.

    Kullback & Leibler (1951), "On information and sufficiency". Empty bins get the proportion
    :data:`EPS` on both sides (``entropy`` renormalises) so the divergence stays finite.
    """
    r, c = distributions(ref, current, "kl_div")
    return Score("kl_div", _entropy(_floor(c), _floor(r)))


def _entropy(pk: np.ndarray, qk: np.ndarray) -> float:
    """``scipy.stats.entropy(pk, qk)`` to the bit: both normalised, ``rel_entr`` summed (no wrapper)."""
    qk = qk / np.sum(qk, axis=0, keepdims=True)
    pk = pk / np.sum(pk, axis=0, keepdims=True)
    return float(np.sum(special.rel_entr(pk, qk), axis=0))
