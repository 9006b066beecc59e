"""Class balance: has the share of each predicted class moved beyond its noise, or fallen too low?

Fit once: :func:`fit_balance` counts the reference's predicted classes. Statistic apart from decision:
:func:`balance_score` tests each class's window share against the reference's (two-sample test of
proportions, pooled variance, two-sided, Bonferroni over the classes) and bounds it from above (Wilson,
one-sided); :func:`decide_balance` warns when a class's share moved significantly AND by at least
``min_shift`` (so a 1M-row window does not warn on a 0.3-point wobble), and when a class with a
configured ``min_share`` is significantly below it. Both are warnings (category ``drift``, on the
prediction): a changed balance is worth a look, the drift and performance checks give the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import ClassBalanceConfig, ModelConfig, TaskType


@dataclass(frozen=True)
class ReferenceBalance:
    """The reference's predicted-class counts."""

    counts: dict[str, int]

    @property
    def n(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ClassShare:
    cls: str
    share: float  # in the window
    reference: float  # in the reference
    p_value: float  # two-sided, window vs reference share (before the correction)
    upper: float  # one-sided upper bound of the window share (Bonferroni over the classes)


@dataclass(frozen=True)
class BalanceScore:
    n: int  # window rows with a prediction
    n_reference: int
    classes: tuple[ClassShare, ...]


def fit_balance(reference: pd.DataFrame, cfg: ModelConfig) -> ReferenceBalance:
    """Count the reference's predicted classes (the configured classes start at 0)."""
    counts = dict.fromkeys(cfg.classes or [], 0)
    if c.PREDICTION in reference:
        for k, v in reference[c.PREDICTION].dropna().astype(str).value_counts().items():
            counts[str(k)] = int(v)
    return ReferenceBalance(counts)


def balance_score(ref: ReferenceBalance, frame: pd.DataFrame, bc: ClassBalanceConfig) -> BalanceScore:
    """Each class's window share, its two-sided p-value against the reference share, its upper bound."""
    window: dict[str, int] = {}
    if c.PREDICTION in frame:
        for k_, v in frame[c.PREDICTION].value_counts(dropna=True).items():
            window[str(k_)] = window.get(str(k_), 0) + int(v)
    n = sum(window.values())
    names = sorted(set(ref.counts) | {str(k) for k in window} | set(bc.min_share))
    z = float(stats.norm.isf(bc.alpha / max(len(names), 1)))
    m = ref.n
    out = []
    for k in names:
        x, y = int(window.get(k, 0)), ref.counts.get(k, 0)
        p = x / n if n else 0.0
        q = y / m if m else 0.0
        pooled = (x + y) / (n + m) if n + m else 0.0
        se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m)) if n and m else 0.0
        pv = float(2 * stats.norm.sf(abs(p - q) / se)) if se > 0 else (1.0 if p == q else 0.0)
        if n:
            den = 1 + z * z / n
            upper = min(
                1.0, (p + z * z / (2 * n) + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / den
            )
        else:
            upper = 1.0
        out.append(ClassShare(k, p, q, pv, upper))
    return BalanceScore(n, m, tuple(out))


def decide_balance(s: BalanceScore, bc: ClassBalanceConfig, segment: str = ALL) -> list[CheckResult]:
    """``class_balance`` (moved beyond noise and ``min_shift``) and, with minimum shares configured,
    ``class_min_share`` (significantly under its minimum; whole window only): both warn, never fail."""
    out = []
    if s.n < bc.min_rows or not s.n_reference:
        msg = f"insufficient data: {s.n} predictions < min_rows {bc.min_rows}" if s.n_reference else (
            "insufficient data: the reference has no predictions")  # fmt: skip
        out.append(CheckResult("class_balance", Category.DRIFT, Status.WARN, None, bc.min_shift, msg,
                               c.PREDICTION, segment))  # fmt: skip
        if bc.min_share and segment == ALL:
            out.append(CheckResult("class_min_share", Category.DRIFT, Status.WARN, None, None, msg,
                                   c.PREDICTION, segment))  # fmt: skip
        return out
    k = len(s.classes)
    moved = [x for x in s.classes if x.p_value * k < bc.alpha and abs(x.share - x.reference) >= bc.min_shift]
    biggest = max(s.classes, key=lambda x: abs(x.share - x.reference))
    shift = abs(biggest.share - biggest.reference)

    def fmt(x: ClassShare) -> str:
        return f"{x.cls} {x.share:.1%} (reference {x.reference:.1%}, p={min(1.0, x.p_value * k):.2g})"

    if moved:
        msg = "predicted-class balance moved: " + ", ".join(fmt(x) for x in moved)
        msg += f" (≥ {bc.min_shift:.0%} and significant at {bc.alpha:g})"
        status = Status.WARN
    else:
        msg = f"class balance within its noise band: largest move {fmt(biggest)}"
        status = Status.PASS
    out.append(CheckResult("class_balance", Category.DRIFT, status, shift, bc.min_shift, msg, c.PREDICTION,
                           segment))  # fmt: skip
    if bc.min_share and segment == ALL:  # a minimum share is about the whole traffic, not a segment
        by = {x.cls: x for x in s.classes}
        under = [by[k_] for k_, lim in bc.min_share.items() if by[k_].upper < lim]
        worst = min(bc.min_share, key=lambda k_: by[k_].share - bc.min_share[k_])
        if under:
            msg = "class under its minimum share: " + ", ".join(
                f"{x.cls} {x.share:.1%} < {bc.min_share[x.cls]:.1%} (upper bound {x.upper:.1%})"
                for x in under
            )
            status = Status.WARN
        else:
            msg = "every class at or above its minimum share (or not significantly below): " + ", ".join(
                f"{k_} {by[k_].share:.1%} (min {v:.1%})" for k_, v in bc.min_share.items()
            )
            status = Status.PASS
        out.append(CheckResult("class_min_share", Category.DRIFT, status, by[worst].share, bc.min_share[worst],
                               msg, c.PREDICTION, segment))  # fmt: skip
    return out


def balance_checks(
    frame: pd.DataFrame, ref: ReferenceBalance, cfg: ModelConfig, segment: str = ALL
) -> Findings:
    bc = cfg.class_balance
    if cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS):
        return [], []
    s = balance_score(ref, frame, bc)
    metrics = [
        Metric("class_balance_p_value", min(1.0, x.p_value * len(s.classes)), x.cls, segment)
        for x in s.classes
        if np.isfinite(x.p_value)
    ]
    metrics += [Metric("reference_prediction_share", x.reference, x.cls, segment) for x in s.classes]
    return decide_balance(s, bc, segment), metrics


@method("class_balance", category=Category.DRIFT, config="class_balance", fit=fit_balance,
        example={"min_share": {"churn": 0.05}})  # fmt: skip
def class_balance(inp: FamilyInput) -> Findings:
    """Predicted-class shares against the reference's (noise band and minimum effect) and their minimums."""
    return balance_checks(inp.frame, segment_reference(inp), inp.cfg, segment=inp.segment)


def segment_reference(inp: FamilyInput) -> ReferenceBalance:
    """The balance to compare with: the whole reference's for the whole window; for a segment
    (``plan=basic``) the reference's rows of that segment (a segment's own balance differs from the
    whole's), empty when the reference lacks them (the check then warns: insufficient data)."""
    if inp.segment == ALL:
        return inp.fitted
    field, value = inp.segment.split("=", 1)
    col = c.VERSION if field == "model_version" else field
    ref = inp.reference
    if ref is None or col not in ref:
        return ReferenceBalance({})
    sub = ref[ref[col].astype(str).to_numpy() == value]
    return fit_balance(sub, inp.cfg) if len(sub) >= inp.cfg.class_balance.min_rows else ReferenceBalance({})
