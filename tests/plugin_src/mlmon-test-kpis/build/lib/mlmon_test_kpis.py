"""Business KPIs registered from outside mlmon, exactly as its built-in checks are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlmon import register_check
from mlmon.tasks.checks.registry import WindowInput


def _column(window: WindowInput, name: str) -> np.ndarray:
    if name not in window.frame:
        raise KeyError(f"no column {name!r} in the window")
    return pd.to_numeric(window.frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@register_check("revenue_per_conversion", example={"revenue": "num_a", "converted": "flag"})
def revenue_per_conversion(
    window: WindowInput, revenue: str = "revenue", converted: str = "converted"
) -> float | None:
    """Revenue of the converted predictions divided by their number."""
    rev, conv = _column(window, revenue), _column(window, converted)
    hit = conv == 1
    return float(np.nansum(rev[hit]) / hit.sum()) if hit.any() else None


@register_check("margin_per_prediction", example={"cost": "num_b"})
def margin_per_prediction(window: WindowInput, revenue: str = "num_a", cost: str = "cost") -> float | None:
    """(revenue - cost) per prediction; raises when the cost field is not logged."""
    if not len(window.frame):
        return None
    return float((np.nansum(_column(window, revenue)) - np.nansum(_column(window, cost))) / len(window.frame))


@register_check("accuracy_by_prediction")
def accuracy_by_prediction(window: WindowInput) -> dict[str, float | None]:
    """Share of labelled rows predicted right, per predicted class (several values by name)."""
    rows = window.frame.index[(window.labels.notna() & window.predictions.notna()).to_numpy()]
    out: dict[str, float | None] = {}
    if not len(rows):
        return out
    pred = window.predictions[rows].astype(str)
    right = pred.to_numpy() == window.labels[rows].astype(str).to_numpy()
    for k in sorted(pred.unique()):
        sel = pred.to_numpy() == k
        out[k] = float(right[sel].mean())
    return out


def labelled_share(window: WindowInput) -> float | None:
    """Share of the window's rows whose label has arrived (not decorated: its entry point names it)."""
    return float(window.labels.notna().mean()) if len(window.frame) else None
