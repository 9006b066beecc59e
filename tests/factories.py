"""Hand-built inputs for the report and Evidently tests: a model config, window frames, window results.

The result looks like the demo churn classifier on its data-quality incident day (day 5 of
``mlmon.simulate``): two features drifted, a unit change, a new country, malformed documents.
Nothing here runs the checks; the numbers are plausible, not computed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
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
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.window import Window

T0 = datetime(2026, 1, 6, tzinfo=UTC)
NUMERICAL = ("age", "income", "tenure_months", "sessions_last_7d", "avg_session_minutes", "support_tickets")
CATEGORICAL = ("plan", "country", "device")
CLASSES = ("stay", "churn")
# would set the title and add <b id="pwned"> if it ever ran
HOSTILE = (
    "<script>document.title='pwned';"
    "document.body.insertAdjacentHTML('beforeend','<b id=pwned>x</b>')</script>"
)


def config(name: str = "demo_classifier", *, task: str = "binary", **changes: Any) -> ModelConfig:
    """The demo classifier's config (features, binary task, churn as the positive class)."""
    body: dict[str, Any] = {
        "name": name,
        "features": {
            **{f: {"type": "numerical"} for f in NUMERICAL},
            **{f: {"type": "categorical"} for f in CATEGORICAL},
        },
        "task": task,
        "reference": {"path": "reference.parquet"},
        "segments": ["model_version"],
    }
    if task == "binary":
        body |= {"classes": list(CLASSES), "positive_class": "churn"}
    elif task == "multiclass":
        body |= {"classes": ["basic", "pro", "enterprise"]}
    body.update(changes)
    return ModelConfig.model_validate(body)


def frame(
    n: int,
    *,
    seed: int = 0,
    shift: float = 0.0,
    labelled: float = 0.6,
    task: str = "binary",
) -> pd.DataFrame:
    """A window frame in the contract's shape: features, prediction, score/probabilities, target.

    ``shift`` (in σ) moves ``income`` and ``sessions_last_7d`` up; ``labelled`` is the share of rows
    with a target.
    """
    from mlmon import demo_model as dm

    rng = np.random.default_rng(seed)
    f = dm.customers(rng, n, shift) if n else dm.customers(rng, 1).iloc[:0]
    p = dm.churn_probability(f) if n else np.zeros(0)
    f[c.TIMESTAMP] = pd.date_range(T0, periods=n, freq="s", tz="UTC")
    f[c.VERSION] = np.where(rng.random(n) < 0.7, "v1", "v2").astype(object)
    if task == "regression":
        f[c.PREDICTION] = 100 * p
        target = 100 * p + rng.normal(0, 5, n)
        f[c.TARGET] = np.where(rng.random(n) < labelled, target, np.nan)
    elif task == "multiclass":
        probs = rng.dirichlet([2.0, 1.0, 1.0], n)
        names = np.array(["basic", "pro", "enterprise"], dtype=object)
        for i, k in enumerate(names):
            f[c.PROBA_PREFIX + k] = probs[:, i]
        f[c.PREDICTION] = names[probs.argmax(axis=1)] if n else np.zeros(0, dtype=object)
        f[c.SCORE] = probs.max(axis=1) if n else np.zeros(0)
        truth = names[rng.integers(0, 3, n)] if n else np.zeros(0, dtype=object)
        f[c.TARGET] = np.where(rng.random(n) < labelled, truth, None)
    else:
        f[c.PREDICTION] = np.where(p > 0.5, "churn", "stay").astype(object)
        f[c.SCORE] = p
        truth = dm.sample_churn(rng, f) if n else np.zeros(0, dtype=object)
        f[c.TARGET] = np.where(rng.random(n) < labelled, truth, None)
    f[c.LATENCY] = rng.lognormal(np.log(40), 0.5, n)
    f[c.STATUS] = "ok"
    return f


def data_quality_frame(n: int, seed: int = 2) -> pd.DataFrame:
    """The demo's data-quality incident on :func:`frame`: minutes logged as seconds, 30 % of
    ``tenure_months`` lost, a new country ``XX`` in about 9 % of rows."""
    cur = frame(n, seed=seed)
    rng = np.random.default_rng(seed)
    cur["avg_session_minutes"] = cur["avg_session_minutes"] * 60
    cur.loc[rng.random(n) < 0.3, "tenure_months"] = np.nan
    cur.loc[rng.random(n) < 0.09, "country"] = "XX"
    return cur


def window(day: int = 0, hours: int = 24) -> Window:
    start = T0 + timedelta(days=day)
    return Window(start, start + timedelta(hours=hours))


def _drift(
    feature: str,
    kind: str,
    p: float,
    effect: float,
    status: Status,
    n: int,
    segment: str = ALL,
    **extra: float,
) -> FeatureDrift:
    num = kind == "numerical"
    threshold = 0.025 if num else 0.02
    method = "wasserstein" if num else "jensen_shannon"
    verdict = "drifted" if status is Status.FAIL else "no drift"
    return FeatureDrift(
        feature=feature,
        kind=kind,
        test_method="ks" if num else "chisquare",
        statistic=0.01 + effect / 3,
        p_value=p,
        p_adjusted=min(1.0, p * 11),
        effect_method=method,
        effect=effect,
        effect_threshold=threshold,
        n_reference=2500,
        n_current=n,
        status=status,
        message=f"{verdict}: {method} {effect:.3g} vs {threshold}, p adj. {min(1.0, p * 11):.2g}",
        segment=segment,
        scores={"psi": effect * 2.1, "jensen_shannon": effect / 2, **extra},
    )


def result(
    model: str = "demo_classifier",
    w: Window | None = None,
    *,
    hostile: str | None = None,
    **changes: Any,
) -> WindowResult:
    """A complete, realistic window result; ``hostile`` puts an untrusted string where logs can reach."""
    n = 2431
    w = w or window(4)
    drift_specs = [
        ("income", "numerical", 1e-42, 0.61, Status.FAIL),
        ("sessions_last_7d", "numerical", 3e-31, 0.48, Status.FAIL),
        ("avg_session_minutes", "numerical", 2e-6, 0.031, Status.FAIL),
        ("country", "categorical", 4e-5, 0.052, Status.FAIL),
        (c.SCORE, "numerical", 0.0021, 0.019, Status.PASS),
        (c.PREDICTION, "categorical", 0.04, 0.011, Status.PASS),
        ("age", "numerical", 0.61, 0.012, Status.PASS),
        ("tenure_months", "numerical", 0.33, 0.014, Status.PASS),
        ("support_tickets", "numerical", 0.88, 0.006, Status.PASS),
        ("plan", "categorical", 0.72, 0.004, Status.PASS),
        ("device", "categorical", 0.12, 0.009, Status.PASS),
    ]
    drift = [_drift(f, k, p, e, s, n) for f, k, p, e, s in drift_specs]
    for seg, rows in (("model_version=v1", 1702), ("model_version=v2", 729)):
        drift += [_drift(f, k, min(1.0, p * 40), e * 0.95, s, rows, seg) for f, k, p, e, s in drift_specs]
    checks = [
        CheckResult(
            "dataset_drift", Category.DRIFT, Status.FAIL, 4 / 9, 0.0, "4 of 9 features drifted: income, …"
        ),
        *(
            CheckResult("drift", Category.DRIFT, d.status, d.effect, d.effect_threshold, d.message, d.feature)
            for d in drift
            if d.segment == ALL
        ),
        CheckResult("volume", Category.QUALITY, Status.PASS, float(n), None, f"{n:,} rows"),
        CheckResult(
            "quarantined_share",
            Category.QUALITY,
            Status.WARN,
            8 / (n + 8),
            0.01,
            "8 documents quarantined (0.33%)",
        ),
        CheckResult(
            "missing_share",
            Category.QUALITY,
            Status.FAIL,
            0.297,
            0.05,
            "tenure_months missing in 29.7% of rows (reference 0.0%)",
            "tenure_months",
        ),
        CheckResult(
            "out_of_range",
            Category.QUALITY,
            Status.FAIL,
            0.38,
            0.01,
            "avg_session_minutes outside [0.35, 79.2] in 38.0% of rows",
            "avg_session_minutes",
        ),
        CheckResult(
            "unseen_categories",
            Category.QUALITY,
            Status.FAIL,
            0.041,
            0.01,
            "country: 4.1% of rows in categories the reference never saw: 'XX'",
            "country",
        ),
        CheckResult("latency_p95", Category.HEALTH, Status.PASS, 88.1, 250.0, "p95 88.1 ms ≤ 250 ms"),
        CheckResult("error_rate", Category.HEALTH, Status.PASS, 0.004, 0.05, "0.40% errors ≤ 5%"),
        CheckResult("model_quality", Category.PERFORMANCE, Status.PASS, 1459, 50, "1,459 labelled rows"),
        CheckResult(
            "f1", Category.PERFORMANCE, Status.WARN, 0.64, 0.72, "f1 0.64 is 11% below the reference 0.72"
        ),
        CheckResult(
            "roc_auc", Category.PERFORMANCE, Status.PASS, 0.81, 0.75, "roc_auc 0.81 vs reference 0.83"
        ),
    ]
    checks += [
        CheckResult("missing_share", Category.QUALITY, Status.PASS, 0.0, 0.05, "no missing values", f)
        for f in (*NUMERICAL, *CATEGORICAL)
        if f != "tenure_months"
    ]
    metrics = [
        Metric("row_count", float(n)),
        Metric("requests_per_minute", n / 1440),
        Metric("latency_p50_ms", 41.2),
        Metric("latency_p95_ms", 88.1),
        Metric("latency_p99_ms", 131.0),
        Metric("error_rate", 0.004),
        Metric("n_labelled", 1459.0),
        Metric("label_coverage", 1459 / n),
        Metric("accuracy", 0.842),
        Metric("precision", 0.61),
        Metric("recall", 0.67),
        Metric("f1", 0.64),
        Metric("roc_auc", 0.81),
        Metric("log_loss", 0.372),
        Metric("prediction_share", 0.83, "stay"),
        Metric("prediction_share", 0.17, "churn"),
    ]
    for seg, share in (("model_version=v1", 0.7), ("model_version=v2", 0.3)):
        metrics += [
            Metric("row_count", round(n * share), "", seg),
            Metric("n_labelled", round(1459 * share), "", seg),
            Metric("label_coverage", 0.6, "", seg),
            Metric("accuracy", 0.84 + share / 50, "", seg),
            Metric("f1", 0.6 + share / 10, "", seg),
            Metric("latency_p95_ms", 80 + 30 * share, "", seg),
            Metric("error_rate", 0.004 * share, "", seg),
        ]
    for i, f in enumerate(NUMERICAL):
        metrics += [
            Metric("missing_share", 0.297 if f == "tenure_months" else 0.0, f),
            Metric("out_of_range_share", 0.38 if f == "avg_session_minutes" else 0.0, f),
            Metric("mean", 10.0 * (i + 1) + 0.123, f),
            Metric("std", 2.5 * (i + 1), f),
            Metric("p50", 10.0 * (i + 1), f),
        ]
    for f in CATEGORICAL:
        metrics += [
            Metric("missing_share", 0.0, f),
            Metric("unseen_share", 0.041 if f == "country" else 0.0, f),
        ]
    quarantine = [
        QuarantinedDoc(
            f"65f1c0de00000000000000{i:02d}",
            reason,
            field,
            detail,
            f'{{"request_id": "r{i}", "features": {{"age": {value}, "plan": "pro"}}, '
            f'"timestamp": "2026-01-10T1{i}:00:00Z"}}',
        )
        for i, (reason, field, detail, value) in enumerate(
            [
                ("wrong_type", "features.age", "'forty-two' is not a number", '"forty-two"'),
                ("missing_field", "timestamp", "timestamp is missing", "42"),
                ("nested_value", "features.age", "object where a number belongs", '{"years": 42}'),
                ("non_finite", "latency_ms", "NaN is not finite", "42"),
                ("wrong_type", "features.age", "True is a bool, not a number", "true"),
                ("unparseable", "timestamp", "cannot read 'yesterday' as a timestamp", "42"),
                ("string_too_long", "features.plan", "string of 5,000 characters (max 1000)", "42"),
                ("wrong_type", "features.income", "'12k' is not a number", "42"),
            ]
        )
    ]
    notes: tuple[str, ...] = (
        "Evidently ran on a seeded sample of 2,000 of 2,431 rows (evidently.max_rows); "
        "mlmon's own checks used every row.",
    )
    out = WindowResult(
        model=model,
        window=w,
        computed_at=w.end + timedelta(minutes=17),
        n_rows=n,
        n_quarantined=len(quarantine),
        n_labelled=1459,
        reference_hash="sha256:3f9a1c0e7b2d4a6f8e1c2b3a4d5e6f70",
        checks=tuple(checks),
        metrics=tuple(metrics),
        drift=tuple(drift),
        quarantine=tuple(quarantine),
        evidently_rows=2000,
        notes=notes,
    )
    if hostile is not None:
        out = with_hostile(out, hostile)
    return replace(out, **changes)


def with_hostile(r: WindowResult, text: str) -> WindowResult:
    """The same result with ``text`` in every place the logs can reach: a document, a category value in a
    message, a feature name, a segment, a note."""
    doc = QuarantinedDoc(
        "hostile", "wrong_type", f"features.{text}", f"{text!r} is not a number", f'{{"x": "{text}"}}'
    )
    check = CheckResult(
        "unseen_categories",
        Category.QUALITY,
        Status.FAIL,
        0.5,
        0.01,
        f"unseen category {text!r}",
        text,
        f"plan={text}",
    )
    drift = replace(r.drift[0], feature=text, message=f"drifted: {text}")
    return replace(
        r,
        quarantine=(doc, *r.quarantine),
        n_quarantined=r.n_quarantined + 1,
        checks=(*r.checks, check),
        drift=(*r.drift, drift),
        notes=(*r.notes, f"note with {text}"),
    )


def small_result(
    model: str = "m", w: Window | None = None, status: Status = Status.PASS, **changes: Any
) -> WindowResult:
    """A minimal result whose overall status is ``status`` (for index tests)."""
    w = w or window()
    return WindowResult(
        model=model,
        window=w,
        computed_at=w.end + timedelta(minutes=5),
        n_rows=100,
        n_quarantined=0,
        n_labelled=0,
        reference_hash="ref",
        checks=(CheckResult("volume", Category.QUALITY, status, 100.0, None, "100 rows"),),
        metrics=(Metric("row_count", 100.0),),
        drift=(),
        quarantine=(),
        **changes,
    )
