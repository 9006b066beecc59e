"""Mergeable window summaries: windows past one machine, summarised per time shard, merged, then judged.

A shard (one hour of a big window, say) is reduced to a :class:`Summary` of a few hundred kB whatever its
row count: counts on fine bins fitted from the reference for each numerical column (with per-bin sums),
category counts, moments (n, mean, M2, min, max, missing), Apache DataSketches' KLL sketch of the
latency, error counts, confusion counts and score histograms for model quality. :func:`merge` adds two
summaries; every count merges exactly (associative, commutative: integer sums), the moments by Chan et
al.'s pairwise update (exact up to float rounding), and the KLL sketch within its rank-error bound.
:func:`evaluate_summary` runs the same decision rules as the in-memory path on the merged summary:

=====================  =========================================================================
in-memory check        from the summary
=====================  =========================================================================
drift, categorical     the registered method on the merged category counts: **identical**
psi / js / kl /        the reference's coarse bins are a subset of the fine edges, so the coarse
chisquare_binned       counts are sums of fine counts: **identical**
ks                     statistic at the fine edges: ``D_bins ≤ D ≤ D_bins + max bin mass`` (≈ 1/2048
                       of the reference per bin); p-value from the asymptotic distribution
                       (ks_2samp's exact one below 10k rows)
wasserstein            W1 between per-bin means; ``|W_bins − W| ≤ Σ (p_i + q_i)·width_i`` (tails: to
                       the observed min / max), divided by the reference σ
anderson (any other)   on the seeded cross-shard sample, said in the notes
missing / range /      from counts: **identical** (``out_of_range_counts``, ``unseen_categories``,
unseen / quarantine /  ``implausible_counts``, ``volume``, ``quarantined_share``)
volume / implausible
latency percentiles    KLL (k = :data:`KLL_K`): rank error ≤ ``normalized_rank_error`` (≈ 0.35 %)
error rate             counts: **identical**
accuracy / precision / confusion counts: **identical**; roc_auc from score histograms (ties within a
recall / f1 /          bin count ½: |Δ| ≤ Σ_b pos_b·neg_b / (2·P·N)); log_loss from the exact sum;
log_loss / roc_auc     regression mae / rmse / r2 / mape from sums (float rounding)
=====================  =========================================================================

Not in the sharded path (said in the notes): segments, duplicate request ids (needs every id at once),
the bootstrap that keeps small labelled windows from flagging noise (the sharded path is for windows of
millions of rows, far above its 50k-row limit), multiclass roc_auc. Row-level analyses (Evidently, the
model-health families, registered window checks, the report's histograms) run on a seeded sample drawn
across the shards (:func:`draw_sample`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial import distance

from mlmon.tasks import contract as c
from mlmon.tasks.checks import quality as q
from mlmon.tasks.checks.decide import dataset_drift, decide_scored, drift_checks
from mlmon.tasks.checks.drift import EPS, STD_FLOOR, Counted, get_method, prepare
from mlmon.tasks.checks.health import PERCENTILES
from mlmon.tasks.checks.health import SIGNIFICANCE as ERROR_SIGNIFICANCE
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Metric, Status, WindowResult
from mlmon.tasks.checks.performance import Scores, confusion_scores, threshold, vs_reference
from mlmon.tasks.config import Kind, ModelConfig, TaskType
from mlmon.tasks.errors import MlmonError
from mlmon.tasks.profile import CategoricalProfile, NumericalProfile, Profile
from mlmon.tasks.window import Window

SUMMARY_VERSION = 1
KLL_K = 800
"""KLL accuracy parameter: normalized rank error about 0.35 % (DataSketches' bound, 99 % confidence)."""
SCORE_BINS = 4096
"""Equal-width bins on [0, 1] for the binary score histograms (roc_auc)."""


class SummaryError(MlmonError):
    """Summaries that cannot be merged or read: fitted against another reference or another plan."""


# --------------------------------------------------------------------------- the plan (fit once)


@dataclass(frozen=True)
class Plan:
    """What every shard is summarised against, fitted once from the reference profile and shipped to the
    workers (a few kB per column; the reference itself never leaves the driver)."""

    key: str  # reference hash + settings: summaries merge only under the same key
    edges: dict[str, np.ndarray]  # numerical column -> fine interior edges (right-closed bins)
    plausible: dict[str, tuple[float, float]]  # numerical column -> plausible bounds (quality screen)
    bounds: dict[str, tuple[tuple[float, float] | None, str]]  # numerical feature -> range, source
    kinds: dict[str, Kind]  # every summarised column (features, prediction, score)


def fine_edges(col: NumericalProfile, fine_bins: int) -> np.ndarray:
    """Interior edges at the reference's ``k/fine_bins`` quantiles (observed values), united with the
    profile's own coarse edges so that every coarse bin is a union of fine bins."""
    if not col.n:
        return np.zeros(0)
    levels = np.arange(1, fine_bins) / fine_bins
    idx = np.clip(np.ceil(levels * col.n).astype(np.int64) - 1, 0, col.n - 1)  # inverted_cdf on sorted
    return np.unique(np.concatenate([col.sorted_values[idx], col.bin_edges]))


def fit_plan(cfg: ModelConfig, profile: Profile, kinds: dict[str, Kind]) -> Plan:
    """The plan of a model's shards against this profile (``kinds``: the columns to summarise)."""
    edges, plausible, bounds = {}, {}, {}
    for name, kind in kinds.items():
        col = profile.columns.get(name)
        if kind is Kind.NUMERICAL:
            plausible[name] = q.plausible_bounds(col)
            if isinstance(col, NumericalProfile):
                edges[name] = fine_edges(col, cfg.shards.fine_bins)
            if name in cfg.features:
                bounds[name] = q.feature_bounds(cfg.features[name], col)
    digest = hashlib.sha256(
        repr((profile.reference_hash, SUMMARY_VERSION, cfg.shards.fine_bins, sorted(kinds.items()))).encode()
    ).hexdigest()[:16]
    return Plan(key=digest, edges=edges, plausible=plausible, bounds=bounds, kinds=dict(kinds))


# --------------------------------------------------------------------------- the summary


@dataclass(frozen=True)
class Moments:
    """n, mean, M2 (sum of squared deviations), min, max of some values (Chan et al. 1979 to merge)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        if not x.size:
            return cls()
        mean = float(x.mean())
        return cls(int(x.size), mean, float(((x - mean) ** 2).sum()), float(x.min()), float(x.max()))

    def __add__(self, o: Moments) -> Moments:
        if not o.n:
            return self
        if not self.n:
            return o
        n = self.n + o.n
        d = o.mean - self.mean
        return Moments(
            n,
            self.mean + d * o.n / n,
            self.m2 + o.m2 + d * d * self.n * o.n / n,
            min(self.min, o.min),
            max(self.max, o.max),
        )

    @property
    def std(self) -> float:
        """Population std (ddof=0), as the quality metric ``std``."""
        return math.sqrt(max(self.m2, 0.0) / self.n) if self.n else math.nan


@dataclass(frozen=True)
class NumericalSummary:
    """One numerical column of a shard. ``counts``/``sums``: plausible finite values per fine bin."""

    counts: np.ndarray  # int64, len(edges) + 1
    sums: np.ndarray  # float64, sum of the values in each bin (Wasserstein from per-bin means)
    moments: Moments  # of the plausible finite values (drift and summary statistics see these)
    n_rows: int  # rows of the shard (the column may be absent: all missing)
    n_missing: int  # NaN / None (quality's missing share; ±inf are present but out of range)
    n_out: int = 0  # present values outside the feature's range (quality)
    n_implausible: int = 0  # present values outside the plausible bounds (left out of the statistics)
    observed: tuple[float, float] = (math.inf, -math.inf)  # min / max of all present values

    def __add__(self, o: NumericalSummary) -> NumericalSummary:
        return NumericalSummary(
            self.counts + o.counts,
            self.sums + o.sums,
            self.moments + o.moments,
            self.n_rows + o.n_rows,
            self.n_missing + o.n_missing,
            self.n_out + o.n_out,
            self.n_implausible + o.n_implausible,
            (min(self.observed[0], o.observed[0]), max(self.observed[1], o.observed[1])),
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """One categorical column of a shard: counts per value (as ``str``) and the missing count."""

    counts: dict[str, int]
    n_rows: int
    n_missing: int

    def __add__(self, o: CategoricalSummary) -> CategoricalSummary:
        merged = dict(self.counts)
        for k, v in o.counts.items():
            merged[k] = merged.get(k, 0) + v
        return CategoricalSummary(merged, self.n_rows + o.n_rows, self.n_missing + o.n_missing)


@dataclass(frozen=True)
class Quality:
    """Model-quality sums of a shard's labelled rows."""

    n_labelled: int = 0  # rows with a target
    n: int = 0  # labelled rows with a usable prediction
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)  # (truth, prediction) -> rows
    pos_hist: np.ndarray | None = None  # binary: score histogram of positive rows (SCORE_BINS)
    neg_hist: np.ndarray | None = None
    log_loss_sum: float = 0.0
    n_scored: int = 0  # rows with a finite score
    sums: dict[str, float] = field(default_factory=dict)  # regression: abs, sq, y, y2, ape, n_ape

    def __add__(self, o: Quality) -> Quality:
        conf = dict(self.confusion)
        for k, v in o.confusion.items():
            conf[k] = conf.get(k, 0) + v
        sums = {k: self.sums.get(k, 0.0) + o.sums.get(k, 0.0) for k in {*self.sums, *o.sums}}
        return Quality(
            self.n_labelled + o.n_labelled,
            self.n + o.n,
            conf,
            _add_opt(self.pos_hist, o.pos_hist),
            _add_opt(self.neg_hist, o.neg_hist),
            self.log_loss_sum + o.log_loss_sum,
            self.n_scored + o.n_scored,
            sums,
        )


def _add_opt(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a + b


@dataclass(frozen=True)
class Summary:
    """Everything the decision rules need from a window (or a shard of it), in a fixed size."""

    plan_key: str
    start: datetime
    end: datetime
    n_rows: int
    n_quarantined: int
    numerical: dict[str, NumericalSummary]
    categorical: dict[str, CategoricalSummary]
    latency: bytes | None  # serialised KLL sketch of the logged latencies (None: no latency column)
    n_latency: int
    n_errors: int
    n_with_status: int  # rows whose status is logged
    has_error_flag: bool
    quality: Quality
    unexpected_fields: dict[str, int] = field(default_factory=dict)
    n_unreadable: int | None = None
    shards: int = 1


def summarise(
    frame: pd.DataFrame, plan: Plan, cfg: ModelConfig, window: Window, **extraction: Any
) -> Summary:
    """The summary of one shard's frame (``extraction``: ``n_quarantined``, ``unexpected_fields``,
    ``n_unreadable`` from the shard's :class:`~mlmon.tasks.extract.Batch`)."""
    rows = len(frame)
    numerical, categorical = {}, {}
    for name, kind in plan.kinds.items():
        if kind is Kind.NUMERICAL:
            if name in plan.edges:
                numerical[name] = _numerical(frame, name, plan, rows)
        else:
            categorical[name] = _categorical(frame, name, rows)
    sketch, n_lat = None, 0
    if c.LATENCY in frame:
        import datasketches

        lat = frame[c.LATENCY].to_numpy(dtype=np.float64, na_value=np.nan)
        lat = lat[np.isfinite(lat)]
        kll = datasketches.kll_doubles_sketch(KLL_K)
        if lat.size:
            kll.update(lat)
        sketch, n_lat = kll.serialize(), int(lat.size)
    has_flag = c.IS_ERROR in frame
    n_err = int(frame[c.IS_ERROR].to_numpy(dtype=bool, na_value=False).sum()) if has_flag else 0
    n_status = int(frame[c.STATUS].notna().sum()) if c.STATUS in frame else (rows if has_flag else 0)
    return Summary(
        plan_key=plan.key,
        start=window.start,
        end=window.end,
        n_rows=rows,
        n_quarantined=int(extraction.get("n_quarantined", 0)),
        numerical=numerical,
        categorical=categorical,
        latency=sketch,
        n_latency=n_lat,
        n_errors=n_err,
        n_with_status=n_status,
        has_error_flag=has_flag,
        quality=_quality(frame, cfg),
        unexpected_fields=dict(extraction.get("unexpected_fields") or {}),
        n_unreadable=extraction.get("n_unreadable"),
    )


def _numerical(frame: pd.DataFrame, name: str, plan: Plan, rows: int) -> NumericalSummary:
    edges = plan.edges[name]
    values = _as_float(frame[name]) if name in frame else np.full(rows, np.nan)
    present = ~np.isnan(values)
    n_present = int(present.sum())
    lo, hi = plan.plausible[name]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values >= lo) & (values <= hi)
    x = values[ok]
    idx = np.searchsorted(edges, x, side="left")  # right-closed bins, as the profile's
    counts = np.bincount(idx, minlength=edges.size + 1).astype(np.int64)
    sums = np.bincount(idx, weights=x, minlength=edges.size + 1)
    n_out = 0
    bounds = plan.bounds.get(name, (None, ""))[0]
    if bounds is not None:
        n_out = int(np.count_nonzero((values < bounds[0]) | (values > bounds[1])))
    seen = values[present]
    observed = (float(seen.min()), float(seen.max())) if seen.size else (math.inf, -math.inf)
    return NumericalSummary(
        counts, sums, Moments.of(x), rows, rows - n_present, n_out, n_present - int(ok.sum()), observed
    )


def _as_float(series: pd.Series) -> np.ndarray:
    """The column as float64, NaN for missing or non-numbers (as the quality checks read it)."""
    if series.dtype == np.float64:
        return series.to_numpy()
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _categorical(frame: pd.DataFrame, name: str, rows: int) -> CategoricalSummary:
    if name not in frame or not rows:
        return CategoricalSummary({}, rows, rows)
    counted = prepare(Kind.CATEGORICAL, frame[name])
    assert isinstance(counted, Counted)
    counts = {str(k): int(v) for k, v in zip(counted.keys, counted.counts, strict=True)}
    return CategoricalSummary(counts, rows, rows - counted.size)


def _quality(frame: pd.DataFrame, cfg: ModelConfig) -> Quality:
    if cfg.task is TaskType.NONE or c.TARGET not in frame or c.PREDICTION not in frame:
        return Quality()
    target = frame[c.TARGET]
    n_labelled = int(target.notna().sum())
    if cfg.task is TaskType.REGRESSION:
        y = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        p = pd.to_numeric(frame[c.PREDICTION], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(y) & np.isfinite(p)
        y, p = y[ok], p[ok]
        err = p - y
        nz = y != 0
        sums = {
            "abs": float(np.abs(err).sum()),
            "sq": float((err**2).sum()),
            "y": float(y.sum()),
            "y2": float((y**2).sum()),
            "ape": float((np.abs(err[nz]) / np.abs(y[nz])).sum()),
            "n_ape": float(nz.sum()),
            "y_min": float(y.min()) if y.size else math.inf,
            "y_max": float(y.max()) if y.size else -math.inf,
        }
        return Quality(n_labelled=n_labelled, n=int(y.size), sums=sums)
    usable = (target.notna() & frame[c.PREDICTION].notna()).to_numpy()
    t = target.to_numpy(dtype=object)[usable].astype(str)
    p = frame[c.PREDICTION].to_numpy(dtype=object)[usable].astype(str)
    pairs = (
        pd.Series(1, index=pd.MultiIndex.from_arrays([t, p])).groupby(level=[0, 1]).sum() if t.size else {}
    )
    confusion = {(str(a), str(b)): int(v) for (a, b), v in dict(pairs).items()}
    pos_hist = neg_hist = None
    ll, n_scored = 0.0, 0
    positive = positive_label(cfg)
    if cfg.task is TaskType.BINARY and c.SCORE in frame and positive is not None:
        s = frame[c.SCORE].to_numpy(dtype=np.float64, na_value=np.nan)[usable]
        ok = np.isfinite(s)
        is_pos = t[ok] == positive
        s = s[ok]
        b = np.clip((s * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        pos_hist = np.bincount(b[is_pos], minlength=SCORE_BINS).astype(np.int64)
        neg_hist = np.bincount(b[~is_pos], minlength=SCORE_BINS).astype(np.int64)
        eps = np.finfo(np.float64).eps
        ll = float(-np.log(np.clip(np.where(is_pos, s, 1.0 - s), eps, 1 - eps)).sum())
        n_scored = int(s.size)
    return Quality(n_labelled, int(usable.sum()), confusion, pos_hist, neg_hist, ll, n_scored)


def positive_label(cfg: ModelConfig) -> str | None:
    """The positive class of a binary model as the shards see it: ``positive_class``, else the second
    of two configured ``classes`` (the in-memory path may also guess it from the labels it sees; a shard
    cannot, so the sharded path then leaves the binary metrics undefined and says why)."""
    if cfg.positive_class is not None:
        return str(cfg.positive_class)
    if cfg.classes and len(cfg.classes) == 2:
        return str(cfg.classes[1])
    return None


def merge(a: Summary, b: Summary) -> Summary:
    """The summary of both windows (or shards). Counts add exactly; order does not matter."""
    if a.plan_key != b.plan_key:
        raise SummaryError(
            f"cannot merge summaries fitted against different plans ({a.plan_key} vs {b.plan_key}): "
            "the reference or shards.fine_bins changed; re-summarise the older shards"
        )

    def add(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
        return {k: x[k] + y[k] if k in x and k in y else x.get(k, y.get(k)) for k in sorted({*x, *y})}

    latency = a.latency if b.latency is None else b.latency if a.latency is None else _merge_kll(a, b)
    unreadable = None if a.n_unreadable is None or b.n_unreadable is None else a.n_unreadable + b.n_unreadable
    return Summary(
        plan_key=a.plan_key,
        start=min(a.start, b.start),
        end=max(a.end, b.end),
        n_rows=a.n_rows + b.n_rows,
        n_quarantined=a.n_quarantined + b.n_quarantined,
        numerical=add(a.numerical, b.numerical),
        categorical=add(a.categorical, b.categorical),
        latency=latency,
        n_latency=a.n_latency + b.n_latency,
        n_errors=a.n_errors + b.n_errors,
        n_with_status=a.n_with_status + b.n_with_status,
        has_error_flag=a.has_error_flag or b.has_error_flag,
        quality=a.quality + b.quality,
        unexpected_fields=add(a.unexpected_fields, b.unexpected_fields),
        n_unreadable=unreadable,
        shards=a.shards + b.shards,
    )


def _merge_kll(a: Summary, b: Summary) -> bytes:
    import datasketches

    k = datasketches.kll_doubles_sketch.deserialize(a.latency)
    k.merge(datasketches.kll_doubles_sketch.deserialize(b.latency))
    return k.serialize()


def merge_all(summaries: Iterable[Summary]) -> Summary:
    """Merge many summaries pairwise as a balanced tree (fewer float roundings than a chain)."""
    items = list(summaries)
    if not items:
        raise SummaryError("nothing to merge: no shard summaries")
    while len(items) > 1:
        items = [
            merge(items[i], items[i + 1]) if i + 1 < len(items) else items[i] for i in range(0, len(items), 2)
        ]
    return items[0]


# --------------------------------------------------------------------------- storing


def to_bytes(s: Summary) -> bytes:
    """A compact, versioned, pickle-free encoding (zlib-compressed JSON, arrays as base64)."""

    def arr(x: np.ndarray | None) -> dict[str, str] | None:
        return None if x is None else {"dtype": x.dtype.str, "b64": base64.b64encode(x.tobytes()).decode()}

    def mom(m: Moments) -> list[float]:
        return [m.n, m.mean, m.m2, m.min, m.max]

    body = {
        "version": SUMMARY_VERSION,
        "plan_key": s.plan_key,
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "n_rows": s.n_rows,
        "n_quarantined": s.n_quarantined,
        "numerical": {
            k: {
                "counts": arr(v.counts),
                "sums": arr(v.sums),
                "moments": mom(v.moments),
                "n_rows": v.n_rows,
                "n_missing": v.n_missing,
                "n_out": v.n_out,
                "n_implausible": v.n_implausible,
                "observed": list(v.observed),
            }
            for k, v in s.numerical.items()
        },
        "categorical": {
            k: {"counts": v.counts, "n_rows": v.n_rows, "n_missing": v.n_missing}
            for k, v in s.categorical.items()
        },
        "latency": None if s.latency is None else base64.b64encode(s.latency).decode(),
        "n_latency": s.n_latency,
        "n_errors": s.n_errors,
        "n_with_status": s.n_with_status,
        "has_error_flag": s.has_error_flag,
        "quality": {
            "n_labelled": s.quality.n_labelled,
            "n": s.quality.n,
            "confusion": [[a, b, v] for (a, b), v in s.quality.confusion.items()],
            "pos_hist": arr(s.quality.pos_hist),
            "neg_hist": arr(s.quality.neg_hist),
            "log_loss_sum": s.quality.log_loss_sum,
            "n_scored": s.quality.n_scored,
            "sums": s.quality.sums,
        },
        "unexpected_fields": s.unexpected_fields,
        "n_unreadable": s.n_unreadable,
        "shards": s.shards,
    }
    return zlib.compress(json.dumps(body, allow_nan=True).encode(), 6)


def from_bytes(data: bytes) -> Summary:
    """The summary :func:`to_bytes` wrote; a :class:`SummaryError` for another version or broken bytes."""
    try:
        body = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as e:
        raise SummaryError(f"stored window summary is unreadable: {e}") from e
    if body.get("version") != SUMMARY_VERSION:
        raise SummaryError(
            f"stored window summary has version {body.get('version')}, this mlmon reads {SUMMARY_VERSION}: "
            "re-summarise the shards"
        )

    def arr(x: dict[str, str] | None) -> np.ndarray | None:
        return None if x is None else np.frombuffer(base64.b64decode(x["b64"]), dtype=x["dtype"]).copy()

    def mom(m: list[float]) -> Moments:
        return Moments(int(m[0]), float(m[1]), float(m[2]), float(m[3]), float(m[4]))

    qb = body["quality"]
    return Summary(
        plan_key=body["plan_key"],
        start=datetime.fromisoformat(body["start"]).astimezone(UTC),
        end=datetime.fromisoformat(body["end"]).astimezone(UTC),
        n_rows=body["n_rows"],
        n_quarantined=body["n_quarantined"],
        numerical={
            k: NumericalSummary(
                arr(v["counts"]),
                arr(v["sums"]),
                mom(v["moments"]),
                v["n_rows"],
                v["n_missing"],  # type: ignore[arg-type]
                v["n_out"],
                v["n_implausible"],
                (float(v["observed"][0]), float(v["observed"][1])),
            )
            for k, v in body["numerical"].items()
        },
        categorical={
            k: CategoricalSummary(dict(v["counts"]), v["n_rows"], v["n_missing"])
            for k, v in body["categorical"].items()
        },
        latency=None if body["latency"] is None else base64.b64decode(body["latency"]),
        n_latency=body["n_latency"],
        n_errors=body["n_errors"],
        n_with_status=body["n_with_status"],
        has_error_flag=body["has_error_flag"],
        quality=Quality(
            qb["n_labelled"],
            qb["n"],
            {(a, b): int(v) for a, b, v in qb["confusion"]},
            arr(qb["pos_hist"]),
            arr(qb["neg_hist"]),
            qb["log_loss_sum"],
            qb["n_scored"],
            dict(qb["sums"]),
        ),
        unexpected_fields=dict(body["unexpected_fields"]),
        n_unreadable=body["n_unreadable"],
        shards=body["shards"],
    )


# --------------------------------------------------------------------------- the seeded sample


def shard_sample(frame: pd.DataFrame, rate: float, seed: int, shard: int) -> pd.DataFrame:
    """Rows of one shard kept for the row-level analyses: each with probability ``rate``, seeded by
    (seed, shard) so a re-run draws the same rows."""
    if rate >= 1 or frame.empty:
        return frame
    keep = np.random.default_rng([seed, shard]).random(len(frame)) < rate
    return frame[keep]


def draw_sample(parts: Sequence[pd.DataFrame], rows: int, seed: int) -> pd.DataFrame:
    """The shards' samples joined and cut to ``rows`` by a seeded choice (order kept)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    if len(frame) <= rows:
        return frame
    pick = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
    return frame.iloc[pick].reset_index(drop=True)


# --------------------------------------------------------------------------- the decision on a summary


@dataclass(frozen=True)
class Binned:
    """A numerical column on the fine bins: reference and window counts and per-bin means."""

    ref: np.ndarray  # counts
    cur: np.ndarray
    ref_mean: np.ndarray  # per-bin mean (0 where empty)
    cur_mean: np.ndarray
    lo: float  # observed min of both sides (lower end of the first bin)
    hi: float
    edges: np.ndarray


def binned(col: NumericalProfile, s: NumericalSummary, edges: np.ndarray) -> Binned:
    r = col.sorted_values
    below = np.searchsorted(r, edges, side="right")
    ref = np.diff(np.concatenate(([0], below, [r.size]))).astype(np.int64)
    csum = np.concatenate(([0.0], np.cumsum(r)))
    ref_sums = np.diff(csum[np.concatenate(([0], below, [r.size]))])
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_mean = np.where(ref > 0, ref_sums / np.maximum(ref, 1), 0.0)
        cur_mean = np.where(s.counts > 0, s.sums / np.maximum(s.counts, 1), 0.0)
    lo = min(col.min, s.moments.min)
    hi = max(col.max, s.moments.max)
    return Binned(ref, s.counts, ref_mean, cur_mean, lo, hi, edges)


def ks_binned(b: Binned) -> tuple[float, float, float]:
    """KS statistic at the fine edges, its upper bound inside the bins, and the asymptotic p-value."""
    n1, n2 = int(b.ref.sum()), int(b.cur.sum())
    fr = np.cumsum(b.ref) / n1
    fx = np.cumsum(b.cur) / n2
    d = float(np.abs(fr - fx).max())
    fr_lo, fx_lo = np.concatenate(([0.0], fr[:-1])), np.concatenate(([0.0], fx[:-1]))
    upper = float(np.maximum(fr - fx_lo, fx - fr_lo).max())
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, max(d, upper), p


def wasserstein_binned(b: Binned, std: float) -> tuple[float, float]:
    """Normed W1 between the per-bin means of both sides, and the bound on its difference to the exact."""
    ok_r, ok_c = b.ref > 0, b.cur > 0
    w = stats.wasserstein_distance(b.ref_mean[ok_r], b.cur_mean[ok_c], b.ref[ok_r], b.cur[ok_c])
    bounds = np.concatenate(([b.lo], b.edges, [b.hi]))
    width = np.maximum(np.diff(bounds), 0.0)
    err = float(np.sum(width * (b.ref / b.ref.sum() + b.cur / b.cur.sum())))
    scale = std if std > 0 else STD_FLOOR
    return float(w) / scale, err / scale


def coarse(col: NumericalProfile, b: Binned) -> tuple[np.ndarray, np.ndarray]:
    """The profile's coarse bin counts (reference and window) from the fine ones: exact sums."""
    pos = np.searchsorted(b.edges, col.bin_edges)  # every coarse edge is a fine edge
    cum_r, cum_c = np.concatenate(([0], np.cumsum(b.ref))), np.concatenate(([0], np.cumsum(b.cur)))
    take = np.concatenate(([0], pos + 1, [b.ref.size]))
    return np.diff(cum_r[take]), np.diff(cum_c[take])


def _floor(p: np.ndarray) -> np.ndarray:
    return np.where(p == 0, EPS, p)


def _binned_score(method: str, col: NumericalProfile, b: Binned) -> tuple[float, float | None, float] | None:
    """(statistic, p-value, bound of the difference to the in-memory value) of a numerical method from
    the bins; ``None`` when the method cannot be computed from bins."""
    if method == "ks":
        d, upper, p = ks_binned(b)
        return d, p, upper - d
    if method == "wasserstein":
        w, err = wasserstein_binned(b, col.std)
        return w, None, err
    if method not in ("psi", "jensen_shannon", "kl_div", "chisquare_binned"):
        return None
    r, x = coarse(col, b)
    if method == "chisquare_binned":
        keep = (r + x) > 0
        if keep.sum() < 2:
            return 0.0, 1.0, 0.0
        res = stats.chi2_contingency(np.vstack([r[keep], x[keep]]), correction=False)
        return float(res.statistic), float(res.pvalue), 0.0
    pr, px = r / r.sum(), x / x.sum()
    if method == "psi":
        fr, fx = _floor(pr), _floor(px)
        return float(np.sum((fx - fr) * np.log(fx / fr))), None, 0.0
    if method == "jensen_shannon":
        with np.errstate(invalid="ignore"):
            d = float(distance.jensenshannon(pr, px, base=2))
        return (0.0 if np.isnan(d) else d), None, 0.0
    fx, fr = _floor(px), _floor(pr)
    fx, fr = fx / fx.sum(), fr / fr.sum()
    return float(np.sum(special.rel_entr(fx, fr))), None, 0.0


def _counted(s: CategoricalSummary) -> Counted:
    keys = sorted(s.counts)
    return Counted(np.array(keys, dtype=object), np.array([s.counts[k] for k in keys], dtype=np.int64))


def summary_drift(
    cfg: ModelConfig, profile: Profile, s: Summary, plan: Plan, sample: pd.DataFrame | None
) -> tuple[list[FeatureDrift], list[str]]:
    """The drift table from the summary, decided by :func:`~mlmon.tasks.checks.decide.decide_scored`."""
    from mlmon.tasks.evaluate import drift_specs

    notes: list[str] = []
    worst = {"ks": 0.0, "wasserstein": 0.0}
    scored: list[tuple[FeatureDrift, tuple[str, ...] | None]] = []
    for name, spec in drift_specs(cfg, profile).items():
        row = FeatureDrift(
            feature=name,
            kind=spec.kind.value,
            test_method=spec.test,
            statistic=None,
            p_value=None,
            p_adjusted=None,
            effect_method=spec.effect,
            effect=None,
            effect_threshold=float(spec.threshold),
            n_reference=0,
            n_current=0,
            status=Status.PASS,
            message="",
            segment=ALL,
        )
        ref = profile.columns.get(name)
        if ref is None:
            scored.append(
                (replace(row, status=Status.WARN, message="not in the reference profile: not tested"), None)
            )
            continue
        if isinstance(ref, CategoricalProfile):
            cs = s.categorical.get(name)
            n_cur = _counted(cs).size if cs is not None else 0
        else:
            ns = s.numerical.get(name)
            n_cur = ns.moments.n if ns is not None else 0
        row = replace(row, n_reference=ref.n, n_current=int(n_cur))
        if n_cur < cfg.drift.min_rows:
            msg = f"insufficient data: {n_cur} rows < min_rows {cfg.drift.min_rows}"
            scored.append((replace(row, status=Status.WARN, message=msg), None))
            continue
        if ref.n < cfg.drift.min_rows:
            msg = f"insufficient data: {ref.n} reference rows < min_rows {cfg.drift.min_rows}"
            scored.append((replace(row, status=Status.WARN, message=msg), None))
            continue
        values: dict[str, tuple[float, float | None]] = {}
        try:
            for m in [spec.effect, *([spec.test] if spec.test else [])]:
                values[m] = _score_one(m, name, ref, s, plan, sample, notes, worst)
        except (ValueError, TypeError, SummaryError) as e:
            scored.append((replace(row, status=Status.ERROR, message=f"{type(e).__name__}: {e}"), None))
            continue
        test = values.get(spec.test) if spec.test else None
        row = replace(
            row,
            effect=values[spec.effect][0],
            statistic=test[0] if test else None,
            p_value=test[1] if test else None,
        )
        scored.append((row, ()))
    if any(worst.values()):
        notes.append(
            f"drift from {cfg.shards.fine_bins} reference-quantile bins per column: KS statistics are at most "
            f"{worst['ks']:.2g} below the exact ones, normed Wasserstein distances within "
            f"±{worst['wasserstein']:.2g} of them"
        )
    return decide_scored(scored, cfg.drift), notes


def _score_one(
    method: str,
    name: str,
    ref: NumericalProfile | CategoricalProfile,
    s: Summary,
    plan: Plan,
    sample: pd.DataFrame | None,
    notes: list[str],
    worst: dict[str, float],
) -> tuple[float, float | None]:
    """(statistic, p-value) of one method on one column of the summary."""
    if isinstance(ref, CategoricalProfile):  # the registered method itself, on the merged counts
        sc = get_method(method, Kind.CATEGORICAL)(ref, _counted(s.categorical[name]))  # type: ignore[arg-type]
        return sc.statistic, sc.p_value
    got = _binned_score(method, ref, binned(ref, s.numerical[name], plan.edges[name]))
    if got is not None:
        if method in worst:
            worst[method] = max(worst[method], got[2])
        return got[0], got[1]
    if sample is None or name not in sample or not len(sample):
        # e.g. anderson, the default for discrete columns, on a window merged from stored summaries:
        # the KS test on the fine bins instead, said in the notes (never an error for a default choice)
        ks = _binned_score("ks", ref, binned(ref, s.numerical[name], plan.edges[name]))
        if ks is None:
            raise SummaryError(f"{method} cannot be computed from binned counts and no sample was drawn")
        notes.append(
            f"drift {method} of {name} needs rows and no sample was drawn: ks on the fine bins instead"
        )
        return ks[0], ks[1]
    sc = get_method(method, Kind.NUMERICAL)(ref, prepare(Kind.NUMERICAL, sample[name]))
    notes.append(f"drift {method} of {name} ran on the seeded sample ({len(sample):,} rows)")
    return sc.statistic, sc.p_value


def summary_quality(cfg: ModelConfig, profile: Profile, s: Summary) -> tuple[list[CheckResult], list[Metric]]:
    """The data-quality checks from counts (the same check functions as the in-memory path)."""
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    rows = s.n_rows
    if rows:
        for name, spec in cfg.features.items():
            col = profile.columns.get(name)
            if spec.type is Kind.NUMERICAL:
                ns = s.numerical.get(name)
                if ns is None:
                    continue
                check, metric = q.missing_check(name, spec, col, ns.n_missing, rows, cfg)
                checks.append(check)
                metrics.append(metric)
                n_present = rows - ns.n_missing
                if not n_present:
                    continue
                bounds, source = q.feature_bounds(spec, col)
                if bounds is not None:
                    oc = q.out_of_range_counts(
                        name,
                        ns.n_out,
                        n_present,
                        bounds,
                        source,
                        cfg.quality.max_out_of_range_share,
                        ns.observed if ns.n_out else None,
                    )
                    checks.append(oc)
                    metrics.append(Metric("out_of_range_share", oc.value or 0.0, name))
                if ns.moments.n:
                    metrics += [
                        Metric("mean", ns.moments.mean, name),
                        Metric("std", ns.moments.std, name),
                        Metric("p50", _binned_median(ns), name),
                    ]
            else:
                cs = s.categorical.get(name)
                if cs is None:
                    continue
                check, metric = q.missing_check(name, spec, col, cs.n_missing, rows, cfg)
                checks.append(check)
                metrics.append(metric)
                if not cs.counts or not sum(cs.counts.values()):
                    continue
                allowed_set, source = q.allowed_categories(spec, col)
                if allowed_set is None:
                    continue
                counts = pd.Series(cs.counts, dtype=np.int64).sort_values(ascending=False, kind="stable")
                uc = q.unseen_categories(name, counts, allowed_set, source, cfg.quality.max_unseen_share)
                checks.append(uc)
                metrics.append(Metric("unseen_share", uc.value or 0.0, name))
    checks.append(q.volume(rows, cfg))
    checks.append(q.quarantined_share(rows, s.n_quarantined, cfg))
    checks.append(q.unexpected(s.unexpected_fields))
    found = {
        k: (v.n_implausible, v.n_rows - v.n_missing)
        for k, v in s.numerical.items()
        if isinstance(profile.columns.get(k), NumericalProfile)
    }
    checks.append(q.implausible_counts(found, cfg))
    if s.n_unreadable is not None:
        checks.append(q.unreadable_timestamps(s.n_unreadable, rows, cfg))
    total = rows + s.n_quarantined
    metrics.append(Metric("row_count", float(rows)))
    metrics.append(Metric("quarantined_share", s.n_quarantined / total if total else 0.0))
    return checks, metrics


def _binned_median(ns: NumericalSummary) -> float:
    """The median read off the fine bins: the mean of the bin holding it (within one bin's width)."""
    cum = np.cumsum(ns.counts)
    i = int(np.searchsorted(cum, (cum[-1] + 1) // 2))
    return float(ns.sums[i] / ns.counts[i]) if ns.counts[i] else ns.moments.mean


def summary_health(cfg: ModelConfig, s: Summary, seconds: float) -> tuple[list[CheckResult], list[Metric]]:
    """Latency percentiles from the KLL sketch and the error rate from counts, as ``health_checks``."""
    rows = s.n_rows
    metrics = [Metric("row_count", float(rows)), Metric("requests_per_minute", rows / (seconds / 60.0))]
    if not rows:
        return [], metrics
    checks: list[CheckResult] = []
    svc = cfg.service
    configured = {p: getattr(svc, f"latency_p{p}_ms") for p in PERCENTILES}
    configured = {p: v for p, v in configured.items() if v is not None}
    if s.n_latency:
        import datasketches

        kll = datasketches.kll_doubles_sketch.deserialize(s.latency)
        found = kll.get_quantiles([p / 100 for p in PERCENTILES])
        err = kll.normalized_rank_error(False)
        for p, v in zip(PERCENTILES, found, strict=True):
            metrics.append(Metric(f"latency_p{p}_ms", float(v)))
            slo = configured.get(p)
            if slo is None:
                continue
            failed = v > slo
            message = (
                f"p{p} latency {v:.1f} ms {'>' if failed else '≤'} {slo:g} ms SLO ({s.n_latency:,} requests; "
                f"KLL sketch, rank error ±{err:.2%})"
            )
            checks.append(
                CheckResult(
                    f"latency_p{p}",
                    Category.HEALTH,
                    Status.FAIL if failed else Status.PASS,
                    float(v),
                    slo,
                    message,
                )
            )
    elif cfg.fields.latency_ms is not None or configured:
        message = "latency not logged (no row has a latency)"
        if not configured:
            checks.append(CheckResult("latency_logged", Category.HEALTH, Status.WARN, None, None, message))
        else:
            checks += [
                CheckResult(f"latency_p{p}", Category.HEALTH, Status.WARN, None, slo, message)
                for p, slo in configured.items()
            ]
    if cfg.fields.status is not None:
        allowed = svc.max_error_rate
        if not s.has_error_flag or not s.n_with_status:
            message = "status not logged: error rate unknown (no row has a status)"
            checks.append(CheckResult("error_rate", Category.HEALTH, Status.WARN, None, allowed, message))
        else:
            rate = s.n_errors / rows
            failed = rate > allowed
            op = ">" if failed else "≤"
            message = f"{rate:.1%} of {rows:,} requests failed ({s.n_errors:,}) {op} {allowed:.1%} allowed"
            if failed:
                p = float(stats.binomtest(s.n_errors, rows, allowed, alternative="greater").pvalue)
                if p >= ERROR_SIGNIFICANCE:
                    failed = False
                    message += f", but not significant at {rows:,} requests (p={p:.2g}): not flagged"
            status = Status.FAIL if failed else Status.PASS
            checks.append(CheckResult("error_rate", Category.HEALTH, status, rate, allowed, message))
            metrics.append(Metric("error_rate", rate))
    return checks, metrics


def summary_scores(cfg: ModelConfig, qs: Quality) -> Scores:
    """Model-quality metrics from confusion counts, score histograms and sums."""
    if qs.n == 0:
        return Scores(n=0)
    values: dict[str, float] = {}
    undefined: dict[str, str] = {}
    if cfg.task is TaskType.REGRESSION:
        sm, n = qs.sums, qs.n
        values["mae"] = sm["abs"] / n
        values["rmse"] = math.sqrt(sm["sq"] / n)
        if sm["n_ape"]:
            values["mape"] = sm["ape"] / sm["n_ape"]
        else:
            undefined["mape"] = "every target is zero"
        sst = sm["y2"] - sm["y"] ** 2 / n
        if n < 2:
            undefined["r2"] = "fewer than 2 labelled rows"
        elif sm["y_min"] == sm["y_max"]:
            undefined["r2"] = f"constant target ({sm['y_min']:g})"
        else:
            values["r2"] = 1.0 - sm["sq"] / sst
        return Scores(n=n, values=values, undefined=undefined)
    labels = sorted({k for pair in qs.confusion for k in pair})
    index = {k: i for i, k in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for (t, p), v in qs.confusion.items():
        cm[index[t], index[p]] += v
    if cfg.task is TaskType.BINARY:
        pos = positive_label(cfg)
        if pos is None:
            reason = "positive class unknown: set positive_class (sharded path)"
            undefined.update(dict.fromkeys(("precision", "recall", "f1", "roc_auc", "log_loss"), reason))
            values["accuracy"] = float(np.trace(cm) / qs.n)
            return Scores(n=qs.n, values=values, undefined=undefined)
        values |= confusion_scores(cm, labels, str(pos), undefined)
        if qs.pos_hist is not None and qs.neg_hist is not None and qs.n_scored:
            n_pos, n_neg = int(qs.pos_hist.sum()), int(qs.neg_hist.sum())
            if n_pos and n_neg:
                below = np.concatenate(([0], np.cumsum(qs.neg_hist)[:-1]))
                values["roc_auc"] = float((qs.pos_hist * (below + 0.5 * qs.neg_hist)).sum() / (n_pos * n_neg))
            else:
                undefined["roc_auc"] = "only one class among labelled rows"
            values["log_loss"] = qs.log_loss_sum / qs.n_scored
    else:
        values |= confusion_scores(cm, labels, None, undefined)
    return Scores(n=qs.n, values=values, undefined=undefined)


def summary_performance(
    cfg: ModelConfig, profile: Profile, s: Summary
) -> tuple[list[CheckResult], list[Metric]]:
    """``performance_checks`` on the summary (without the small-window bootstrap)."""
    if cfg.task is TaskType.NONE:
        return [], []
    perf = cfg.performance
    qs = s.quality
    checks: list[CheckResult] = []
    metrics = [Metric("n_labelled", float(qs.n_labelled))]
    if s.n_rows:
        metrics.append(Metric("label_coverage", qs.n_labelled / s.n_rows))
        if perf.min_label_coverage > 0:
            from mlmon.tasks.checks.performance import label_coverage

            checks.append(label_coverage(qs.n_labelled, s.n_rows, perf.min_label_coverage))
    scores = summary_scores(cfg, qs)
    if scores.n < perf.min_labelled:
        message = f"insufficient labels: {scores.n:,} < {perf.min_labelled:,} (min_labelled)"
        checks.append(
            CheckResult(
                "model_quality", Category.PERFORMANCE, Status.WARN, scores.n, perf.min_labelled, message
            )
        )
        return checks, metrics
    summary = ", ".join(f"{k} {v:.4g}" for k, v in scores.values.items()) or "no metric computed"
    checks.append(
        CheckResult(
            "model_quality",
            Category.PERFORMANCE,
            Status.PASS,
            scores.n,
            perf.min_labelled,
            f"{scores.n:,} labelled rows: {summary}",
        )
    )
    metrics += [Metric(k, v) for k, v in scores.values.items()]
    for name, reason in scores.undefined.items():
        checks.append(
            CheckResult(
                f"{name}_undefined",
                Category.PERFORMANCE,
                Status.WARN,
                None,
                None,
                f"{name} undefined: {reason}",
            )
        )
    for name, value in scores.values.items():
        ref = profile.performance.get(name)
        if ref is not None and np.isfinite(ref):
            checks.append(vs_reference(name, value, float(ref), perf.max_degradation))
    for name, limit in perf.thresholds.items():
        check = threshold(name, scores, limit, cfg.task)
        if check is not None:
            checks.append(check)
    return checks, metrics


def evaluate_summary(
    cfg: ModelConfig,
    profile: Profile,
    s: Summary,
    plan: Plan,
    window: Window,
    *,
    sample: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    computed_at: datetime | None = None,
    notes: tuple[str, ...] = (),
) -> WindowResult:
    """Every check the summary supports for the whole window, plus the row-level analyses on ``sample``.

    The same :class:`WindowResult` as :func:`~mlmon.tasks.evaluate.evaluate`, so the store, the report and
    the alerts take it unchanged; its notes say what came from bins, sketches and the sample.
    """
    from mlmon.tasks.checks.families import family_checks
    from mlmon.tasks.checks.registry import window_checks
    from mlmon.tasks.evaluate import drift_metrics
    from mlmon.tasks.histograms import histograms

    if s.plan_key != plan.key:
        raise SummaryError(f"summary fitted against plan {s.plan_key}, not {plan.key}: re-summarise")
    table, drift_notes = summary_drift(cfg, profile, s, plan, sample)
    dataset = dataset_drift(table, cfg.drift, set(cfg.features))
    q_checks, q_metrics = summary_quality(cfg, profile, s)
    h_checks, h_metrics = summary_health(cfg, s, window.length.total_seconds())
    p_checks, p_metrics = summary_performance(cfg, profile, s)
    checks = [*drift_checks(table), dataset, *q_checks, *h_checks, *p_checks]
    metrics = [*drift_metrics(table), *q_metrics, *h_metrics, *p_metrics]
    pred = s.categorical.get(c.PREDICTION)
    if cfg.task in (TaskType.BINARY, TaskType.MULTICLASS) and pred is not None and sum(pred.counts.values()):
        total = sum(pred.counts.values())
        metrics += [Metric("prediction_share", v / total, k) for k, v in pred.counts.items()]
    hist: list[Any] = []
    text = [
        f"Sharded path: {s.n_rows:,} rows in {s.shards} shard summaries merged "
        f"(counts exact; see README 'Windows past one machine' for the bounds).",
        *drift_notes,
        "Not in the sharded path: segments, duplicate request ids, the small-window bootstrap.",
    ]
    if sample is not None and len(sample):
        w_checks, w_metrics = window_checks(cfg, sample, reference=reference, profile=profile)
        f_checks, f_metrics = family_checks(cfg, sample, profile, reference=reference)
        if w_checks or f_checks:
            text.append(
                f"Model-health families and registered window checks ran on a seeded sample of "
                f"{len(sample):,} of {s.n_rows:,} rows drawn across the shards."
            )
        checks += [*w_checks, *f_checks]
        metrics += [*w_metrics, *f_metrics]
        hist = histograms(profile, sample, [k for k in plan.kinds if k in profile.columns])
    dedup: dict[tuple[str, str, str], Metric] = {(m.metric, m.feature, m.segment): m for m in metrics}
    return WindowResult(
        model=cfg.name,
        window=window,
        computed_at=computed_at or datetime.now(UTC),
        n_rows=s.n_rows,
        n_quarantined=s.n_quarantined,
        n_labelled=s.quality.n_labelled,
        reference_hash=profile.reference_hash,
        checks=tuple(checks),
        metrics=tuple(dedup.values()),
        drift=tuple(table),
        quarantine=(),
        evidently_rows=None,
        notes=(*notes, *text),
        histograms=tuple(hist),
    )


# --------------------------------------------------------------------------- shards of a window

MAX_QUARANTINE_KEPT = 100
"""Quarantined documents a shard hands back for inspection (all are counted)."""


@dataclass(frozen=True)
class ShardOutput:
    """What one shard task returns to the driver: its summary (bytes: small to ship), its part of the
    seeded sample and the first quarantined documents."""

    shard: Window
    summary: bytes
    n_rows: int
    sample: pd.DataFrame
    quarantine: tuple[Any, ...] = ()


def shard_windows(window: Window, cfg: ModelConfig) -> list[Window]:
    """The window cut into ``shards.shard``-long pieces (the last one shorter), in time order."""
    from mlmon.tasks.window import parse_duration

    step = parse_duration(cfg.shards.shard)
    out, t = [], window.start
    while t < window.end:
        out.append(Window(t, min(t + step, window.end)))
        t += step
    return out


def use_shards(cfg: ModelConfig, estimated_rows: int) -> bool:
    """Whether a window of about ``estimated_rows`` rows takes the sharded path."""
    return estimated_rows > cfg.shards.max_in_memory_rows


def estimate_rows(collection: Any, cfg: ModelConfig, window: Window) -> int:
    """About how many documents the window holds, for the two decisions made from it: the sharded path
    (past ``shards.max_in_memory_rows``; its sample rate needs the window's count) and decoding workers
    started at the first batch (from ``source.parallel_decode_rows``).

    The whole collection's size (``estimated_document_count`` reads metadata) while it is below both, as
    the window then is. Past the in-memory limit, the window is counted (a query, on the timestamp index
    :func:`mlmon.logger.ensure_indexes` makes). In between, the window is counted up to
    ``source.parallel_decode_rows`` only (the window fits in memory; all that is left to decide is
    whether it reaches that many), so that a day's window of a collection holding months starts no
    decoding workers it does not need, and a big window's count stops early."""
    from mlmon.tasks.extract import window_filter

    total = int(collection.estimated_document_count())
    decode_from = cfg.source.parallel_decode_rows
    if total <= cfg.shards.max_in_memory_rows:
        if total < decode_from or decode_from == 0:  # 0: workers from the first row, whatever the size
            return total
        return int(collection.count_documents(window_filter(cfg, window), limit=decode_from))
    return int(collection.count_documents(window_filter(cfg, window)))


def sample_rate(cfg: ModelConfig, estimated_rows: int) -> float:
    """Per-row keep probability so the cross-shard sample holds about ``shards.sample_rows`` rows (a
    little more, cut to size by :func:`draw_sample`)."""
    if estimated_rows <= 0:
        return 1.0
    return min(1.0, 1.2 * cfg.shards.sample_rows / estimated_rows)


def summarise_batch(
    batch: Any, plan: Plan, cfg: ModelConfig, shard: Window, *, rate: float, index: int
) -> ShardOutput:
    """A shard's extracted :class:`~mlmon.tasks.extract.Batch` reduced to its :class:`ShardOutput`."""
    s = summarise(
        batch.frame,
        plan,
        cfg,
        shard,
        n_quarantined=batch.n_quarantined,
        unexpected_fields=batch.unexpected_fields,
        n_unreadable=batch.n_unreadable_timestamps,
    )
    sample = shard_sample(batch.frame, rate, cfg.shards.seed, index)
    return ShardOutput(
        shard, to_bytes(s), s.n_rows, sample.copy(), tuple(batch.quarantine[:MAX_QUARANTINE_KEPT])
    )


def covering(window: Window, stored: Sequence[tuple[Window, str, bytes]], plan: Plan) -> Summary:
    """The merge of stored shard summaries that tile ``window`` exactly; a :class:`SummaryError` that names
    the gaps, overlaps or summaries of another plan otherwise."""
    if not stored:
        raise SummaryError(
            f"no stored shard summaries in {window}: run the window through the sharded path first"
        )
    problems: list[str] = []
    t = window.start
    for shard, key, _ in stored:
        if shard.start > t:
            problems.append(f"gap {Window(t, shard.start)}")
        elif shard.start < t:
            problems.append(f"overlap at {shard}")
        if key != plan.key:
            problems.append(f"{shard} was binned against plan {key}, not {plan.key}")
        t = max(t, shard.end)
    if t < window.end:
        problems.append(f"gap {Window(t, window.end)}")
    if problems:
        raise SummaryError(f"stored shard summaries do not tile {window}: " + "; ".join(problems[:10]))
    return merge_all(from_bytes(data) for _, _, data in stored)


def with_shard_details(result: WindowResult, outputs: Sequence[ShardOutput]) -> WindowResult:
    """The result with the quarantined documents the shards kept (each shard counts all of its own)."""
    docs = tuple(q for o in outputs for q in o.quarantine)
    kept = len(docs) < result.n_quarantined
    note = (f"{len(docs):,} of {result.n_quarantined:,} quarantined documents kept for inspection "
            f"(at most {MAX_QUARANTINE_KEPT} per shard).",) if kept else ()  # fmt: skip
    return replace(result, quarantine=docs, notes=(*result.notes, *note))


def with_evidently(result: WindowResult, evid: Any, sample_rows: int, shards: int) -> WindowResult:
    """The result with Evidently's rows and a note that it ran on the cross-shard sample."""
    if evid is None:
        return replace(result, notes=(*result.notes, "Evidently report disabled in the config."))
    notes = (
        *result.notes,
        *evid.notes,
        *(f"Evidently: {e}" for e in evid.errors),
        f"Evidently ran on a seeded sample of {evid.rows_used:,} of {result.n_rows:,} rows drawn across "
        f"{shards} shards (shards.sample_rows {sample_rows:,}); mlmon's own checks used every row's summary.",
    )
    return replace(result, evidently_rows=evid.rows_used, notes=notes)
