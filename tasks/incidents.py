"""Incidents: a window's failing and warning checks grouped by what broke, in one plain sentence each.

Sixty failed checks are usually three problems repeated for the whole window and each segment. An
:class:`Incident` is one thing that broke (a column, the prediction, the service, the model's quality,
the volume, the log contract) with its segments folded in and a sentence with the evidence, e.g.
``avg_session_minutes: values about 60× larger than in the reference (40% out of range, drift 42 σ) —
a unit change?``. The report opens with them, the alert and the Prefect artifact say the same sentences,
and ``mlmon.incidents`` stores them for Grafana.

Across windows an incident keeps its identity (its ``key``): :func:`track` compares this window's
incidents with those still open after the previous window and says, per incident, whether it was
opened, worsened, is ongoing, improved or resolved, and whether a reminder is due. Alerts follow those
changes instead of repeating every window (``tasks/alerts.py``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import (
    ALL,
    Category,
    CheckResult,
    FeatureDrift,
    Histogram,
    Status,
    WindowResult,
)
from mlmon.tasks.numbers import Unit, human, named
from mlmon.tasks.window import Window

if TYPE_CHECKING:
    from mlmon.tasks.config import ModelConfig as ModelConfigLike
else:
    ModelConfigLike = object

MAX_SENTENCE = 400
"""Characters of a sentence kept (values from logs can be long; the report shows the checks in full)."""


class Kind(StrEnum):
    """What broke: one incident per column, and at most one of each other kind per window."""

    COLUMN = "column"
    PREDICTION = "prediction"
    SERVICE = "service"
    MODEL_QUALITY = "model_quality"
    VOLUME = "volume"
    LOGS = "logs"  # the log contract: quarantined documents, unmapped fields
    CUSTOM = "custom"  # a registered window check (a KPI, a custom metric): one incident per check
    DRIFT = "drift"  # dataset-level drift that no single column explains


_KIND_ORDER = list(Kind)


class Change(StrEnum):
    """How an incident moved since the previous window."""

    OPENED = "opened"
    WORSENED = "worsened"
    ONGOING = "ongoing"
    IMPROVED = "improved"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Incident:
    """One thing that broke in one window (every segment folded in)."""

    key: str  # stable identity across windows, e.g. "column:age", "service"
    kind: Kind
    subject: str  # what broke, for people: "age", "prediction", "service"
    status: Status  # worst status of its checks
    sentence: str  # one plain sentence with the evidence
    feature: str = ""  # the column drawn beside it ("" when none)
    segments: str = ""  # "" (whole window only), "in all segments", "only in plan=pro", ...
    n_checks: int = 0
    checks: tuple[str, ...] = ()  # the stable names of the checks folded in, sorted


@dataclass(frozen=True)
class PreviousIncident:
    """An incident as stored for the previous window (``mlmon.incidents``)."""

    key: str
    kind: Kind
    subject: str
    status: Status
    sentence: str
    feature: str
    opened_start: datetime  # start of the window the incident was opened in
    n_windows: int  # consecutive windows it has been open
    last_announced_start: datetime | None  # start of the last window whose alert announced it


@dataclass(frozen=True)
class IncidentState:
    """An incident of this window (or one this window resolved) and how it changed."""

    incident: Incident
    change: Change
    opened_start: datetime
    n_windows: int  # windows open, this one included (for a resolved one: how long it lasted)
    remind: bool = False  # ongoing, and not announced for at least ``alerts.remind_every``
    last_announced_start: datetime | None = None

    @property
    def announce(self) -> bool:
        """Whether an alert says something about it this window."""
        return self.change in (Change.OPENED, Change.WORSENED, Change.RESOLVED) or self.remind


# --------------------------------------------------------------------------------------- grouping


# model-health families whose checks are one incident of their own (fairness and explanations name a
# column: they join that column's incident)
_OWN_INCIDENT = {
    Category.ESTIMATED_PERFORMANCE: "estimated performance",
    Category.OUTLIERS: "outliers",
    Category.MULTIVARIATE_DRIFT: "multivariate drift",
    Category.VERSIONS: "model versions",
}


def _key(ch: CheckResult) -> tuple[str, Kind, str]:
    if ch.check in ("volume", "volume_history"):
        return "volume", Kind.VOLUME, "volume"
    if ch.category.value == "custom":
        return f"check:{ch.check}", Kind.CUSTOM, ch.check
    if ch.category in _OWN_INCIDENT:  # one incident per family: its checks break together
        return ch.category.value, Kind.CUSTOM, _OWN_INCIDENT[ch.category]
    if ch.category is Category.EXPLANATIONS and not ch.feature:  # what moved the prediction
        return "prediction", Kind.PREDICTION, "prediction"
    if ch.category is Category.HEALTH:
        return "service", Kind.SERVICE, "service"
    if ch.category is Category.PERFORMANCE:
        return "model_quality", Kind.MODEL_QUALITY, "model quality"
    if ch.check == "volume":
        return "volume", Kind.VOLUME, "volume"
    if ch.check == "dataset_drift":
        return "drift", Kind.DRIFT, "dataset drift"
    if ch.feature in (c.PREDICTION, c.SCORE):
        return "prediction", Kind.PREDICTION, "prediction"
    if ch.feature and not ch.feature.startswith("__"):
        return f"column:{ch.feature}", Kind.COLUMN, ch.feature
    return "logs", Kind.LOGS, "log documents"


def group(result: WindowResult, min_status: Status = Status.WARN) -> list[Incident]:
    """The window's incidents, most severe first: every check at least ``min_status`` belongs to one.

    Dataset drift is folded into the columns that drifted when any did (it only counts them).
    """
    floor = min_status.severity
    hit = [ch for ch in result.checks if ch.status.severity >= floor]
    buckets: dict[str, list[CheckResult]] = defaultdict(list)
    meta: dict[str, tuple[Kind, str]] = {}
    for ch in hit:
        key, kind, subject = _key(ch)
        buckets[key].append(ch)
        meta[key] = (kind, subject)
    drifted_columns = any(ch.check in ("feature_drift", "prediction_drift") for ch in hit)
    if drifted_columns:
        buckets.pop("drift", None)
    segments = sorted({ch.segment for ch in result.checks} - {ALL})
    hists = {h.feature: h for h in result.histograms if h.segment == ALL}
    drift = {d.feature: d for d in result.drift if d.segment == ALL}
    out = []
    for key, checks in buckets.items():
        kind, subject = meta[key]
        feature = checks[0].feature if kind in (Kind.COLUMN, Kind.PREDICTION) else ""
        if kind is Kind.PREDICTION:
            feature = c.PREDICTION if any(ch.feature == c.PREDICTION for ch in checks) else c.SCORE
        where = _where({ch.segment for ch in checks}, segments)
        sentence = _sentence(kind, subject, checks, hists, drift, result)
        if where:
            sentence = f"{sentence} ({where})"
        out.append(
            Incident(
                key=key,
                kind=kind,
                subject=c.column_label(subject) if kind is Kind.COLUMN else subject,
                status=Status.worst([ch.status for ch in checks]),
                sentence=_cut(sentence),
                feature=feature,
                segments=where,
                n_checks=len(checks),
                checks=tuple(sorted({ch.check for ch in checks})),
            )
        )
    return sorted(out, key=_order)


def _order(i: Incident) -> tuple[int, int, int, str]:
    return (-i.status.severity, _KIND_ORDER.index(i.kind), -i.n_checks, i.key)


def _where(hit: set[str], segments: Sequence[str]) -> str:
    """``in all segments`` / ``only in plan=pro`` / ``also in …`` / ``""`` (whole window, no segments)."""
    seg_hit = sorted(hit - {ALL})
    if not seg_hit:
        return ""
    if ALL in hit:
        if set(seg_hit) == set(segments):
            return "in all segments"
        return (
            "also in "
            + ", ".join(seg_hit[:3])
            + (f" and {len(seg_hit) - 3} more" if len(seg_hit) > 3 else "")
        )
    return "only in " + ", ".join(seg_hit[:3]) + (f" and {len(seg_hit) - 3} more" if len(seg_hit) > 3 else "")


def _pick(checks: Iterable[CheckResult], name: str) -> CheckResult | None:
    """The check ``name`` of the whole window, else of its worst segment."""
    found = sorted(
        (ch for ch in checks if ch.check == name), key=lambda ch: (ch.segment != ALL, -ch.status.severity)
    )
    return found[0] if found else None


def _listed(label: str, checks: list[CheckResult], phrase: Callable[[CheckResult], str | None]) -> str:
    """``label: a; b``: each check once (the whole window's, else its worst segment's), whole-window
    checks first, in a short phrase where ``phrase`` has one and its message otherwise."""
    picked = [
        ch
        for ch in sorted(checks, key=lambda ch: (ch.segment != ALL, ch.check))
        if _pick(checks, ch.check) is ch
    ]
    return f"{label}: " + "; ".join(phrase(ch) or ch.message for ch in picked)


def _service_phrase(ch: CheckResult) -> str | None:
    if ch.value is None:
        return None
    if ch.check.startswith("latency_p") and ch.threshold is not None:
        name = ch.check.removeprefix("latency_")
        return f"{name} latency {human(ch.value, Unit.MS)} (SLO {human(ch.threshold, Unit.MS)})"
    if ch.check == "error_rate":
        return f"{human(ch.value, Unit.SHARE)} of requests failed (limit {human(ch.threshold, Unit.SHARE)})"
    return None


def _quality_phrase(ch: CheckResult) -> str | None:
    if ch.value is None:
        return None
    if ch.check.endswith("_vs_reference"):
        metric = ch.check.removesuffix("_vs_reference")
        return f"{metric} {named(metric, ch.value)} (limit {named(metric, ch.threshold)})"
    if ch.check.endswith("_threshold"):
        metric = ch.check.removesuffix("_threshold")
        return f"{metric} {named(metric, ch.value)} (absolute limit {named(metric, ch.threshold)})"
    if ch.check == "label_coverage":
        return f"only {human(ch.value, Unit.SHARE)} of rows labelled (expected {human(ch.threshold, Unit.SHARE)})"
    return None


def _drift_phrase(d: FeatureDrift | None) -> str | None:
    if d is None or d.effect is None or not d.drifted:
        return None
    if d.effect_method == "wasserstein":
        return f"drift {human(d.effect, digits=2)} σ"
    return f"drift {d.effect_method.replace('_', '-')} {human(d.effect, digits=2)}"


def _sentence(
    kind: Kind,
    subject: str,
    checks: list[CheckResult],
    hists: dict[str, Histogram],
    drift: dict[str, FeatureDrift],
    r: WindowResult,
) -> str:
    if kind is Kind.COLUMN:
        return _column_sentence(subject, checks, hists.get(subject), drift.get(subject))
    if kind is Kind.PREDICTION:
        return _prediction_sentence(checks, hists, drift)
    if kind is Kind.SERVICE:
        return _listed("service", checks, _service_phrase)
    if kind is Kind.MODEL_QUALITY:
        return _listed("model quality", checks, _quality_phrase)
    if kind is Kind.VOLUME:
        ch = _pick(checks, "volume") or _pick(checks, "volume_history") or checks[0]
        return f"volume: {ch.message}"
    if kind is Kind.CUSTOM:
        ch = _pick(checks, checks[0].check) or checks[0]
        return f"{subject}: {ch.message}"
    if kind is Kind.LOGS:
        parts = []
        q = _pick(checks, "quarantined_share")
        if q is not None and q.value is not None:
            reasons = Counter(d.reason for d in r.quarantine).most_common(3)
            why = ", ".join(f"{reason.replace('_', ' ')} ×{n:,}" for reason, n in reasons)
            parts.append(
                f"{human(r.n_quarantined, Unit.COUNT)} documents quarantined ({human(q.value, Unit.SHARE)})"
                + (f": {why}" if why else "")
            )
        parts += [
            ch.message for ch in checks if ch.check != "quarantined_share" and _pick(checks, ch.check) is ch
        ]
        return "log documents: " + "; ".join(parts)
    ch = _pick(checks, "dataset_drift") or checks[0]
    return f"dataset drift: {ch.message}"


def _column_sentence(
    name: str, checks: list[CheckResult], h: Histogram | None, d: FeatureDrift | None
) -> str:
    label = c.column_label(name)
    lead: list[str] = []
    evidence: list[str] = []
    hint = ""
    missing = _pick(checks, "missing_share")
    if missing is not None and missing.value is not None:
        ref = (
            f" (reference {human(h.reference_missing, Unit.SHARE)})"
            if h and h.reference_missing is not None
            else ""
        )
        lead.append(f"{human(missing.value, Unit.SHARE)} missing{ref}")
        if missing.value >= 0.999:
            hint = " — a renamed or dropped field?"
    rng = _pick(checks, "out_of_range")
    ratio, share = _scale(h)
    if ratio is not None and (ratio >= 3 or ratio <= 1 / 3):
        how = f"{human(ratio, digits=2)}× larger" if ratio >= 3 else f"{human(1 / ratio, digits=2)}× smaller"
        some = "values" if share is None or share > 0.9 else f"{human(share, Unit.SHARE)} of values"
        lead.insert(0, f"{some} about {how} than in the reference")
        if any(abs(ratio / f - 1) < 0.2 for f in UNIT_FACTORS):
            hint = " — a unit change?"
    if rng is not None and rng.value is not None and (share is None or share > 0.9):
        evidence.append(f"{human(rng.value, Unit.SHARE)} out of range")
    unseen = _pick(checks, "unseen_categories")
    if unseen is not None and unseen.value is not None:
        names = [lab for lab, new in zip(h.labels, h.new, strict=False) if new] if h else []
        if names:
            quoted = ", ".join(repr(_short(n)) for n in names[:3]) + (
                f" and {len(names) - 3} more" if len(names) > 3 else ""
            )
            word = "category" if len(names) == 1 else "categories"
            lead.append(f"new {word} {quoted} in {human(unseen.value, Unit.SHARE)} of rows")
        else:
            lead.append(f"{human(unseen.value, Unit.SHARE)} of rows in categories the reference never saw")
    phrase = _drift_phrase(d)
    if phrase is None and any(ch.check == "feature_drift" for ch in checks):
        phrase = "drifted in some segments"
    if phrase:
        evidence.append(phrase)
    if not lead and phrase and h is not None:
        lead.append(_shift_phrase(h))
    if not lead and not evidence:
        lead = [ch.message for ch in checks[:2]]
    text = f"{label}: " + ", ".join(lead or evidence[:1])
    rest = evidence if lead else evidence[1:]
    if rest:
        text += f" ({', '.join(rest)})"
    return text + hint


def _prediction_sentence(
    checks: list[CheckResult], hists: dict[str, Histogram], drift: dict[str, FeatureDrift]
) -> str:
    parts = []
    pred = drift.get(c.PREDICTION)
    h = hists.get(c.PREDICTION)
    if pred is not None and pred.drifted and h is not None and h.kind == "categorical":
        rs, cs = _shares(h.reference), _shares(h.current)
        moved = max(range(len(h.labels)), key=lambda i: abs(cs[i] - rs[i]))
        parts.append(
            f"class balance moved ({_short(h.labels[moved])} {human(rs[moved], Unit.SHARE)} → {human(cs[moved], Unit.SHARE)}"
            f", {_drift_phrase(pred)})"
        )
    elif pred is not None and pred.drifted:
        parts.append(f"predictions shifted ({_drift_phrase(pred)})")
    score = drift.get(c.SCORE)
    if score is not None and score.drifted:
        hs = hists.get(c.SCORE)
        med = ""
        if hs is not None and hs.reference_p50 is not None and hs.current_p50 is not None:
            med = f", median {human(hs.reference_p50, digits=2)} → {human(hs.current_p50, digits=2)}"
        parts.append(f"confidence distribution shifted ({_drift_phrase(score)}{med})")
    if not parts:
        parts = [f"{c.column_label(ch.feature)}: {ch.message}" for ch in checks[:2]]
    else:  # what moved it (explanations' attribution), when known
        parts += [ch.message for ch in checks if ch.category is Category.EXPLANATIONS][:1]
    return "prediction: " + "; ".join(parts)


def _shift_phrase(h: Histogram) -> str:
    if h.kind == "numerical" and h.reference_p50 is not None and h.current_p50 is not None:
        direction = "higher" if h.current_p50 > h.reference_p50 else "lower"
        return f"distribution shifted {direction} (median {human(h.reference_p50)} → {human(h.current_p50)})"
    rs, cs = _shares(h.reference), _shares(h.current)
    if not rs:
        return "distribution changed"
    i = max(range(len(h.labels)), key=lambda i: abs(cs[i] - rs[i]))
    return f"mix changed ({_short(h.labels[i])} {human(rs[i], Unit.SHARE)} → {human(cs[i], Unit.SHARE)})"


UNIT_FACTORS = (60, 1 / 60, 1000, 1 / 1000, 100, 1 / 100, 24, 1 / 24, 3600, 1 / 3600)
"""Ratios that look like a changed unit (seconds/minutes/hours, milli, percent, days)."""


def _scale(h: Histogram | None) -> tuple[float | None, float | None]:
    """How many times larger the window's values are than the reference's (median against median), and
    the share of values that moved: the out-of-range part when a share of the rows jumped beyond the
    reference's range, else every value."""
    if h is None or h.kind != "numerical" or h.reference_p50 is None or h.reference_p50 <= 0:
        return None, None
    n = sum(h.current)
    for p50, count in (
        (h.above_p50, h.current[-1] if h.current else 0),
        (h.below_p50, h.current[0] if h.current else 0),
    ):
        if p50 is not None and p50 > 0 and n and count / n >= 0.05:
            ratio = p50 / h.reference_p50
            if ratio >= 3 or ratio <= 1 / 3:
                return ratio, count / n
    if h.current_p50 is None or h.current_p50 <= 0:
        return None, None
    return h.current_p50 / h.reference_p50, None


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [n / total if total else 0.0 for n in counts]


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cut(text: str) -> str:
    return _short(text, MAX_SENTENCE)


# --------------------------------------------------------------------------------------- lifecycle


def track(
    current: Sequence[Incident],
    previous: Sequence[PreviousIncident],
    window: Window,
    remind_every: timedelta | None,
) -> list[IncidentState]:
    """How this window's incidents relate to those open after the previous window.

    New key → opened; same key → worsened (worse status), improved (better) or ongoing, with a reminder
    when it was last announced at least ``remind_every`` ago (None: never remind); a previous key
    missing now → resolved. Resolved ones come last.
    """
    before = {p.key: p for p in previous}
    out = []
    for inc in current:
        p = before.get(inc.key)
        if p is None:
            out.append(IncidentState(inc, Change.OPENED, window.start, 1, last_announced_start=window.start))
            continue
        if inc.status.severity > p.status.severity:
            change = Change.WORSENED
        elif inc.status.severity < p.status.severity:
            change = Change.IMPROVED
        else:
            change = Change.ONGOING
        last = p.last_announced_start
        remind = bool(
            change is not Change.WORSENED
            and remind_every is not None
            and (last is None or window.start - last >= remind_every)
        )
        announced = window.start if (remind or change is Change.WORSENED) else last
        out.append(IncidentState(inc, change, p.opened_start, p.n_windows + 1, remind, announced))
    now = {i.key for i in current}
    for p in previous:
        if p.key not in now:
            gone = Incident(p.key, p.kind, p.subject, p.status, p.sentence, p.feature)
            out.append(IncidentState(gone, Change.RESOLVED, p.opened_start, p.n_windows, False, window.start))
    return out


def fresh(current: Sequence[Incident], window: Window) -> list[IncidentState]:
    """The incidents of a window with no history (no store, or a notebook): every one is opened."""
    return track(current, [], window, None)


def headline(states: Sequence[IncidentState]) -> str:
    """``2 incidents: 1 new, 1 ongoing since 2026-11-18; 1 resolved`` (or ``no incidents``)."""
    live = [s for s in states if s.change is not Change.RESOLVED]
    resolved = len(states) - len(live)
    if not live:
        text = "no incidents"
    else:
        counts = Counter(s.change for s in live)
        parts = [
            f"{counts[ch]} {'new' if ch is Change.OPENED else ch.value}" for ch in Change if counts.get(ch)
        ]
        text = f"{len(live)} incident{'s' if len(live) != 1 else ''}: " + ", ".join(parts)
    if resolved:
        text += f"; {resolved} resolved"
    return text


def track_stored(target: object, cfg: ModelConfigLike, result: WindowResult) -> list[IncidentState]:
    """This window's incidents against those the store has open after the previous processed window
    (``mlmon.incidents``), with reminders every ``alerts.remind_every``."""
    from mlmon.tasks.store import store
    from mlmon.tasks.window import parse_duration

    remind = cfg.alerts.remind_every
    previous = store.previous_incidents(target, result.model, result.window)  # type: ignore[arg-type]
    current = group(result)
    return track(current, previous, result.window, parse_duration(remind) if remind else None)


def table(states: Sequence[IncidentState]) -> list[dict[str, str]]:
    """Rows for a Prefect table artifact (and any other table view): one per incident, same sentences.

    A clean window gets one row saying so, so the table is never an empty grid."""
    rows = [
        {
            "status": s.incident.status.value,
            "change": "new" if s.change is Change.OPENED else s.change.value,
            "what": s.incident.subject,
            "sentence": s.incident.sentence,
            "open since": f"{s.opened_start:%Y-%m-%d %H:%M} UTC",
            "windows": str(s.n_windows),
        }
        for s in states
    ]
    return rows or [
        {
            "status": "pass",
            "change": "",
            "what": "",
            "sentence": "no incidents",
            "open since": "",
            "windows": "",
        }
    ]
