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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Metric, Status, WindowResult
from mlmon.tasks.config import ModelConfig, TaskType
from mlmon.tasks.contract import column_label
from mlmon.tasks.window import as_utc

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ASSETS = "assets"
INDEX = "index.html"
SIDECAR_VERSION = 1
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
        )


# --------------------------------------------------------------------------- public entry points


def write_report(
    result: WindowResult,
    cfg: ModelConfig,
    out_dir: Path,
    evidently_html: str | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the report of one window (and Evidently's page, when given); return the report's path.

    ``extra`` is shown as "run details" in the header (e.g. ``{"flow run": id, "Grafana": url}``);
    http(s) values become links.
    """
    out_dir = Path(out_dir)
    folder = out_dir / model_dir(result.model)
    folder.mkdir(parents=True, exist_ok=True)
    slug = result.window.slug
    page = folder / f"{slug}.html"
    evid = folder / f"{slug}.evidently.html"
    if evidently_html is not None:
        _write_atomic(evid, embeddable(evidently_html, out_dir / ASSETS, f"../{ASSETS}/"))
    elif evid.exists():
        evid.unlink()  # a re-run without Evidently must not show a stale one
    html = _render_page(
        "report.html.j2",
        _report_context(result, cfg, evid.name if evidently_html is not None else None, extra or {}),
    )
    _write_atomic(page, html)
    summary = summarize(result, f"{folder.name}/{page.name}")
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
        if side.parent.name == ASSETS:
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
    """A number for a table: thousands separators for integers, ``digits`` significant digits otherwise.

    >>> fmt_num(1234567), fmt_num(0.000123456), fmt_num(12.345678), fmt_num(None), fmt_num(float("nan"))
    ('1,234,567', '0.0001235', '12.35', '—', 'NaN')
    """
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1e6:
        return f"{x:,.0f}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    if abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_p(p: float | None) -> str:
    """A p-value: scientific notation below 0.001.

    >>> fmt_p(0.0412), fmt_p(3.2e-7), fmt_p(0.0), fmt_p(1.0), fmt_p(None)
    ('0.0412', '3.20e-07', '0', '1', '—')
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    if p == 0:
        return "0"
    if p < 1e-3:
        return f"{p:.2e}"
    return f"{p:.3g}"


def fmt_pct(x: float | None) -> str:
    """A share as a percentage.

    >>> fmt_pct(0.1234), fmt_pct(0.00004), fmt_pct(0.0), fmt_pct(1.0), fmt_pct(None)
    ('12.3%', '<0.01%', '0%', '100%', '—')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0%"
    if 0 < abs(x) < 1e-4:
        return "<0.01%"
    pct = 100 * x
    if abs(pct) < 1:
        return f"{pct:.2f}%"
    if abs(pct - round(pct)) < 0.05:
        return f"{round(pct):.0f}%"
    return f"{pct:.1f}%"


def fmt_ms(x: float | None) -> str:
    """A duration in milliseconds. ``fmt_ms(1234.5)`` → ``'1,234 ms'``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:,.0f} ms" if abs(x) >= 100 else f"{x:.3g} ms"


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

SHARE_NAMES = frozenset(
    {
        "missing_share",
        "out_of_range",
        "out_of_range_share",
        "unseen_categories",
        "unseen_share",
        "quarantined_share",
        "error_rate",
        "label_coverage",
        "prediction_share",
        "dataset_drift",
        "drifted_share",
    }
)
COUNT_NAMES = frozenset({"volume", "row_count", "n_labelled", "model_quality", "unexpected_fields"})


def fmt_value(name: str, x: float | None) -> str:
    """A check's value or threshold, or a metric, in the unit its name implies.

    >>> fmt_value("missing_share", 0.031), fmt_value("latency_p95", 912.4), fmt_value("f1", 0.81234)
    ('3.1%', '912 ms', '0.8123')
    """
    if x is None:
        return "—"
    if name in SHARE_NAMES or name.endswith("_share"):
        return fmt_pct(x)
    if name.startswith("latency_"):
        return fmt_ms(x)
    if name.endswith("p_value") or name.endswith("p_adjusted"):
        return fmt_p(x)
    return fmt_num(x)


# --------------------------------------------------------------------------- page contexts

CATEGORY_TITLES = {
    Category.DRIFT: "Drift",
    Category.QUALITY: "Data quality",
    Category.PERFORMANCE: "Model quality",
    Category.HEALTH: "Service health",
    Category.CUSTOM: "Custom checks",
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
    }


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
