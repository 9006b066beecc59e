"""The demo's shadow challenger end to end without Prefect (read from MongoDB, evaluated, as the flow
does): it fails the versions check on day 7 only, and its documents make no other check fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.demo import demo_config

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 2, tzinfo=UTC)
PER_DAY = 900


def test_the_demo_shadow_challenger_fails_on_day_7_and_nothing_else_does(
    mongo_uri, mongo_db, tmp_path
) -> None:
    import pymongo

    from mlmon import simulate
    from mlmon.tasks import extract, reference
    from mlmon.tasks.checks.outcome import Category, Status
    from mlmon.tasks.config import load_config
    from mlmon.tasks.evaluate import evaluate
    from mlmon.tasks.window import Window

    volume = {"min": int(PER_DAY * 0.7), "max": int(PER_DAY * 1.3)}
    cfg = load_config(
        demo_config(tmp_path, mongo_db.name, "reference.parquet", expected_volume=volume)
    ).model("demo_classifier")
    simulate.run_simulation(mongo_uri, mongo_db.name, START, 8, PER_DAY, 7)
    reference.build_from_mongo(mongo_uri, cfg, START, START + timedelta(days=1), cfg.reference_path)
    base = reference.baseline(cfg, tmp_path / "profiles")
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True)
    try:
        failed, verdicts = {}, {}
        for day in (1, 2, 7):
            w = Window(START + timedelta(days=day), START + timedelta(days=day + 1))
            batch = extract.read_window(client[mongo_db.name], cfg, w)
            assert len(batch.shadow) > 0.95 * PER_DAY and set(batch.frame["__model_version"]) <= {"v1", "v2"}
            r = evaluate(cfg, base.profile, batch, w, reference=base.frame)
            failed[day] = {ch.check for ch in r.checks if ch.status is Status.FAIL}
            verdicts[day] = {
                ch.feature: ch.status
                for ch in r.checks
                if ch.category is Category.VERSIONS and ch.check == "version_quality" and ch.segment == "all"
            }
    finally:
        client.close()
    assert failed == {1: set(), 2: set(), 7: {"version_quality"}}, failed
    assert verdicts[1] == verdicts[2] == {"v3-shadow": Status.PASS}
    assert verdicts[7]["v3-shadow"] is Status.FAIL
