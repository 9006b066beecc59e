"""Built-in business KPIs over logged fields: registered window checks like any of yours.

Each reads columns of the window frame by name — a feature, or a business field mapped in the model's
``business_fields`` (``revenue: {path: outcome.revenue}``) — ignores missing values, and returns None
when there is nothing to compute on. Thresholds come from the model's ``checks:`` config.

>>> import pandas as pd
>>> from mlmon.tasks.checks.registry import WindowInput
>>> w = WindowInput(pd.DataFrame({"converted": [1.0, 0.0, None, 1.0], "revenue": [10.0, 0.0, 5.0, None]}))
>>> rate(w, column="converted"), mean(w, column="revenue"), per_prediction(w, column="revenue")
(0.6666666666666666, 5.0, 3.75)
>>> ratio(w, numerator="revenue", denominator="converted")
7.5
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlmon.tasks.checks.registry import WindowInput, register


def _numbers(window: WindowInput, column: str) -> np.ndarray:
    if column not in window.frame:
        raise KeyError(f"column {column!r} is not in the window (map it under business_fields or features)")
    values = pd.to_numeric(window.frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values[np.isfinite(values)]


@register("mean", example={"column": "num_a"})
def mean(window: WindowInput, column: str) -> float | None:
    """Mean of a numerical column over the rows that have it (e.g. order value)."""
    x = _numbers(window, column)
    return float(x.mean()) if x.size else None


@register("rate", example={"column": "flag"})
def rate(window: WindowInput, column: str, value: str | float | bool = True) -> float | None:
    """Share of the rows that have ``column`` where it equals ``value`` (e.g. conversion rate).

    Booleans and 0/1 numbers compare as numbers (true = 1); anything else compares as text."""
    s = window.frame[column].dropna() if column in window.frame else None
    if s is None:
        raise KeyError(f"column {column!r} is not in the window (map it under business_fields or features)")
    if not len(s):
        return None
    if isinstance(value, (bool, int, float)):
        hits = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) == float(value)
    else:
        hits = s.astype(str).to_numpy() == str(value)
    return float(np.count_nonzero(hits) / len(s))


@register("per_prediction", example={"column": "num_a"})
def per_prediction(window: WindowInput, column: str) -> float | None:
    """Sum of ``column`` divided by every prediction of the window (e.g. revenue per prediction);
    a row without the field counts as zero."""
    n = len(window.frame)
    return float(_numbers(window, column).sum() / n) if n else None


@register("ratio", example={"numerator": "num_a", "denominator": "num_b"})
def ratio(window: WindowInput, numerator: str, denominator: str) -> float | None:
    """Sum of one column over the sum of another (e.g. revenue per conversion)."""
    den = _numbers(window, denominator).sum()
    return float(_numbers(window, numerator).sum() / den) if den else None
