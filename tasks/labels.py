"""Late labels: find windows whose labels arrived after they ran, and re-evaluate only their model quality.

Labels often arrive days after the predictions. A window's drift, data-quality and health results do not
depend on them, so re-running the whole window would be wasted work (and would rewrite rows Grafana
already shows). Instead:

1. :func:`latest_label_arrivals` finds, per window, when its newest label arrived;
2. :func:`mlmon.tasks.schedule.label_recheck_windows` keeps the windows whose labels are newer than the
   ``runs.labels_checked_at`` they were evaluated with;
3. :func:`reevaluate_model_quality` re-extracts each such window and replaces only its model-quality
   rows (``performance`` checks, the model-quality metrics and the run's label counts);
4. given the reports folder, :func:`rerender` redraws the window's report with them (its incidents
   re-grouped) and rebuilds the index, so the page never shows the first run's model quality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import family_checks, label_categories
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.checks.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS, performance_checks
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.errors import SourceUnavailable
from mlmon.tasks.evaluate import _dedupe, _segment_profile, _segments, _shadow_of
from mlmon.tasks.extract import Batch, read_window, window_filter
from mlmon.tasks.reference import Baseline
from mlmon.tasks.schedule import DONE, label_recheck_windows
from mlmon.tasks.store import store
from mlmon.tasks.window import Window, as_utc, parse_duration

IN_CHUNK = 1000
"""Ids per ``{"k": {"$in": [...]}}`` query: keeps every query well under the wire server's limits."""

MODEL_QUALITY_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, "n_labelled", "label_coverage")
"""Metric rows a re-evaluation replaces (with whatever :func:`performance_checks` emits)."""


def latest_label_arrivals(
    db: Any, cfg: ModelConfig, windows: Iterable[Window], now: datetime | None = None
) -> dict[Window, datetime | None]:
    """When the newest label of each window's predictions arrived (the labels' ``timestamp``), or None.

    None when the window has no labelled prediction, or when the model has no separate labels
    collection with an arrival time (labels logged in the prediction itself never arrive late). Labels
    stamped after ``now`` (clock skew, simulated data) are not counted until ``now`` reaches them, so
    they cannot make a window look late on every run. Two ``find`` queries per chunk of request ids,
    never an aggregation.
    """
    from pymongo.errors import PyMongoError

    windows = list(windows)
    src = cfg.source.labels
    if src is None or src.timestamp is None or cfg.fields.target or not cfg.fields.request_id:
        return dict.fromkeys(windows)
    out: dict[Window, datetime | None] = {}
    try:
        for w in windows:
            newest: datetime | None = None
            for chunk in _chunks(_request_ids(db, cfg, w), IN_CHUNK):
                query: dict[str, Any] = {src.request_id: {"$in": chunk}}
                if now is not None:
                    query[src.timestamp] = {"$lte": as_utc(now)}
                cursor = (
                    db[src.collection]
                    .find(query, {src.timestamp: 1, "_id": 0})
                    .sort(src.timestamp, -1)
                    .limit(1)
                )
                for doc in cursor:
                    when = _arrival(_dig(doc, src.timestamp))
                    if when is not None and (newest is None or when > newest):
                        newest = when
            out[w] = newest
    except PyMongoError as e:
        raise SourceUnavailable(
            f"MongoDB read of label arrivals for model {cfg.name!r} ({cfg.source.database}.{src.collection}) "
            f"failed: {e}. Check MLMON_MONGO_URI and that the server is running."
        ) from e
    return out


def _request_ids(db: Any, cfg: ModelConfig, window: Window) -> list[Any]:
    """Distinct non-empty request ids of the window's predictions (as join_labels would look them up)."""
    path = cfg.fields.request_id
    assert path is not None
    seen: dict[Any, None] = {}
    for doc in db[cfg.source.collection].find(window_filter(cfg, window), {path: 1, "_id": 0}):
        rid = _dig(doc, path)
        if rid is None or isinstance(rid, dict | list) or rid == "":
            continue
        seen.setdefault(rid if isinstance(rid, str) else str(rid), None)
    return list(seen)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def _dig(doc: Any, path: str) -> Any:
    for p in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(p)
    return doc


def _arrival(value: Any) -> datetime | None:
    if isinstance(value, bson.DatetimeMS):
        value = value.as_datetime()
    if isinstance(value, datetime):
        return as_utc(value) if value.tzinfo else value.replace(tzinfo=UTC)
    return None  # a label without a usable arrival time cannot say it is late


def model_quality(
    cfg: ModelConfig, base: Baseline, frame: pd.DataFrame, batch: Batch | None = None
) -> tuple[list[CheckResult], list[Metric]]:
    """The label-dependent part of :func:`mlmon.tasks.evaluate.evaluate`: performance checks and metrics,
    and the family methods declared ``labels=True`` (fairness, model versions; every method of their
    category), for the whole window and each segment, with the same segment profiles and the same
    filtering. ``batch``: the window's extraction (its shadow rows), when the families need it."""
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    categories = label_categories(cfg)
    for segment, part in _segments(cfg, frame):
        whole = segment == ALL
        profile = base.profile if whole else _segment_profile(cfg, base.profile, base.frame, segment)
        p_checks, p_metrics = performance_checks(part, profile, cfg, segment=segment)
        if categories:
            f_checks, f_metrics = family_checks(
                cfg, part, base.profile, reference=base.frame, segment=segment, categories=categories,
                shadow=_shadow_of(batch, part, whole) if batch is not None else None,
            )  # fmt: skip
            p_checks, p_metrics = p_checks + f_checks, p_metrics + f_metrics
        if not whole:  # as evaluate: a segment too small for a verdict is shown without one
            p_checks = [
                ch for ch in p_checks if not (ch.status is Status.WARN and "insufficient" in ch.message)
            ]
        checks += p_checks
        metrics += p_metrics
    return checks, _dedupe(metrics)


def replaced_categories(cfg: ModelConfig) -> frozenset[str]:
    """The check categories a late-label re-evaluation replaces."""
    return frozenset({str(Category.PERFORMANCE), *(str(k) for k in label_categories(cfg))})


def reevaluate_model_quality(
    pg_uri: store.Target,
    db: Any,
    cfg: ModelConfig,
    base: Baseline,
    window: Window,
    reports_dir: str | Path | None = None,
) -> int:
    """Re-extract ``window`` with the labels known now and replace only its model-quality results in
    Postgres (one transaction; see :func:`mlmon.tasks.store.store.replace_model_quality`). Returns the
    window's labelled rows now.

    Drift, data-quality and health rows are left as they are; the report is redrawn when
    ``reports_dir`` is given (see :func:`rerender`).
    """
    batch = read_window(db, cfg, window)
    frame = batch.frame
    checks, metrics = model_quality(cfg, base, frame, batch)
    n_labelled = int(frame[c.TARGET].notna().sum()) if c.TARGET in frame else 0
    store.replace_model_quality(
        pg_uri,
        cfg.name,
        window,
        checks,
        metrics,
        metric_names=MODEL_QUALITY_METRICS,
        n_labelled=n_labelled,
        label_coverage=n_labelled / len(frame) if len(frame) else None,
        categories=replaced_categories(cfg),
    )
    if reports_dir is not None:
        rerender(pg_uri, cfg, window, Path(reports_dir), checks, metrics, n_labelled)
    return n_labelled


def rerender(
    pg_uri: store.Target,
    cfg: ModelConfig,
    window: Window,
    reports_dir: Path,
    checks: list[CheckResult],
    metrics: list[Metric],
    n_labelled: int,
) -> Path | None:
    """Redraw the window's report with its re-evaluated model quality, re-track its incidents (stored
    again) and rebuild the index. None when the window has no saved result to redraw (an old report)."""
    from mlmon.reports import render
    from mlmon.tasks import incidents

    old = render.load_result(reports_dir, cfg.name, window)
    if old is None:
        return None
    names = set(MODEL_QUALITY_METRICS) | {m.metric for m in metrics}
    updated = render.with_model_quality(old, checks, metrics, n_labelled, names, replaced_categories(cfg))
    states = incidents.track_stored(pg_uri, cfg, updated)
    wanted, features = render.trend_query(updated, cfg)
    history = store.metric_history(pg_uri, cfg.name, window.start, render.TREND_WINDOWS - 1, wanted, features)
    page = render.rerender_report(reports_dir, cfg, updated, incidents=states, history=history)
    store.write_incidents(pg_uri, cfg.name, window, states)
    return page


def windows_to_recheck(pg_uri: store.Target, db: Any, cfg: ModelConfig, now: datetime) -> list[Window]:
    """Processed windows within ``schedule.label_horizon`` whose labels arrived after they were
    evaluated, oldest first (cheap: no reference is loaded)."""
    oldest_end = as_utc(now) - parse_duration(cfg.schedule.label_horizon)
    runs = [
        r for r in store.list_runs(pg_uri, cfg.name) if r.status in DONE and as_utc(r.window_end) > oldest_end
    ]
    arrivals = latest_label_arrivals(db, cfg, [r.window for r in runs], now)
    known = {w: t for w, t in arrivals.items() if t is not None}
    return label_recheck_windows(cfg, runs, known, now)


def recheck(
    pg_uri: store.Target,
    db: Any,
    cfg: ModelConfig,
    base: Baseline | Callable[[], Baseline],
    now: datetime,
    reports_dir: str | Path | None = None,
) -> list[Window]:
    """``mlmon labels recheck MODEL`` and every scheduled run: re-evaluate the model quality of the
    windows :func:`windows_to_recheck` finds (and redraw their reports in ``reports_dir``); returns
    them. ``base`` may be a function, called only when there is something to re-evaluate."""
    todo = windows_to_recheck(pg_uri, db, cfg, now)
    if todo and callable(base):
        base = base()
    for w in todo:
        reevaluate_model_quality(pg_uri, db, cfg, base, w, reports_dir)  # type: ignore[arg-type]
    return todo
