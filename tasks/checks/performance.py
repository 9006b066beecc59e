"""Model-quality checks of one window: metrics on its labelled rows, compared with the reference's own.

:func:`model_scores` computes the metric dict (also used by :func:`reference_performance` to fill
``Profile.performance``); :func:`performance_checks` turns it into checks and metrics. Every value equals
scikit-learn's for the same rows (see ``tests/checks/test_performance.py``), but is computed from one
integer confusion matrix / one sort per column instead of calling ``sklearn.metrics`` per metric, which
sorts and label-encodes object arrays again on every call (seconds at 1M rows instead of milliseconds).

===========  ================================================  =====================================
metric       classification (binary / multiclass)              scikit-learn equivalent
===========  ================================================  =====================================
accuracy     share of exact matches                            ``accuracy_score``
precision    binary: of the positive class; multiclass: macro  ``precision_score(zero_division=0)``
recall       idem                                              ``recall_score(zero_division=0)``
f1           idem                                              ``f1_score(zero_division=0)``
roc_auc      binary: from ``__score`` = p(positive);           ``roc_auc_score``
             multiclass: one-vs-rest macro over ``__proba::*``  ``roc_auc_score(multi_class="ovr")``
log_loss     from the same probabilities, clipped to [ε, 1-ε]  ``log_loss``
mae, rmse    regression                                        ``mean_absolute_error``, ``root_mean…``
mape         regression, rows with a zero target skipped       ``mean_absolute_percentage_error``
r2           regression                                        ``r2_score``
===========  ================================================  =====================================

Where scikit-learn would return a conventional 0 or NaN, the metric is *undefined* here: omitted, with a
warning check ``<metric>_undefined`` giving the reason. Binary: precision without positive predictions,
recall without positive labels, roc_auc with a single class. Multiclass macro averages run over the
labels present in the window (truth ∪ predictions, scikit-learn's default), with zero_division=0 per
class; one-vs-rest roc_auc averages over the classes that have both positive and negative rows (sklearn
gives NaN when a class is absent). Regression: r2 with a constant target (sklearn's "force_finite" 0/1
would be a misleading comparison), mape when every target is zero. Rows whose prediction (or the
probability used) is missing or non-finite are left out of that metric.

Checks:

- ``model_quality``: warn "insufficient labels" below ``performance.min_labelled`` (and then no other
  metric check); otherwise pass with a one-line summary.
- ``label_coverage``: warn below ``performance.min_label_coverage`` (only when it is set).
- ``<metric>_vs_reference``: fail when worse than ``Profile.performance`` by more than
  ``max_degradation``, relative to ``|reference|`` and direction-aware. **r2 uses the absolute
  difference** (``reference - max_degradation``): it can be zero or negative, where a ratio is meaningless.
- ``<metric>_threshold``: the absolute ``performance.thresholds`` (a minimum for scores, a maximum for
  errors); an unknown metric name is an ``error`` check listing the known ones.
- ``<metric>_undefined``: warn, see above.

Metrics: every computed metric by name, ``n_labelled`` and ``label_coverage`` (labelled / rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import ModelConfig, TaskType
from mlmon.tasks.profile import CategoricalProfile, Profile

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape"})
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
ABSOLUTE_DEGRADATION = frozenset({"r2"})  # can be ≤ 0: max_degradation is a difference, not a ratio

Found = tuple[list[CheckResult], list[Metric]]


@dataclass(frozen=True)
class Scores:
    """Model-quality metrics of some labelled rows."""

    n: int  # labelled rows with a usable prediction
    values: dict[str, float] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is not computed
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- entry points


def performance_checks(frame: pd.DataFrame, profile: Profile, cfg: ModelConfig, segment: str = ALL) -> Found:
    """Model-quality checks of one window (or one segment) on its rows with a non-null ``__target``."""
    if cfg.task is TaskType.NONE:
        return [], []
    perf = cfg.performance
    rows = len(frame)
    n_labelled = int(frame[c.TARGET].notna().sum()) if c.TARGET in frame else 0
    checks: list[CheckResult] = []
    metrics = [Metric("n_labelled", float(n_labelled), "", segment)]
    if rows:
        metrics.append(Metric("label_coverage", n_labelled / rows, "", segment))
        if perf.min_label_coverage > 0:
            checks.append(label_coverage(n_labelled, rows, perf.min_label_coverage, segment))

    scores = model_scores(frame, cfg, known_labels=_profiled_labels(profile))
    if scores.n < perf.min_labelled:
        message = f"insufficient labels: {scores.n:,} < {perf.min_labelled:,} (min_labelled)"
        checks.append(_check("model_quality", Status.WARN, scores.n, perf.min_labelled, message, segment))
        return checks, metrics

    summary = ", ".join(f"{k} {v:.4g}" for k, v in scores.values.items()) or "no metric computed"
    message = "; ".join((f"{scores.n:,} labelled rows: {summary}", *scores.notes))
    checks.append(_check("model_quality", Status.PASS, scores.n, perf.min_labelled, message, segment))
    metrics += [Metric(name, value, "", segment) for name, value in scores.values.items()]
    for name, reason in scores.undefined.items():
        checks.append(
            _check(f"{name}_undefined", Status.WARN, None, None, f"{name} undefined: {reason}", segment)
        )
    resamples: list[Resamples] = []  # drawn once, for the first failure, shared by every metric
    for name, value in scores.values.items():
        ref = profile.performance.get(name)
        if ref is not None and np.isfinite(ref):
            check = vs_reference(name, value, float(ref), perf.max_degradation, segment)
            if check.status is Status.FAIL and scores.n < BOOTSTRAP_MAX_ROWS:
                if not resamples:
                    resamples.append(Resamples.draw(frame[frame[c.TARGET].notna()]))
                check = _unless_noise(check, name, resamples[0], cfg, profile)
            checks.append(check)
    for name, limit in perf.thresholds.items():
        check = threshold(name, scores, limit, cfg.task, segment)
        if check is not None:
            checks.append(check)
    return checks, metrics


BOOTSTRAP_MAX_ROWS = 50_000  # above this the sampling error of every metric is negligible
BOOTSTRAP_ROUNDS = 100
NOISE_Z = 2.33  # one-sided 1 %: the same order of false-alarm control as the drift rule


def _unless_noise(
    check: CheckResult, name: str, resamples: Resamples, cfg: ModelConfig, profile: Profile
) -> CheckResult:
    """Keep a degradation failure only when it exceeds the metric's sampling noise at this many labels.

    Like the drift rule, a verdict must not swing with sample size: on a few hundred labels a metric
    moves by several percent by chance. The standard error comes from a seeded bootstrap of the
    window's labelled rows; the failure stands when ``value`` is beyond the limit by more than
    ``NOISE_Z`` of them (the message prints that band). Only the window is resampled: the reference is
    the fixed baseline the limit is drawn from (its own noise would widen the band further). On 6,040
    labelled rows of the demo model the bootstrap standard error of log loss is 0.0069 against the
    closed form sd/√n = 0.0071 (``tests/checks/test_performance.py``).
    """
    labelled = resamples.frame
    values = resamples.values(name, cfg, _profiled_labels(profile))
    if len(values) < BOOTSTRAP_ROUNDS // 2:
        return check
    se = float(np.std(values, ddof=1))
    band = NOISE_Z * se  # the margin the rule uses, printed as such (not the bare standard error)
    assert check.value is not None and check.threshold is not None
    gap = abs(check.value - check.threshold)
    noise = f"±{band:.2g} = {NOISE_Z:g} standard errors of {se:.2g} at {len(labelled):,} labels"
    if gap > band:
        return replace(
            check, message=f"{check.message}; beyond sampling noise ({gap:.2g} past the limit > {noise})"
        )
    return replace(
        check,
        status=Status.PASS,
        message=f"{check.message}, but within sampling noise ({gap:.2g} past the limit ≤ {noise}): not flagged",
    )


@dataclass(frozen=True)
class Resamples:
    """:data:`BOOTSTRAP_ROUNDS` seeded resamples of the labelled rows, drawn once per window or segment.

    A resample is a row of multiplicities (how often each row was drawn): every metric is then a
    weighted count or sum over the rows encoded once, with no resampled frame built. The draws are the
    ones the per-resample computation used (``default_rng(0)``, one ``integers`` call per round).
    """

    frame: pd.DataFrame
    draws: tuple[np.ndarray, ...]
    weights: np.ndarray  # rounds × rows

    @classmethod
    def draw(cls, labelled: pd.DataFrame) -> Resamples:
        rng = np.random.default_rng(0)
        n = len(labelled)
        draws = tuple(rng.integers(0, n, n) for _ in range(BOOTSTRAP_ROUNDS))
        flat = (np.arange(len(draws), dtype=np.int64)[:, None] * n + np.stack(draws)).ravel()
        weights = np.bincount(flat, minlength=len(draws) * n).reshape(len(draws), n)
        return cls(labelled, draws, weights)

    def values(self, name: str, cfg: ModelConfig, known: tuple[object, ...] = ()) -> list[float]:
        """The metric on every resample (undefined ones left out), equal to ``model_scores`` on each
        resampled frame to rounding. Metrics without a weighted form here (multiclass roc_auc and
        log_loss, a binary model with no configured positive class) take the per-resample path."""
        fast = _weighted_metric(name, self.frame, cfg, self.weights)
        if fast is not None:
            return [float(v) for v in fast if np.isfinite(v)]
        out = []
        for idx in self.draws:
            v = model_scores(self.frame.iloc[idx], cfg, known_labels=known).values.get(name)
            if v is not None and np.isfinite(v):
                out.append(v)
        return out


def bootstrap_values(
    name: str, labelled: pd.DataFrame, cfg: ModelConfig, known: tuple[object, ...] = ()
) -> list[float]:
    """The metric ``name`` on :data:`BOOTSTRAP_ROUNDS` seeded resamples of the labelled rows."""
    return Resamples.draw(labelled).values(name, cfg, known)


def _weighted_metric(name: str, frame: pd.DataFrame, cfg: ModelConfig, w: np.ndarray) -> np.ndarray | None:
    """``name`` for every row of weights ``w`` (NaN where undefined), or None without a weighted form."""
    if c.TARGET not in frame or c.PREDICTION not in frame:
        return None
    if cfg.task is TaskType.REGRESSION:
        return _weighted_regression(name, frame, w)
    target, prediction = frame[c.TARGET], frame[c.PREDICTION]
    usable = (target.notna() & prediction.notna()).to_numpy()
    y_true = target.to_numpy(dtype=object)[usable]
    y_pred = prediction.to_numpy(dtype=object)[usable]
    codes, uniques = pd.factorize(np.concatenate([y_true, y_pred]))
    labels = _sorted(uniques)
    codes = pd.Index(labels, dtype=object).get_indexer(uniques)[codes]
    m, k = int(usable.sum()), len(labels)
    t, p, wu = codes[:m], codes[m:], w[:, usable]
    total = wu.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "accuracy":
            return np.where(total > 0, (wu * (t == p)).sum(axis=1) / total, np.nan)
        if cfg.task is TaskType.BINARY:
            if cfg.positive_class is None and not (cfg.classes and len(cfg.classes) == 2):
                return None  # the positive class would depend on the labels each resample happens to hold
            return _weighted_binary(name, frame, cfg, usable, labels, t, p, wu)
        if name not in ("precision", "recall", "f1"):
            return None
        onehot = np.zeros((m, k * k))
        onehot[np.arange(m), t * k + p] = 1.0
        cm = (wu.astype(np.float64) @ onehot).reshape(-1, k, k)  # exact: integer counts far below 2**53
        tp = np.diagonal(cm, axis1=1, axis2=2)
        pred_sum, true_sum = cm.sum(axis=1), cm.sum(axis=2)
        present = (pred_sum + true_sum) > 0  # the labels this resample holds (truth ∪ predictions)
        if name == "precision":
            per = np.divide(tp, pred_sum, out=np.zeros_like(tp), where=pred_sum > 0)
        elif name == "recall":
            per = np.divide(tp, true_sum, out=np.zeros_like(tp), where=true_sum > 0)
        else:
            denom = true_sum + pred_sum
            per = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        held = present.sum(axis=1)
        return np.where(held > 0, np.where(present, per, 0.0).sum(axis=1) / np.maximum(held, 1), np.nan)


def _weighted_binary(
    name: str,
    frame: pd.DataFrame,
    cfg: ModelConfig,
    usable: np.ndarray,
    labels: list[object],
    t: np.ndarray,
    p: np.ndarray,
    wu: np.ndarray,
) -> np.ndarray | None:
    pos = _positive(cfg, labels)
    i = labels.index(pos) if pos in labels else -1
    is_pos = t == i
    if name in ("precision", "recall", "f1"):
        tp = (wu * (is_pos & (p == i))).sum(axis=1).astype(np.float64)
        ps = (wu * (p == i)).sum(axis=1).astype(np.float64)
        ts = (wu * is_pos).sum(axis=1).astype(np.float64)
        if name == "precision":
            return np.where(ps > 0, tp / ps, np.nan)
        if name == "recall":
            return np.where(ts > 0, tp / ts, np.nan)
        return np.where(ps + ts > 0, 2.0 * tp / (ts + ps), np.nan)
    if name not in ("roc_auc", "log_loss") or c.SCORE not in frame:
        return None
    score = frame[c.SCORE].to_numpy(dtype=np.float64, na_value=np.nan)[usable]
    ok = np.isfinite(score)
    score, is_pos, wo = score[ok], is_pos[ok], wu[:, ok]
    held = wo.sum(axis=1)
    if name == "log_loss":
        eps = np.finfo(np.float64).eps
        loss = -np.log(np.clip(np.where(is_pos, score, 1.0 - score), eps, 1 - eps))
        return np.where(held > 0, (wo * loss).sum(axis=1) / np.maximum(held, 1), np.nan)
    # Mann–Whitney U with multiplicities: per distinct score, positives × (negatives below + ½ equal)
    order = np.argsort(score, kind="stable")
    s_sorted = score[order]
    starts = np.flatnonzero(np.concatenate(([True], s_sorted[1:] != s_sorted[:-1])))
    wpos = np.add.reduceat(wo[:, order] * is_pos[order], starts, axis=1)
    wneg = np.add.reduceat(wo[:, order] * ~is_pos[order], starts, axis=1)
    below = np.cumsum(wneg, axis=1) - wneg
    twice_u = (wpos * (2 * below + wneg)).sum(axis=1)
    n_pos, n_neg = wpos.sum(axis=1), wneg.sum(axis=1)
    both = (n_pos > 0) & (n_neg > 0)
    return np.where(both, twice_u / np.maximum(2 * n_pos * n_neg, 1), np.nan)


def _weighted_regression(name: str, frame: pd.DataFrame, w: np.ndarray) -> np.ndarray | None:
    y_true = pd.to_numeric(frame[c.TARGET], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    y_pred = pd.to_numeric(frame[c.PREDICTION], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    y, e, wo = y_true[ok], y_pred[ok] - y_true[ok], w[:, ok].astype(np.float64)
    held = wo.sum(axis=1)
    safe = np.maximum(held, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "mae":
            return np.where(held > 0, (wo @ np.abs(e)) / safe, np.nan)
        if name == "rmse":
            return np.where(held > 0, np.sqrt((wo @ (e * e)) / safe), np.nan)
        if name == "mape":
            nz = y != 0
            wz = wo[:, nz]
            eps = np.finfo(np.float64).eps
            held_nz = wz.sum(axis=1)
            return np.where(
                held_nz > 0,
                (wz @ (np.abs(e[nz]) / np.maximum(np.abs(y[nz]), eps))) / np.maximum(held_nz, 1),
                np.nan,
            )
        if name == "r2":
            mean = (wo @ y) / safe
            ss_res = wo @ (e * e)
            ss_tot = (wo * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
            drawn = wo > 0
            lo = np.where(drawn, y[None, :], np.inf).min(axis=1)
            hi = np.where(drawn, y[None, :], -np.inf).max(axis=1)
            return np.where((held >= 2) & (lo < hi), 1.0 - ss_res / ss_tot, np.nan)
    return None


def reference_performance(frame: pd.DataFrame, cfg: ModelConfig) -> dict[str, float]:
    """The reference's own model-quality metrics (fills ``Profile.performance``); ``{}`` without labels."""
    return model_scores(frame, cfg).values


def model_scores(frame: pd.DataFrame, cfg: ModelConfig, known_labels: Iterable[object] = ()) -> Scores:
    """The metrics of the task on the rows of ``frame`` with both a target and a prediction.

    ``known_labels`` (e.g. the reference's predicted classes) only help choose the positive class of a
    binary model when neither ``positive_class`` nor ``classes`` is configured.
    """
    if cfg.task is TaskType.NONE or c.TARGET not in frame or c.PREDICTION not in frame:
        return Scores(n=0)
    if cfg.task is TaskType.REGRESSION:
        return _regression(frame)
    return _classification(frame, cfg, known_labels)


# --------------------------------------------------------------------------- checks


def label_coverage(n_labelled: int, rows: int, minimum: float, segment: str = ALL) -> CheckResult:
    """Warn when a smaller share of rows than ``min_label_coverage`` carries a label."""
    coverage = n_labelled / rows
    low = coverage < minimum
    op = "<" if low else "≥"
    message = f"{coverage:.1%} of {rows:,} rows labelled ({n_labelled:,}) {op} {minimum:.1%} expected"
    return _check("label_coverage", Status.WARN if low else Status.PASS, coverage, minimum, message, segment)


def vs_reference(
    name: str, value: float, reference: float, max_degradation: float, segment: str = ALL
) -> CheckResult:
    """Fail when ``value`` is worse than ``reference`` by more than ``max_degradation``.

    Relative to ``|reference|`` (direction-aware); absolute for r2. ``threshold`` is the limit value.

    >>> vs_reference("f1", 0.70, 0.80, 0.1).status.value
    'fail'
    >>> vs_reference("mae", 1.05, 1.0, 0.1).status.value
    'pass'
    >>> vs_reference("r2", -0.05, 0.02, 0.1).threshold
    -0.08
    """
    higher = name in HIGHER_IS_BETTER
    if name in ABSOLUTE_DEGRADATION:
        margin, how = max_degradation, f"{max_degradation:g} absolute"
    else:
        margin, how = max_degradation * abs(reference), f"{max_degradation:.0%}"
    limit = reference - margin if higher else reference + margin
    failed = _worse(value, limit, higher)
    sign = "−" if higher else "+"
    op = ("<" if higher else ">") if failed else ("≥" if higher else "≤")
    message = f"{name}: {value:.4g} {op} {limit:.4g} (reference {reference:.4g} {sign} {how})"
    return _check(
        f"{name}_vs_reference", Status.FAIL if failed else Status.PASS, value, limit, message, segment
    )


def threshold(
    name: str, scores: Scores, limit: float, task: TaskType, segment: str = ALL
) -> CheckResult | None:
    """The absolute limit of ``performance.thresholds``: minimum for scores, maximum for errors.

    ``None`` when the metric is undefined in this window (its ``<metric>_undefined`` warning says why).
    """
    check = f"{name}_threshold"
    known = REGRESSION_METRICS if task is TaskType.REGRESSION else CLASSIFICATION_METRICS
    if name not in known:
        what = "unknown metric" if name not in HIGHER_IS_BETTER | LOWER_IS_BETTER else f"not a {task} metric"
        message = f"performance.thresholds: {name!r} is {what}; use one of {', '.join(known)}"
        return _check(check, Status.ERROR, None, limit, message, segment)
    if name in scores.undefined:
        return None
    value = scores.values.get(name)
    if value is None:
        message = f"{name}: not computed in this window (no probabilities logged?)"
        return _check(check, Status.WARN, None, limit, message, segment)
    higher = name in HIGHER_IS_BETTER
    failed = _worse(value, limit, higher)
    op = ("<" if higher else ">") if failed else ("≥" if higher else "≤")
    message = f"{name}: {value:.4g} {op} {limit:g} {'minimum' if higher else 'maximum'}"
    return _check(check, Status.FAIL if failed else Status.PASS, value, limit, message, segment)


# --------------------------------------------------------------------------- classification


def _classification(frame: pd.DataFrame, cfg: ModelConfig, known_labels: Iterable[object]) -> Scores:
    target, prediction = frame[c.TARGET], frame[c.PREDICTION]
    usable = (target.notna() & prediction.notna()).to_numpy()
    n = int(usable.sum())
    if n == 0:
        return Scores(n=0)
    y_true = target.to_numpy(dtype=object)[usable]
    y_pred = prediction.to_numpy(dtype=object)[usable]
    # One hash pass encodes both columns; labels are then put in sorted order like scikit-learn's.
    codes, uniques = pd.factorize(np.concatenate([y_true, y_pred]))
    labels = _sorted(uniques)
    rank = pd.Index(labels, dtype=object).get_indexer(uniques)
    codes = rank[codes]
    k = len(labels)
    t, p = codes[:n], codes[n:]
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    undefined: dict[str, str] = {}
    if cfg.task is TaskType.BINARY:
        pos = _positive(cfg, [*labels, *known_labels])
        if pos is None:
            reason = "positive class unknown: set positive_class (only one label seen)"
            undefined.update(dict.fromkeys(("precision", "recall", "f1", "roc_auc", "log_loss"), reason))
            return Scores(n=n, values={"accuracy": float(np.trace(cm) / n)}, undefined=undefined)
        values = confusion_scores(cm, labels, pos, undefined)
        i = labels.index(pos) if pos in labels else None
        is_pos = t == i if i is not None else np.zeros(n, dtype=bool)
        if c.SCORE in frame:
            _binary_probabilities(
                frame[c.SCORE].to_numpy(dtype=np.float64, na_value=np.nan)[usable], is_pos, values, undefined
            )
    else:
        values = confusion_scores(cm, labels, None, undefined)
        _multiclass_probabilities(frame, usable, y_true, values, undefined)
    return Scores(n=n, values=values, undefined=undefined)


def confusion_scores(
    cm: np.ndarray, labels: list[Any], positive: Any, undefined: dict[str, str]
) -> dict[str, float]:
    """Accuracy, precision, recall and f1 from a confusion matrix (rows: true labels, columns: predicted,
    both in ``labels`` order): of ``positive`` for a binary model, macro averages over the labels present
    (zero_division=0 per label, scikit-learn's definitions) when ``positive`` is None. The one definition
    of the in-memory path and of the sharded path's merged counts; a score that is undefined gets its
    reason in ``undefined`` instead."""
    tp = np.diag(cm)
    pred_sum, true_sum = cm.sum(axis=0), cm.sum(axis=1)
    values = {"accuracy": float(tp.sum() / cm.sum())}
    if positive is not None:
        i = labels.index(positive) if positive in labels else None
        tp_, ps, ts = (int(tp[i]), int(pred_sum[i]), int(true_sum[i])) if i is not None else (0, 0, 0)
        if ps:
            values["precision"] = tp_ / ps
        else:
            undefined["precision"] = f"no row predicted as the positive class {_short(positive)}"
        if ts:
            values["recall"] = tp_ / ts
        else:
            undefined["recall"] = f"no row labelled with the positive class {_short(positive)}"
        if ps or ts:
            values["f1"] = 2.0 * tp_ / (float(ts) + float(ps))
        else:
            undefined["f1"] = f"positive class {_short(positive)} neither labelled nor predicted"
        return values
    k = len(labels)
    precision = np.divide(tp, pred_sum, out=np.zeros(k), where=pred_sum > 0)
    recall = np.divide(tp, true_sum, out=np.zeros(k), where=true_sum > 0)
    denom = true_sum.astype(np.float64) + pred_sum.astype(np.float64)
    f1 = np.divide(2.0 * tp.astype(np.float64), denom, out=np.zeros(k), where=denom > 0)
    return values | {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def _binary_probabilities(
    score: np.ndarray, is_pos: np.ndarray, values: dict[str, float], undefined: dict[str, str]
) -> None:
    ok = np.isfinite(score)
    if not ok.any():
        return
    score, is_pos = score[ok], is_pos[ok]
    n_pos = int(is_pos.sum())
    if 0 < n_pos < is_pos.size:
        values["roc_auc"] = _roc_auc(is_pos, score)
    else:
        undefined["roc_auc"] = "only one class among labelled rows"
    values["log_loss"] = _log_loss(np.where(is_pos, score, 1.0 - score))


def _multiclass_probabilities(
    frame: pd.DataFrame,
    usable: np.ndarray,
    y_true: np.ndarray,
    values: dict[str, float],
    undefined: dict[str, str],
) -> None:
    columns = {
        col[len(c.PROBA_PREFIX) :]: col for col in frame.columns if str(col).startswith(c.PROBA_PREFIX)
    }
    if not columns:
        return
    classes = _sorted(list(columns))
    probs = [frame[columns[k]].to_numpy(dtype=np.float64, na_value=np.nan)[usable] for k in classes]
    ok = np.logical_and.reduce([np.isfinite(p) for p in probs])
    if not ok.any():
        return
    truth = y_true
    if not ok.all():
        probs, truth = [p[ok] for p in probs], y_true[ok]
    index = pd.Index(classes, dtype=object).get_indexer(truth)

    aucs = []
    p_true = np.zeros(index.size)
    for j, p in enumerate(probs):
        is_pos = index == j
        p_true[is_pos] = p[is_pos]
        if 0 < int(is_pos.sum()) < is_pos.size:
            aucs.append(_roc_auc(is_pos, p))
    if aucs:
        values["roc_auc"] = float(np.mean(aucs))
    else:
        undefined["roc_auc"] = "only one class among labelled rows"

    if (index < 0).any():
        missing = _sorted(pd.unique(truth[index < 0]))
        listed = ", ".join(_short(x) for x in missing[:5])
        undefined["log_loss"] = f"labels without a probability column: {listed}"
    else:
        values["log_loss"] = _log_loss(p_true)


def _roc_auc(is_pos: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann–Whitney U statistic, ties counted ½ (= ``roc_auc_score``).

    For each positive, count the negatives scored below it (plus ½ per tie) with two binary searches in
    the sorted negative scores. Counts are exact integers, so the only rounding is the final division
    (scikit-learn integrates the ROC curve with the trapezoidal rule; the two agree to ~1e-15).
    """
    neg = np.sort(score[~is_pos])
    pos = np.sort(score[is_pos])  # sorted queries keep the binary searches cache-friendly
    twice_u = int(np.searchsorted(neg, pos, "left").sum()) + int(np.searchsorted(neg, pos, "right").sum())
    return twice_u / (2 * pos.size * neg.size)


def _log_loss(p_true: np.ndarray) -> float:
    """Mean negative log-probability of the true class, clipped to [ε, 1-ε] like ``log_loss``."""
    eps = np.finfo(np.float64).eps
    return float(np.mean(-np.log(np.clip(p_true, eps, 1 - eps))))


def _positive(cfg: ModelConfig, labels: list[object]) -> object | None:
    """``positive_class``, else ``classes[1]``, else the second of the sorted labels seen."""
    if cfg.positive_class is not None:
        return cfg.positive_class
    if cfg.classes and len(cfg.classes) == 2:
        return cfg.classes[1]
    distinct = _sorted(pd.unique(np.asarray(labels, dtype=object)))
    return distinct[1] if len(distinct) >= 2 else None


def _profiled_labels(profile: Profile) -> tuple[object, ...]:
    found: list[object] = []
    for col in (c.PREDICTION, c.TARGET):
        prof = profile.columns.get(col)
        if isinstance(prof, CategoricalProfile):
            found += prof.categories
    return tuple(found)


# --------------------------------------------------------------------------- regression


def _regression(frame: pd.DataFrame) -> Scores:
    y_true = pd.to_numeric(frame[c.TARGET], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    y_pred = pd.to_numeric(frame[c.PREDICTION], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    y_true, y_pred = y_true[ok], y_pred[ok]
    n = int(y_true.size)
    if n == 0:
        return Scores(n=0)
    values = {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
    }
    undefined: dict[str, str] = {}
    notes: list[str] = []
    nonzero = y_true != 0
    n_zero = n - int(nonzero.sum())
    if n_zero < n:
        values["mape"] = float(skm.mean_absolute_percentage_error(y_true[nonzero], y_pred[nonzero]))
        if n_zero:
            notes.append(f"mape skips {n_zero:,} rows with a zero target")
    else:
        undefined["mape"] = "every target is zero"
    if n < 2:
        undefined["r2"] = "fewer than 2 labelled rows"
    elif np.all(y_true == y_true[0]):
        undefined["r2"] = f"constant target ({y_true[0]:g})"
    else:
        values["r2"] = float(skm.r2_score(y_true, y_pred))
    return Scores(n=n, values=values, undefined=undefined, notes=tuple(notes))


# --------------------------------------------------------------------------- small pieces


def _check(
    name: str, status: Status, value: float | None, threshold: float | None, message: str, segment: str
) -> CheckResult:
    value = None if value is None else float(value)
    return CheckResult(name, Category.PERFORMANCE, status, value, threshold, message, "", segment)


def _worse(value: float, limit: float, higher_is_better: bool) -> bool:
    """Strictly beyond ``limit``; a value at the limit up to float rounding (0.3 * 1.1 ≠ 0.33) passes."""
    slack = 1e-12 * max(1.0, abs(limit))
    return value < limit - slack if higher_is_better else value > limit + slack


def _sorted(values: Iterable[object]) -> list[object]:
    """Sorted like scikit-learn's label order; mixed types (bad data) fall back to their text."""
    items = list(values)
    try:
        return sorted(items)  # type: ignore[type-var]
    except TypeError:
        return sorted(items, key=str)


def _short(value: object) -> str:
    text = str(value)
    return repr(text[:40] + "…" if len(text) > 40 else text)
