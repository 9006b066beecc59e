"""Rolling references: a weekly season fails against the fixed reference and passes against last week."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mlmon.tasks import extract, reference, rolling
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.config import model_from_dict
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.window import Window

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
PER_DAY = 1_200


def docs(day: int) -> list[dict]:
    """One day of a shop's logs: baskets are ~3σ bigger on Saturdays and Sundays (a weekly season)."""
    rng = np.random.default_rng([11, day])
    start = MONDAY + timedelta(days=day)
    weekend = start.weekday() >= 5
    basket = rng.normal(50 + (30 if weekend else 0), 10, PER_DAY)
    channel = rng.choice(["web", "app", "store"], PER_DAY, p=[0.5, 0.3, 0.2])
    return [
        {
            "request_id": f"d{day}-{i}",
            "timestamp": start + timedelta(seconds=int(i * 86_400 / PER_DAY)),
            "model_version": "v1",
            "features": {"basket": float(basket[i]), "channel": str(channel[i])},
            "latency_ms": 10.0,
            "status": "ok",
        }
        for i in range(PER_DAY)
    ]


def config(database: str, path: str, **ref: object):
    return model_from_dict(
        {
            "source": {"database": database, "labels": None},
            "fields": {"prediction": None, "probabilities": None},
            "features": {"basket": {"type": "numerical"}, "channel": {"type": "categorical"}},
            "reference": {"path": path, **ref},
            "outliers": {"enabled": True},
        },
        name="shop",
    )


def day(i: int) -> Window:
    return Window(MONDAY + timedelta(days=i), MONDAY + timedelta(days=i + 1))


@pytest.mark.integration
def test_a_weekly_season_fails_against_the_fixed_reference_and_passes_against_last_week(
    mongo_db, mongo_uri: str, pg_uri: str, tmp_path
) -> None:
    from mlmon.tasks.store import store

    for i in range(13):
        mongo_db["predictions"].insert_many(docs(i))
    path = str(tmp_path / "monday.parquet")
    fixed_cfg = config(mongo_db.name, path)
    reference.build_from_mongo(mongo_uri, fixed_cfg, day(0).start, day(0).end, fixed_cfg.reference_path)
    rolling_cfg = config(
        mongo_db.name, path, strategy="fixed", families={"drift": "rolling", "outliers": "rolling"},
        rolling={"period": "7d"},
    )  # fmt: skip
    profiles = tmp_path / "profiles"

    def run(cfg, i: int):
        base = reference.baseline(cfg, profiles)
        batch = extract.read_window(mongo_db, cfg, day(i))
        refs = rolling.references(cfg, base, day(i), rolling.read_rolling(mongo_db, cfg, day(i)), profiles)
        result = rolling.evaluate_with(cfg, refs, batch, day(i), reference=base.frame)
        by = {ch.check: ch for ch in result.checks if ch.segment == "all" and not ch.feature}
        return result, by

    saturday = 12  # 2026-03-14; a week earlier, day 5, is a Saturday too
    fixed, by = run(fixed_cfg, saturday)
    assert by["dataset_drift"].status is Status.FAIL and by["outlier_share"].status is Status.FAIL
    assert fixed.reference_hash == reference.content_hash(path)

    rolled, by = run(rolling_cfg, saturday)
    assert by["dataset_drift"].status is Status.PASS and by["outlier_share"].status is Status.PASS
    assert "reference" not in by
    assert rolled.reference_hash.startswith(fixed.reference_hash + " rolling:")
    assert rolled.reference_hash.endswith("(drift, outliers)")
    assert any(n.startswith("rolling reference") and "1,200 rows" in n for n in rolled.notes)
    # quality still checks against the file: the same verdicts either way
    assert [(c.check, c.status) for c in rolled.checks if c.category is Category.QUALITY] == [
        (c.check, c.status) for c in fixed.checks if c.category is Category.QUALITY
    ]

    # the first Saturday has no week before it: insufficient data, the fixed reference, said so
    first, by = run(rolling_cfg, 5)
    assert by["reference"].status is Status.WARN and by["reference"].category is Category.DRIFT
    assert by["reference"].message.startswith("insufficient data for the rolling reference")
    assert by["dataset_drift"].status is Status.FAIL  # against Monday's file
    assert first.reference_hash == fixed.reference_hash

    # the run records the reference used
    store.migrate(pg_uri)
    store.write_window(pg_uri, rolled, report_path="shop/x.html", flow_run_id=None)
    import psycopg2

    with psycopg2.connect(pg_uri) as conn, conn.cursor() as cur:
        cur.execute(
            "select reference_hash from mlmon.runs where model = 'shop' and window_start = %s",
            (day(12).start,),
        )
        assert cur.fetchone()[0] == rolled.reference_hash


@pytest.mark.integration
def test_the_last_windows_and_the_cache(mongo_db, mongo_uri: str, tmp_path) -> None:
    """``windows: 1`` on a Sunday is the Saturday before it: no drift. The rolling profile is fitted
    once and reused by a second run of the same window."""
    for i in range(7):
        mongo_db["predictions"].insert_many(docs(i))
    path = str(tmp_path / "monday.parquet")
    cfg = config(mongo_db.name, path, strategy="rolling", rolling={"windows": 1})
    reference.build_from_mongo(mongo_uri, cfg, day(0).start, day(0).end, cfg.reference_path)
    base = reference.baseline(cfg, tmp_path / "p")
    sunday = 6
    span = rolling.rolling_span(cfg, day(sunday))
    assert (span.start, span.end) == (day(5).start, day(5).end)
    refs = rolling.references(
        cfg, base, day(sunday), rolling.read_rolling(mongo_db, cfg, day(sunday)), tmp_path / "p"
    )
    result = rolling.evaluate_with(cfg, refs, extract.read_window(mongo_db, cfg, day(sunday)), day(sunday))
    by = {ch.check: ch for ch in result.checks if ch.segment == "all" and not ch.feature}
    assert by["dataset_drift"].status is Status.PASS  # Sunday against Saturday
    cached = list((tmp_path / "p").glob("shop-*.pkl"))
    assert len(cached) == 2  # the fixed profile and the rolling one
    mtime = max(p.stat().st_mtime_ns for p in cached)
    again = rolling.references(
        cfg, base, day(sunday), rolling.read_rolling(mongo_db, cfg, day(sunday)), tmp_path / "p"
    )
    assert again.reference_hash == refs.reference_hash
    assert max(p.stat().st_mtime_ns for p in (tmp_path / "p").glob("shop-*.pkl")) == mtime  # not refitted


def test_config_choices_are_validated() -> None:
    cfg = config("db", "r.parquet")
    assert cfg.reference.strategy == "fixed" and cfg.reference.rolling.windows == 7
    assert rolling.rolling_families(cfg) == set()
    with pytest.raises(ConfigError, match="cannot choose a reference"):
        config("db", "r.parquet", families={"quality": "rolling"})
    with pytest.raises(ConfigError, match="not both"):
        config("db", "r.parquet", rolling={"windows": 3, "period": "7d"})
    with pytest.raises(ConfigError):
        config("db", "r.parquet", strategy="sliding")


def test_doctests() -> None:
    assert doctest.testmod(rolling).failed == 0
