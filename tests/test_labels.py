"""Late labels against the MongoDB wire server and a real PostgreSQL: a label arriving after its window
ran changes that window's model-quality rows on re-evaluation, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks import labels
from mlmon.tasks.checks.performance import reference_performance
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import read_window
from mlmon.tasks.reference import Baseline, fit_profile
from mlmon.tasks.schedule import label_recheck_windows
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests import factories
from tests.postgres import rows as query

pytestmark = pytest.mark.integration

N = 400
WINDOW = Window.containing(datetime.now(UTC) - timedelta(days=3), timedelta(days=1))


def model_cfg(database: str) -> Any:
    return factories.config(
        "late",
        source={"database": database, "labels": {}},
        performance={"min_labelled": 20},
        drift={"min_rows": 50},
        schedule={"label_horizon": "7d"},
    )


def seed(db: Any) -> pd.DataFrame:
    """N predictions inside WINDOW (no labels yet); returns the frame they came from, truth included."""
    f = factories.frame(N, seed=2, labelled=1.0)
    docs = []
    for i, r in enumerate(f.to_dict("records")):
        docs.append(
            {
                "timestamp": WINDOW.start + timedelta(seconds=60 * i),
                "request_id": f"r{i}",
                "model_version": r[c.VERSION],
                "prediction": {"value": r[c.PREDICTION]},
                "latency_ms": float(r[c.LATENCY]),
                "status": "ok",
                "features": {k: _plain(r[k]) for k in (*factories.NUMERICAL, *factories.CATEGORICAL)},
            }
        )
    db.predictions.insert_many(docs)
    return f.assign(request_id=[f"r{i}" for i in range(N)])


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def add_labels(db: Any, f: pd.DataFrame, rows: range, arrived: datetime) -> None:
    db.labels.insert_many(
        [
            {"request_id": f.request_id.iloc[i], "label": f[c.TARGET].iloc[i], "timestamp": arrived}
            for i in rows
        ]
    )


def baseline(cfg: Any) -> Baseline:
    ref = factories.frame(1500, seed=1, labelled=1.0).drop(columns=[c.SCORE])
    profile = fit_profile(ref, profile_kinds(cfg), "ref-hash")
    return Baseline(ref, replace(profile, performance=reference_performance(ref, cfg)))


def unlabelled_run(
    mongo_db: Any, pg: str, cfg: Any, computed_at: datetime | None = None
) -> tuple[Baseline, pd.DataFrame, Any]:
    """On a migrated store: the fitted reference, the seeded window (no labels yet) and its evaluation,
    not stored yet."""
    store.migrate(pg)
    base = baseline(cfg)
    f = seed(mongo_db)
    batch = read_window(mongo_db, cfg, WINDOW)
    return base, f, evaluate(cfg, base.profile, batch, WINDOW, computed_at=computed_at, reference=base.frame)


def snapshot(pg: str) -> dict[str, list[tuple]]:
    """Every row of every window table, sorted (timestamps and floats as stored)."""
    out = {}
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        for t in store.WINDOW_TABLES:
            cur.execute(f"SELECT * FROM mlmon.{t}")
            cols = [d.name for d in cur.description]
            out[t] = sorted((dict(zip(cols, r, strict=True)) for r in cur.fetchall()), key=repr)
    return out


RUN_LABEL_COLUMNS = (
    "n_labelled",
    "label_coverage",
    "labels_checked_at",
    "status",
    "n_failed_checks",
    "message",
)
"""Run columns a re-evaluation may change: its label counts and the verdict derived from its checks."""


def split(snap: dict[str, list[dict]]) -> tuple[dict, dict]:
    """(model-quality rows, everything else) of a snapshot; run rows split by RUN_LABEL_COLUMNS."""
    names = set(labels.MODEL_QUALITY_METRICS)
    quality = {
        "checks": [r for r in snap["checks"] if r["category"] == "performance"],
        "metrics": [r for r in snap["metrics"] if r["metric"] in names],
        "runs": [{k: r[k] for k in RUN_LABEL_COLUMNS} for r in snap["runs"]],
    }
    rest = {
        "checks": [r for r in snap["checks"] if r["category"] != "performance"],
        "metrics": [r for r in snap["metrics"] if r["metric"] not in names],
        "drift": snap["drift"],
        "quarantine": snap["quarantine"],
        "runs": [{k: v for k, v in r.items() if k not in RUN_LABEL_COLUMNS} for r in snap["runs"]],
    }
    return quality, rest


def test_late_label_changes_only_model_quality_rows(mongo_db: Any, pg_schema_uri: str) -> None:
    pg = pg_schema_uri
    store.migrate(pg)
    cfg = model_cfg(mongo_db.name)
    base = baseline(cfg)
    f = seed(mongo_db)
    add_labels(mongo_db, f, range(0, 100), WINDOW.end + timedelta(hours=1))
    computed_at = WINDOW.end + timedelta(hours=2)
    batch = read_window(mongo_db, cfg, WINDOW)
    assert batch.n_labels_joined == 100
    result = evaluate(cfg, base.profile, batch, WINDOW, computed_at=computed_at, reference=base.frame)
    store.write_window(pg, result, report_path="late/x.html", flow_run_id="run-1")
    assert labels.latest_label_arrivals(mongo_db, cfg, [WINDOW]) == {WINDOW: WINDOW.end + timedelta(hours=1)}
    runs = store.list_runs(pg, "late")
    now = datetime.now(UTC)
    arrivals = labels.latest_label_arrivals(mongo_db, cfg, [WINDOW])
    assert label_recheck_windows(cfg, runs, arrivals, now) == []  # nothing new since the run
    before = snapshot(pg)

    late = now - timedelta(minutes=1)
    add_labels(mongo_db, f, range(100, N), late)
    arrivals = labels.latest_label_arrivals(mongo_db, cfg, [WINDOW])
    assert abs(arrivals[WINDOW] - late) < timedelta(milliseconds=1)  # BSON dates are milliseconds
    assert label_recheck_windows(cfg, runs, arrivals, now) == [WINDOW]

    assert labels.reevaluate_model_quality(pg, mongo_db, cfg, base, WINDOW) == N

    after = snapshot(pg)
    q_before, rest_before = split(before)
    q_after, rest_after = split(after)
    assert rest_after == rest_before  # drift, quality, health, quarantine and the run's other columns
    assert q_after != q_before
    assert q_after["runs"][0]["n_labelled"] == N and q_after["runs"][0]["label_coverage"] == 1.0
    assert q_after["runs"][0]["labels_checked_at"] > late
    n_lab = {(r["segment"]): r["value"] for r in q_after["metrics"] if r["metric"] == "n_labelled"}
    assert n_lab["all"] == N
    # the same as a full evaluation with every label known now
    full = evaluate(cfg, base.profile, read_window(mongo_db, cfg, WINDOW), WINDOW, reference=base.frame)
    perf = {
        (ch.check, ch.feature, ch.segment, str(ch.status))
        for ch in full.checks
        if str(ch.category) == "performance"
    }
    assert {(r["check_name"], r["feature"], r["segment"], r["status"]) for r in q_after["checks"]} == perf
    # and the run's verdict is the full evaluation's
    assert q_after["runs"][0]["status"] == str(full.status)
    assert q_after["runs"][0]["n_failed_checks"] == len(full.failed)
    # checked now: the same labels do not trigger a second re-evaluation
    runs = store.list_runs(pg, "late")
    assert label_recheck_windows(cfg, runs, arrivals, datetime.now(UTC)) == []
    assert labels.recheck(pg, mongo_db, cfg, base, datetime.now(UTC)) == []


def test_no_labels_collection_means_no_arrivals(mongo_db: Any) -> None:
    cfg = model_cfg(mongo_db.name)
    seed(mongo_db)
    assert labels.latest_label_arrivals(mongo_db, cfg, [WINDOW]) == {WINDOW: None}
    no_source = factories.config("x", source={"database": mongo_db.name})
    assert labels.latest_label_arrivals(mongo_db, no_source, [WINDOW]) == {WINDOW: None}


def test_reevaluating_a_window_never_run_is_refused(mongo_db: Any, pg_schema_uri: str) -> None:
    from mlmon.tasks.errors import StoreError

    store.migrate(pg_schema_uri)
    cfg = model_cfg(mongo_db.name)
    seed(mongo_db)
    with pytest.raises(StoreError, match="no stored run"):
        labels.reevaluate_model_quality(pg_schema_uri, mongo_db, cfg, baseline(cfg), WINDOW)
    assert all(v == 0 for v in store.window_rows(pg_schema_uri, "late", WINDOW).values())


def test_late_labels_showing_a_broken_model_fail_the_window_and_alert_once(
    mongo_db: Any, pg_schema_uri: str
) -> None:
    """The window ran with no labels (model quality unknown); then labels arrive that contradict every
    prediction. The next recheck fails the window's model quality, its verdict follows, and the alert
    computed from the stored checks is new (then a duplicate on the following run)."""
    from mlmon.tasks import alerts
    from mlmon.tasks.config import AlertsConfig

    pg = pg_schema_uri
    cfg = model_cfg(mongo_db.name)
    base, f, result = unlabelled_run(mongo_db, pg, cfg, datetime.now(UTC) - timedelta(minutes=10))
    store.write_window(pg, result, report_path="late/x.html", flow_run_id="run-1")
    (run,) = store.list_runs(pg, "late")
    assert run.n_labelled == 0 and run.status != "fail", run.message

    wrong = f.assign(**{c.TARGET: np.where(f[c.PREDICTION] == "churn", "stay", "churn")})
    add_labels(mongo_db, wrong, range(N), datetime.now(UTC) - timedelta(minutes=1))
    assert labels.recheck(pg, mongo_db, cfg, base, datetime.now(UTC)) == [WINDOW]

    (after,) = store.list_runs(pg, "late")
    stored = store.window_checks(pg, "late", WINDOW)
    failed_perf = [ch for ch in stored if str(ch.category) == "performance" and str(ch.status) == "fail"]
    assert failed_perf, [(ch.check, ch.status) for ch in stored if str(ch.category) == "performance"]
    assert after.status == "fail" and after.n_labelled == N
    assert after.n_failed_checks == run.n_failed_checks + len(failed_perf)
    assert after.message.startswith(f"{after.n_failed_checks} failed")

    sent: list[dict] = []
    alert = alerts.stored_alert(pg, cfg, WINDOW, "http://reports/late/x.html")
    assert alert.checks == alerts.alert_for("late", WINDOW, stored, AlertsConfig(), None).checks
    emit = lambda event, resource, payload: sent.append(payload)  # noqa: E731
    assert alerts.notify(pg, AlertsConfig(), alert, emit=emit)["prefect-event"] == "sent"
    assert alerts.notify(pg, AlertsConfig(), alert, emit=emit)["prefect-event"] == "duplicate"
    assert len(sent) == 1 and {ch["check"] for ch in sent[0]["failed_checks"]} >= {
        ch.check for ch in failed_perf
    }


def test_late_label_recheck_rerenders_the_report_and_rebuilds_the_index(
    mongo_db: Any, pg_schema_uri: str, tmp_path: Any
) -> None:
    """The report of a window re-evaluated with late labels shows the new model quality (and its new
    incident), keeps its other parts, and the index lists the window's new state."""
    from mlmon.reports import render

    pg = pg_schema_uri
    cfg = model_cfg(mongo_db.name)
    base, f, result = unlabelled_run(mongo_db, pg, cfg, datetime.now(UTC) - timedelta(minutes=10))
    page = render.write_report(result, cfg, tmp_path, None)
    store.write_window(pg, result, report_path="late/x.html", flow_run_id="run-1")
    render.write_index(tmp_path, render.scan_index(tmp_path))
    before = page.read_text()
    assert 'class="incident warn" data-key="model_quality"' in before  # insufficient labels

    wrong = f.assign(**{c.TARGET: np.where(f[c.PREDICTION] == "churn", "stay", "churn")})
    add_labels(mongo_db, wrong, range(N), datetime.now(UTC) - timedelta(minutes=1))
    assert labels.recheck(pg, mongo_db, cfg, base, datetime.now(UTC), tmp_path) == [WINDOW]

    after = page.read_text()
    assert 'class="incident fail" data-key="model_quality"' in after  # now failing, first screen
    assert "insufficient labels" not in after
    assert "model quality: " in after and f"{N:,} labelled rows" in after
    assert after.count('<section id="drift">') == 1  # the rest of the page is still there
    [run] = render.scan_index(tmp_path)
    assert run.status.value == "fail" and run.n_incidents >= 1
    index = (tmp_path / "index.html").read_text()
    assert "model quality: " in index  # rebuilt with the window's new top incident
    stored = {k for (k,) in query(pg, "SELECT incident_key FROM mlmon.incidents")}
    assert "model_quality" in stored


def test_late_labels_rerun_the_label_dependent_families(mongo_db: Any, pg_schema_uri: str) -> None:
    """Fairness gaps on labels (equal opportunity, accuracy) are computed again when the labels arrive,
    as a full evaluation with those labels gives them; drift and quality rows stay as they were."""
    pg = pg_schema_uri
    cfg = model_cfg(mongo_db.name).model_copy(
        update={
            "fairness": factories.config(
                "x",
                fairness={
                    "enabled": True,
                    "attributes": ["plan"],
                    "min_group_rows": 30,
                    "min_group_labelled": 20,
                },
            ).fairness
        }
    )
    base, f, result = unlabelled_run(mongo_db, pg, cfg)
    store.write_window(pg, result, report_path="late/x.html", flow_run_id="run-1")
    before = snapshot(pg)
    assert labels.replaced_categories(cfg) == {"performance", "fairness"}

    add_labels(mongo_db, f, range(N), datetime.now(UTC) - timedelta(minutes=1))
    labels.reevaluate_model_quality(pg, mongo_db, cfg, base, WINDOW)
    after = snapshot(pg)

    def rows(snap: dict, category: str) -> set[tuple]:
        return {
            (r["check_name"], r["feature"], r["segment"], r["status"], r["message"])
            for r in snap["checks"]
            if r["category"] == category
        }

    full = evaluate(cfg, base.profile, read_window(mongo_db, cfg, WINDOW), WINDOW, reference=base.frame)
    want = {
        (ch.check, ch.feature, ch.segment, str(ch.status), ch.message)
        for ch in full.checks
        if str(ch.category) == "fairness"
    }
    assert rows(after, "fairness") == want != rows(before, "fairness")
    assert any(name == "equal_opportunity_difference" for name, *_ in rows(after, "fairness"))
    for category in ("drift", "data_quality", "service_health"):
        assert rows(after, category) == rows(before, category)
    assert after["runs"][0]["status"] == str(full.status)
