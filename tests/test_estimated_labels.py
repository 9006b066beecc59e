"""Estimate first, realized later, one window: against the MongoDB wire server and a real PostgreSQL.

A window run before its labels arrive stores ``estimated_<metric>`` and its band; when the labels come
the re-evaluation (tasks/labels.py) writes the realized ``<metric>`` for the same (model, window,
segment) and leaves the estimate alone, so one Grafana panel shows both."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg2
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks import labels
from mlmon.tasks.checks.families import fit_families
from mlmon.tasks.checks.performance import reference_performance
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import read_window
from mlmon.tasks.reference import Baseline, fit_profile
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests import factories

pytestmark = pytest.mark.integration

N = 600
WINDOW = Window.containing(datetime.now(UTC) - timedelta(days=3), timedelta(days=1))
NAMES = ("accuracy", "roc_auc")


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def test_realized_lands_beside_the_estimate_when_the_labels_arrive(mongo_db: Any, pg_schema_uri: str) -> None:
    pg = pg_schema_uri
    store.migrate(pg)
    cfg = factories.config(
        "cbpe",
        source={"database": mongo_db.name, "labels": {}},
        fields={"probabilities": "prediction.probabilities"},
        performance={"min_labelled": 50},
        drift={"min_rows": 50},
        estimated_performance={"enabled": True, "min_rows": 100},
    )
    ref = factories.frame(3_000, seed=1, labelled=1.0)
    profile = fit_profile(ref, profile_kinds(cfg), "ref-hash")
    profile = fit_families(replace(profile, performance=reference_performance(ref, cfg)), ref, cfg)
    base = Baseline(ref, profile)

    f = factories.frame(N, seed=2, labelled=1.0)
    mongo_db.predictions.insert_many(
        [
            {
                "timestamp": WINDOW.start + timedelta(seconds=60 * i),
                "request_id": f"r{i}",
                "model_version": r[c.VERSION],
                "prediction": {
                    "value": r[c.PREDICTION],
                    "probabilities": {"churn": float(r[c.SCORE]), "stay": 1 - float(r[c.SCORE])},
                },
                "latency_ms": float(r[c.LATENCY]),
                "status": "ok",
                "features": {k: _plain(r[k]) for k in (*factories.NUMERICAL, *factories.CATEGORICAL)},
            }
            for i, r in enumerate(f.to_dict("records"))
        ]
    )
    result = evaluate(cfg, profile, read_window(mongo_db, cfg, WINDOW), WINDOW, reference=ref)
    store.write_window(pg, result, report_path="cbpe/x.html", flow_run_id="run-1")
    before = _metrics(pg)
    for m in NAMES:
        assert {f"estimated_{m}", f"estimated_{m}_lower", f"estimated_{m}_upper"} <= set(before)
        assert m not in before  # no label yet: nothing realized
    estimated = [ch for ch in result.checks if str(ch.category) == "estimated_performance"]
    assert estimated and all(str(ch.status) == "pass" for ch in estimated if ch.segment == "all")

    mongo_db.labels.insert_many(
        [
            {"request_id": f"r{i}", "label": f[c.TARGET].iloc[i], "timestamp": datetime.now(UTC)}
            for i in range(N)
        ]
    )
    assert labels.reevaluate_model_quality(pg, mongo_db, cfg, base, WINDOW) == N
    after = _metrics(pg)
    for m in NAMES:
        assert after[f"estimated_{m}"] == before[f"estimated_{m}"]  # the estimate stays as it was
        assert after[f"estimated_{m}_lower"] <= after[m] <= after[f"estimated_{m}_upper"]


def _metrics(pg: str) -> dict[str, float]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT metric, value FROM mlmon.metrics WHERE model = 'cbpe' AND window_start = %s"
            " AND segment = 'all' AND feature = ''",
            (WINDOW.start,),
        )
        return dict(cur.fetchall())
