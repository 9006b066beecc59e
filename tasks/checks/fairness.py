"""Fairness: is the model's behaviour the same across the groups of a sensitive attribute?

A sensitive attribute is a logged field that need not be a model input (a business field mapped by
dotted path, e.g. ``customer.region``) or a categorical feature, named by its configured name. Per
window (and segment) and group :func:`group_rates` counts the selection rate (share predicted in the
class), and on labelled rows the true-positive rate, the false-positive rate and the accuracy; for a
regression model the mean prediction and the mean absolute error. A multiclass model is read one class
against the rest. The gaps are fairlearn's: ``demographic_parity_difference`` (max − min selection
rate), ``demographic_parity_ratio`` (min / max: the four-fifths rule at 0.8),
``equal_opportunity_difference`` (TPR gap), ``equalized_odds_difference`` (the larger of the TPR and
FPR gaps), and for regression ``mean_prediction_difference`` and ``mean_absolute_error_difference``.

Statistic apart from decision. :func:`gap_score` computes the gap and a one-sided confidence bound of
the worst pair of groups: a gap FAILS (:func:`decide_gap`) only when the bound itself is beyond the
limit, i.e. the one-sided test "gap > limit" is significant at ``alpha``. So a 1M-row window does not
fail on a gap just below its limit, and a 200-row window does not fail on noise above it. Why these
bounds (closed forms, deterministic, exact enough at the group sizes we allow):

- difference of proportions: Newcombe's hybrid score interval (method 10), built from the two groups'
  Wilson intervals; it keeps its coverage near 0 and 1 where the Wald interval does not;
- ratio of proportions: the log-ratio with its delta-method (Katz) variance ``1/x − 1/n`` per group
  (0.5 added to counts of 0 or n); the ratio fails when the upper bound is below the limit;
- regression: Welch's normal bound on the difference of two means (group sizes ≥ ``min_group_rows``).

Every pair of compared groups is tested (the worst pair is chosen by the data), so the level is
Bonferroni-corrected over the pairs (and over the TPR and FPR halves of equalized odds). Groups with
fewer than ``min_group_rows`` rows (``min_group_labelled`` labelled rows behind a TPR/FPR/MAE) are not
compared: the check warns "insufficient data" for them instead of alarming.

Newcombe (1998), "Interval estimation for the difference between independent proportions", Stat. Med.
17; Katz et al. (1978), "Obtaining confidence intervals for the risk ratio in cohort studies",
Biometrics 34; Hardt, Price & Srebro (2016), "Equality of opportunity in supervised learning".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import FairnessConfig, Kind, ModelConfig, TaskType


@dataclass(frozen=True)
class GapMetric:
    """One gap metric: which per-group rates it compares and how (difference or ratio)."""

    name: str
    rates: tuple[str, ...]  # per-group rates compared (equalized odds: the worse of two)
    ratio: bool  # min / max, failing below the limit; else max − min, failing above it
    regression: bool  # for regression models (else classifiers)
    default: float | None  # default limit (regression: none, limits are in the target's unit)
    labelled: bool  # needs labels


GAPS: dict[str, GapMetric] = {
    g.name: g
    for g in (
        GapMetric("demographic_parity_difference", ("selection_rate",), False, False, 0.1, False),
        GapMetric("demographic_parity_ratio", ("selection_rate",), True, False, 0.8, False),
        GapMetric("equal_opportunity_difference", ("tpr",), False, False, 0.1, True),
        GapMetric("equalized_odds_difference", ("tpr", "fpr"), False, False, 0.1, True),
        GapMetric("accuracy_difference", ("accuracy",), False, False, 0.1, True),
        GapMetric("mean_prediction_difference", ("mean_prediction",), False, True, None, False),
        GapMetric("mean_absolute_error_difference", ("mae",), False, True, None, True),
    )
}
CLASSIFICATION_DEFAULTS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)
PROPORTIONS = frozenset({"selection_rate", "tpr", "fpr", "accuracy"})


def limits(cfg: ModelConfig) -> dict[str, float]:
    """The gap metrics checked for this model and their limits (defaults filled in)."""
    fc = cfg.fairness
    chosen: dict[str, float | None] = (
        dict(fc.metrics) if fc.metrics is not None else dict.fromkeys(CLASSIFICATION_DEFAULTS)
    )
    return {k: float(v if v is not None else GAPS[k].default) for k, v in chosen.items()}  # type: ignore[arg-type]


def validate_fairness(cfg: ModelConfig) -> None:
    """Resolve the section when the config loads: attributes, metric names for the task, limits."""
    fc = cfg.fairness
    if cfg.task is TaskType.NONE:
        raise ValueError("fairness: needs a model task (binary, multiclass or regression)")
    if not fc.attributes:
        raise ValueError(
            "fairness.attributes: name at least one sensitive attribute (a business field or a feature)"
        )
    for a in fc.attributes:
        bf = cfg.business_fields.get(a)
        feat = cfg.features.get(a)
        if bf is None and feat is None:
            known = sorted([*cfg.business_fields, *cfg.categorical])
            raise ValueError(
                f"fairness.attributes: {a!r} is neither a business field nor a feature; map the logged field "
                f"under business_fields (path: ..., type: categorical) or use one of {known}"
            )
        if (bf is not None and bf.type == "numerical") or (feat is not None and feat.type is Kind.NUMERICAL):
            raise ValueError(
                f"fairness.attributes: {a!r} is numerical; groups need a categorical or boolean field "
                "(log a band such as age_band, or map it with type: categorical)"
            )
    regression = cfg.task is TaskType.REGRESSION
    if fc.metrics is None and regression:
        raise ValueError(
            "fairness.metrics: a regression model names its gaps with limits in the target's unit, e.g. "
            "{mean_prediction_difference: 5.0, mean_absolute_error_difference: 2.0}"
        )
    for name, limit in (fc.metrics or {}).items():
        g = GAPS.get(name)
        fit = [k for k, v in GAPS.items() if v.regression == regression]
        if g is None or g.regression != regression:
            raise ValueError(
                f"fairness.metrics: {name!r} is not a {cfg.task.value} fairness metric; use one of {fit}"
            )
        if limit is None and g.default is None:
            raise ValueError(f"fairness.metrics.{name}: give a limit (in the target's unit)")
        if limit is not None and (limit < 0 or (g.ratio and not 0 < limit <= 1)):
            raise ValueError(
                f"fairness.metrics.{name}: limit {limit} out of range ({'(0, 1]' if g.ratio else '≥ 0'})"
            )


# --------------------------------------------------------------------------- statistic


@dataclass(frozen=True)
class Rate:
    """One group's rate: its value, the rows behind it and the per-row variance (p(1−p) for a share)."""

    value: float
    n: int
    var: float


@dataclass(frozen=True)
class GroupRates:
    """The rates of one group of one attribute (multiclass: for class ``cls`` against the rest)."""

    attribute: str
    group: str
    cls: str | None
    n: int  # rows with a prediction
    n_labelled: int
    rates: dict[str, Rate]  # selection_rate, tpr, fpr, accuracy | mean_prediction, mae


@dataclass(frozen=True)
class GapScore:
    """One gap over the compared groups, with the one-sided bound of its worst pair."""

    metric: str
    attribute: str
    cls: str | None
    value: float | None  # as fairlearn defines it, over the compared groups
    bound: (
        float | None
    )  # difference: lower bound of the largest pairwise gap; ratio: upper bound of the smallest
    high: str  # the worst pair: the group with the higher rate ...
    low: str  # ... and the one with the lower rate
    n_groups: int  # groups compared
    small: tuple[str, ...]  # groups too small to compare
    n_pairs: int


def _label(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # boolean business fields arrive as 1.0 / 0.0
    return str(v)


def _classes(seen: list[str], cfg: ModelConfig) -> list[str | None]:
    """The classes read one-vs-rest: binary → the positive class; multiclass → every class (``seen``:
    the labels of the window, sorted, when the config does not name them)."""
    if cfg.task is TaskType.REGRESSION:
        return [None]
    if cfg.task is TaskType.BINARY:
        if cfg.positive_class is not None:
            return [cfg.positive_class]
        if cfg.classes and len(cfg.classes) == 2:
            return [cfg.classes[1]]
        return [seen[1]] if len(seen) >= 2 else seen[:1]
    return list(cfg.classes) if cfg.classes else list(seen)


def group_rates(frame: pd.DataFrame, attribute: str, cfg: ModelConfig) -> tuple[list[GroupRates], int]:
    """Per group (the ``max_groups`` largest) and class: its rates; and the rows without the attribute.

    Rows without a prediction (failed requests) are not counted; TPR, FPR, accuracy and MAE use the
    labelled rows only."""
    fc = cfg.fairness
    if attribute not in frame or c.PREDICTION not in frame or frame.empty:
        return [], 0
    raw = frame[attribute]
    codes, uniques = pd.factorize(raw.to_numpy(), use_na_sentinel=True)
    pred = frame[c.PREDICTION]
    target = frame[c.TARGET] if c.TARGET in frame else pd.Series(np.nan, index=frame.index)
    regression = cfg.task is TaskType.REGRESSION
    if not regression:  # labels as codes, once: every count below is an integer compare
        pcodes, pu = pd.factorize(pred.to_numpy(), use_na_sentinel=True)
        tcodes, tu = pd.factorize(target.to_numpy(), use_na_sentinel=True)
        has_pred, has_target = pcodes >= 0, tcodes >= 0
    else:
        has_pred, has_target = pred.notna().to_numpy(), target.notna().to_numpy()
    n_missing = int(((codes < 0) & has_pred).sum())
    keep = (codes >= 0) & has_pred
    k = len(uniques)
    n_g = np.bincount(codes[keep], minlength=k)
    top = [int(i) for i in np.argsort(-n_g, kind="stable")[: fc.max_groups] if n_g[i] > 0]
    lab = keep & has_target
    n_lab = np.bincount(codes[lab], minlength=k)
    out: list[GroupRates] = []
    if regression:
        y = pd.to_numeric(pred, errors="coerce").to_numpy(np.float64)
        t = pd.to_numeric(target, errors="coerce").to_numpy(np.float64)
        ok = keep & np.isfinite(y)
        mp = _means(codes[ok], y[ok], k)
        okl = lab & np.isfinite(y) & np.isfinite(t)
        ae = np.abs(y - t)
        mae = _means(codes[okl], ae[okl], k)
        for i in top:
            rates = {"mean_prediction": mp[i]}
            if mae[i].n:
                rates["mae"] = mae[i]
            out.append(GroupRates(attribute, _label(uniques[i]), None, int(n_g[i]), int(n_lab[i]), rates))
        return out, n_missing
    # one index of the predicted and true labels (as text) both code sets map into
    names = pd.Index(sorted({str(v) for v in pu} | {str(v) for v in tu}), dtype=object)
    pmap = np.append(names.get_indexer([str(v) for v in pu]), -1)  # code -1 (missing) stays -1
    tmap = np.append(names.get_indexer([str(v) for v in tu]), -1)
    p_id, t_id = pmap[pcodes], tmap[tcodes]
    acc = _shares(codes[lab], p_id[lab] == t_id[lab], k)
    for cls in _classes(list(names), cfg):
        at = names.get_indexer([str(cls)])[0]
        cid = -2 if at < 0 else int(at)  # a class never seen in the window: nothing selected, no positives
        sel = p_id == cid
        pos = t_id == cid
        s_rate = _shares(codes[keep], sel[keep], k)
        tpr = _shares(codes[lab & pos], sel[lab & pos], k)
        fpr = _shares(codes[lab & ~pos], sel[lab & ~pos], k)
        for i in top:
            rates = {"selection_rate": s_rate[i]}
            for name, r in (("tpr", tpr[i]), ("fpr", fpr[i]), ("accuracy", acc[i])):
                if r.n:
                    rates[name] = r
            one = cls if cfg.task is TaskType.MULTICLASS else None
            out.append(GroupRates(attribute, _label(uniques[i]), one, int(n_g[i]), int(n_lab[i]), rates))
    return out, n_missing


def _shares(codes: np.ndarray, hit: np.ndarray, k: int) -> list[Rate]:
    n = np.bincount(codes, minlength=k)
    x = np.bincount(codes, weights=hit.astype(np.float64), minlength=k)
    p = np.divide(x, n, out=np.zeros(k), where=n > 0)
    return [Rate(float(p[i]), int(n[i]), float(p[i] * (1 - p[i]))) for i in range(k)]


def _means(codes: np.ndarray, v: np.ndarray, k: int) -> list[Rate]:
    n = np.bincount(codes, minlength=k)
    s = np.bincount(codes, weights=v, minlength=k)
    mean = np.divide(s, n, out=np.zeros(k), where=n > 0)
    dev = v - mean[codes]
    ss = np.bincount(codes, weights=dev * dev, minlength=k)
    var = np.divide(ss, n - 1, out=np.zeros(k), where=n > 1)
    return [Rate(float(mean[i]), int(n[i]), float(var[i])) for i in range(k)]


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def _lower_difference(hi: Rate, lo: Rate, z: float, proportion: bool) -> float:
    """One-sided lower bound of ``hi − lo`` (Newcombe hybrid score for shares; Welch for means)."""
    d = hi.value - lo.value
    if proportion:
        l1, _ = _wilson(hi.value, hi.n, z)
        _, u2 = _wilson(lo.value, lo.n, z)
        return d - math.sqrt((hi.value - l1) ** 2 + (u2 - lo.value) ** 2)
    return d - z * math.sqrt(hi.var / hi.n + lo.var / lo.n)


def _upper_ratio(hi: Rate, lo: Rate, z: float) -> float:
    """One-sided upper bound of ``lo / hi`` (log ratio, Katz delta-method variance)."""
    xh, xl = hi.value * hi.n, lo.value * lo.n
    nh, nl = float(hi.n), float(lo.n)
    if min(xh, xl) < 0.5 or max(nh - xh, nl - xl) < 0.5:
        xh, xl, nh, nl = xh + 0.5, xl + 0.5, nh + 0.5, nl + 0.5
    se = math.sqrt(max(1 / xh - 1 / nh + 1 / xl - 1 / nl, 0.0))
    return math.exp(math.log((xl / nl) / (xh / nh)) + z * se)


def gap_score(groups: list[GroupRates], metric: str, fc: FairnessConfig) -> GapScore:
    """The gap ``metric`` over the groups big enough to compare, and the worst pair's one-sided bound."""
    g = GAPS[metric]
    first = groups[0]
    need = fc.min_group_labelled if g.labelled else fc.min_group_rows
    small = tuple(x.group for x in groups if x.n < fc.min_group_rows or any(
        (x.rates.get(r) is None or x.rates[r].n < need) for r in g.rates))  # fmt: skip
    ok = [x for x in groups if x.group not in small]
    n_pairs = len(ok) * (len(ok) - 1) // 2
    none = GapScore(metric, first.attribute, first.cls, None, None, "", "", len(ok), small, n_pairs)
    if len(ok) < 2:
        return none
    z = float(stats.norm.isf(fc.alpha / (n_pairs * len(g.rates))))
    value: float | None = None
    bound: float | None = None
    worst = ("", "")
    for r in g.rates:
        vals = [x.rates[r] for x in ok]
        hi_i = int(np.argmax([v.value for v in vals]))
        lo_i = int(np.argmin([v.value for v in vals]))
        hi, lo = vals[hi_i].value, vals[lo_i].value
        if g.ratio:
            v = lo / hi if hi > 0 else 1.0  # nobody selected in any group: parity holds trivially
            b = min(
                _upper_ratio(*(sorted((vals[i], vals[j]), key=lambda q: -q.value)), z)
                for i, j in itertools.combinations(range(len(ok)), 2)
            )
            if value is None or v < value:
                value, worst = v, (ok[hi_i].group, ok[lo_i].group)
            bound = b if bound is None else min(bound, b)
            continue
        v = hi - lo
        pairs = []
        for i, j in itertools.combinations(range(len(ok)), 2):
            a, b_ = (i, j) if vals[i].value >= vals[j].value else (j, i)
            pairs.append((_lower_difference(vals[a], vals[b_], z, r in PROPORTIONS), a, b_))
        best = max(pairs)
        if bound is None or best[0] > bound:
            bound = best[0]
        if value is None or v > value:
            value, worst = v, (ok[hi_i].group, ok[lo_i].group)
    return GapScore(metric, first.attribute, first.cls, value, bound, *worst, len(ok), small, n_pairs)


# --------------------------------------------------------------------------- decision


def _subject(s: GapScore) -> str:
    return s.attribute if s.cls is None else f"{s.attribute};class={s.cls}"


def decide_gap(s: GapScore, limit: float, fc: FairnessConfig, segment: str = ALL) -> CheckResult:
    """FAIL when the bound is beyond the limit (gap > limit significantly); WARN when fewer than two
    groups, or not every group, can be compared (insufficient data); else PASS."""
    g = GAPS[s.metric]
    feature = _subject(s)
    what = s.metric.replace("_", " ")
    small = f"; groups too small to compare: {', '.join(s.small[:5])}" if s.small else ""
    if s.value is None or s.bound is None:
        need = f"{fc.min_group_labelled} labelled" if g.labelled else f"{fc.min_group_rows}"
        msg = f"insufficient data: {s.n_groups} group(s) of {s.attribute} with ≥ {need} rows, need 2{small}"
        return CheckResult(s.metric, Category.FAIRNESS, Status.WARN, None, limit, msg, feature, segment)
    level = f"one-sided {1 - fc.alpha:.0%}, Bonferroni over {s.n_pairs} pair(s)"
    pair = f"{s.high} vs {s.low}"
    if g.ratio:
        failed = s.bound < limit
        stat = f"{what} {s.value:.3g} ({pair}); upper bound {s.bound:.3g} ({level})"
        verdict = f"below {limit:g} significantly" if failed else f"not significantly below {limit:g}"
    else:
        failed = s.bound > limit
        stat = f"{what} {s.value:.3g} ({pair}); lower bound {s.bound:.3g} ({level})"
        verdict = f"above {limit:g} significantly" if failed else f"not significantly above {limit:g}"
    if failed:
        status = Status.FAIL
    elif s.small:
        status = Status.WARN
        verdict = f"insufficient data for some groups; the others {verdict}"
    else:
        status = Status.PASS
    msg = f"{stat}: {verdict}{small}"
    return CheckResult(s.metric, Category.FAIRNESS, status, s.value, limit, msg, feature, segment)


def _group_metrics(x: GroupRates, segment: str) -> list[Metric]:
    """Per-group rows (feature ``attribute=value``, multiclass ``attribute=value;class=k``)."""
    f = f"{x.attribute}={x.group}" + ("" if x.cls is None else f";class={x.cls}")
    r = x.rates
    out = [
        Metric("fairness_rows", float(x.n), f, segment),
        Metric("fairness_labelled", float(x.n_labelled), f, segment),
    ]
    if "selection_rate" in r:
        out.append(Metric("fairness_selection_rate", r["selection_rate"].value, f, segment))
    if "tpr" in r:
        out.append(Metric("fairness_tpr", r["tpr"].value, f, segment))
    if "fpr" in r:
        out.append(Metric("fairness_fpr", r["fpr"].value, f, segment))
    if "accuracy" in r:
        out.append(Metric("fairness_accuracy", r["accuracy"].value, f, segment))
    if "mean_prediction" in r:
        out.append(Metric("fairness_mean_prediction", r["mean_prediction"].value, f, segment))
    if "mae" in r:
        out.append(Metric("fairness_mae", r["mae"].value, f, segment))
    return out


def fairness_checks(frame: pd.DataFrame, cfg: ModelConfig, segment: str = ALL) -> Findings:
    """The family for one window or segment: a check per (gap metric, attribute[, class]), per-group
    rates as metrics, and each gap's bound as ``<metric>_bound``."""
    fc = cfg.fairness
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    chosen = limits(cfg)
    for attr in fc.attributes:
        groups, _ = group_rates(frame, attr, cfg)
        by_cls: dict[str | None, list[GroupRates]] = {}
        for x in groups:
            by_cls.setdefault(x.cls, []).append(x)
            metrics += _group_metrics(x, segment)
        if not groups:
            for name, limit in chosen.items():
                msg = f"insufficient data: no rows with {attr} and a prediction"
                checks.append(
                    CheckResult(name, Category.FAIRNESS, Status.WARN, None, limit, msg, attr, segment)
                )
            continue
        for cls_groups in by_cls.values():
            for name, limit in chosen.items():
                s = gap_score(cls_groups, name, fc)
                checks.append(decide_gap(s, limit, fc, segment))
                if s.bound is not None and math.isfinite(s.bound):
                    metrics.append(Metric(f"{name}_bound", s.bound, _subject(s), segment))
    return checks, metrics


@method(
    "group_gaps",
    category=Category.FAIRNESS,
    config="fairness",
    example={"attributes": ["group"]},
    labels=True,
)
def group_gaps(inp: FamilyInput) -> Findings:
    """Gaps between the groups of each sensitive attribute (selection rate, TPR, FPR; regression: mean
    prediction and error), failing only when significantly beyond their limits."""
    return fairness_checks(inp.frame, inp.cfg, segment=inp.segment)
