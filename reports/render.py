"""The HTML reports: one page per (model, window), Evidently's page beside it, and an index of all of them.

Layout of the reports folder (everything relative, so the folder can be moved, zipped or served as is)::

    index.html                                  every report, per model, newest window first
    assets/evidently-<sha256[:12]>.js           Evidently's JavaScript, written once, shared by every page
    <model>/<window.slug>.html                  mlmon's report (our summary, then Evidently in an iframe)
    <model>/<window.slug>.evidently.html        Evidently's page, its scripts loaded from ../assets/
    <model>/<window.slug>.json                  the run's summary, from which `scan_index` rebuilds the index

Every value that comes from the logs (feature values, documents, messages, model names) is untrusted: the
jinja2 environment autoescapes everything, our own scripts are inline and pinned by a Content-Security-
Policy hash, and nothing is loaded from the network (no CDN, no web fonts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from mlmon.reports import charts
from mlmon.tasks import contract as c
from mlmon.tasks import incidents as inc
from mlmon.tasks import numbers
from mlmon.tasks.checks.outcome import (
    ALL,
    Category,
    CheckResult,
    FeatureDrift,
    Histogram,
    Metric,
    QuarantinedDoc,
    Status,
    WindowResult,
)
from mlmon.tasks.config import ModelConfig, TaskType
from mlmon.tasks.contract import column_label
from mlmon.tasks.numbers import Unit, human
from mlmon.tasks.window import Window, as_utc

if TYPE_CHECKING:
    from mlmon.tasks.store.store import HistoryPoint

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ASSETS = "assets"
INDEX = "index.html"
SIDECAR_VERSION = 1
RESULT_SUFFIX = ".result.json"  # the saved window result beside each report (see rerender_report)
MAX_QUARANTINE_ROWS = 200  # the report lists this many quarantined documents; the store keeps them all
MAX_DOCUMENT_CHARS = 600  # longer documents are cut in the table (the full text is one click away)
MIN_BUNDLE_CHARS = 200_000  # an inline <script> this large is a library bundle, moved to assets/

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_DATA_SCRIPT = re.compile(r"^\s*var metric_\w+ = ")  # Evidently's per-report data: stays inline
_FONT = re.compile(r"url\(data:font/[\w.+-]+;base64,([A-Za-z0-9+/=]+)\)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED_DIRS = {ASSETS, INDEX}

# Sent by the Evidently page to the report that frames it, so the iframe grows to fit its content.
EVIDENTLY_RESIZE_JS = (
    "(function(){var last=0;function post(){var h=Math.max(document.documentElement.scrollHeight,"
    "document.body?document.body.scrollHeight:0);if(h!==last){last=h;"
    "parent.postMessage({mlmonEvidentlyHeight:h},'*');}}"
    "window.addEventListener('load',post);"
    "if(window.ResizeObserver){new ResizeObserver(post).observe(document.documentElement);}"
    "setInterval(post,1000);})();"
)


@dataclass(frozen=True)
class RunSummary:
    """One line of the index (also the ``<slug>.json`` sidecar written beside each report)."""

    model: str
    window_start: datetime
    window_end: datetime
    status: Status
    n_rows: int
    n_failed: int  # checks with status fail or error
    report_path: str  # relative to the reports folder, with forward slashes
    computed_at: datetime
    n_warned: int = 0
    n_quarantined: int = 0
    n_incidents: int = 0
    headline: str = ""  # the top incident's sentence ("" for a clean window)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("window_start", "window_end", "computed_at"):
            d[k] = d[k].isoformat()
        d["status"] = self.status.value
        return {"version": SIDECAR_VERSION, **d}

    @classmethod
    def from_json(cls, d: dict[str, Any], report_path: str) -> RunSummary:
        return cls(
            model=str(d["model"]),
            window_start=as_utc(d["window_start"]),
            window_end=as_utc(d["window_end"]),
            status=Status(d["status"]),
            n_rows=int(d["n_rows"]),
            n_failed=int(d["n_failed"]),
            report_path=report_path,
            computed_at=as_utc(d["computed_at"]),
            n_warned=int(d.get("n_warned", 0)),
            n_quarantined=int(d.get("n_quarantined", 0)),
            n_incidents=int(d.get("n_incidents", 0)),
            headline=str(d.get("headline", "")),
        )


# --------------------------------------------------------------------------- public entry points


def write_report(
    result: WindowResult,
    cfg: ModelConfig,
    out_dir: Path,
    evidently_html: str | None,
    extra: dict[str, Any] | None = None,
    *,
    incidents: Sequence[inc.IncidentState] | None = None,
    history: Sequence[HistoryPoint] = (),
    keep_evidently: bool = False,
) -> Path:
    """Write the report of one window (and Evidently's page, when given); return the report's path.

    ``extra`` is shown as "run details" in the header (e.g. ``{"flow run": id, "Grafana": url}``);
    http(s) values become links. ``incidents`` are the window's incidents with their change since the
    previous window (:func:`mlmon.tasks.incidents.track`; default: grouped from ``result`` with no
    history, every one new). ``history`` holds the previous windows' stored values
    (:func:`mlmon.tasks.store.store.metric_history`) for the trend sparklines. ``keep_evidently`` keeps
    an existing Evidently page when ``evidently_html`` is None (a re-render after late labels).
    Also writes ``<slug>.result.json``, from which :func:`rerender_report` redraws the page.
    """
    out_dir = Path(out_dir)
    folder = out_dir / model_dir(result.model)
    folder.mkdir(parents=True, exist_ok=True)
    slug = result.window.slug
    page = folder / f"{slug}.html"
    evid = folder / f"{slug}.evidently.html"
    if evidently_html is not None:
        _write_atomic(evid, embeddable(evidently_html, out_dir / ASSETS, f"../{ASSETS}/"))
    elif evid.exists() and not keep_evidently:
        evid.unlink()  # a re-run without Evidently must not show a stale one
    if incidents is None:
        incidents = inc.fresh(inc.group(result), result.window)
    context = _report_context(result, cfg, evid.name if evid.exists() else None, extra or {})
    context.update(_fairness_context(result))
    context.update(_incident_context(result, cfg, incidents, history, context))
    html = _render_page("report.html.j2", context)
    _write_atomic(folder / f"{slug}{RESULT_SUFFIX}", json.dumps(result_to_json(result)) + "\n")
    _write_atomic(page, html)
    live = [st for st in incidents if st.change is not inc.Change.RESOLVED]
    summary = replace(
        summarize(result, f"{folder.name}/{page.name}"),
        n_incidents=len(live),
        headline=live[0].incident.sentence if live else "",
    )
    # written last: the index only ever lists complete reports
    _write_atomic(folder / f"{slug}.json", json.dumps(summary.to_json(), indent=2) + "\n")
    return page


def summarize(result: WindowResult, report_path: str) -> RunSummary:
    """The index line of a window result."""
    return RunSummary(
        model=result.model,
        window_start=result.window.start,
        window_end=result.window.end,
        status=result.status,
        n_rows=result.n_rows,
        n_failed=len(result.failed),
        report_path=report_path,
        computed_at=as_utc(result.computed_at),
        n_warned=sum(ch.status is Status.WARN for ch in result.checks),
        n_quarantined=result.n_quarantined,
    )


def write_index(out_dir: Path, runs: Sequence[RunSummary]) -> Path:
    """Write ``out_dir/index.html`` listing ``runs`` per model, newest window first; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / INDEX
    _write_atomic(path, _render_page("index.html.j2", _index_context(runs)))
    return path


def scan_index(out_dir: Path) -> list[RunSummary]:
    """Rebuild the list of runs from the reports folder alone (the ``<slug>.json`` sidecars).

    A sidecar whose report is gone is skipped; an unreadable one is logged and skipped, so one damaged
    file cannot hide every other report.
    """
    out_dir = Path(out_dir)
    runs = []
    for side in sorted(out_dir.glob("*/*.json")):
        if side.parent.name == ASSETS or side.name.endswith(RESULT_SUFFIX):
            continue
        report = side.with_suffix(".html")
        if not report.exists():
            continue
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
            runs.append(RunSummary.from_json(data, f"{side.parent.name}/{report.name}"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("skipping unreadable report summary %s: %s: %s", side, type(e).__name__, e)
    return sorted(runs, key=lambda r: (r.window_start, r.model), reverse=True)


def model_dir(model: str) -> str:
    """A file-system-safe folder name for a model; names that had to change get a short hash suffix.

    >>> model_dir("churn_v2"), model_dir("../etc/passwd"), model_dir("assets")
    ('churn_v2', 'etc-passwd-7fef78f5', 'assets-8bf729ff')
    """
    safe = _UNSAFE.sub("-", model).strip(".-")[:80]
    if safe and safe == model and safe.lower() not in _RESERVED_DIRS:
        return safe
    digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:8]
    return f"{safe or 'model'}-{digest}"


def embeddable(evidently_html: str, assets_dir: Path, prefix: str) -> str:
    """Evidently's page with its big inline script(s) and base64 font moved to shared asset files.

    Each asset is named by the SHA-256 of its content and written once; the page refers to it as
    ``<prefix><name>``. Evidently's per-report data stays inline. Also adds the script that lets the
    page tell the report framing it how tall it is.
    """

    def script(m: re.Match[str]) -> str:
        body = m.group(1)
        if len(body) < MIN_BUNDLE_CHARS or _DATA_SCRIPT.match(body):
            return m.group(0)
        name = _asset(assets_dir, body.encode("utf-8"), ".js")
        return f'<script src="{prefix}{name}"></script>'

    def font(m: re.Match[str]) -> str:
        name = _asset(assets_dir, base64.b64decode(m.group(1)), ".woff2")
        return f"url({prefix}{name})"

    html = _SCRIPT.sub(script, evidently_html)
    html = _FONT.sub(font, html)
    resize = f"<script>{EVIDENTLY_RESIZE_JS}</script>"
    if "</body>" in html:
        return html.replace("</body>", f"{resize}\n</body>", 1)
    return html + resize


# --------------------------------------------------------------------------- formatting


def fmt_num(x: float | int | None, digits: int = 4) -> str:
    """A number for a table (:func:`mlmon.tasks.numbers.human`): separators, ``digits`` significant digits.

    >>> fmt_num(1234567), fmt_num(0.000123456), fmt_num(12.345678), fmt_num(None), fmt_num(1e308)
    ('1,234,567', '0.0001235', '12.35', '—', '1.0e308')
    """
    return human(x, Unit.NUMBER, digits)


def fmt_p(p: float | None) -> str:
    """A p-value: scientific notation below 0.001.

    >>> fmt_p(0.0412), fmt_p(3.2e-7), fmt_p(0.0), fmt_p(1.0), fmt_p(None)
    ('0.0412', '3.20e-7', '0', '1', '—')
    """
    return human(p, Unit.P)


def fmt_pct(x: float | None) -> str:
    """A share as a percentage.

    >>> fmt_pct(0.1234), fmt_pct(0.00004), fmt_pct(0.0), fmt_pct(1.0), fmt_pct(None)
    ('12.3%', '<0.01%', '0%', '100%', '—')
    """
    return human(x, Unit.SHARE)


def fmt_ms(x: float | None) -> str:
    """A duration given in milliseconds: ``fmt_ms(12.5)`` → ``'12.5 ms'``, ``fmt_ms(1234.5)`` → ``'1.23 s'``."""
    return human(x, Unit.MS)


def fmt_time(t: datetime | None) -> str:
    """``2026-01-05 13:00 UTC``."""
    return "—" if t is None else f"{as_utc(t):%Y-%m-%d %H:%M} UTC"


def fmt_window(start: datetime, end: datetime) -> str:
    """A window for people: ``2026-01-05 (1 day)`` for a whole UTC day, else ``start → end UTC``.

    >>> from datetime import timedelta
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> fmt_window(t, t + timedelta(days=1)), fmt_window(t, t + timedelta(hours=1))
    ('2026-01-05', '2026-01-05 00:00 → 01:00 UTC')
    """
    start, end = as_utc(start), as_utc(end)
    if end - start == _DAY and start.hour == start.minute == start.second == 0:
        return f"{start:%Y-%m-%d}"
    if start.date() == end.date() or (end - start <= _DAY and end.time() == datetime.min.time()):
        return f"{start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"


_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


def fmt_value(name: str, x: float | None) -> str:
    """A check's value or threshold, or a metric, in the unit its name implies.

    >>> fmt_value("missing_share", 0.031), fmt_value("latency_p95", 912.4), fmt_value("f1", 0.81234)
    ('3.1%', '912 ms', '0.812')
    """
    return numbers.named(name, x)


def fmt_long(text: object, n: int = 80) -> Markup:
    """A long string cut to ``n`` characters, the full value on hover (``title``); escaped."""
    full = str(text)
    if len(full) <= n:
        return Markup("{}").format(full) if full else Markup("")
    return Markup('<span class="cut" title="{}">{}…</span>').format(full, full[: n - 1])


# --------------------------------------------------------------------------- page contexts

CATEGORY_TITLES = {
    Category.DRIFT: "Drift",
    Category.QUALITY: "Data quality",
    Category.PERFORMANCE: "Model quality",
    Category.HEALTH: "Service health",
    Category.CUSTOM: "Custom checks",
    Category.OUTLIERS: "Outliers",
    Category.VERSIONS: "Model versions",
    Category.MULTIVARIATE_DRIFT: "Multivariate drift",
    Category.EXPLANATIONS: "Drift impact",
    Category.FAIRNESS: "Fairness",
    Category.ESTIMATED_PERFORMANCE: "Estimated performance",
}
HEALTH_METRICS = ("requests_per_minute", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate")
QUALITY_FEATURE_METRICS = ("missing_share", "out_of_range_share", "unseen_share", "mean", "std", "p50")
MODEL_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "mae",
    "rmse",
    "mape",
    "r2",
)


def _check_order(ch: CheckResult) -> tuple[Any, ...]:
    return (-ch.status.severity, ch.segment != ALL, ch.segment, list(Category).index(ch.category), ch.check)


def _drift_order(d: FeatureDrift) -> tuple[Any, ...]:
    ratio = _effect_ratio(d)
    return (-d.status.severity, -(ratio if ratio is not None else -1.0), d.feature)


def _effect_ratio(d: FeatureDrift) -> float | None:
    if d.effect is None or not math.isfinite(d.effect):
        return None
    return d.effect / d.effect_threshold if d.effect_threshold > 0 else d.effect


def _drift_row(d: FeatureDrift) -> dict[str, Any]:
    ratio = _effect_ratio(d)
    return {
        "d": d,
        "label": column_label(d.feature),
        "is_output": d.feature.startswith("__"),
        "ratio": ratio,
        # bar: the threshold sits at 50% of the track; twice the threshold or more fills it
        "bar": None if ratio is None else max(1.0, min(100.0, 50.0 * ratio)),
        "extras": sorted(d.scores.items()),
    }


def impact_rows(r: WindowResult) -> list[dict[str, Any]]:
    """The window's drifted features ranked by impact (importance × effect / threshold), from the
    explanations family's metrics (empty when the family is off): the drift section's ranking."""
    mm = _metric_map(r.metrics)
    rows = []
    for d in r.drift:
        impact = mm.get(("drift_impact", d.feature, ALL))
        if d.segment != ALL or not d.drifted or impact is None:
            continue
        rows.append(
            {
                "d": d,
                "label": column_label(d.feature),
                "importance": mm.get(("feature_importance", d.feature, ALL)),
                "ratio": _effect_ratio(d),
                "impact": impact,
                "attribution": mm.get(("prediction_shift_attribution", d.feature, ALL)),
            }
        )
    return sorted(rows, key=lambda row: (-row["impact"], row["d"].feature))


def _segment_sort(seg: str) -> tuple[bool, str]:
    return (seg != ALL, seg)


def _metric_map(metrics: Iterable[Metric]) -> dict[tuple[str, str, str], float]:
    return {(m.metric, m.feature, m.segment): m.value for m in metrics}


def _report_context(
    r: WindowResult, cfg: ModelConfig, evidently_file: str | None, extra: dict[str, Any]
) -> dict[str, Any]:
    checks = sorted(r.checks, key=_check_order)
    by_cat = {cat.value: [ch for ch in checks if ch.category is cat] for cat in Category}
    mm = _metric_map(r.metrics)
    segments = sorted({m.segment for m in r.metrics} | {ch.segment for ch in r.checks}, key=_segment_sort)

    drift_all = sorted((d for d in r.drift if d.segment == ALL), key=_drift_order)
    drift_segments = []
    for seg in sorted({d.segment for d in r.drift} - {ALL}):
        rows = sorted((d for d in r.drift if d.segment == seg), key=_drift_order)
        drift_segments.append(
            {"segment": seg, "rows": [_drift_row(d) for d in rows], "n_drifted": sum(d.drifted for d in rows)}
        )

    features = list(cfg.features)
    quality_features = []
    for f in features:
        f_checks = [ch for ch in by_cat[Category.QUALITY.value] if ch.feature == f and ch.segment == ALL]
        quality_features.append(
            {
                "name": f,
                "kind": cfg.features[f].type.value,
                "status": Status.worst([ch.status for ch in f_checks]) if f_checks else None,
                "values": {m: mm.get((m, f, ALL)) for m in QUALITY_FEATURE_METRICS},
                "problems": [ch for ch in f_checks if ch.status is not Status.PASS],
            }
        )
    quality_window = [
        ch for ch in by_cat[Category.QUALITY.value] if ch.feature not in cfg.features or ch.segment != ALL
    ]

    model_metrics = [m for m in MODEL_METRICS if any((m, "", s) in mm for s in segments)]
    health_metrics = [m for m in HEALTH_METRICS if any((m, "", s) in mm for s in segments)]
    class_balance = sorted(
        ((m.feature, m.value) for m in r.metrics if m.metric == "prediction_share" and m.segment == ALL),
        key=lambda kv: -kv[1],
    )
    reasons = Counter(q.reason for q in r.quarantine)
    drifted = [d for d in drift_all if d.drifted]
    failed = [ch for ch in checks if ch.status in (Status.FAIL, Status.ERROR)]
    warned = [ch for ch in checks if ch.status is Status.WARN]
    total_docs = r.n_rows + r.n_quarantined
    links = []
    for key, value in extra.items():
        text = str(value)
        links.append({"key": str(key), "text": text, "href": text if re.match(r"^https?://", text) else None})
    return {
        "r": r,
        "cfg": cfg,
        "title": f"{r.model} · {fmt_window(r.window.start, r.window.end)}",
        "status": r.status,
        "window_text": fmt_window(r.window.start, r.window.end),
        "task": cfg.task.value if cfg.task is not TaskType.NONE else None,
        "failed": failed,
        "warned": warned,
        "n_pass": sum(ch.status is Status.PASS for ch in checks),
        "by_cat": by_cat,
        "drift_window_checks": [ch for ch in by_cat[Category.DRIFT.value] if not ch.feature],
        "model_segments": [s for s in segments if any((m, "", s) in mm for m in model_metrics)],
        "health_segments": [s for s in segments if any((m, "", s) in mm for m in health_metrics)],
        "drift_all": [_drift_row(d) for d in drift_all],
        "drifted": drifted,
        "drift_segments": drift_segments,
        "impact_rows": impact_rows(r),
        "quality_features": quality_features,
        "quality_window": quality_window,
        "segments": segments,
        "mm": mm,
        "model_metrics": model_metrics,
        "health_metrics": health_metrics,
        "class_balance": class_balance,
        "quarantine": r.quarantine[:MAX_QUARANTINE_ROWS],
        "reasons": reasons.most_common(),
        "quarantined_share": r.n_quarantined / total_docs if total_docs else None,
        "evidently_file": evidently_file,
        "extra": links,
        "index_href": f"../{INDEX}",
        "max_doc": MAX_DOCUMENT_CHARS,
        "versions_table": _versions_table(r),
        "outlier_top": _outlier_top(r),
    }


FAIRNESS_RATES = (
    "fairness_rows",
    "fairness_labelled",
    "fairness_selection_rate",
    "fairness_tpr",
    "fairness_fpr",
    "fairness_accuracy",
    "fairness_mean_prediction",
    "fairness_mae",
)


def _fairness_context(r: WindowResult) -> dict[str, Any]:
    """The fairness section: one row per group (``attribute=value[;class=k]``, whole window) with its
    rates, the gap checks with their limits, and the class-balance checks for the model section."""
    rows: dict[str, dict[str, float]] = {}
    for m in r.metrics:
        if m.segment == ALL and m.metric in FAIRNESS_RATES:
            rows.setdefault(m.feature, {})[m.metric] = m.value
    shown = [k for k in FAIRNESS_RATES if any(k in v for v in rows.values())]
    return {
        "fairness_groups": [{"group": g, "values": v} for g, v in sorted(rows.items())],
        "fairness_rates": shown,
        "balance_checks": sorted(
            (ch for ch in r.checks if ch.check in ("class_balance", "class_min_share")), key=_check_order
        ),
    }


def _versions_table(r: WindowResult) -> list[dict[str, Any]]:
    """The versions family's per-version rows of the whole window: the champion first, then each
    challenger with its agreement, quality and verdict (from its ``version_quality`` check)."""
    mm = _metric_map(r.metrics)
    names = sorted({m.feature for m in r.metrics if m.metric == "version_rows" and m.segment == ALL})
    verdicts = {ch.feature: ch for ch in r.checks if ch.check == "version_quality" and ch.segment == ALL}
    rows = []
    for v in names:
        champion = (("version_champion", v, ALL)) in mm
        check = verdicts.get(v)
        if check is None:
            verdict = "champion" if champion else "—"
        elif check.status is Status.FAIL:
            verdict = "worse"
        elif check.status is Status.WARN:
            verdict = "insufficient data"
        else:
            verdict = "better" if check.message.startswith("challenger better") else "indistinguishable"
        rows.append(
            {
                "version": v,
                "champion": champion,
                "rows": mm.get(("version_rows", v, ALL)),
                "labelled": mm.get(("version_labelled", v, ALL)),
                "paired": mm.get(("version_paired_requests", v, ALL)),
                "agreement": mm.get(("version_agreement", v, ALL)),
                "accuracy": mm.get(("version_accuracy", v, ALL)),
                "mae": mm.get(("version_mae", v, ALL)),
                "gain": mm.get(("version_gain", v, ALL)),
                "p_value": mm.get(("version_p_value", v, ALL)),
                "verdict": verdict,
                "status": check.status if check is not None else None,
            }
        )
    return sorted(rows, key=lambda row: (not row["champion"], row["version"]))


def _outlier_top(r: WindowResult) -> list[Any]:
    """The whole window's top outliers (request id, score, the features that made them outliers)."""
    from mlmon.tasks.checks.outliers import top_table

    return top_table(r.metrics)


def _index_spark(own: Sequence[RunSummary]) -> Markup:
    """Incidents per window (failed checks for reports written before incidents), the latest marked."""
    recent = list(reversed(own[:TREND_WINDOWS]))
    values = [float(r.n_incidents if r.n_incidents or not r.n_failed else r.n_failed) for r in recent]
    labels = [f"{fmt_window(r.window_start, r.window_end)} ({r.status.value})" for r in recent]
    return charts.sparkline(values, labels, f"incidents per window, last {len(values)}", Unit.COUNT)


def _index_context(runs: Sequence[RunSummary]) -> dict[str, Any]:
    models = []
    for name in sorted({r.model for r in runs}):
        own = sorted((r for r in runs if r.model == name), key=lambda r: r.window_start, reverse=True)
        latest = own[0]
        counts = Counter(r.status for r in own)
        models.append(
            {
                "name": name,
                "anchor": "m-" + model_dir(name),
                "runs": own,
                "latest": latest,
                "counts": [(s, counts.get(s, 0)) for s in Status],
                # oldest → newest, left to right, like a timeline
                "strip": list(reversed(own[:60])),
                "spark": _index_spark(own),
            }
        )
    total = Counter(r.status for r in runs)
    return {
        "title": "mlmon reports",
        "models": models,
        "n_runs": len(runs),
        "totals": [(s, total.get(s, 0)) for s in Status],
        "generated": datetime.now(UTC),
    }


# --------------------------------------------------------------------------- incidents, pictures, trends

TREND_WINDOWS = 14
"""Windows drawn in a report's sparklines (this one included) and in the index's, per model."""
TREND_METRICS = ("latency_p95_ms", "error_rate", "missing_share", "drift_effect")
QUALITY_ORDER = ("f1", "roc_auc", "accuracy", "rmse", "mae", "r2", "log_loss", "mape", "precision", "recall")
NOISE_Z = 2.33  # the band around a reference metric: one-sided 1 %, as the performance checks use


def trend_query(result: WindowResult, cfg: ModelConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The metrics and columns whose history a report's trends need (for ``store.metric_history``)."""
    failing = sorted({ch.feature for ch in result.checks if ch.feature and ch.status.severity >= 1})
    return (*TREND_METRICS, *QUALITY_ORDER), tuple(failing)


def _main_quality(cfg: ModelConfig, mm: dict[tuple[str, str, str], float]) -> str | None:
    return next((m for m in QUALITY_ORDER if (m, "", ALL) in mm), None)


def _trends(
    r: WindowResult,
    cfg: ModelConfig,
    history: Sequence[HistoryPoint],
    mm: dict[tuple[str, str, str], float],
    features: Sequence[str],
) -> list[dict[str, Any]]:
    """Sparklines of the key metrics over the stored windows before this one and this one (last)."""
    past = sorted({(p.window_start, p.window_end) for p in history})[-(TREND_WINDOWS - 1) :]
    known = {(as_utc(p.window_start), p.metric, p.feature): p.value for p in history}
    starts = [as_utc(w[0]) for w in past]
    labels = [fmt_window(a, b) for a, b in past] + [fmt_window(r.window.start, r.window.end)]

    def series(metric: str, feature: str, now: float | None, unit: Unit, name: str) -> dict[str, Any] | None:
        values = [known.get((t, metric, feature)) for t in starts] + [now]
        if sum(v is not None for v in values) < 2 and now is None:
            return None
        return {
            "name": name,
            "unit": unit,
            "now": now,
            "values": values,
            "svg": charts.sparkline(values, labels, f"{name}: last {len(values)} windows", unit),
        }

    out = [series("n_rows", "", float(r.n_rows), Unit.COUNT, "volume (rows)")]
    for metric, name in (("latency_p95_ms", "latency p95"), ("error_rate", "error rate")):
        out.append(series(metric, "", mm.get((metric, "", ALL)), numbers.unit_of(metric), name))
    main = _main_quality(cfg, mm) or next(
        (m for m in QUALITY_ORDER if any(p.metric == m for p in history)), None
    )
    if main:
        out.append(series(main, "", mm.get((main, "", ALL)), numbers.unit_of(main), main))
    for f in features[:6]:
        label = column_label(f)
        out.append(
            series("drift_effect", f, mm.get(("drift_effect", f, ALL)), Unit.NUMBER, f"{label}: drift effect")
        )
        if (("missing_share", f, ALL)) in mm and mm[("missing_share", f, ALL)] > 0:
            out.append(
                series("missing_share", f, mm.get(("missing_share", f, ALL)), Unit.SHARE, f"{label}: missing")
            )
    return [t for t in out if t is not None]


def _reference_metric(cfg: ModelConfig, name: str, limit: float | None) -> float | None:
    """The reference value behind a ``<metric>_vs_reference`` limit (the check stores only the limit)."""
    from mlmon.tasks.checks.performance import ABSOLUTE_DEGRADATION, HIGHER_IS_BETTER

    if limit is None or not math.isfinite(limit):
        return None
    md = cfg.performance.max_degradation
    higher = name in HIGHER_IS_BETTER
    if name in ABSOLUTE_DEGRADATION:
        return limit + md if higher else limit - md
    factor = (1 - md) if higher else (1 + md)
    return limit / factor if factor else None


def _picture(
    state: inc.IncidentState,
    r: WindowResult,
    cfg: ModelConfig,
    hists: dict[str, Histogram],
    mm: dict[tuple[str, str, str], float],
) -> Markup | None:
    i = state.incident
    if i.kind in (inc.Kind.COLUMN, inc.Kind.PREDICTION):
        pics = []
        for f in (
            i.feature,
            c.SCORE if i.kind is inc.Kind.PREDICTION and i.feature == c.PREDICTION else None,
        ):
            h = hists.get(f) if f else None
            if h is not None:
                what = (
                    "class balance"
                    if f == c.PREDICTION
                    else ("confidence" if f == c.SCORE else column_label(f))
                )
                pics.append(charts.histogram(h, f"{what}: reference vs this window"))
        return Markup("").join(pics) if pics else None
    if i.kind is inc.Kind.SERVICE:
        return _latency_picture(cfg, mm)
    if i.kind is inc.Kind.MODEL_QUALITY:
        return _quality_picture(r, cfg, mm)
    return None


def _latency_picture(cfg: ModelConfig, mm: dict[tuple[str, str, str], float]) -> Markup | None:
    rows = [
        (f"p{p}", mm.get((f"latency_p{p}_ms", "", ALL)), getattr(cfg.service, f"latency_p{p}_ms", None))
        for p in (50, 95, 99)
    ]
    if all(v is None for _, v, _ in rows):
        return None
    return charts.percentiles(rows, "latency percentiles against the SLO")


def _quality_picture(
    r: WindowResult, cfg: ModelConfig, mm: dict[tuple[str, str, str], float]
) -> Markup | None:
    refs = {
        ch.check.removesuffix("_vs_reference"): _reference_metric(
            cfg, ch.check.removesuffix("_vs_reference"), ch.threshold
        )
        for ch in r.checks
        if ch.check.endswith("_vs_reference") and ch.segment == ALL
    }
    n = max(r.n_labelled, 1)
    rows = []
    for m in MODEL_METRICS:
        v = mm.get((m, "", ALL))
        if v is None:
            continue
        ref = refs.get(m)
        band = (
            NOISE_Z * math.sqrt(max(ref * (1 - ref), 0.0) / n) if ref is not None and 0 <= ref <= 1 else None
        )
        rows.append((m, v, ref, band))
    if not rows:
        return None
    return charts.against_reference(rows, "model quality against the reference (band: sampling noise)")


def _incident_context(
    r: WindowResult,
    cfg: ModelConfig,
    states: Sequence[inc.IncidentState],
    history: Sequence[HistoryPoint],
    base: dict[str, Any],
) -> dict[str, Any]:
    mm = base["mm"]
    hists = {h.feature: h for h in r.histograms if h.segment == ALL}
    rows = []
    for st in states:
        rows.append(
            {
                "s": st,
                "i": st.incident,
                "picture": None if st.change is inc.Change.RESOLVED else _picture(st, r, cfg, hists, mm),
                "since": fmt_window(st.opened_start, st.opened_start + r.window.length),
            }
        )
    live = [x for x in rows if x["s"].change is not inc.Change.RESOLVED]
    resolved = [x for x in rows if x["s"].change is inc.Change.RESOLVED]
    shown = {x["i"].feature for x in live}
    if c.PREDICTION in shown:
        shown.add(c.SCORE)  # drawn beside the class balance
    failing_cols = [
        d.feature for d in sorted(r.drift, key=_drift_order) if d.segment == ALL and d.status.severity >= 1
    ]
    more_pictures = [
        {
            "label": column_label(f),
            "svg": charts.histogram(hists[f], f"{column_label(f)}: reference vs this window"),
        }
        for f in failing_cols
        if f in hists and f not in shown
    ]
    features = [x["i"].feature for x in live if x["i"].kind is inc.Kind.COLUMN] or failing_cols
    balance = hists.get(c.PREDICTION)
    score = hists.get(c.SCORE)
    return {
        "incidents": live,
        "resolved": resolved,
        "incident_headline": inc.headline(states),
        "more_pictures": more_pictures,
        "trends": _trends(r, cfg, history, mm, features),
        "balance_svg": charts.histogram(balance, "class balance: reference vs this window")
        if balance
        else None,
        "score_svg": charts.histogram(score, "confidence: reference vs this window") if score else None,
        "latency_svg": _latency_picture(cfg, mm),
        "quality_svg": _quality_picture(r, cfg, mm),
        "estimated_svg": _estimated_picture(mm),
    }


ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")  # tasks/checks/estimated.py


def _estimated_picture(mm: dict[tuple[str, str, str], float]) -> Markup | None:
    """Estimated performance (CBPE) of the whole window: estimate, band, reference, realized when known."""
    rows = []
    for m in ESTIMATED_METRICS:
        est, lo, hi = (mm.get((f"estimated_{m}{s}", "", ALL)) for s in ("", "_lower", "_upper"))
        if est is None or lo is None or hi is None:
            continue
        rows.append((m, est, lo, hi, mm.get((f"estimated_{m}_reference", "", ALL)), mm.get((m, "", ALL))))
    if not rows:
        return None
    return charts.estimated_band(rows, "estimated performance: band, reference (tick), realized (diamond)")


# --------------------------------------------------------------------------- the saved result


def result_to_json(r: WindowResult) -> dict[str, Any]:
    """The window result as JSON (beside the report), so the page can be redrawn without the rows."""
    d = {f.name: getattr(r, f.name) for f in fields(r)}
    d["window"] = [r.window.start.isoformat(), r.window.end.isoformat()]
    d["computed_at"] = as_utc(r.computed_at).isoformat()
    d["checks"] = [
        {**asdict(ch), "category": ch.category.value, "status": ch.status.value} for ch in r.checks
    ]
    d["metrics"] = [asdict(m) for m in r.metrics]
    d["drift"] = [{**asdict(x), "status": x.status.value} for x in r.drift]
    d["quarantine"] = [asdict(q) for q in r.quarantine[:MAX_QUARANTINE_ROWS]]
    d["histograms"] = [asdict(h) for h in r.histograms]
    d["notes"] = list(r.notes)
    return {"version": SIDECAR_VERSION, **_json_safe(d)}


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def _num(x: Any) -> Any:
    return float(x) if x in ("inf", "-inf") else x


def result_from_json(d: dict[str, Any]) -> WindowResult:
    """The inverse of :func:`result_to_json` (quarantined documents beyond the report's list are not kept)."""

    def nums(row: dict[str, Any]) -> dict[str, Any]:
        return {k: _num(v) for k, v in row.items()}

    return WindowResult(
        model=d["model"],
        window=Window(as_utc(d["window"][0]), as_utc(d["window"][1])),
        computed_at=as_utc(d["computed_at"]),
        n_rows=int(d["n_rows"]),
        n_quarantined=int(d["n_quarantined"]),
        n_labelled=int(d["n_labelled"]),
        reference_hash=d["reference_hash"],
        checks=tuple(
            CheckResult(**{**nums(x), "category": Category(x["category"]), "status": Status(x["status"])})
            for x in d["checks"]
        ),
        metrics=tuple(Metric(**nums(x)) for x in d["metrics"]),
        drift=tuple(
            FeatureDrift(**{**nums(x), "status": Status(x["status"]), "scores": nums(x["scores"])})
            for x in d["drift"]
        ),
        quarantine=tuple(QuarantinedDoc(**x) for x in d["quarantine"]),
        evidently_rows=d.get("evidently_rows"),
        notes=tuple(d.get("notes", ())),
        histograms=tuple(
            Histogram(**{**x, **{k: tuple(x[k]) for k in ("labels", "reference", "current", "edges", "new")}})
            for x in d.get("histograms", ())
        ),
    )


def load_result(out_dir: Path, model: str, window: Window) -> WindowResult | None:
    """The result saved beside a window's report, or None when there is none (or it is unreadable)."""
    path = Path(out_dir) / model_dir(model) / f"{window.slug}{RESULT_SUFFIX}"
    try:
        return result_from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("cannot read the saved result %s: %s: %s", path, type(e).__name__, e)
        return None


def with_model_quality(
    old: WindowResult,
    checks: Sequence[CheckResult],
    metrics: Sequence[Metric],
    n_labelled: int,
    replace_metrics: Iterable[str],
    categories: Iterable[str] = (Category.PERFORMANCE,),
) -> WindowResult:
    """``old`` with its checks of ``categories`` (default: performance) replaced by ``checks`` and its
    metrics named ``replace_metrics`` by ``metrics`` (a late-label re-evaluation); everything else kept."""
    names = set(replace_metrics)
    replaced = {str(k) for k in categories}
    return replace(
        old,
        checks=(*(ch for ch in old.checks if str(ch.category) not in replaced), *checks),
        metrics=(*(m for m in old.metrics if m.metric not in names), *metrics),
        n_labelled=n_labelled,
    )


def rerender_report(
    out_dir: Path,
    cfg: ModelConfig,
    result: WindowResult,
    *,
    incidents: Sequence[inc.IncidentState] | None = None,
    history: Sequence[HistoryPoint] = (),
) -> Path:
    """Redraw a window's report from ``result`` keeping its Evidently page, and rebuild the index."""
    page = write_report(result, cfg, out_dir, None, incidents=incidents, history=history, keep_evidently=True)
    write_index(out_dir, scan_index(out_dir))
    return page


# --------------------------------------------------------------------------- jinja


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=fmt_num,
        p=fmt_p,
        pct=fmt_pct,
        ms=fmt_ms,
        time=fmt_time,
        value=fmt_value,
        column=column_label,
        long=fmt_long,
        unit=lambda name: numbers.unit_of(name).label,
        title=numbers.title,
        human=human,
        href=lambda path: quote(str(path)),
    )
    env.globals.update(window=fmt_window, ALL=ALL, category_titles=CATEGORY_TITLES)
    return env


@cache
def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def _render_page(template: str, context: dict[str, Any]) -> str:
    """Render a page with our CSS and script inline; the script is the only one the page's CSP allows."""
    js = _static("report.js")
    csp = (
        f"default-src 'none'; script-src {_csp_hash(js)}; style-src 'unsafe-inline'; img-src data:; "
        "frame-src 'self' file:; base-uri 'none'; form-action 'none'"
    )
    return (
        _env()
        .get_template(template)
        .render(css=Markup(_static("report.css")), js=Markup(js), csp=csp, **context)
    )


def _asset(assets_dir: Path, content: bytes, suffix: str) -> str:
    name = f"evidently-{hashlib.sha256(content).hexdigest()[:12]}{suffix}"
    path = assets_dir / name
    if not path.exists():
        assets_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, content)
    return name


STAGING = ".staging"


def stage_dir(out_dir: Path) -> Path:
    """A fresh folder under ``out_dir`` (same file system) to write a window's report into before the
    store commits; :func:`publish` moves it into place, :func:`discard` drops it. The index never sees it."""
    root = Path(out_dir) / STAGING
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="run-"))


def publish(staging: Path, out_dir: Path) -> None:
    """Move every file written under ``staging`` to the same place under ``out_dir`` (one atomic rename
    each; the ``.json`` index sidecars last, so the index only lists complete reports), drop the
    staging folder and rewrite the index."""
    staging, out_dir = Path(staging), Path(out_dir)
    files = sorted(
        (p for p in staging.rglob("*") if p.is_file()), key=lambda p: (p.suffix == ".json", str(p))
    )
    staged = {p.relative_to(staging) for p in files}
    for side in (p for p in staged if p.suffix == ".json" and p.parent.name != ASSETS):
        for old in (out_dir / side.parent).glob(f"{side.stem}.*"):  # e.g. an Evidently page no longer made
            if old.relative_to(out_dir) not in staged and old.is_file():
                old.unlink()
    for src in files:
        dst = out_dir / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    discard(staging)
    write_index(out_dir, scan_index(out_dir))


def discard(staging: Path) -> None:
    """Drop a staged report that must not be published (its store failed)."""
    shutil.rmtree(staging, ignore_errors=True)


def _write_atomic(path: Path, content: str | bytes) -> None:
    """Write via a temporary file and rename, so a reader (or a concurrent run) never sees half a file."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
