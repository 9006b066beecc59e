"""Reference vs window counts per column on the reference's bins: what the report draws, counted once.

Fit once, score many: the bins are the profile's (quantile edges for numbers, the category set for
categories), so one pass over the window's column (one sort and a binary search per edge, or one hash
count) gives the picture, and the renderer draws a few dozen numbers instead of re-reading a million rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mlmon.tasks.checks.drift import value_counts
from mlmon.tasks.checks.outcome import Histogram
from mlmon.tasks.numbers import human
from mlmon.tasks.profile import CategoricalProfile, NumericalProfile, Profile

TOP_K = 8
"""Categories drawn one bar each (the most frequent of the reference or the window); the rest is "other"."""


def histograms(
    profile: Profile,
    frame: pd.DataFrame,
    columns: list[str] | tuple[str, ...],
    sorted_columns: Mapping[str, object] | None = None,
) -> list[Histogram]:
    """One :class:`Histogram` per profiled column of ``columns`` present in ``frame`` (whole window).

    ``sorted_columns``: numerical columns of ``frame`` already sorted (their finite values, e.g. the drift
    checks' prepared arrays when no value was screened out), so they are not sorted a second time."""
    out = []
    ready = sorted_columns or {}
    for name in columns:
        ref = profile.columns.get(name)
        if ref is None or name not in frame.columns:
            continue
        if isinstance(ref, NumericalProfile):
            if ref.n:
                done = ready.get(name)
                out.append(numerical(name, ref, frame[name], done if isinstance(done, np.ndarray) else None))
        else:
            out.append(categorical(name, ref, frame[name]))
    return out


def numerical(
    name: str, ref: NumericalProfile, values: pd.Series | np.ndarray, sorted_finite: np.ndarray | None = None
) -> Histogram:
    """Counts in ``< min``, the reference's right-closed bins from its min to its max, and ``> max``.

    >>> from mlmon.tasks.reference import fit_numerical
    >>> h = numerical("x", fit_numerical(np.arange(10.0), n_bins=2), np.array([-5.0, 1, 8, 50, 60]))
    >>> h.labels, h.reference, h.current
    (('< 0', '0 – 4', '4 – 9', '> 9'), (0, 5, 5, 0), (1, 1, 1, 2))
    """
    n_all = len(values)
    # one sort (faster here than a binary search per value), then every count and median is a binary
    # search per edge
    x = np.sort(_finite(values)) if sorted_finite is None else sorted_finite
    below = int(np.searchsorted(x, ref.min, side="left"))
    above = int(x.size - np.searchsorted(x, ref.max, side="right"))
    cuts = np.searchsorted(x, ref.bin_edges, side="right")
    inner = np.diff(np.concatenate(([below], cuts, [x.size - above])))
    bounds = (ref.min, *ref.bin_edges.tolist(), ref.max)
    labels = (
        f"< {human(ref.min)}",
        *(f"{human(a)} – {human(b)}" for a, b in itertools.pairwise(bounds)),
        f"> {human(ref.max)}",
    )
    return Histogram(
        feature=name,
        kind="numerical",
        labels=labels,
        reference=(0, *(int(v) for v in ref.bin_counts), 0),
        current=(below, *(int(v) for v in inner), above),
        edges=tuple(float(b) for b in bounds),
        reference_missing=ref.missing_share,
        current_missing=(n_all - x.size) / n_all if n_all else None,
        reference_p50=ref.quantiles.get(0.5),
        current_p50=_sorted_median(x),
        above_p50=_sorted_median(x[x.size - above :]),
        below_p50=_sorted_median(x[:below]),
    )


def categorical(
    name: str, ref: CategoricalProfile, values: pd.Series | np.ndarray, k: int = TOP_K
) -> Histogram:
    """The ``k`` most frequent categories of either side (by their larger share), then ``other``.

    >>> from mlmon.tasks.reference import fit_categorical
    >>> h = categorical("c", fit_categorical(["a"] * 6 + ["b"] * 4), np.array(["a", "XX", "XX", None]), k=2)
    >>> h.labels, h.reference, h.current, h.new
    (('XX', 'a', 'other (1)'), (0, 6, 4), (2, 1, 0), (True, False, False))
    """
    keys, counts = value_counts(values)  # codes and bincount for a categorical column: no hash pass
    cur = {k: int(n) for k, n in zip(keys, counts, strict=True)}
    refc = {c: int(n) for c, n in zip(ref.categories, ref.counts, strict=True)}
    n_ref, n_cur = max(sum(refc.values()), 1), max(sum(cur.values()), 1)
    names = sorted(
        set(refc) | set(cur), key=lambda c: (-max(refc.get(c, 0) / n_ref, cur.get(c, 0) / n_cur), c)
    )
    top, rest = names[:k], names[k:]
    labels = list(top)
    r = [refc.get(c, 0) for c in top]
    w = [cur.get(c, 0) for c in top]
    new = [c not in refc for c in top]
    if rest:
        labels.append(f"other ({len(rest):,})")
        r.append(sum(refc.get(c, 0) for c in rest))
        w.append(sum(cur.get(c, 0) for c in rest))
        new.append(False)
    return Histogram(
        feature=name,
        kind="categorical",
        labels=tuple(labels),
        reference=tuple(r),
        current=tuple(w),
        new=tuple(new),
        reference_missing=ref.missing_share,
        current_missing=(len(values) - int(counts.sum())) / len(values) if len(values) else None,
    )


def _sorted_median(x: np.ndarray) -> float | None:
    # halves first: the mean of two values near the float maximum (1e308) must not overflow
    return float(x[(x.size - 1) // 2] / 2 + x[x.size // 2] / 2) if x.size else None


def _finite(values: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]
