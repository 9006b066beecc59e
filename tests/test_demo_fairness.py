"""The demo's fairness episode end to end on the real parts (Mongo wire server, extraction with the
``region`` business field, the engine, PostgreSQL): day 8's bias fails the fairness checks and warns
on the class balance; clean days 1 and 2 pass. Only days 0 (reference), 1, 2 and 8 are written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mlmon import simulate
from mlmon.tasks import extract
from mlmon.tasks.checks.families import fit_families
from mlmon.tasks.checks.performance import reference_performance
from mlmon.tasks.config import load_config
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests.demo import demo_config

START = datetime(2026, 3, 1, tzinfo=UTC)
PER_DAY = 1_500
DAYS = (0, 1, 2, 8)

pytestmark = pytest.mark.integration


def test_day_8_bias_fails_fairness_and_clean_days_pass(mongo_db, pg_schema_uri, tmp_path) -> None:
    import psycopg2

    path = demo_config(tmp_path, mongo_db.name, "ref.parquet", expected_volume={"min": 1000, "max": 2000})
    cfg = load_config(path).model("demo_classifier")
    preds, labels = [], []
    for d in DAYS:  # a day depends only on (seed, day): write just the days the test reads
        p, lab = simulate._simulate_day(START + timedelta(days=d), d, PER_DAY, 7, simulate.Scenario())
        preds += p
        labels += lab
    simulate.write(mongo_db, preds, labels)

    def window(d: int) -> Window:
        return Window(START + timedelta(days=d), START + timedelta(days=d + 1))

    ref = extract.read_window(mongo_db, cfg, window(0)).frame
    assert set(ref["region"].dropna()) == set(simulate.REGIONS)  # the logged field, not a feature
    profile = fit_profile(ref, profile_kinds(cfg), "demo")
    profile = fit_families(replace(profile, performance=reference_performance(ref, cfg)), ref, cfg)
    store.migrate(pg_schema_uri)
    for d in DAYS[1:]:
        batch = extract.read_window(mongo_db, cfg, window(d))
        store.write_window(pg_schema_uri, evaluate(cfg, profile, batch, window(d), reference=ref),
                           report_path=None, flow_run_id=None)  # fmt: skip
    with psycopg2.connect(pg_schema_uri) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT window_start, check_name, status FROM mlmon.checks WHERE segment = 'all' AND "
            "(category = 'fairness' OR check_name IN ('class_balance', 'class_min_share'))"
        )
        rows = cur.fetchall()
        cur.execute(
            "SELECT feature, value FROM mlmon.metrics WHERE metric = 'fairness_selection_rate' "
            "AND segment = 'all' AND window_start = %s",
            (window(8).start,),
        )
        selection = dict(cur.fetchall())
    by_day = {d: {(c, s) for ws, c, s in rows if ws == window(d).start} for d in DAYS[1:]}
    for clean in (1, 2):
        assert {s for _, s in by_day[clean]} == {"pass"}, by_day[clean]
    failed = {c for c, s in by_day[8] if s == "fail"}
    assert {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equal_opportunity_difference",
    } <= failed
    assert ("class_balance", "warn") in by_day[8]
    assert (
        selection["region=south"] < 0.05 < 0.2 < min(v for k, v in selection.items() if k != "region=south")
    )
