"""Multivariate drift: a domain classifier tells reference rows from window rows, or fails to.

Per-feature tests see each marginal alone; a change in how features move together (two features whose
correlation flips while both marginals stay the same) passes all of them. A classifier trained to tell
reference rows from window rows sees the joint distribution: if the window is like the reference, no
classifier does better than chance (ROC AUC 0.5) on rows it was not trained on.

Fit once, score many: :func:`fit_multivariate` fits the :class:`Encoding` of the features (numbers as
floats, categories as the reference's codes, the rest as "other") and keeps a seeded, encoded sample of
at most ``max_rows`` reference rows. Per window, :func:`domain_classifier_score` draws a seeded sample
of at most ``max_rows`` window rows, and a histogram gradient-boosting classifier is cross-validated
(stratified ``folds``) on reference-vs-window; every row gets an out-of-fold score.

Statistic apart from decision: the statistic is the out-of-fold ROC AUC and its one-sided Mann–Whitney
p-value against 0.5 (the AUC *is* the Mann–Whitney U over the two groups' out-of-fold scores; a row's
score never depends on its own label, so under the null it is exact up to fold-to-fold model
differences, which the calibration script measures). :func:`decide_multivariate` fails when p < alpha
(the univariate rule's alpha by default) AND the AUC reaches ``min_auc``: with bounded samples the
p-value no longer grows with the window, and ``min_auc`` keeps a classifier that separates a handful of
rows from alarming (see its field's description). Below ``min_rows`` rows on either side: warn,
insufficient data. The features the classifier relies on are its permutation importances on the
held-out folds (the AUC lost when a feature is shuffled, on a seeded subset of at most
``IMPORTANCE_ROWS`` held-out rows per fold), stored as metrics and named in the message.

Lipton, Wang & Smola (2018) "Detecting and correcting for label shift"; Rabanser, Günnemann & Lipton
(2019) "Failing loudly: an empirical study of methods for detecting dataset shift" (domain classifiers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import Kind, ModelConfig, MultivariateDriftConfig

MAX_CODES = 250  # categories kept per feature (HistGradientBoosting allows at most 255 bins)
# held-out rows per fold the importances shuffle (a seeded subset): the importances only name the
# features the classifier relies on, the verdict uses every out-of-fold score; scoring one shuffled
# copy per feature of every held-out row was half the family's cost
IMPORTANCE_ROWS = 1_000


@dataclass(frozen=True)
class Encoding:
    """How a frame becomes the rows × features matrix a tree model reads (fitted on the reference).

    Numerical features stay floats (missing and ±inf as NaN, which the trees route on their own);
    a categorical feature becomes the code of its reference category (the ``MAX_CODES`` most frequent),
    ``len(categories)`` for any other value seen later, NaN when missing.
    """

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.numerical + self.categorical

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([False] * len(self.numerical) + [True] * len(self.categorical), dtype=bool)

    def without(self, name: str | None) -> Encoding:
        """The encoding without one feature (a segment's own field is constant inside it)."""
        if name is None or name not in self.names:
            return self
        keep = [i for i, n in enumerate(self.categorical) if n != name]
        return Encoding(
            tuple(n for n in self.numerical if n != name),
            tuple(self.categorical[i] for i in keep),
            tuple(self.categories[i] for i in keep),
        )


def fit_encoding(frame: pd.DataFrame, cfg: ModelConfig) -> Encoding:
    """The features of ``cfg`` present in ``frame``, categories by their reference frequency."""
    num = tuple(n for n, f in cfg.features.items() if f.type is Kind.NUMERICAL and n in frame)
    cat = tuple(n for n, f in cfg.features.items() if f.type is Kind.CATEGORICAL and n in frame)
    cats = tuple(
        tuple(str(k) for k in frame[n].dropna().astype(str).value_counts().index[:MAX_CODES]) for n in cat
    )
    return Encoding(num, cat, cats)


def encode(enc: Encoding, frame: pd.DataFrame) -> np.ndarray:
    """Rows × ``enc.names`` float matrix; a feature missing from the frame is all NaN."""
    out = np.full((len(frame), len(enc.names)), np.nan)
    for j, name in enumerate(enc.numerical):
        if name in frame:
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            out[:, j] = np.where(np.isfinite(x), x, np.nan)
    for k, (name, cats) in enumerate(zip(enc.categorical, enc.categories, strict=True)):
        if name in frame:
            col = frame[name]
            known = pd.Index(cats)
            codes = known.get_indexer(col.astype(object).where(col.notna(), None).astype(str))
            codes = np.where(codes < 0, len(cats), codes).astype(np.float64)
            out[:, len(enc.numerical) + k] = np.where(col.isna().to_numpy(), np.nan, codes)
    return out


@dataclass(frozen=True)
class ReferenceSample:
    """What :func:`fit_multivariate` keeps: the encoding, an encoded seeded reference sample, and the
    sample's raw values of the fields a segment can be split by (to compare a segment with its own)."""

    encoding: Encoding
    matrix: np.ndarray
    n_reference: int
    groups: dict[str, np.ndarray]  # column name -> values of the sampled rows, as str


def fit_multivariate(frame: pd.DataFrame, cfg: ModelConfig) -> ReferenceSample:
    """Encode a seeded sample of at most ``max_rows`` reference rows (see the module doc)."""
    mc = cfg.multivariate_drift
    enc = fit_encoding(frame, cfg)
    part = _sample(frame, mc.max_rows, mc.seed)
    groups = {
        col: part[col].astype(str).to_numpy()
        for col in {*(c.VERSION if s == "model_version" else s for s in cfg.segments)}
        if col in part
    }
    return ReferenceSample(enc, encode(enc, part), len(frame), groups)


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(np.random.default_rng(seed).choice(len(frame), n, replace=False))]


@dataclass(frozen=True)
class DomainScore:
    """The domain classifier's result on one window (or segment)."""

    auc: float  # out-of-fold ROC AUC of "is a window row"
    p_value: float  # one-sided Mann–Whitney of the out-of-fold scores, H0: AUC = 0.5
    n_reference: int  # reference rows used (a seeded sample)
    n_current: int  # window rows used (a seeded sample)
    n_window: int  # rows in the window
    n_reference_total: int
    importance: dict[str, float]  # AUC lost when the feature is shuffled (held-out folds, mean)


def domain_classifier_score(
    ref: np.ndarray, cur: np.ndarray, enc: Encoding, mc: MultivariateDriftConfig, *, n_window: int, n_ref: int
) -> DomainScore:
    """Cross-validated reference-vs-window classifier: out-of-fold AUC, its p-value, importances."""
    from threadpoolctl import threadpool_limits

    x = np.vstack([ref, cur])
    y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
    with threadpool_limits(1):  # small fits: OpenMP threads cost more than they give on a shared host
        oof, lost = _cross_validate(x, y, enc, mc)
    auc = roc_auc(y, oof)
    p = float(stats.mannwhitneyu(oof[y == 1], oof[y == 0], alternative="greater").pvalue)
    importance = {name: float(v) for name, v in zip(enc.names, lost, strict=True)}
    return DomainScore(auc, p, len(ref), len(cur), n_window, n_ref, importance)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for ``y == 1`` from the ranks (ties count half): the Mann–Whitney U over
    n1·n0, the same number as sklearn's ``roc_auc_score`` without its per-call validation.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if not n1 or not n0:
        return 0.5
    ranks = stats.rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _cross_validate(
    x: np.ndarray, y: np.ndarray, enc: Encoding, mc: MultivariateDriftConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores of every row, and each feature's mean AUC loss when shuffled in its fold."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    lost = np.zeros(x.shape[1])
    rng = np.random.default_rng(mc.seed)
    folds = StratifiedKFold(n_splits=mc.folds, shuffle=True, random_state=mc.seed)
    for train, test in folds.split(x, y):
        clf = HistGradientBoostingClassifier(
            max_iter=mc.max_iter,
            max_leaf_nodes=15,
            categorical_features=enc.categorical_mask if enc.categorical else None,
            early_stopping=False,
            random_state=mc.seed,
        ).fit(x[train], y[train])
        oof[test] = clf.predict_proba(x[test])[:, 1]
        held = np.sort(rng.permutation(test)[:IMPORTANCE_ROWS])
        xt, yt, m = x[held], y[held], len(held)
        base = roc_auc(yt, oof[held])
        shuffled = np.tile(xt, (x.shape[1], 1))  # one copy per feature, scored in one call
        for j in range(x.shape[1]):
            shuffled[j * m : (j + 1) * m, j] = xt[rng.permutation(m), j]
        scores = clf.predict_proba(shuffled)[:, 1].reshape(x.shape[1], m)
        for j in range(x.shape[1]):
            lost[j] += base - roc_auc(yt, scores[j])
    return oof, lost / mc.folds


def decide_multivariate(
    s: DomainScore | None, mc: MultivariateDriftConfig, alpha: float, segment: str = ALL, *, short: str = ""
) -> CheckResult:
    """Fail when the out-of-fold AUC is significantly above 0.5 (p < alpha) AND at least ``min_auc``."""
    name, cat = "multivariate_drift", Category.MULTIVARIATE_DRIFT
    if s is None:
        return CheckResult(
            name, cat, Status.WARN, None, mc.min_auc, f"insufficient data: {short}", segment=segment
        )
    sampled = f"domain classifier on {s.n_current:,} of {s.n_window:,} window rows vs {s.n_reference:,} of {s.n_reference_total:,} reference rows (seeded samples, {mc.folds}-fold out-of-fold AUC)"
    top = sorted(((v, k) for k, v in s.importance.items() if v > 0), reverse=True)[: mc.top_k]
    relies = ", ".join(f"{k} ({v:.3f})" for v, k in top) or "none"
    failed = s.p_value < alpha and s.auc >= mc.min_auc
    if failed:
        msg = f"joint distribution changed: AUC {s.auc:.3f} ≥ {mc.min_auc:g}, p={s.p_value:.2g} < {alpha:g}; relies on {relies}; {sampled}"
    else:
        msg = f"no multivariate drift: AUC {s.auc:.3f}, p={s.p_value:.2g}; {sampled}"
    status = Status.FAIL if failed else Status.PASS
    return CheckResult(name, cat, status, s.auc, mc.min_auc, msg, segment=segment)


def multivariate_checks(inp: FamilyInput) -> Findings:
    """The family for one window or segment (a segment is compared with the same segment of the
    reference sample, without its own field)."""
    state: ReferenceSample = inp.fitted
    mc = inp.cfg.multivariate_drift
    alpha = mc.alpha if mc.alpha is not None else inp.cfg.drift.alpha
    ref, enc = state.matrix, state.encoding
    if inp.segment != ALL:
        field, value = inp.segment.split("=", 1)
        col = c.VERSION if field == "model_version" else field
        if col in state.groups:
            ref = ref[state.groups[col] == value]
        drop = [i for i, n in enumerate(enc.names) if n == field]
        enc = enc.without(field)
        ref = np.delete(ref, drop, axis=1)
    part = _sample(inp.frame, mc.max_rows, mc.seed)
    # balanced sides: the AUC's precision is set by the smaller one, the cost by both
    n_ref = min(len(ref), max(len(part), mc.min_rows))
    if n_ref < len(ref):
        ref = ref[np.sort(np.random.default_rng(mc.seed).choice(len(ref), n_ref, replace=False))]
    if len(part) < mc.min_rows or n_ref < mc.min_rows or not enc.names:
        why = f"{len(part)} window rows, {n_ref} reference rows (min_rows {mc.min_rows})"
        return [decide_multivariate(None, mc, alpha, inp.segment, short=why)], []
    s = domain_classifier_score(
        ref, encode(enc, part), enc, mc, n_window=len(inp.frame), n_ref=state.n_reference
    )
    metrics = [
        Metric("multivariate_auc", s.auc, "", inp.segment),
        Metric("multivariate_p_value", s.p_value, "", inp.segment),
        Metric("multivariate_rows", float(s.n_current), "", inp.segment),
        *(Metric("multivariate_importance", v, k, inp.segment) for k, v in s.importance.items()),
    ]
    return [decide_multivariate(s, mc, alpha, inp.segment)], metrics


@method(
    "domain_classifier",
    category=Category.MULTIVARIATE_DRIFT,
    config="multivariate_drift",
    fit=fit_multivariate,
    example={"max_rows": 2_000, "folds": 3},
)
def domain_classifier(inp: FamilyInput) -> Findings:
    """Reference-vs-window classifier: out-of-fold ROC AUC, its p-value, the features it relies on."""
    return multivariate_checks(inp)
