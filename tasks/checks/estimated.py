"""Estimated performance: a classifier's quality per window *before* its labels arrive (CBPE).

Confidence-based performance estimation, as NannyML does it: when a classifier's probabilities are
calibrated, the expected confusion matrix of a window follows from them alone. A row predicted positive
with calibrated p(positive) = 0.8 adds 0.8 of a true positive and 0.2 of a false positive; summed over
the window this gives the expected accuracy, precision, recall and F1, and weighting every
(positive, negative) pair of rows by p_i·(1 − p_j) gives the expected ROC AUC (scores are ranked by the
raw logged score, as the realized AUC is). Multiclass: the same one-vs-rest per class, macro-averaged
(accuracy = mean calibrated probability of the predicted class).

Fit once (:func:`fit_cbpe`): on the labelled reference rows, one isotonic calibrator per class score,
kept only when the reference shows miscalibration (``calibration: auto``: the isotonic map lowers the
held-out expected calibration error in a seeded 5-fold cross-fit, NannyML's rule); then the reference's
chunk statistics: the estimate on the whole reference (what a window is compared with) and, over
``resamples`` seeded bootstrap chunks of ``resample_rows`` labelled rows, the standard deviation of the
realized metric (σ_real, its sampling error) and of the estimate (σ_est). Both scale as 1/√n to a
window of n rows (NannyML's sampling error, computed by bootstrap instead of its closed forms).

Statistic apart from decision: :func:`estimate_window` computes the estimates and their bands
(estimate ± ``band_sigmas``·√(σ_real(n)² + σ_real(N_lab)²): where the realized value is expected
when the labels come; the second term is the error the calibration learned from N_lab reference labels
carries into every window);
:func:`decide_estimate` fails a metric when its estimate is below the reference's estimate by more than
``alert_sigmas``·σ_drop (σ_drop = √(σ_est(n)² + σ_est(N_ref)²), the null noise of the difference) AND by
at least ``min_drop`` (so a 1M-row window does not alarm on a real but irrelevant 0.1 point), and warns
"insufficient data" below ``min_rows``.

What it cannot see: CBPE assumes p(label | inputs) is what it was on the reference. A concept drift
with unchanged inputs (the same customers churn more) leaves every estimate where it was; only the
realized metrics (the performance checks, once labels arrive) show it.

References: NannyML, "Confidence-based Performance Estimation",
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html; Zadrozny & Elkan
(2002), "Transforming classifier scores into accurate multiclass probability estimates", KDD.

>>> import numpy as np
>>> p = np.array([0.9, 0.8, 0.3, 0.1]); y_hat = p >= 0.5
>>> est = binary_metrics(p, p, y_hat)
>>> round(est["accuracy"], 3), round(est["precision"], 3)  # (0.9+0.8+0.7+0.9)/4, (0.9+0.8)/2
(0.825, 0.85)
>>> binary_metrics(np.array([1.0, 0, 1, 0]), p, y_hat)["roc_auc"]  # labels as p: the realized AUC, 3 of 4 pairs
0.75
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import EstimatedPerformanceConfig, ModelConfig, TaskType

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
"""What CBPE estimates (stored as ``estimated_<metric>``; the realized value keeps the performance
family's name ``<metric>``, so both sit in ``mlmon.metrics`` for the same window)."""

ECE_BINS = 10
CV_FOLDS = 5


class Skip(StrEnum):
    """Why a window (or the whole family) gets no estimate: the reason code behind the message."""

    NOT_A_CLASSIFIER = "not_a_classifier"
    NO_PROBABILITIES = "no_probabilities"  # the logs carry no __score / __proba:: columns
    NO_REFERENCE_LABELS = "no_reference_labels"  # nothing to calibrate on
    INSUFFICIENT_DATA = "insufficient_data"  # fewer usable rows than min_rows


# --------------------------------------------------------------------------- fitted state


@dataclass(frozen=True)
class Calibrator:
    """An isotonic map stored as its breakpoints (``np.interp`` between them, clipped at the ends: the
    same function as ``IsotonicRegression(out_of_bounds="clip").predict``), picklable and tiny."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(p, self.x, self.y)


@dataclass(frozen=True)
class ChunkStats:
    """The reference's statistics a window is compared with (the whole reference or one segment)."""

    n_rows: int  # usable reference rows (finite probabilities and a prediction)
    n_labelled: int
    reference: dict[str, float]  # the estimate on the whole reference
    realized: dict[str, float]  # the realized metric on its labelled rows
    sigma_est: dict[str, float]  # std of the estimate over bootstrap chunks of chunk_rows
    sigma_real: dict[str, float]  # std of the realized metric over the same chunks
    chunk_rows: int


@dataclass(frozen=True)
class CBPEModel:
    """Everything :func:`fit_cbpe` learned; ``skip`` set when no window can be estimated."""

    task: TaskType
    classes: tuple[str, ...]  # multiclass: the probability columns' classes; binary: (positive,)
    calibrators: tuple[Calibrator | None, ...]  # one per class score (binary: one); None = identity
    whole: ChunkStats | None
    segments: dict[str, ChunkStats] = field(default_factory=dict)
    skip: Skip | None = None
    detail: str = ""


@dataclass(frozen=True)
class Estimate:
    """One estimated metric of one window, with its band and the reference it is judged against."""

    metric: str
    value: float
    lower: float  # value − band_sigmas·√(σ_real(n)² + σ_real(N_lab)²), clipped to [0, 1]
    upper: float
    reference: float  # the estimate on the reference (segment's own when it has enough rows)
    sigma_drop: float  # null noise of (reference − value) at this window's size
    n: int


@dataclass(frozen=True)
class WindowEstimate:
    n: int  # usable rows of the window
    n_window: int
    estimates: tuple[Estimate, ...]
    skip: Skip | None = None
    detail: str = ""
    calibrated: bool = False


# --------------------------------------------------------------------------- the formulas


def binary_metrics(p: np.ndarray, score: np.ndarray, y_hat: np.ndarray) -> dict[str, float]:
    """Expected metrics of rows with p(positive) ``p``, raw ``score`` and predicted-positive ``y_hat``.

    With ``p`` the 0/1 labels this is the realized value (scikit-learn's definitions); undefined
    metrics (no predicted positive, no expected positive) are NaN.
    """
    n = p.size
    if n == 0:
        return dict.fromkeys(METRICS, np.nan)
    tp = float(p[y_hat].sum())
    n_pred = float(y_hat.sum())
    fp = n_pred - tp
    p_sum = float(p.sum())
    fn = p_sum - tp
    tn = (n - n_pred) - fn
    out = {"accuracy": (tp + tn) / n}
    out["precision"] = tp / n_pred if n_pred > 0 else np.nan
    out["recall"] = tp / p_sum if p_sum > 0 else np.nan
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else np.nan
    out["roc_auc"] = expected_auc(p, score)
    return out


def expected_auc(p: np.ndarray, score: np.ndarray) -> float:
    """E[U] / E[n_pos·n_neg] for rows positive with probability ``p``, ranked by ``score``.

    U counts (positive, negative) pairs of distinct rows ordered by score (ties ½); with ``p`` the labels
    it is the Mann–Whitney form of ``roc_auc_score``. The pair of a row with itself is left out of both
    sums, so the estimate is the ratio of the exact expectations.
    """
    if p.size < 2:
        return np.nan
    q = 1.0 - p
    uniq, inv = np.unique(score, return_inverse=True)
    neg_per = np.bincount(inv, weights=q, minlength=uniq.size)
    below = np.concatenate([[0.0], np.cumsum(neg_per)[:-1]])
    num = float(np.sum(p * (below[inv] + 0.5 * neg_per[inv])) - 0.5 * np.sum(p * q))
    den = float(p.sum() * q.sum() - np.sum(p * q))
    return num / den if den > 1e-12 else np.nan


def multiclass_metrics(probs: np.ndarray, scores: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Expected one-vs-rest macro metrics: ``probs`` rows × classes (calibrated, or one-hot labels for the
    realized value), ``scores`` the raw probabilities, ``pred`` the predicted class index (−1: none).

    Macro averages run over the classes present (expected or predicted), with 0 for an undefined
    precision/recall of a present class (scikit-learn's zero_division=0); ROC AUC over the classes with
    both expected positives and negatives.
    """
    n, k = probs.shape
    if n == 0:
        return dict.fromkeys(METRICS, np.nan)
    rows = np.arange(n)
    hit = np.where(pred >= 0, probs[rows, np.clip(pred, 0, k - 1)], 0.0)
    out = {"accuracy": float(hit.mean())}
    onehot = pred[:, None] == np.arange(k)[None, :]
    tp = (probs * onehot).sum(axis=0)
    n_pred = onehot.sum(axis=0).astype(float)
    n_true = probs.sum(axis=0)
    present = (n_pred + n_true) > 1e-12
    prec = np.divide(tp, n_pred, out=np.zeros(k), where=n_pred > 0)
    rec = np.divide(tp, n_true, out=np.zeros(k), where=n_true > 1e-12)
    f1 = np.divide(2 * tp, n_pred + n_true, out=np.zeros(k), where=present)
    for name, per in (("precision", prec), ("recall", rec), ("f1", f1)):
        out[name] = float(per[present].mean()) if present.any() else np.nan
    aucs = [expected_auc(probs[:, j], scores[:, j]) for j in range(k)]
    aucs = [a for a in aucs if np.isfinite(a)]
    out["roc_auc"] = float(np.mean(aucs)) if aucs else np.nan
    return out


# --------------------------------------------------------------------------- reading a frame


@dataclass(frozen=True)
class _Rows:
    """The usable rows of a frame: raw scores (n × k), predicted class index or positive flag, labels."""

    scores: np.ndarray
    pred: np.ndarray  # binary: bool predicted positive; multiclass: class index (−1 = unknown class)
    truth: np.ndarray | None  # binary: 1.0/0.0/NaN; multiclass: class index, −2 = unlabelled
    n_window: int


def _positive(cfg: ModelConfig, frame: pd.DataFrame) -> str | None:
    if cfg.positive_class is not None:
        return cfg.positive_class
    if cfg.classes and len(cfg.classes) == 2:
        return cfg.classes[1]
    seen = sorted({str(v) for col in (c.TARGET, c.PREDICTION) if col in frame for v in frame[col].dropna()})
    return seen[1] if len(seen) >= 2 else None


def _index(values: pd.Series, classes: tuple[str, ...]) -> np.ndarray:
    """Each value's position in ``classes`` by its text (−1: another value, −2: missing), with one hash
    pass over the column instead of converting a million objects to str."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    where = {k: i for i, k in enumerate(classes)}
    lookup = np.array([where.get(str(u), -1) for u in uniques] + [-2], dtype=np.int64)
    return lookup[codes]  # the NA sentinel −1 picks the last entry, −2


def _rows(frame: pd.DataFrame, m: CBPEModel) -> _Rows | Skip:
    n_window = len(frame)
    if c.PREDICTION not in frame:
        return Skip.NO_PROBABILITIES
    pred_raw = frame[c.PREDICTION]
    if m.task is TaskType.BINARY:
        if c.SCORE not in frame:
            return Skip.NO_PROBABILITIES
        score = pd.to_numeric(frame[c.SCORE], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        ok = np.isfinite(score) & pred_raw.notna().to_numpy() & (score >= 0) & (score <= 1)
        pred = _index(pred_raw, m.classes)[ok] == 0
        truth = None
        if c.TARGET in frame:
            t = _index(frame[c.TARGET], m.classes)[ok]
            truth = np.where(t == -2, np.nan, (t == 0).astype(float))
        return _Rows(score[ok][:, None], pred, truth, n_window)
    cols = [f"{c.PROBA_PREFIX}{k}" for k in m.classes]
    if not all(col in frame for col in cols):
        return Skip.NO_PROBABILITIES
    scores = np.column_stack(
        [pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64, na_value=np.nan) for col in cols]
    )
    ok = np.isfinite(scores).all(axis=1) & pred_raw.notna().to_numpy()
    pred = _index(pred_raw, m.classes)[ok]
    truth = _index(frame[c.TARGET], m.classes)[ok] if c.TARGET in frame else None
    return _Rows(scores[ok], pred, truth, n_window)


def _calibrated(m: CBPEModel, scores: np.ndarray) -> np.ndarray:
    out = np.column_stack(
        [cal(scores[:, j]) if cal is not None else scores[:, j] for j, cal in enumerate(m.calibrators)]
    )
    if m.task is TaskType.MULTICLASS:  # one-vs-rest maps no longer sum to 1: renormalise (as NannyML)
        total = out.sum(axis=1, keepdims=True)
        out = np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)
    return np.clip(out, 0.0, 1.0)


def _metrics(m: CBPEModel, probs: np.ndarray, scores: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if m.task is TaskType.BINARY:
        return binary_metrics(probs[:, 0], scores[:, 0], pred)
    return multiclass_metrics(probs, scores, pred)


def _labels_as_probs(m: CBPEModel, truth: np.ndarray) -> np.ndarray:
    if m.task is TaskType.BINARY:
        return truth[:, None].astype(float)
    onehot = np.zeros((truth.size, len(m.classes)))
    known = truth >= 0
    onehot[np.flatnonzero(known), truth[known]] = 1.0
    return onehot


# --------------------------------------------------------------------------- fit once


def ece(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ over equal-width bins of |mean p − mean y| × bin share."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, p, bins) - np.bincount(idx, y, bins))
    return float(gap.sum() / max(p.size, 1)) if n.any() else 0.0


def _isotonic(p: np.ndarray, y: np.ndarray) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return Calibrator(np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float))


def needs_calibration(p: np.ndarray, y: np.ndarray, seed: int) -> bool:
    """True when an isotonic map lowers the held-out calibration error (seeded 5-fold cross-fit)."""
    if y.size < 2 * CV_FOLDS or y.min() == y.max():
        return False
    folds = np.random.default_rng(seed).permutation(y.size) % CV_FOLDS
    raw, cal = [], []
    for f in range(CV_FOLDS):
        train, test = folds != f, folds == f
        iso = _isotonic(p[train], y[train])
        raw.append(ece(p[test], y[test]))
        cal.append(ece(iso(p[test]), y[test]))
    return float(np.mean(cal)) < float(np.mean(raw))


def chunk_stats(m: CBPEModel, rows: _Rows, ec: EstimatedPerformanceConfig) -> ChunkStats | None:
    """The reference's estimate and the bootstrap sampling errors of :class:`ChunkStats`."""
    probs = _calibrated(m, rows.scores)
    reference = _metrics(m, probs, rows.scores, rows.pred)
    assert rows.truth is not None
    labelled = np.flatnonzero(np.isfinite(rows.truth) if m.task is TaskType.BINARY else rows.truth >= 0)
    if labelled.size < 2:
        return None
    truth = _labels_as_probs(m, rows.truth[labelled])
    sc, pr, pb = rows.scores[labelled], rows.pred[labelled], probs[labelled]
    realized = _metrics(m, truth, sc, pr)
    size = min(ec.resample_rows, labelled.size)
    rng = np.random.default_rng(ec.seed)
    est, real = [], []
    for _ in range(ec.resamples):
        i = rng.integers(0, labelled.size, size)
        est.append(_metrics(m, pb[i], sc[i], pr[i]))
        real.append(_metrics(m, truth[i], sc[i], pr[i]))

    def sd(draws: list[dict[str, float]], name: str) -> float:
        v = np.array([d[name] for d in draws])
        v = v[np.isfinite(v)]
        return float(v.std(ddof=1)) if v.size > 2 else np.nan

    return ChunkStats(
        n_rows=int(rows.scores.shape[0]),
        n_labelled=int(labelled.size),
        reference={k: float(v) for k, v in reference.items()},
        realized={k: float(v) for k, v in realized.items()},
        sigma_est={k: sd(est, k) for k in METRICS},
        sigma_real={k: sd(real, k) for k in METRICS},
        chunk_rows=size,
    )


def fit_cbpe(frame: pd.DataFrame, cfg: ModelConfig) -> CBPEModel:
    """Calibrators and chunk statistics from the reference (the whole of it and each segment value with
    at least ``min_rows`` labelled rows; a window's segment without them gets "insufficient data"). A reference without probabilities or labels gives a model that
    says why (every window then reports that reason instead of an estimate)."""
    ec = cfg.estimated_performance
    if cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS):
        return CBPEModel(cfg.task, (), (), None, skip=Skip.NOT_A_CLASSIFIER, detail=f"task is {cfg.task}")
    if cfg.task is TaskType.BINARY:
        pos = _positive(cfg, frame)
        classes: tuple[str, ...] = (pos,) if pos is not None else ()
    else:
        classes = tuple(
            sorted(str(col)[len(c.PROBA_PREFIX) :] for col in frame if str(col).startswith(c.PROBA_PREFIX))
        )
    if not classes:
        what = "no positive class known" if cfg.task is TaskType.BINARY else "no __proba::<class> columns"
        return CBPEModel(cfg.task, (), (), None, skip=Skip.NO_PROBABILITIES, detail=what)
    bare = CBPEModel(cfg.task, classes, (None,) * (1 if cfg.task is TaskType.BINARY else len(classes)), None)
    rows = _rows(frame, bare)
    if isinstance(rows, Skip):
        return CBPEModel(cfg.task, classes, (), None, skip=rows, detail="the reference logs no probabilities")
    if rows.truth is None:
        return CBPEModel(cfg.task, classes, (), None, skip=Skip.NO_REFERENCE_LABELS, detail="no labels")
    labelled = np.isfinite(rows.truth) if cfg.task is TaskType.BINARY else rows.truth >= 0
    if labelled.sum() < 2 * CV_FOLDS:
        detail = f"{int(labelled.sum())} labelled reference rows"
        return CBPEModel(cfg.task, classes, (), None, skip=Skip.NO_REFERENCE_LABELS, detail=detail)
    truth = _labels_as_probs(bare, rows.truth[labelled])
    cals: list[Calibrator | None] = []
    for j in range(truth.shape[1]):
        p, y = rows.scores[labelled, j], truth[:, j]
        wanted = ec.calibration == "isotonic" or (
            ec.calibration == "auto" and needs_calibration(p, y, ec.seed + j)
        )
        cals.append(_isotonic(p, y) if wanted and y.min() != y.max() else None)
    model = CBPEModel(cfg.task, classes, tuple(cals), None)
    whole = chunk_stats(model, rows, ec)
    segments: dict[str, ChunkStats] = {}
    for fld in cfg.segments:
        col = c.VERSION if fld == "model_version" else fld
        if col not in frame:
            continue
        values = frame[col].astype(str).to_numpy()
        for value in pd.unique(frame[col].dropna().astype(str)):
            part = _rows(frame[values == value], model)
            if isinstance(part, Skip) or part.truth is None:
                continue
            n_lab = int((np.isfinite(part.truth) if cfg.task is TaskType.BINARY else part.truth >= 0).sum())
            if n_lab >= ec.min_rows:
                stats = chunk_stats(model, part, ec)
                if stats is not None:
                    segments[f"{fld}={value}"] = stats
    return CBPEModel(cfg.task, classes, tuple(cals), whole, segments)


# --------------------------------------------------------------------------- score a window


def estimate_window(
    frame: pd.DataFrame, m: CBPEModel, ec: EstimatedPerformanceConfig, segment: str = ALL
) -> WindowEstimate:
    """The window's estimates with their bands (no decision; see :func:`decide_estimate`)."""
    calibrated = any(cal is not None for cal in m.calibrators)
    if m.skip is not None or m.whole is None:
        skip = m.skip or Skip.NO_REFERENCE_LABELS
        return WindowEstimate(0, len(frame), (), skip, m.detail, calibrated)
    rows = _rows(frame, m)
    if isinstance(rows, Skip):
        return WindowEstimate(0, len(frame), (), rows, "the window logs no probabilities", calibrated)
    n = int(rows.scores.shape[0])
    if n < ec.min_rows:
        return WindowEstimate(n, len(frame), (), Skip.INSUFFICIENT_DATA, "", calibrated)
    stats = m.whole if segment == ALL else m.segments.get(segment)
    if stats is None:  # another population: judging it against the whole reference would be an alarm
        detail = f"the reference has fewer than {ec.min_rows} labelled rows of {segment}"
        return WindowEstimate(n, len(frame), (), Skip.INSUFFICIENT_DATA, detail, calibrated)
    values = _metrics(m, _calibrated(m, rows.scores), rows.scores, rows.pred)
    out = []
    for name in ec.metrics:
        v, ref = values[name], stats.reference.get(name, np.nan)
        s_real, s_est = stats.sigma_real.get(name, np.nan), stats.sigma_est.get(name, np.nan)
        if not (np.isfinite(v) and np.isfinite(ref) and np.isfinite(s_real) and np.isfinite(s_est)):
            continue  # undefined here (no predicted positive, one class only): no estimate, no verdict
        scale = np.sqrt(stats.chunk_rows / n)
        # the calibration was learned from n_labelled reference labels: their sampling error stays in
        # every estimate, however large the window (without it a 1M-row band misses the realized value)
        half = ec.band_sigmas * float(
            np.hypot(s_real * scale, s_real * np.sqrt(stats.chunk_rows / stats.n_labelled))
        )
        drop = float(np.hypot(s_est * scale, s_est * np.sqrt(stats.chunk_rows / stats.n_rows)))
        out.append(Estimate(name, float(v), max(0.0, v - half), min(1.0, v + half), float(ref), drop, n))
    return WindowEstimate(n, len(frame), tuple(out), calibrated=calibrated)


def limit(e: Estimate, ec: EstimatedPerformanceConfig) -> float:
    """The estimate below which the check fails: the reference minus max(alert band, min_drop)."""
    return e.reference - max(ec.alert_sigmas * e.sigma_drop, ec.min_drop)


def decide_estimate(e: Estimate, ec: EstimatedPerformanceConfig, segment: str = ALL) -> CheckResult:
    """Fail when the estimate dropped below :func:`limit` (beyond its noise band and ``min_drop``)."""
    lim = limit(e, ec)
    failed = e.value < lim
    band = f"band {e.lower:.3f}–{e.upper:.3f}"
    base = f"estimated {e.metric} {e.value:.3f} ({band}) on {e.n:,} rows, reference {e.reference:.3f}"
    noise = f"max({ec.alert_sigmas:g}×{e.sigma_drop:.3g} noise, {ec.min_drop:g} min_drop)"
    if failed:
        msg = f"estimated drop: {base}; {e.reference - e.value:.3f} below it > {noise}"
    else:
        msg = f"no estimated drop: {base}; limit {lim:.3f} = reference − {noise}"
    name = e.metric
    return CheckResult(
        f"estimated_{name}",
        Category.ESTIMATED_PERFORMANCE,
        Status.FAIL if failed else Status.PASS,
        e.value,
        lim,
        msg,
        segment=segment,
    )


SKIP_MESSAGES = {
    Skip.NOT_A_CLASSIFIER: "estimated performance needs a binary or multiclass classifier",
    Skip.NO_PROBABILITIES: "no estimate: the logs carry no class probabilities (map fields.probabilities)",
    Skip.NO_REFERENCE_LABELS: "no estimate: the reference has too few labelled rows to calibrate on",
    Skip.INSUFFICIENT_DATA: "insufficient data",
}


def estimated_checks(
    frame: pd.DataFrame, m: CBPEModel | None, ec: EstimatedPerformanceConfig, segment: str = ALL
) -> Findings:
    """The family for one window or segment: a check per estimated metric (or one warning saying why
    there is none) and the metrics ``estimated_<m>``, ``_lower``, ``_upper``, ``_reference``."""
    if m is None or not ec.enabled:
        return [], []
    w = estimate_window(frame, m, ec, segment)
    if w.skip is not None:
        msg = SKIP_MESSAGES[w.skip]
        if w.skip is Skip.INSUFFICIENT_DATA:
            msg = f"insufficient data: {w.detail or f'{w.n} usable rows < min_rows {ec.min_rows}'}"
        elif w.detail:
            msg = f"{msg} ({w.detail})"
        check = CheckResult(
            "estimated_performance", Category.ESTIMATED_PERFORMANCE, Status.WARN, None, None, msg,
            segment=segment,
        )  # fmt: skip
        return [check], []
    checks = [decide_estimate(e, ec, segment) for e in w.estimates]
    metrics = [
        Metric(f"estimated_{name}{suffix}", value, "", segment)
        for e in w.estimates
        for name in (e.metric,)
        for suffix, value in (
            ("", e.value),
            ("_lower", e.lower),
            ("_upper", e.upper),
            ("_reference", e.reference),
        )
    ]
    return checks, metrics


@method(
    "cbpe",
    category=Category.ESTIMATED_PERFORMANCE,
    config="estimated_performance",
    fit=fit_cbpe,
    example={"min_rows": 200},
)
def cbpe(inp: FamilyInput) -> Findings:
    """Accuracy, precision, recall, F1 and ROC AUC estimated from calibrated probabilities (CBPE)."""
    return estimated_checks(inp.frame, inp.fitted, inp.cfg.estimated_performance, segment=inp.segment)
