"""Incidents: failing checks grouped by what broke, one sentence each, tracked across windows."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks import incidents as inc
from mlmon.tasks.checks.outcome import WindowResult
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.window import Window
from tests import factories as fx

N = 2500


@pytest.fixture(scope="module")
def setup() -> tuple[ModelConfig, Profile]:
    cfg = fx.config()
    return cfg, fit_profile(fx.frame(N, seed=1), profile_kinds(cfg), "ref")


def _run(setup: tuple[ModelConfig, Profile], cur: pd.DataFrame, day: int = 0) -> WindowResult:
    cfg, profile = setup
    return evaluate(cfg, profile, Batch(frame=cur), fx.window(day))


def data_quality_day(seed: int = 2) -> pd.DataFrame:
    return fx.data_quality_frame(N, seed)


def test_data_quality_day_is_a_few_incidents_with_evidence(setup: tuple[ModelConfig, Profile]) -> None:
    r = _run(setup, data_quality_day())
    assert len(r.failed) > 10  # many checks (window and segments) ...
    found = inc.group(r)
    by_key = {i.key: i for i in found}
    assert len(found) <= 6, [i.sentence for i in found]  # ... few incidents
    minutes = by_key["column:avg_session_minutes"].sentence
    assert minutes.startswith("avg_session_minutes: values about 60× larger than in the reference")
    assert "out of range" in minutes and "σ" in minutes and "a unit change?" in minutes
    tenure = by_key["column:tenure_months"].sentence
    assert (
        tenure.startswith("tenure_months: 30% missing (reference 0%)") or "% missing (reference 0%)" in tenure
    )
    assert re.search(r"new category 'XX' in [89](\.\d)?% of rows", by_key["column:country"].sentence)
    assert "in all segments" in minutes  # both model versions are hit: folded, not repeated
    assert found[0].status.severity >= found[-1].status.severity


def test_segments_are_folded_with_where(setup: tuple[ModelConfig, Profile]) -> None:
    cur = fx.frame(N, seed=3)
    v2 = cur[c.VERSION].to_numpy() == "v2"
    cur.loc[v2, "tenure_months"] = np.nan  # only one segment loses the field
    found = {i.key: i for i in inc.group(_run(setup, cur))}
    assert "column:tenure_months" in found
    assert "model_version=v2" in found["column:tenure_months"].segments


def test_clean_window_has_no_failing_incident(setup: tuple[ModelConfig, Profile]) -> None:
    r = _run(setup, fx.frame(N, seed=4))
    assert [i.sentence for i in inc.group(r, min_status=fx.Status.FAIL)] == []


def _prev(i: inc.Incident, opened: Window, n: int, announced: Window | None) -> inc.PreviousIncident:
    return inc.PreviousIncident(
        i.key,
        i.kind,
        i.subject,
        i.status,
        i.sentence,
        i.feature,
        opened.start,
        n,
        announced and announced.start,
    )


def test_lifecycle_opened_ongoing_reminder_worsened_resolved(setup: tuple[ModelConfig, Profile]) -> None:
    r = _run(setup, data_quality_day())
    current = inc.group(r)
    w0, w1, w9 = fx.window(0), fx.window(1), fx.window(9)
    opened = inc.track(current, [], w0, timedelta(days=7))
    assert {s.change for s in opened} == {inc.Change.OPENED} and all(s.announce for s in opened)

    prev = [_prev(i, w0, 1, w0) for i in current]
    ongoing = inc.track(current, prev, w1, timedelta(days=7))
    assert {s.change for s in ongoing} == {inc.Change.ONGOING}
    assert not any(s.announce for s in ongoing)  # the second identical window says nothing
    assert all(s.n_windows == 2 and s.opened_start == w0.start for s in ongoing)

    reminded = inc.track(current, [_prev(i, w0, 9, w0) for i in current], w9, timedelta(days=7))
    assert all(s.remind and s.announce for s in reminded)
    assert not any(s.remind for s in inc.track(current, prev, w9, None))  # remind_every: null

    failing = [i for i in current if i.status is fx.Status.FAIL]
    milder = [inc.Incident(**{**i.__dict__, "status": fx.Status.WARN}) for i in failing]
    worse = inc.track(failing, [_prev(i, w0, 1, w0) for i in milder], w1, None)
    assert {s.change for s in worse} == {inc.Change.WORSENED}

    resolved = inc.track([], prev, w1, None)
    assert {s.change for s in resolved} == {inc.Change.RESOLVED} and all(s.announce for s in resolved)
    assert inc.headline(resolved) == f"no incidents; {len(prev)} resolved"


def test_stored_incidents_persist_across_windows(
    setup: tuple[ModelConfig, Profile], pg_schema_uri: str
) -> None:
    from mlmon.tasks.store import store

    cfg, _ = setup
    store.migrate(pg_schema_uri)
    seen = []
    for day, cur in enumerate([data_quality_day(5), data_quality_day(6), fx.frame(N, seed=7)]):
        r = _run(setup, cur, day)
        store.write_window(pg_schema_uri, r, report_path=None, flow_run_id=None)
        states = inc.track_stored(pg_schema_uri, cfg, r)
        store.write_incidents(pg_schema_uri, r.model, r.window, states)
        store.write_incidents(pg_schema_uri, r.model, r.window, states)  # a re-run replaces, never duplicates
        seen.append({s.incident.key: s for s in states})
    key = "column:avg_session_minutes"
    assert seen[0][key].change is inc.Change.OPENED
    assert seen[1][key].change is inc.Change.ONGOING and seen[1][key].n_windows == 2
    assert seen[2][key].change is inc.Change.RESOLVED
    # a re-run of the middle window sees the first window's incidents, not its own
    again = inc.track_stored(pg_schema_uri, cfg, _run(setup, data_quality_day(6), 1))
    assert {s.incident.key: s.change for s in again}[key] is inc.Change.ONGOING


def test_model_health_families_are_incidents_of_their_own_or_join_what_they_explain() -> None:
    """Outliers, multivariate drift and model versions are one incident each (never "log documents");
    a drift attribution without a column joins the prediction's incident."""
    from dataclasses import replace

    from mlmon.tasks.checks.outcome import Category, CheckResult, Status

    made = [
        CheckResult("outlier_share", Category.OUTLIERS, Status.FAIL, 0.03, 0.015, "outliers: 3%"),
        CheckResult("multivariate_drift", Category.MULTIVARIATE_DRIFT, Status.FAIL, 0.7, 0.55, "auc 0.7"),
        CheckResult("version_quality", Category.VERSIONS, Status.FAIL, -0.1, 0.01, "worse", "v3-shadow"),
        CheckResult(
            "prediction_drift_attribution", Category.EXPLANATIONS, Status.FAIL, 0.4, None, "by income"
        ),
    ]
    r = fx.result()
    found = {i.subject: i for i in inc.group(replace(r, checks=(*r.checks, *made)))}
    assert found["outliers"].checks == ("outlier_share",)
    assert found["multivariate drift"].checks == ("multivariate_drift",)
    assert found["model versions"].checks == ("version_quality",)
    assert "prediction_drift_attribution" in found["prediction"].checks
    logs = found.get("log documents")
    assert logs is None or not {ch.check for ch in made} & set(logs.checks)
