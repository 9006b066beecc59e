"""Evaluate one window: every check, for the whole window and for each configured segment.

Pure function of (config, fitted profile, extracted batch): no I/O, no Prefect. Its
:class:`~mlmon.tasks.checks.outcome.WindowResult` feeds both the store and the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.decide import DriftSpec, dataset_drift, drift_checks, drift_table, numerical_test
from mlmon.tasks.checks.drift import prepare_columns
from mlmon.tasks.checks.families import family_checks
from mlmon.tasks.checks.health import PastVolume, health_checks
from mlmon.tasks.checks.health import volume_history as learned_volume
from mlmon.tasks.checks.outcome import ALL, CheckResult, FeatureDrift, Metric, Status, WindowResult
from mlmon.tasks.checks.performance import performance_checks
from mlmon.tasks.checks.quality import quality_checks, screen_implausible
from mlmon.tasks.checks.registry import window_checks
from mlmon.tasks.config import Kind, ModelConfig, TaskType
from mlmon.tasks.extract import Batch
from mlmon.tasks.histograms import histograms
from mlmon.tasks.profile import Profile
from mlmon.tasks.window import Window

PREDICTION_COLUMNS = (c.PREDICTION, c.SCORE)


def drift_specs(cfg: ModelConfig, profile: Profile) -> dict[str, DriftSpec]:
    """Columns tested for drift: every feature, the prediction and its score/confidence (when profiled)."""
    d = cfg.drift
    specs: dict[str, DriftSpec] = {}

    def spec(
        kind: Kind, test: str | None, effect: str | None, threshold: float | None, name: str = ""
    ) -> DriftSpec:
        num = kind is Kind.NUMERICAL
        default = numerical_test(d, profile.columns.get(name)) if num else d.categorical_test
        return DriftSpec(
            kind=kind,
            test=test if test is not None else default,
            effect=effect or (d.numerical_effect if num else d.categorical_effect),
            threshold=threshold
            if threshold is not None
            else (d.numerical_threshold if num else d.categorical_threshold),
        )

    for name, f in cfg.features.items():
        specs[name] = spec(f.type, f.drift_test, f.drift_effect, f.drift_threshold, name)
    if c.PREDICTION in profile.columns:
        kind = Kind.NUMERICAL if cfg.task is TaskType.REGRESSION else Kind.CATEGORICAL
        specs[c.PREDICTION] = spec(kind, None, None, None)
    if c.SCORE in profile.columns:
        specs[c.SCORE] = spec(Kind.NUMERICAL, None, None, None)
    return specs


def profile_kinds(cfg: ModelConfig) -> dict[str, Kind]:
    """What to fit in the reference profile: features plus prediction columns."""
    kinds = {n: f.type for n, f in cfg.features.items()}
    if cfg.task is not TaskType.NONE:
        kinds[c.PREDICTION] = Kind.NUMERICAL if cfg.task is TaskType.REGRESSION else Kind.CATEGORICAL
        if cfg.task is not TaskType.REGRESSION:
            kinds[c.SCORE] = Kind.NUMERICAL
    return kinds


def evaluate(
    cfg: ModelConfig,
    profile: Profile,
    batch: Batch,
    window: Window,
    *,
    computed_at: datetime | None = None,
    notes: tuple[str, ...] = (),
    evidently_rows: int | None = None,
    reference: pd.DataFrame | None = None,
    volume_history: Sequence[PastVolume] | None = None,
    drift_profile: Profile | None = None,
) -> WindowResult:
    """Every check for the window and each segment.

    A segment is compared with the same segment of the reference when the reference has enough rows of
    it (``plan=basic`` against the reference's basic-plan rows), else with the whole reference; the
    segment's own field is never tested for drift inside it (it is constant there by construction).
    ``volume_history`` (the model's past windows, read by the flow) adds the learned ``volume_history``
    check when no ``quality.expected_volume`` is configured. ``drift_profile`` (a rolling reference, see
    :mod:`mlmon.tasks.rolling`) replaces the reference of the drift checks, for the window and every
    segment.
    """
    frame = _category_codes(batch.frame, cfg)
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    drift: list[FeatureDrift] = []
    specs = drift_specs(cfg, profile)
    seconds = window.length.total_seconds()
    sorted_columns: dict[str, object] = {}
    for segment, part in _segments(cfg, frame):
        whole = segment == ALL
        seg_profile = profile if whole else _segment_profile(cfg, profile, reference, segment)
        seg_field = None if whole else segment.split("=", 1)[0]
        present = {k: v for k, v in specs.items() if k in part.columns and k != seg_field}
        # implausible values (1e308 among ages) never reach the statistics; quality counts them
        screened = screen_implausible(part, profile, present)
        prepared = prepare_columns(screened, {k: v.kind for k, v in present.items()})  # once: drift + quality
        if whole and screened is part:  # nothing screened out: the histograms reuse the sorted columns
            sorted_columns = prepared
        against = drift_profile if drift_profile is not None else seg_profile
        table = drift_table(against, screened, present, cfg.drift, segment=segment, prepared=prepared)
        drift.extend(table)
        dataset = dataset_drift(table, cfg.drift, set(cfg.features), segment=segment)
        metrics.extend(_drift_metrics(table))
        q_checks, q_metrics = quality_checks(  # ranges and categories belong to the feature, not the segment
            part,
            profile,
            cfg,
            n_quarantined=batch.n_quarantined if whole else 0,
            unexpected_fields=batch.unexpected_fields if whole else None,
            segment=segment,
            window_level=whole,
            prepared=prepared,
            unreadable=batch.n_unreadable_timestamps,
        )
        h_checks, h_metrics = health_checks(part, cfg, seconds, segment=segment)
        p_checks, p_metrics = performance_checks(part, seg_profile, cfg, segment=segment)
        w_checks, w_metrics = window_checks(
            cfg, part, reference=reference, profile=seg_profile, segment=segment
        )
        f_checks, f_metrics = family_checks(
            cfg,
            part,
            profile,
            reference=reference,
            segment=segment,
            drift=tuple(table),
            shadow=_shadow_of(batch, part, whole),
        )
        w_checks, w_metrics = w_checks + f_checks, w_metrics + f_metrics
        seg_checks = [*drift_checks(table), dataset, *q_checks, *h_checks, *p_checks, *w_checks]
        if not whole:
            # a segment too small for a verdict is a breakdown without one, not a problem with the window
            seg_checks = [
                ch for ch in seg_checks if not (ch.status is Status.WARN and "insufficient" in ch.message)
            ]
        checks += seg_checks
        metrics += q_metrics + h_metrics + p_metrics + w_metrics + _class_balance(part, cfg, segment)
    expected = cfg.quality.expected_volume
    if volume_history is not None and expected.min is None and expected.max is None:
        checks.append(learned_volume(len(frame), window, volume_history))
    return WindowResult(
        model=cfg.name,
        window=window,
        computed_at=computed_at or datetime.now(UTC),
        n_rows=len(frame),
        n_quarantined=batch.n_quarantined,
        n_labelled=int(frame[c.TARGET].notna().sum()) if c.TARGET in frame else 0,
        reference_hash=profile.reference_hash,
        checks=tuple(checks),
        metrics=tuple(_dedupe(metrics)),
        drift=tuple(drift),
        quarantine=tuple(batch.quarantine),
        evidently_rows=evidently_rows,
        notes=notes,
        histograms=tuple(histograms(profile, frame, list(specs), sorted_columns)),
    )


def _shadow_of(batch: Batch, part: pd.DataFrame, whole: bool) -> pd.DataFrame | None:
    """The shadow predictions of a segment's requests (the batch's shadow rows whose request id is one
    of the segment's served rows): a shadow prediction belongs to the segment of the request it shadows."""
    shadow = batch.shadow
    if shadow is None or whole or shadow.empty or c.REQUEST_ID not in shadow or c.REQUEST_ID not in part:
        return shadow
    return shadow[shadow[c.REQUEST_ID].isin(part[c.REQUEST_ID]).to_numpy()]


def _category_codes(frame: pd.DataFrame, cfg: ModelConfig) -> pd.DataFrame:
    """The frame with its object-dtype categorical features as category codes (a shallow copy).

    Converted once per window: every count after it (drift, quality, each segment) is a ``bincount``
    of the codes instead of a hash pass over Python strings. Values are unchanged (the categories are
    the column's own distinct values), so every verdict is too.
    """
    names = [
        n
        for n, f in cfg.features.items()
        if f.type is Kind.CATEGORICAL and n in frame and frame[n].dtype == object
    ]
    if not names or frame.empty:
        return frame
    out = frame.copy(deep=False)
    for n in names:
        codes, uniques = pd.factorize(frame[n].to_numpy(), use_na_sentinel=True)
        out[n] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object), validate=False)
    return out


_SEGMENT_PROFILES: dict[tuple[str, str, str], Profile] = {}  # fit once per (model, reference, segment)


def _segment_profile(
    cfg: ModelConfig, profile: Profile, reference: pd.DataFrame | None, segment: str
) -> Profile:
    """The profile of the reference rows of this segment, when the reference has enough of them.

    Fitted once per (model, reference hash, segment) and kept for the process (a backfill reuses it)."""
    key = (cfg.name, profile.reference_hash, segment)
    if key not in _SEGMENT_PROFILES:
        if len(_SEGMENT_PROFILES) > 512:
            _SEGMENT_PROFILES.clear()
        _SEGMENT_PROFILES[key] = _fit_segment(cfg, profile, reference, segment)
    return _SEGMENT_PROFILES[key]


def _fit_segment(cfg: ModelConfig, profile: Profile, reference: pd.DataFrame | None, segment: str) -> Profile:
    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.reference import fit_profile

    field, value = segment.split("=", 1)
    col = c.VERSION if field == "model_version" else field
    if reference is None or col not in reference.columns:
        return profile
    sub = reference[reference[col].astype(str).to_numpy() == value]
    if len(sub) < cfg.drift.min_rows:
        return profile
    fitted = fit_profile(sub, profile_kinds(cfg), profile.reference_hash)
    return replace(fitted, performance=reference_performance(sub, cfg))


def _segments(cfg: ModelConfig, frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """The whole window, then the largest values of each segment field (at most ``max_segment_values``,
    each with at least ``drift.min_rows`` rows: smaller segments cannot support any verdict)."""
    yield ALL, frame
    for field in cfg.segments:
        col = c.VERSION if field == "model_version" else field
        if col not in frame or frame.empty:
            continue
        values = frame[col]
        if cfg.features.get(field) is not None and cfg.features[field].type is Kind.NUMERICAL:
            continue  # numerical segment fields are not split (config validation keeps this rare)
        counts = values.value_counts(dropna=True)
        counts = counts[counts >= cfg.drift.min_rows].head(cfg.max_segment_values)
        codes = values.to_numpy()
        for value in counts.index:
            yield f"{field}={value}", frame[codes == value]


def _drift_metrics(table: list[FeatureDrift]) -> list[Metric]:
    out = []
    for d in table:
        seg, feat = d.segment, d.feature
        if d.effect is not None and np.isfinite(d.effect):
            out.append(Metric("drift_effect", float(d.effect), feat, seg))
        if d.p_value is not None:
            out.append(Metric("drift_p_value", float(d.p_value), feat, seg))
        if d.p_adjusted is not None:
            out.append(Metric("drift_p_adjusted", float(d.p_adjusted), feat, seg))
        if d.statistic is not None and np.isfinite(d.statistic):
            out.append(Metric("drift_statistic", float(d.statistic), feat, seg))
        out.append(Metric("drifted", 1.0 if d.drifted else 0.0, feat, seg))
        for method, value in d.scores.items():
            if value is not None and np.isfinite(value):
                out.append(Metric(f"drift_{method}", float(value), feat, seg))
    return out


def _class_balance(frame: pd.DataFrame, cfg: ModelConfig, segment: str) -> list[Metric]:
    """Share of each predicted class (class balance of predictions)."""
    if cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS) or c.PREDICTION not in frame or frame.empty:
        return []
    shares = frame[c.PREDICTION].value_counts(normalize=True, dropna=True)
    return [Metric("prediction_share", float(v), str(k), segment) for k, v in shares.items()]


def _dedupe(metrics: list[Metric]) -> list[Metric]:
    """One row per (metric, feature, segment): the store's primary key. Later values win."""
    seen: dict[tuple[str, str, str], Metric] = {}
    for m in metrics:
        seen[(m.metric, m.feature, m.segment)] = m
    return list(seen.values())


def drift_metrics(table: list[FeatureDrift]) -> list[Metric]:
    """The drift table's metric rows (the sharded path, ``mlmon.tasks.summary``, writes the same ones)."""
    return _drift_metrics(table)
