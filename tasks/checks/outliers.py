"""Outliers: rows unlike the reference, scored by an IsolationForest fitted once on the reference.

Fit once, score many: :func:`fit_outliers` encodes the features (numerical: robust z against the
reference median and IQR; categorical: the category's reference frequency, 0 when unseen), fits the
forest on a seeded reference sample and sets the cut on held-out reference rows, so the reference's own
outlier share is ``contamination`` by construction and measured on rows the forest never saw.

Statistic apart from decision: :func:`score_window` counts the window's outliers and ranks the most
outlying rows; :func:`decide_outliers` fails when the one-sided test of that count against the
held-out reference count is significant AND the excess reaches ``min_excess`` (so a 1M-row window is not an
alarm for a 0.1% difference), and warns on a window smaller than ``min_rows`` (insufficient data).

Liu, Ting & Zhou (2008), "Isolation forest", ICDM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import Kind, ModelConfig, OutliersConfig

Z_EXPLAIN = 3.0  # a numerical value this many robust σ from the reference median names its feature
RARE = 0.01  # a category rarer than this in the reference names its feature
MIN_SEGMENT_ROWS = 100  # held-out reference rows of a segment needed to use its own outlier share


@dataclass(frozen=True)
class OutlierModel:
    """Everything fitted on the reference: encoding, robust bounds, the forest and its cut."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    medians: np.ndarray
    scales: np.ndarray  # IQR / 1.349 (σ for a normal column), floored
    lows: np.ndarray  # robust per-feature bounds: q25 − 3·IQR
    highs: np.ndarray  # q75 + 3·IQR
    frequencies: dict[str, dict[str, float]]
    forest: object  # sklearn.ensemble.IsolationForest
    threshold: float  # score_samples below this = outlier
    reference_share: float  # held-out reference rows below the cut
    n_holdout: int
    # per segment ("plan=pro"): (outliers, rows) among the held-out reference rows of that segment; a
    # segment's base rate differs from the whole's (a rare plan is more often isolated by the forest)
    segment_counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    def baseline(self, segment: str = ALL) -> tuple[float, int]:
        """The reference share and held-out rows a window (or segment) is compared with: the segment's
        own when the held-out reference has at least ``MIN_SEGMENT_ROWS`` of it, else the whole's."""
        k, n = self.segment_counts.get(segment, (0, 0))
        return (k / n, n) if n >= MIN_SEGMENT_ROWS else (self.reference_share, self.n_holdout)


@dataclass(frozen=True)
class Reason:
    """One feature that made a row an outlier: a robust z (numerical) or the category's reference
    frequency (categorical, 0 = unseen); ``text`` is how the message and the report say it."""

    feature: str
    kind: str  # "z" | "rare"
    value: float
    text: str


@dataclass(frozen=True)
class TopOutlier:
    request_id: str
    score: float  # IsolationForest score_samples (lower = more outlying)
    reasons: tuple[Reason, ...] = ()

    @property
    def features(self) -> tuple[str, ...]:
        """What made it an outlier, e.g. "amount (z=8.1)", "country (rare: xx)"."""
        return tuple(r.text for r in self.reasons)


@dataclass(frozen=True)
class OutlierScore:
    n: int  # rows scored (a seeded sample when the window is larger than max_score_rows)
    n_window: int
    n_outliers: int
    share: float
    reference_share: float
    p_value: float
    top: tuple[TopOutlier, ...]
    bounds_share: dict[str, float]  # share of each numerical feature outside its robust bounds


def encode(model: OutlierModel, frame: pd.DataFrame) -> np.ndarray:
    """Rows × features matrix the forest scores; missing values sit at the median / frequency 0."""
    cols = []
    for name, med, sc in zip(model.numerical, model.medians, model.scales, strict=True):
        x = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64) if name in frame else None
        z = (
            np.zeros(len(frame))
            if x is None
            else np.nan_to_num((x - med) / sc, nan=0.0, posinf=50, neginf=-50)
        )
        cols.append(np.clip(z, -50, 50))
    for name in model.categorical:
        cols.append(
            _frequency(frame[name], model.frequencies[name]) if name in frame else np.zeros(len(frame))
        )
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def _frequency(col: pd.Series, freq: dict[str, float]) -> np.ndarray:
    """Each value's reference frequency, 0 when unseen; values are keyed as the fit keyed them
    (``str(value)``, so a missing value is "nan"). Vectorised: one lookup per distinct category.

    >>> _frequency(pd.Series(["a", "zz", None], dtype="category"), {"a": 0.7, "nan": 0.1}).tolist()
    [0.7, 0.0, 0.1]
    """
    keys = pd.Index(list(freq))
    table = np.r_[np.fromiter(freq.values(), np.float64, len(freq)), 0.0]  # index -1 (unseen) -> 0
    if isinstance(col.dtype, pd.CategoricalDtype):
        per = table[keys.get_indexer(col.cat.categories.astype(str))]
        per = np.r_[per, table[keys.get_indexer(["nan"])]]  # code -1 (missing) -> "nan"
        return per[col.cat.codes.to_numpy()]
    return table[keys.get_indexer(col.astype(object).astype(str))]


def fit_outliers(frame: pd.DataFrame, cfg: ModelConfig) -> OutlierModel:
    """Fit the encoding, the bounds and the forest on the reference (seeded samples; see module doc)."""
    from sklearn.ensemble import IsolationForest

    oc = cfg.outliers
    num = tuple(n for n, f in cfg.features.items() if f.type is Kind.NUMERICAL and n in frame)
    cat = tuple(n for n, f in cfg.features.items() if f.type is Kind.CATEGORICAL and n in frame)
    rng = np.random.default_rng(oc.seed)
    order = rng.permutation(len(frame))
    half = len(frame) // 2
    fit_rows = frame.iloc[order[: min(half, oc.max_fit_rows)]]
    hold_rows = frame.iloc[order[half:][: oc.max_fit_rows]]
    meds, scales, lows, highs = [], [], [], []
    for name in num:
        x = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
        x = x[np.isfinite(x)]
        q25, q50, q75 = np.quantile(x, [0.25, 0.5, 0.75]) if x.size else (0.0, 0.0, 0.0)
        iqr = q75 - q25
        sd = float(x.std()) if x.size else 0.0
        meds.append(q50)
        scales.append(iqr / 1.349 if iqr > 0 else max(sd, 1e-9))
        lows.append(q25 - 3 * iqr)
        highs.append(q75 + 3 * iqr)
    freqs = {
        n: {str(k): float(v) for k, v in frame[n].astype(object).value_counts(normalize=True).items()}
        for n in cat
    }
    model = OutlierModel(num, cat, np.array(meds), np.array(scales), np.array(lows), np.array(highs), freqs,
                         None, 0.0, 0.0, 0)  # fmt: skip
    forest = IsolationForest(n_estimators=oc.n_estimators, random_state=oc.seed).fit(encode(model, fit_rows))
    held = forest.score_samples(encode(model, hold_rows))
    cut = float(np.quantile(held, oc.contamination))
    flagged = (held < cut) | _outside(model, hold_rows).any(axis=1)
    counts = {}
    for name in cfg.segments:
        col = c.VERSION if name == "model_version" else name
        if col in hold_rows:
            keys = hold_rows[col].astype(str).to_numpy()
            for value in np.unique(keys):
                mask = keys == value
                counts[f"{name}={value}"] = (int(flagged[mask].sum()), int(mask.sum()))
    return OutlierModel(num, cat, model.medians, model.scales, model.lows, model.highs, freqs, forest, cut,
                        float(flagged.mean()), len(held), counts)  # fmt: skip


def score_window(
    model: OutlierModel, frame: pd.DataFrame, oc: OutliersConfig, segment: str = ALL
) -> OutlierScore:
    """Count the window's outliers (sampled above ``max_score_rows``) and rank the most outlying rows.

    A row is an outlier when the forest scores it below the cut OR a numerical value lies outside its
    robust bounds (a forest cannot tell 6σ from 60σ beyond the data it saw; the bounds can). The count
    and its test use the scored rows only (a seeded sample of a large window: the test's power is then
    set by the sample's size, not the window's). The bounds are cheap, so they screen every row of the
    window: the top outliers are the window's most extreme rows outside a bound, then the rows of the
    sample only the forest flagged (lowest score first), and ``bounds_share`` counts every row."""
    n_window = len(frame)
    pos = np.arange(n_window)
    part = frame
    if n_window > oc.max_score_rows:
        pos = np.sort(np.random.default_rng(oc.seed).choice(n_window, oc.max_score_rows, replace=False))
        part = frame.iloc[pos]
    x = encode(model, part)
    scores = model.forest.score_samples(x) if len(part) else np.array([])  # type: ignore[attr-defined]
    outside = _outside(model, part)
    forest_only = (scores < model.threshold) & ~outside.any(axis=1)
    k = int(forest_only.sum() + outside.any(axis=1).sum())
    n = len(part)
    ref_share, n_ref = model.baseline(segment)
    p = excess_p_value(k, n, ref_share, n_ref)
    every = outside if part is frame else _outside(model, frame)
    hits = np.flatnonzero(forest_only)
    by_score = pos[hits[np.argsort(scores[hits], kind="stable")]]
    top = _top(model, frame, every, by_score, oc.top_k)
    bounds = {name: float(every[:, j].mean()) if n else 0.0 for j, name in enumerate(model.numerical)}
    return OutlierScore(n, n_window, k, k / n if n else 0.0, ref_share, p, top, bounds)


def _top(
    model: OutlierModel, frame: pd.DataFrame, outside: np.ndarray, forest_rows: np.ndarray, top_k: int
) -> tuple[TopOutlier, ...]:
    """The ``top_k`` most outlying rows of ``frame``: rows outside a bound by their largest robust |z|
    (``outside``: rows × numerical features), then ``forest_rows`` (positions the forest alone flagged,
    most outlying first)."""
    if top_k <= 0:
        return ()
    rows = np.flatnonzero(outside.any(axis=1))
    z = encode(model, frame.iloc[rows])[:, : len(model.numerical)]
    far = np.abs(z).max(axis=1, initial=0)
    chosen = np.r_[rows[np.argsort(-far, kind="stable")[:top_k]], forest_rows[:top_k]][:top_k]
    if not len(chosen):
        return ()
    picked = frame.iloc[chosen]
    x = encode(model, picked)
    score = model.forest.score_samples(x)  # type: ignore[attr-defined]
    ids = picked[c.REQUEST_ID].astype(str).to_numpy() if c.REQUEST_ID in picked else chosen.astype(str)
    return tuple(
        TopOutlier(str(ids[i]), float(score[i]), _why(model, picked.iloc[i], x[i]))
        for i in range(len(chosen))
    )


def excess_p_value(k: int, n: int, reference_share: float, n_reference: int) -> float:
    """One-sided p-value of "the window's outlier rate ``k / n`` is above the reference's".

    The reference share is itself counted on ``n_reference`` held-out rows, so this is Fisher's exact
    test on the 2×2 table (the binomial test conditioned on the total count): a binomial test against
    the share as if it were exact gives false alarms whenever the reference is small (a 1,500-row
    reference: 750 held-out rows, ±0.5 points of noise on a 2% share).

    >>> round(excess_p_value(52, 1500, 14 / 750, 750), 3)  # the binomial test would say 2.6e-05
    0.021
    """
    if n == 0:
        return 1.0
    kr = round(reference_share * n_reference)
    table = [[k, n - k], [kr, n_reference - kr]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def _outside(model: OutlierModel, frame: pd.DataFrame) -> np.ndarray:
    """Rows × numerical features: True where the value lies outside the feature's robust bounds."""
    out = np.zeros((len(frame), len(model.numerical)), dtype=bool)
    for j, name in enumerate(model.numerical):
        if name in frame:
            v = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
            with np.errstate(invalid="ignore"):
                out[:, j] = (v < model.lows[j]) | (v > model.highs[j])
    return out


def _why(model: OutlierModel, row: pd.Series, z: np.ndarray) -> tuple[Reason, ...]:
    """The features that make a row an outlier (at most 3, strongest first): a large robust z, or a
    category rare in the reference."""
    reasons = []
    for j, name in enumerate(model.numerical):
        if abs(z[j]) >= Z_EXPLAIN:
            reasons.append((abs(z[j]), Reason(name, "z", float(z[j]), f"{name} (z={z[j]:.1f})")))
    for j, name in enumerate(model.categorical):
        f = z[len(model.numerical) + j]
        if f < RARE:
            text = f"{name} (rare: {row.get(name)!s:.40})"
            reasons.append((10.0 + (RARE - f) * 100, Reason(name, "rare", float(f), text)))
    return tuple(r for _, r in sorted(reasons, key=lambda t: -t[0])[:3])


def decide_outliers(s: OutlierScore, oc: OutliersConfig, segment: str = ALL) -> CheckResult:
    """The verdict: significant (one-sided Fisher exact test against the held-out reference count) AND an
    excess of at least ``min_excess``."""
    limit = s.reference_share + oc.min_excess
    base = f"{s.n_outliers} of {s.n:,} rows outliers ({s.share:.2%}; reference {s.reference_share:.2%})"
    if s.n < s.n_window:
        base += (
            f"; scored a seeded sample of {s.n:,} of {s.n_window:,} rows (the test's power is the sample's)"
        )
    if s.n < oc.min_rows:
        msg = f"insufficient data: {s.n} rows < min_rows {oc.min_rows}"
        return CheckResult("outlier_share", Category.OUTLIERS, Status.WARN, None, limit, msg, segment=segment)
    failed = s.p_value < oc.alpha and s.share >= limit
    if failed:
        msg = f"outliers: {base}, p={s.p_value:.2g} < {oc.alpha:g} and ≥ {limit:.2%}"
    else:
        msg = f"no excess of outliers: {base}, p={s.p_value:.2g}"
    if s.top:
        msg += "; top: " + ", ".join(f"{t.request_id} ({'; '.join(t.features) or 'joint'})" for t in s.top)
    status = Status.FAIL if failed else Status.PASS
    return CheckResult("outlier_share", Category.OUTLIERS, status, s.share, limit, msg, segment=segment)


TOP_SEPARATOR = "|"
"""``feature`` of ``outlier_top_z`` / ``outlier_top_rare`` rows: request id, this, feature name."""


def top_metrics(top: tuple[TopOutlier, ...], segment: str = ALL) -> list[Metric]:
    """The top outliers as narrow metric rows, most outlying first: ``outlier_top_score`` (feature =
    request id) and, per feature that made the row an outlier, ``outlier_top_z`` (the robust z) or
    ``outlier_top_rare`` (the category's reference frequency) with feature = ``request id|feature``."""
    out = []
    for t in top:
        out.append(Metric("outlier_top_score", t.score, t.request_id, segment))
        for r in t.reasons:
            key = f"{t.request_id}{TOP_SEPARATOR}{r.feature}"
            if r.kind == "z":
                out.append(Metric("outlier_top_z", r.value, key, segment))
            else:
                out.append(Metric("outlier_top_rare", r.value, key, segment))
    return out


@dataclass(frozen=True)
class TopRow:
    """One row of the report's top-outliers table."""

    rank: int
    request_id: str
    score: float
    features: tuple[str, ...]  # "amount (z=8.1)", "country (unseen in the reference)"


def top_table(metrics: Iterable[Metric], segment: str = ALL) -> list[TopRow]:
    """The top-outliers table of one segment rebuilt from its metric rows (see :func:`top_metrics`), in
    their order: what the report shows, from the stored result alone.

    >>> t = TopOutlier("r9", -0.71, (Reason("amount", "z", 8.13, ""), Reason("country", "rare", 0.0, "")))
    >>> [(x.request_id, x.features) for x in top_table(top_metrics((t,)))]
    [('r9', ('amount (z=8.1)', 'country (unseen in the reference)'))]
    """
    rows: dict[str, TopRow] = {}
    why: dict[str, list[str]] = {}
    for m in metrics:
        if m.segment != segment:
            continue
        if m.metric == "outlier_top_score":
            rows[m.feature] = TopRow(len(rows) + 1, m.feature, m.value, ())
            why.setdefault(m.feature, [])
        elif m.metric in ("outlier_top_z", "outlier_top_rare"):
            rid, _, feature = m.feature.rpartition(TOP_SEPARATOR)
            if m.metric == "outlier_top_z":
                text = f"{feature} (z={m.value:.1f})"
            elif m.value <= 0:
                text = f"{feature} (unseen in the reference)"
            else:
                text = f"{feature} (rare: {m.value:.2%} of the reference)"
            why.setdefault(rid, []).append(text)
    return [replace(r, features=tuple(why.get(r.request_id, ()))) for r in rows.values()]


def outlier_checks(
    frame: pd.DataFrame, model: OutlierModel | None, oc: OutliersConfig, segment: str = ALL
) -> tuple[list[CheckResult], list[Metric]]:
    """The family for one window or segment: one check, its metrics and the top outliers as rows
    (see :func:`top_metrics`)."""
    if model is None or not oc.enabled:
        return [], []
    s = score_window(model, frame, oc, segment)
    metrics = [
        Metric("outlier_share", s.share, "", segment),
        Metric("outlier_reference_share", s.reference_share, "", segment),
        Metric("outlier_p_value", s.p_value, "", segment),
        Metric("outlier_rows", float(s.n), "", segment),  # rows scored: the sample, when sampled
        *(Metric("outlier_bounds_share", v, f, segment) for f, v in s.bounds_share.items()),
        *top_metrics(s.top, segment),
    ]
    return [decide_outliers(s, oc, segment)], metrics


@method("isolation_forest", category=Category.OUTLIERS, config="outliers", fit=fit_outliers)
def isolation_forest(inp: FamilyInput) -> Findings:
    """Share of rows an IsolationForest (fitted on the reference) and robust bounds flag as outliers."""
    return outlier_checks(inp.frame, inp.fitted, inp.cfg.outliers, segment=inp.segment)
