"""Data-quality checks of one window against the fitted reference profile.

Each check is a small pure function of one column (or of window counts) returning a
:class:`~mlmon.tasks.checks.outcome.CheckResult` plus the :class:`~mlmon.tasks.checks.outcome.Metric` rows Grafana
plots. :func:`quality_checks` runs them all. Everything is vectorised over every row: no sampling, no
per-row Python (a 1M-row × 20-feature window takes well under a second).

Checks (stable names, stored as-is):

- ``missing_share`` (per feature): fail when the missing share > the reference's own missing share +
  allowed (``FeatureSpec.max_missing_share``, else ``quality.max_missing_share``).
- ``out_of_range`` (numerical): fail when the share of values outside ``range`` (else the reference
  [min, max]) > ``quality.max_out_of_range_share``.
- ``unseen_categories`` (categorical): fail when the share of values not in ``allowed`` (else the
  reference categories) > ``quality.max_unseen_share``.
- ``quarantined_share`` (window): warn when any document was quarantined, fail above
  ``quality.max_quarantined_share``.
- ``volume`` (window): fail outside ``quality.expected_volume``; an empty window always fails.
- ``unexpected_fields`` (window): warn when documents carry fields the config does not map.
- ``implausible_values`` (window): numbers more than ``IMPLAUSIBLE_FACTOR`` times the reference's own
  magnitude outside its range (a 1e308 among ages): they are left out of the drift and summary
  statistics (:func:`screen_implausible`) so a handful cannot distort them; warn when any, fail when
  their share is significantly above ``quality.max_out_of_range_share`` in a column.
- ``duplicate_request_ids`` (window): warn when rows repeat the request id of an earlier row.
- ``unreadable_timestamps`` (window): documents of the model created in the window (by ObjectId time)
  whose timestamp no window can ever select (missing, or not of ``timestamp_type``); warn when any,
  fail above ``quality.max_quarantined_share``.

Metrics: ``missing_share``, ``out_of_range_share``, ``mean``, ``std`` (population, like the profile),
``p50`` per numerical feature; ``missing_share``, ``unseen_share`` per categorical feature; and, for the
whole window only, ``row_count`` and ``quarantined_share``. Summary statistics use finite values only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import FeatureSpec, Kind, ModelConfig
from mlmon.tasks.profile import CategoricalProfile, ColumnProfile, NumericalProfile, Profile

MAX_LISTED = 5  # unseen values named in a message
MAX_LISTED_FIELDS = 10  # unexpected fields named in a message
MAX_CHARS = 40  # untrusted values are cut to this length in messages

Found = tuple[list[CheckResult], list[Metric]]


def quality_checks(
    frame: pd.DataFrame,
    profile: Profile,
    cfg: ModelConfig,
    *,
    n_quarantined: int,
    unexpected_fields: dict[str, int] | None = None,
    segment: str = ALL,
    window_level: bool = True,
    prepared: Mapping[str, np.ndarray | object] | None = None,
    unreadable: int | None = None,
) -> Found:
    """Every quality check of one window (or one segment of it, with ``window_level=False``).

    ``n_quarantined`` and ``unexpected_fields`` come from extraction and only matter at window level:
    quarantined share, volume, unexpected fields and ``row_count`` are not computed per segment; nor are
    implausible values, duplicate request ids and ``unreadable`` timestamps (counted by extraction).
    An empty frame never raises: it fails ``volume`` and skips the per-feature checks. ``prepared``: the
    drift checks' prepared columns (sorted plausible values of numerical features), reused for the median.
    """
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    rows = len(frame)
    if rows:
        for name, spec in cfg.features.items():
            col = profile.columns.get(name)
            ready = prepared.get(name) if prepared is not None else None
            found = (
                _numerical(
                    frame, name, spec, col, cfg, segment, ready if isinstance(ready, np.ndarray) else None
                )
                if spec.type is Kind.NUMERICAL
                else _categorical(frame, name, spec, col, cfg, segment)
            )
            checks += found[0]
            metrics += found[1]
    if window_level:
        checks.append(volume(rows, cfg, segment))
        checks.append(quarantined_share(rows, n_quarantined, cfg, segment))
        if unexpected_fields is not None:
            checks.append(unexpected(unexpected_fields, segment))
        checks.append(implausible_values(frame, profile, cfg, segment))
        if c.REQUEST_ID in frame:
            checks.append(duplicate_request_ids(frame[c.REQUEST_ID], segment))
        if unreadable is not None:
            checks.append(unreadable_timestamps(unreadable, rows, cfg, segment))
        total = rows + n_quarantined
        metrics.append(Metric("row_count", float(rows), "", segment))
        metrics.append(Metric("quarantined_share", n_quarantined / total if total else 0.0, "", segment))
    return checks, metrics


# --------------------------------------------------------------------------- per feature


def _numerical(
    frame: pd.DataFrame,
    name: str,
    spec: FeatureSpec,
    col: ColumnProfile | None,
    cfg: ModelConfig,
    segment: str,
    sorted_finite: np.ndarray | None = None,
) -> Found:
    rows = len(frame)
    values = _as_float(frame[name]) if name in frame else np.full(rows, np.nan)
    n_present = int(np.count_nonzero(~np.isnan(values)))
    check, metric = missing_check(name, spec, col, rows - n_present, rows, cfg, segment)
    checks, metrics = [check], [metric]
    if n_present == 0:
        return checks, metrics

    bounds, source = feature_bounds(spec, col)
    if bounds is not None:
        check = out_of_range(
            name, values, n_present, bounds, source, cfg.quality.max_out_of_range_share, segment
        )
        checks.append(check)
        metrics.append(Metric("out_of_range_share", check.value or 0.0, name, segment))

    finite = values[plausible_mask(values, col)]
    if finite.size:
        metrics += [
            Metric("mean", float(finite.mean()), name, segment),
            Metric("std", float(finite.std()), name, segment),
            Metric("p50", _median(finite, sorted_finite), name, segment),
        ]
    return checks, metrics


def _categorical(
    frame: pd.DataFrame,
    name: str,
    spec: FeatureSpec,
    col: ColumnProfile | None,
    cfg: ModelConfig,
    segment: str,
) -> Found:
    rows = len(frame)
    # One hash pass gives both the missing count and the counts of every distinct value.
    counts = _value_counts(frame[name]) if name in frame else pd.Series([], dtype="int64")
    n_present = int(counts.sum())
    check, metric = missing_check(name, spec, col, rows - n_present, rows, cfg, segment)
    checks, metrics = [check], [metric]
    if n_present == 0:
        return checks, metrics

    allowed, source = allowed_categories(spec, col)
    if allowed is None:
        return checks, metrics
    check = unseen_categories(name, counts, allowed, source, cfg.quality.max_unseen_share, segment)
    checks.append(check)
    metrics.append(Metric("unseen_share", check.value or 0.0, name, segment))
    return checks, metrics


SIGNIFICANCE = 0.01


def significant_excess(k: int, n: int, allowed: float) -> bool:
    """Is ``k`` of ``n`` significantly more than the ``allowed`` share (one-sided binomial test, 1 %)?

    Keeps share-based verdicts from swinging with sample size: 3 odd values among 200 rows are not an
    incident at a 1 % limit; 3 % of 100k rows is.

    >>> significant_excess(3, 200, 0.01), significant_excess(3_000, 100_000, 0.01)
    (False, True)
    """
    if n <= 0 or k <= allowed * n:
        return False
    if allowed <= 0:
        return True
    if allowed >= 1:
        return False
    return float(stats.binomtest(k, n, allowed, alternative="greater").pvalue) < SIGNIFICANCE


def _noise(over: bool, failed: bool, n: int) -> str:
    return f", but not significant at {n:,} rows: not flagged" if over and not failed else ""


def _excess(k: int, n: int, threshold: float) -> tuple[float, bool, bool]:
    """The share ``k / n`` (0 when ``n`` is 0), whether it is over ``threshold``, and whether it failed:
    over it and significantly so (:func:`significant_excess`)."""
    share = k / n if n else 0.0
    over = share > threshold
    return share, over, over and significant_excess(k, n, threshold)


def _share_result(
    check: str, name: str, failed: bool, share: float, threshold: float, message: str, segment: str
) -> CheckResult:
    """The result of a per-feature share check judged by :func:`_excess`."""
    return CheckResult(
        check=check,
        category=Category.QUALITY,
        status=Status.FAIL if failed else Status.PASS,
        value=share,
        threshold=threshold,
        message=message,
        feature=name,
        segment=segment,
    )


def missing_share(
    name: str, n_missing: int, rows: int, reference_share: float, allowed: float, segment: str = ALL
) -> CheckResult:
    """Fail when the missing share exceeds the reference's own missing share by more than ``allowed``."""
    threshold = reference_share + allowed
    share, over, failed = _excess(n_missing, rows, threshold)
    if share >= 1.0 and rows:
        message = f"{name}: never present: missing field? (100% missing in {rows:,} rows"
        message += f"; reference {_pct(reference_share)})" if not failed else ")"
    else:
        op = ">" if over else "≤"
        message = (
            f"{name}: {_pct(share)} missing {op} {_pct(threshold)} allowed "
            f"(reference {_pct(reference_share)} + {_pct(allowed)})"
        ) + _noise(over, failed, rows)
    return _share_result("missing_share", name, failed, share, threshold, message, segment)


def out_of_range(
    name: str,
    values: np.ndarray,
    n_present: int,
    bounds: tuple[float, float],
    source: str,
    allowed: float,
    segment: str = ALL,
) -> CheckResult:
    """Fail when the share of non-missing values outside ``bounds`` (inclusive) exceeds ``allowed``.

    NaN compares false, so missing values are never counted; ±inf is out of any finite range.
    """
    lo, hi = bounds
    n_out = int(np.count_nonzero((values < lo) | (values > hi)))
    observed = (float(np.nanmin(values)), float(np.nanmax(values))) if n_out else None
    return out_of_range_counts(name, n_out, n_present, bounds, source, allowed, observed, segment)


def out_of_range_counts(
    name: str,
    n_out: int,
    n_present: int,
    bounds: tuple[float, float],
    source: str,
    allowed: float,
    observed: tuple[float, float] | None = None,
    segment: str = ALL,
) -> CheckResult:
    """:func:`out_of_range` from counts: ``n_out`` of ``n_present`` values outside ``bounds``; ``observed``
    is the observed [min, max] shown when any is out (the sharded path merges these per shard)."""
    lo, hi = bounds
    share, over, failed = _excess(n_out, n_present, allowed)
    message = (
        f"{name}: {_pct(share)} of values outside {source} range [{lo:g}, {hi:g}] "
        f"{'>' if over else '≤'} {_pct(allowed)} allowed"
    ) + _noise(over, failed, n_present)
    if n_out and observed is not None:
        message += f" (observed [{observed[0]:g}, {observed[1]:g}])"
    return _share_result("out_of_range", name, failed, share, allowed, message, segment)


def unseen_categories(
    name: str,
    counts: pd.Series,
    allowed: frozenset[str],
    source: str,
    max_share: float,
    segment: str = ALL,
) -> CheckResult:
    """Fail when the share of non-missing values outside ``allowed`` exceeds ``max_share``.

    ``counts`` are the window's value counts (most frequent first), so the message names the most
    frequent unseen values. Values are untrusted: they are cut to 40 characters and shown with
    ``repr`` (keeps the message on one line); HTML escaping is the renderer's job.
    """
    n = counts.to_numpy()
    unseen_mask = ~counts.index.isin(list(allowed)) & (n > 0)  # Categorical dtypes count absent levels as 0
    n_unseen = int(n[unseen_mask].sum())
    share, over, failed = _excess(n_unseen, int(n.sum()), max_share)
    message = f"{name}: {_pct(share)} unseen categories {'>' if over else '≤'} {_pct(max_share)} allowed"
    message += _noise(over, failed, int(n.sum()))
    if n_unseen:
        unseen = counts.index[unseen_mask]
        listed = ", ".join(_quote(str(k)) for k in unseen[:MAX_LISTED])
        more = f" (+{len(unseen) - MAX_LISTED} more)" if len(unseen) > MAX_LISTED else ""
        message += f" (not in {source} categories: {listed}{more})"
    return _share_result("unseen_categories", name, failed, share, max_share, message, segment)


# --------------------------------------------------------------------------- window level


def quarantined_share(rows: int, n_quarantined: int, cfg: ModelConfig, segment: str = ALL) -> CheckResult:
    """Warn when any document was quarantined; fail above ``quality.max_quarantined_share``."""
    total = rows + n_quarantined
    share = n_quarantined / total if total else 0.0
    allowed = cfg.quality.max_quarantined_share
    status = Status.FAIL if share > allowed else Status.WARN if n_quarantined else Status.PASS
    message = (
        f"{n_quarantined:,} of {total:,} documents quarantined ({_pct(share)}; "
        f"{'>' if status is Status.FAIL else '≤'} {_pct(allowed)} allowed)"
        if n_quarantined
        else f"no documents quarantined (of {total:,})"
    )
    return CheckResult("quarantined_share", Category.QUALITY, status, share, allowed, message, "", segment)


def volume(rows: int, cfg: ModelConfig, segment: str = ALL) -> CheckResult:
    """Rows against ``quality.expected_volume``; an empty window always fails."""
    lo, hi = cfg.quality.expected_volume.min, cfg.quality.expected_volume.max
    threshold: float | None = float(lo) if lo is not None else None
    if rows == 0:
        status, message = Status.FAIL, "no predictions in window"
    elif lo is not None and rows < lo:
        status, message = Status.FAIL, f"{rows:,} predictions < {lo:,} expected minimum"
    elif hi is not None and rows > hi:
        status, message, threshold = Status.FAIL, f"{rows:,} predictions > {hi:,} expected maximum", float(hi)
    else:
        status = Status.PASS
        if lo is None and hi is None:
            message = f"{rows:,} predictions (no expected volume configured)"
        else:
            upper = f"{hi:,}" if hi is not None else "∞"
            message = f"{rows:,} predictions within expected [{lo or 0:,}, {upper}]"
    return CheckResult("volume", Category.QUALITY, status, float(rows), threshold, message, "", segment)


def unexpected(fields: dict[str, int], segment: str = ALL) -> CheckResult:
    """Warn when documents carry fields the config does not map (``fields``: name -> documents)."""
    if not fields:
        return CheckResult(
            "unexpected_fields", Category.QUALITY, Status.PASS, 0.0, 0.0, "no unexpected fields", "", segment
        )
    ordered = sorted(fields.items(), key=lambda kv: (-kv[1], str(kv[0])))
    listed = ", ".join(f"{_quote(str(k))} ({n:,})" for k, n in ordered[:MAX_LISTED_FIELDS])
    more = f" (+{len(ordered) - MAX_LISTED_FIELDS} more)" if len(ordered) > MAX_LISTED_FIELDS else ""
    message = f"{len(fields)} unmapped field(s) in documents: {listed}{more}"
    return CheckResult(
        "unexpected_fields", Category.QUALITY, Status.WARN, float(len(fields)), 0.0, message, "", segment
    )


def duplicate_request_ids(request_ids: pd.Series, segment: str = ALL) -> CheckResult:
    """Warn when rows repeat the request id of an earlier row (a retry logged twice, or an id that is not
    unique): the delayed label of that id is joined to every one of them."""
    present = request_ids.dropna()
    repeats = int(present.duplicated().sum())
    value = repeats / len(request_ids) if len(request_ids) else 0.0
    if not repeats:
        message = f"no duplicate request ids (of {len(present):,})"
        return CheckResult(
            "duplicate_request_ids", Category.QUALITY, Status.PASS, 0.0, 0.0, message, "", segment
        )
    ids = int(present[present.duplicated(keep=False)].nunique())
    message = (
        f"{repeats:,} rows repeat the request id of an earlier row ({ids:,} ids logged more than once; "
        "retries logged twice?): the label of such an id is joined to each of them"
    )
    return CheckResult(
        "duplicate_request_ids", Category.QUALITY, Status.WARN, value, 0.0, message, "", segment
    )


_TIMESTAMP_TYPE = {
    "date": "BSON date",
    "string": "date string",
    "epoch_s": "number (epoch seconds)",
    "epoch_ms": "number (epoch milliseconds)",
}


def unreadable_timestamps(n: int, rows: int, cfg: ModelConfig, segment: str = ALL) -> CheckResult:
    """Documents that no window can select (their timestamp is missing or not of ``timestamp_type``),
    among those created in this window by their ObjectId: warn when any, fail above
    ``quality.max_quarantined_share`` of the window."""
    total = rows + n
    share = n / total if total else 0.0
    allowed = cfg.quality.max_quarantined_share
    what = f"{cfg.fields.timestamp} (timestamp_type {cfg.fields.timestamp_type}: a {_TIMESTAMP_TYPE[cfg.fields.timestamp_type]})"
    if not n:
        status = Status.PASS
        message = f"no document created in this window (by its ObjectId) lacks a readable {what}"
    else:
        status = Status.FAIL if share > allowed else Status.WARN
        message = (
            f"{n:,} documents created in this window (by their ObjectId) have a {what} that is missing or "
            "of another type: no window can ever read them; fix how the serving app logs its timestamps"
        )
    return CheckResult(
        "unreadable_timestamps", Category.QUALITY, status, float(n), allowed, message, "", segment
    )


# --------------------------------------------------------------------------- input screening

IMPLAUSIBLE_FACTOR = 1000.0


def plausible_bounds(col: ColumnProfile | None) -> tuple[float, float]:
    """Values a column can plausibly take: the reference range widened on each side by
    ``IMPLAUSIBLE_FACTOR`` times the reference's magnitude (max of |min|, |max| and the range, at least 1).
    A unit change (×1000) stays inside and is found by the drift tests; 1e308 among ages does not.
    """
    if not isinstance(col, NumericalProfile) or not col.n:
        return -np.inf, np.inf
    return widened_range(float(col.min), float(col.max))


def widened_range(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` widened by ``IMPLAUSIBLE_FACTOR`` times its magnitude on each side.

    >>> widened_range(18.0, 90.0)
    (-89982.0, 90090.0)
    """
    magnitude = max(abs(lo), abs(hi), hi - lo, 1.0)
    return lo - IMPLAUSIBLE_FACTOR * magnitude, hi + IMPLAUSIBLE_FACTOR * magnitude


def plausible_mask(values: np.ndarray, col: ColumnProfile | None) -> np.ndarray:
    """Finite values inside :func:`plausible_bounds` (a finite value without a reference is plausible)."""
    lo, hi = plausible_bounds(col)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= lo) & (values <= hi)


def screen_implausible(frame: pd.DataFrame, profile: Profile, columns: Iterable[str]) -> pd.DataFrame:
    """The frame the statistics see: implausible values of these numerical columns set to missing (a copy
    only when there are any; the quality checks still see and count them)."""
    out = frame
    for name in columns:
        col = profile.columns.get(name)
        if name not in frame or not isinstance(col, NumericalProfile) or frame[name].dtype != np.float64:
            continue
        values = frame[name].to_numpy()
        bad = ~plausible_mask(values, col) & ~np.isnan(values)
        if bad.any():
            out = out.copy() if out is frame else out
            out[name] = np.where(bad, np.nan, values)
    return out


def implausible_values(
    frame: pd.DataFrame, profile: Profile, cfg: ModelConfig, segment: str = ALL
) -> CheckResult:
    """Count the implausible values per numerical column (see :func:`plausible_bounds`); warn when any,
    fail when a column's share is significantly above ``quality.max_out_of_range_share``."""
    found: dict[str, tuple[int, int]] = {}
    for name, col in profile.columns.items():
        if name not in frame or not isinstance(col, NumericalProfile) or frame[name].dtype != np.float64:
            continue
        values = frame[name].to_numpy()
        k = int(np.count_nonzero(~plausible_mask(values, col) & ~np.isnan(values)))
        if k:
            found[name] = (k, int(np.count_nonzero(~np.isnan(values))))
    return implausible_counts(found, cfg, segment)


def implausible_counts(
    found_present: dict[str, tuple[int, int]], cfg: ModelConfig, segment: str = ALL
) -> CheckResult:
    """:func:`implausible_values` from counts: column -> (implausible values, non-missing values)."""
    found = {k: v[0] for k, v in found_present.items() if v[0]}
    failed = any(
        significant_excess(k, n, cfg.quality.max_out_of_range_share) for k, n in found_present.values() if k
    )
    if not found:
        return CheckResult(
            "implausible_values", Category.QUALITY, Status.PASS, 0.0, IMPLAUSIBLE_FACTOR,
            "no implausible values", "", segment,
        )  # fmt: skip
    listed = ", ".join(
        f"{_quote(c.column_label(k))} ({v:,})" for k, v in sorted(found.items(), key=lambda kv: -kv[1])
    )
    message = (
        f"{sum(found.values()):,} values more than {IMPLAUSIBLE_FACTOR:g}× the reference's magnitude "
        f"outside its range, left out of the drift and summary statistics: {listed}"
    )
    status = Status.FAIL if failed else Status.WARN
    return CheckResult(
        "implausible_values", Category.QUALITY, status, float(sum(found.values())), IMPLAUSIBLE_FACTOR,
        message, "", segment,
    )  # fmt: skip


# --------------------------------------------------------------------------- small pieces


def allowed_missing(spec: FeatureSpec, cfg: ModelConfig) -> float:
    return spec.max_missing_share if spec.max_missing_share is not None else cfg.quality.max_missing_share


def missing_check(
    name: str,
    spec: FeatureSpec,
    col: ColumnProfile | None,
    n_missing: int,
    rows: int,
    cfg: ModelConfig,
    segment: str = ALL,
) -> tuple[CheckResult, Metric]:
    """The ``missing_share`` check of a feature and its metric, against the reference's own missing share
    (0 when the profile has no column of the feature's kind); in memory and from counts alike."""
    kind = NumericalProfile if spec.type is Kind.NUMERICAL else CategoricalProfile
    reference = col.missing_share if isinstance(col, kind) else 0.0
    check = missing_share(name, n_missing, rows, reference, allowed_missing(spec, cfg), segment)
    return check, Metric("missing_share", check.value or 0.0, name, segment)


def feature_bounds(spec: FeatureSpec, col: ColumnProfile | None) -> tuple[tuple[float, float] | None, str]:
    if spec.range is not None:
        return (float(spec.range[0]), float(spec.range[1])), "configured"
    if isinstance(col, NumericalProfile) and col.n and np.isfinite(col.min) and np.isfinite(col.max):
        return (float(col.min), float(col.max)), "reference"
    return None, ""


def allowed_categories(spec: FeatureSpec, col: ColumnProfile | None) -> tuple[frozenset[str] | None, str]:
    """The categories a feature may take and where they come from; ``None`` when neither the config nor
    the reference says (no ``unseen_categories`` check then)."""
    if spec.allowed is not None:
        return frozenset(spec.allowed), "configured"
    if isinstance(col, CategoricalProfile):
        return frozenset(col.categories), "reference"
    return None, ""


def _as_float(series: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing (zero-copy for the contract's float64 columns)."""
    if series.dtype == np.float64:
        return series.to_numpy()
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _median(finite: np.ndarray, sorted_finite: np.ndarray | None) -> float:
    """``np.median`` of the finite values, read off the drift checks' sorted copy when there is one."""
    if sorted_finite is None or sorted_finite.size != finite.size:
        return float(np.median(finite))
    k = sorted_finite.size
    mid = sorted_finite[(k - 1) // 2 : k // 2 + 1]
    return float(mid[0]) if mid.size == 1 else float(np.mean(mid))  # np.median's own mean of the middle two


def _value_counts(series: pd.Series) -> pd.Series:
    """``series.value_counts(dropna=True)``, most frequent first, from codes and ``bincount``.

    One hash pass (none for a categorical dtype) instead of pandas' hash count; ties keep the order of
    first appearance, like ``value_counts``. Absent levels of a categorical dtype are left out.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    codes = codes[codes >= 0]
    counts = np.bincount(codes.astype(np.intp, copy=False), minlength=len(uniques))
    keep = np.flatnonzero(counts)
    order = keep[np.argsort(-counts[keep], kind="stable")]
    return pd.Series(
        counts[order].astype(np.int64), index=pd.Index(np.asarray(uniques, dtype=object)[order], dtype=object)
    )


def _quote(value: str) -> str:
    return repr(value[:MAX_CHARS] + "…" if len(value) > MAX_CHARS else value)


def _pct(share: float) -> str:
    """A share as a percentage with one decimal, keeping two significant digits for tiny non-zero shares."""
    if 0 < abs(share) < 0.001:
        return f"{share * 100:.2g}%"
    return f"{share:.1%}"
