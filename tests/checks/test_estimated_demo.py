"""The demo's traffic (mlmon/simulate.py) through the estimated-performance family, as configured for
demo_classifier in deployments/models.yaml: clean days pass; the drift days 3-4 (richer, more active
customers: the model predicts churn for fewer of them and is less sure about those it flags) show the
estimated drop of recall and F1 before any label, and the realized values confirm it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from mlmon import simulate
from mlmon.tasks import contract as c
from mlmon.tasks.checks.estimated import estimated_checks, fit_cbpe
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.checks.performance import model_scores
from mlmon.tasks.config import load_config

pytestmark = pytest.mark.slow
START = datetime(2026, 1, 1, tzinfo=UTC)


def demo_frames(days: int) -> dict[int, pd.DataFrame]:
    preds, labels = simulate.simulate(START, days, 2500, 7)
    label = {doc["request_id"]: doc["label"] for doc in labels}
    rows = []
    for d in preds:
        if d.get("status") != "ok" or not isinstance(d.get("timestamp"), datetime):
            continue
        rows.append(
            {
                c.PREDICTION: d["prediction"]["value"],
                c.SCORE: d["prediction"]["probabilities"]["churn"],
                c.TARGET: label.get(d["request_id"]),
                "day": (d["timestamp"] - START).days,
            }
        )
    frame = pd.DataFrame(rows)
    return {day: part.drop(columns="day") for day, part in frame.groupby("day")}


def test_clean_days_pass_and_the_drift_days_show_the_drop_before_the_labels() -> None:
    root = Path(__file__).parents[2]
    cfg = load_config(root / "deployments" / "models.yaml").model("demo_classifier")
    ec = cfg.estimated_performance
    assert ec.enabled
    frames = demo_frames(5)
    model = fit_cbpe(frames[0], cfg)
    for day in (1, 2):
        checks, _ = estimated_checks(frames[day], model, ec)
        assert checks and all(ch.status is Status.PASS for ch in checks), [ch.message for ch in checks]
    for day in (3, 4):
        unlabelled = frames[day].drop(columns=[c.TARGET])
        by = {ch.check: ch for ch in estimated_checks(unlabelled, model, ec)[0]}
        assert by["estimated_recall"].status is Status.FAIL and by["estimated_f1"].status is Status.FAIL
        realized = model_scores(frames[day], cfg).values
        assert realized["recall"] < model.whole.realized["recall"] - 0.05
