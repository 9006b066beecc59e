"""Numbers for people: the one formatter behind the reports, the incident sentences, alerts and artifacts.

Every value shown to a person goes through :func:`human` with a :class:`Unit`; :func:`unit_of` maps a
stable metric or check name to its unit, so a new metric needs one entry here and nowhere else.

>>> human(1e308), human(0.4, Unit.SHARE), human(1234.5, Unit.MS), human(2_500_000, Unit.COUNT)
('1.0e308', '40%', '1.23 s', '2,500,000')
"""

from __future__ import annotations

import math
from enum import StrEnum


class Unit(StrEnum):
    """How a number is read: the column unit a table header shows (``label``)."""

    NUMBER = "number"  # a plain measurement in the column's own unit
    SHARE = "share"  # a fraction 0..1 shown as %
    MS = "ms"  # a duration in milliseconds, shown as ms or s
    COUNT = "count"  # an integer count
    P = "p"  # a p-value
    RATIO = "ratio"  # a multiple (×)
    PER_MIN = "per_min"  # a rate per minute

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Unit.NUMBER: "value",
    Unit.SHARE: "%",
    Unit.MS: "ms / s",
    Unit.COUNT: "count",
    Unit.P: "p-value",
    Unit.RATIO: "×",
    Unit.PER_MIN: "per min",
}
DASH = "—"


def human(x: float | int | None, unit: Unit = Unit.NUMBER, digits: int = 3) -> str:
    """``x`` formatted for reading in ``unit``: never more than a dozen characters.

    >>> [human(v) for v in (1234567, 12.345678, 0.000123456, -2.5e-9, 3e15, float("inf"), None)]
    ['1,234,567', '12.3', '0.000123', '-2.50e-9', '3.0e15', '∞', '—']
    >>> human(0.00004, Unit.SHARE), human(0.1234, Unit.SHARE), human(12.5, Unit.MS), human(3.2e-7, Unit.P)
    ('<0.01%', '12.3%', '12.5 ms', '3.20e-7')
    """
    if x is None:
        return DASH
    x = float(x) if not isinstance(x, int) else x
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if unit is Unit.SHARE:
        return _share(float(x))
    if unit is Unit.MS:
        return _ms(float(x))
    if unit is Unit.P:
        return _p(float(x))
    if unit is Unit.RATIO:
        return _plain(float(x), 2) + "×"
    if unit is Unit.PER_MIN:
        return _plain(float(x), digits) + "/min"
    if unit is Unit.COUNT and abs(x) < 1e15:
        return f"{round(x):,}"
    return _plain(x, digits)


def _sci(x: float, digits: int = 2) -> str:
    """``1.0e308``: mantissa with ``digits`` significant digits, no ``+`` and no leading zeros."""
    mant, exp = f"{x:.{max(digits - 1, 1)}e}".split("e")
    return f"{mant}e{int(exp)}"


def _plain(x: float | int, digits: int = 3) -> str:
    ax = abs(x)
    if ax >= 1e15:
        return _sci(float(x))
    if float(x).is_integer():
        return f"{int(x):,}"
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax < 1e-4:
        return _sci(float(x), 3)
    return f"{x:.{digits}g}"


def _share(x: float) -> str:
    if x == 0:
        return "0%"
    if 0 < abs(x) < 1e-4:
        return "<0.01%"
    pct = 100 * x
    if abs(pct) >= 1e6:
        return _sci(pct) + "%"
    if abs(pct) < 1:
        return f"{pct:.2f}%"
    if abs(pct - round(pct)) < 0.05:
        return f"{round(pct):,.0f}%"
    return f"{pct:,.1f}%"


def _ms(x: float) -> str:
    if abs(x) >= 1e12:
        return _sci(x / 1000) + " s"
    if abs(x) >= 1000:
        return f"{x / 1000:,.3g} s" if abs(x) < 100_000 else f"{x / 1000:,.0f} s"
    return f"{x:.3g} ms"


def _p(p: float) -> str:
    if p == 0:
        return "0"
    if p < 1e-3:
        return _sci(p, 3)
    return f"{p:.3g}"


_SHARES = frozenset(
    {
        "missing_share",
        "out_of_range",
        "out_of_range_share",
        "unseen_categories",
        "unseen_share",
        "quarantined_share",
        "error_rate",
        "label_coverage",
        "prediction_share",
        "dataset_drift",
        "drifted_share",
        "fairness_selection_rate",
        "fairness_tpr",
        "fairness_fpr",
        "fairness_accuracy",
    }
)
_COUNTS = frozenset(
    {
        "volume",
        "row_count",
        "n_rows",
        "n_labelled",
        "model_quality",
        "unexpected_fields",
        "n_quarantined",
        "fairness_rows",
        "fairness_labelled",
    }
)


def unit_of(name: str) -> Unit:
    """The unit of a stable metric or check name (``missing_share`` → share, ``latency_p95_ms`` → ms).

    >>> unit_of("missing_share"), unit_of("latency_p95"), unit_of("drift_p_adjusted"), unit_of("rmse")
    (<Unit.SHARE: 'share'>, <Unit.MS: 'ms'>, <Unit.P: 'p'>, <Unit.NUMBER: 'number'>)
    """
    base = name.removesuffix("_vs_reference")
    if base in _SHARES or base.endswith("_share"):
        return Unit.SHARE
    if base.startswith("latency_") or base.endswith("_ms"):
        return Unit.MS
    if base.endswith("p_value") or base.endswith("p_adjusted"):
        return Unit.P
    if base in _COUNTS or base.startswith("n_"):
        return Unit.COUNT
    if base == "requests_per_minute":
        return Unit.PER_MIN
    return Unit.NUMBER


def named(name: str, x: float | None) -> str:
    """``x`` in the unit its metric/check name implies (see :func:`unit_of`)."""
    return human(x, unit_of(name))


def title(name: str) -> str:
    """A stable snake_case name as words for a heading: ``latency_p95_ms`` → ``latency p95``.

    >>> title("f1_vs_reference"), title("latency_p95_ms"), title("missing_share")
    ('f1 vs reference', 'latency p95', 'missing share')
    """
    return name.removesuffix("_ms").replace("_", " ")
