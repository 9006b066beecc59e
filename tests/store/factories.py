"""Hand-built :class:`WindowResult` objects for the store tests (no extraction, no checks run)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mlmon.tasks.checks.outcome import (
    ALL,
    Category,
    CheckResult,
    FeatureDrift,
    Metric,
    QuarantinedDoc,
    Status,
    WindowResult,
)
from mlmon.tasks.window import Window

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def window(day: int = 0, hours: int = 24) -> Window:
    """The ``day``-th window after T0, ``hours`` long."""
    start = T0 + timedelta(days=day)
    return Window(start, start + timedelta(hours=hours))


def drift_row(feature: str = "age", segment: str = ALL, **changes: object) -> FeatureDrift:
    row = FeatureDrift(
        feature=feature,
        kind="numerical",
        test_method="ks",
        statistic=0.12,
        p_value=0.003,
        p_adjusted=0.009,
        effect_method="wasserstein",
        effect=0.25,
        effect_threshold=0.1,
        n_reference=1000,
        n_current=480,
        status=Status.FAIL,
        message="age drifted: wasserstein 0.25 > 0.1",
        segment=segment,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def result(
    model: str = "churn",
    w: Window | None = None,
    *,
    n_features: int = 3,
    segments: tuple[str, ...] = (ALL, "country=FR"),
    n_quarantined: int = 2,
    **changes: object,
) -> WindowResult:
    """A small but complete window: metrics, checks and drift per feature and segment, plus quarantine."""
    features = [f"f{i}" for i in range(n_features)]
    metrics = [Metric("row_count", 500.0)]
    checks = [CheckResult("volume", Category.QUALITY, Status.PASS, 500.0, 100.0, "500 rows")]
    drift = []
    for seg in segments:
        checks.append(
            CheckResult(
                "dataset_drift", Category.DRIFT, Status.WARN, 0.34, 0.5, "1 of 3 drifted", segment=seg
            )
        )
        for i, f in enumerate(features):
            metrics += [Metric("drift_effect", 0.01 * i, f, seg), Metric("missing_share", 0.0, f, seg)]
            checks.append(
                CheckResult("missing_share", Category.QUALITY, Status.PASS, 0.0, 0.05, "ok", f, seg)
            )
            drift.append(drift_row(f, seg, status=Status.FAIL if i == 0 else Status.PASS))
    quarantine = [
        QuarantinedDoc(f"id{i}", "wrong_type", "age", f"'x{i}' is not a number", f'{{"age": "x{i}"}}')
        for i in range(n_quarantined)
    ]
    base = WindowResult(
        model=model,
        window=w or window(),
        computed_at=T0 + timedelta(days=30),
        n_rows=500,
        n_quarantined=n_quarantined,
        n_labelled=400,
        reference_hash="ref-abc123",
        checks=tuple(checks),
        metrics=tuple(metrics),
        drift=tuple(drift),
        quarantine=tuple(quarantine),
        evidently_rows=500,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def expected_rows(r: WindowResult) -> dict[str, int]:
    """What :func:`mlmon.tasks.store.store.window_rows` should report after writing ``r``."""
    return {
        "runs": 1,
        "metrics": len(r.metrics),
        "checks": len(r.checks),
        "drift": len(r.drift),
        "quarantine": len(r.quarantine),
    }
