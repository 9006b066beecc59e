"""Result types shared by every check, the store and the report.

One :class:`WindowResult` per (model, window) feeds both the Postgres tables and the HTML report; its
fields map one-to-one to table columns (see ``tasks/store/migrations``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mlmon.tasks.window import Window

ALL = "all"
"""Segment name for the whole window (no segmentation)."""


class Status(StrEnum):
    """Outcome of a check. Ordered by severity: pass < warn < fail < error."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @staticmethod
    def worst(statuses: list[Status] | tuple[Status, ...]) -> Status:
        """The most severe status; ``pass`` for an empty list."""
        return max(statuses, key=lambda s: s.severity, default=Status.PASS)


_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


class Category(StrEnum):
    DRIFT = "drift"
    QUALITY = "quality"
    PERFORMANCE = "performance"
    HEALTH = "health"
    # model-health families (tasks/checks/families.py): dashboards and alerts rely on these values
    OUTLIERS = "outliers"  # rows unlike the reference (tasks/checks/outliers.py)
    MULTIVARIATE_DRIFT = "multivariate_drift"  # joint change no per-feature test sees
    EXPLANATIONS = "explanations"  # drift × feature importance
    FAIRNESS = "fairness"  # gaps between groups of a sensitive attribute
    ESTIMATED_PERFORMANCE = "estimated_performance"  # quality estimated before the labels arrive
    VERSIONS = "versions"  # champion–challenger and shadow models
    CUSTOM = "custom"  # registered window checks: business KPIs and user metrics (tasks/checks/registry.py)


@dataclass(frozen=True)
class CheckResult:
    """One verdict: a status, the value it was based on, its threshold and a one-line message.

    ``check`` is a stable snake_case name (stored as-is in Postgres); ``feature`` is the column the check
    is about (``""`` for window-level checks); ``segment`` is ``"all"`` or ``"<field>=<value>"``.
    """

    check: str
    category: Category
    status: Status
    value: float | None
    threshold: float | None
    message: str
    feature: str = ""
    segment: str = ALL


@dataclass(frozen=True)
class Metric:
    """One number for Grafana: one row per (model, window, metric, feature, segment)."""

    metric: str
    value: float
    feature: str = ""
    segment: str = ALL


@dataclass(frozen=True)
class FeatureDrift:
    """Per-column drift scores and the decision taken on them (one row of the report's drift table)."""

    feature: str
    kind: str  # "numerical" | "categorical"
    test_method: str | None  # method giving the p-value, e.g. "ks" / "chisquare"; None if effect-only
    statistic: float | None  # the test statistic
    p_value: float | None
    p_adjusted: float | None  # after multiple-testing correction within the family
    effect_method: str  # e.g. "wasserstein" / "jensen_shannon" / "psi"
    effect: float | None
    effect_threshold: float
    n_reference: int
    n_current: int
    status: Status  # fail = drifted, warn = insufficient data, pass = no drift, error = could not compute
    message: str
    segment: str = ALL
    scores: dict[str, float] = field(default_factory=dict)  # every extra method computed, by name

    @property
    def drifted(self) -> bool:
        return self.status is Status.FAIL


@dataclass(frozen=True)
class Histogram:
    """Reference and window counts of one column on the reference's own bins (the report's pictures).

    Numerical: ``labels`` are the reference's quantile bins, between an ``< min`` and a ``> max`` bin that
    only the window can fill (``edges`` holds the bins' bounds, ``len(labels) - 1`` of them). Categorical:
    the most frequent categories of either side, then one ``other`` bar; ``new`` marks categories the
    reference never saw. Counted once from the window's rows (:mod:`mlmon.tasks.histograms`), so the
    renderer never touches rows.
    """

    feature: str
    kind: str  # "numerical" | "categorical"
    labels: tuple[str, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]
    edges: tuple[float, ...] = ()
    new: tuple[bool, ...] = ()
    segment: str = ALL
    reference_missing: float | None = None  # share of missing values in the reference
    current_missing: float | None = None  # share of missing values in the window
    reference_p50: float | None = None  # numerical: the reference's median (the incident sentence's "×")
    current_p50: float | None = None
    above_p50: float | None = None  # numerical: median of the window's values above the reference's max
    below_p50: float | None = None  # numerical: median of the window's values below the reference's min


@dataclass(frozen=True)
class QuarantinedDoc:
    """A document that did not fit the contract, kept with its reason for inspection."""

    doc_id: str
    reason: str  # a mlmon.tasks.contract.Reason value
    field: str  # the logical field (or dotted path) at fault
    detail: str  # human detail; may contain untrusted text (escaped by the renderer)
    document: str  # truncated JSON of the raw document


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one (model, window)."""

    model: str
    window: Window
    computed_at: datetime
    n_rows: int  # documents accepted into the window
    n_quarantined: int
    n_labelled: int
    reference_hash: str
    checks: tuple[CheckResult, ...]
    metrics: tuple[Metric, ...]
    drift: tuple[FeatureDrift, ...]
    quarantine: tuple[QuarantinedDoc, ...]
    evidently_rows: int | None = None  # rows Evidently saw (a seeded sample when < n_rows); None = not run
    notes: tuple[str, ...] = ()  # human notes shown on the report (sampling, skipped parts, ...)
    histograms: tuple[Histogram, ...] = ()  # reference vs window counts per column, for the report

    @property
    def status(self) -> Status:
        return Status.worst([c.status for c in self.checks])

    @property
    def label_coverage(self) -> float | None:
        return self.n_labelled / self.n_rows if self.n_rows else None

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status in (Status.FAIL, Status.ERROR))
