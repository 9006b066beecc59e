"""The demo traffic simulator: deterministic, realistic, incidents on their days, canonical documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mlmon import demo_model as dm
from mlmon.simulate import Scenario, run_simulation, simulate, write
from mlmon.tasks.config import Kind, TaskType, load_config

START = datetime(2026, 1, 1, tzinfo=UTC)
PER_DAY = 1_000
CONFIG = Path(__file__).resolve().parents[1] / "deployments" / "models.yaml"
PREDICTION_KEYS = {"_id", "request_id", "model_name", "model_version", "timestamp", "features", "prediction",
                   "latency_ms", "status", "customer"}  # fmt: skip


@pytest.fixture(scope="module")
def week():
    """Day 0 (reference) + 7 monitored days with the default scenario: the served traffic (the shadow
    challenger's documents are tested apart, in test_shadow_challenger_*)."""
    predictions, labels = simulate(START, days=8, per_day=PER_DAY, seed=3)
    return [d for d in predictions if d.get("served") is not False], labels


def test_shadow_challenger_scores_every_successful_request_and_is_worse_on_day_7():
    predictions, labels = simulate(START, days=8, per_day=300, seed=3)
    served = [d for d in predictions if d.get("served") is not False]
    shadow = [d for d in predictions if d.get("served") is False]
    canonical = [d for d in served if _canonical(d)]
    without = simulate(START, days=8, per_day=300, seed=3, scenario=Scenario(shadow_version=None))
    assert served == without[0] and labels == without[1]  # the served traffic is unchanged by the shadow
    assert {d["model_version"] for d in shadow} == {"v3-shadow"} and {_day(d) for d in shadow} == set(
        range(1, 8)
    )
    ok = {d["request_id"]: d for d in canonical if d["status"] == "ok" and _day(d) >= 1}
    assert sorted(d["request_id"] for d in shadow) == sorted(ok)  # one shadow answer per scored request
    assert all(set(d) == PREDICTION_KEYS | {"served"} and d["timestamp"] == ok[d["request_id"]]["timestamp"]
               for d in shadow)  # fmt: skip
    truth = {lab["request_id"]: lab["label"] for lab in labels}

    def accuracy(docs, day):
        hits = [d["prediction"]["value"] == truth[d["request_id"]] for d in docs
                if _day(d) == day and d["request_id"] in truth and d["status"] == "ok"]  # fmt: skip
        return np.mean(hits)

    assert accuracy(shadow, 7) < accuracy(canonical, 7) - 0.06
    assert all(abs(accuracy(shadow, day) - accuracy(canonical, day)) < 0.04 for day in (1, 2, 3))


def _day(doc) -> int:
    return (doc["timestamp"] - START).days


def _canonical(doc) -> bool:
    """The document has the canonical shape (the malformed ones planted on the quality day do not)."""
    keys_ok = set(doc) - {"error"} == PREDICTION_KEYS
    return (
        keys_ok
        and isinstance(doc["timestamp"], datetime)
        and isinstance(doc["features"], dict)
        and set(doc["features"]) <= set(dm.FEATURES)
        and all(type(doc["features"].get(n, 0.0)) in (int, float) for n in dm.NUMERICAL)  # bool is no number
        and all(type(doc["features"][n]) is str and len(doc["features"][n]) < 20 for n in dm.CATEGORICAL)
        and doc["features"]["plan"] in dm.PLANS
        and type(doc["latency_ms"]) is float
    )


def _by_day(predictions):
    days: dict[int, list[dict]] = {}
    for doc in predictions:
        if _canonical(doc):
            days.setdefault(_day(doc), []).append(doc)
    return days


def _feature(docs, name):
    return np.array([d["features"][name] for d in docs if name in d["features"]], dtype=float)


def test_deterministic_for_a_seed():
    a = simulate(START, days=3, per_day=150, seed=11)
    assert a == simulate(START, days=3, per_day=150, seed=11)
    assert a != simulate(START, days=3, per_day=150, seed=12)
    # Day d depends only on (seed, d): a shorter run is a prefix of a longer one.
    shorter = simulate(START, days=2, per_day=150, seed=11)
    assert shorter[0] == a[0][: len(shorter[0])]


def test_models_are_realistic():
    rng = np.random.default_rng(2024)
    frame = dm.customers(rng, 5_000)
    truth = dm.sample_churn(rng, frame)
    assert 0.25 < np.mean(truth == dm.POSITIVE) < 0.45
    for version in ("v1", "v2"):
        predicted, p_churn = dm.predict(dm.train(version, seed=0), frame)
        accuracy = float(np.mean(predicted == truth))
        assert 0.74 <= accuracy <= 0.85, (version, accuracy)
        assert np.all((p_churn >= 0) & (p_churn <= 1))


def test_documents_follow_the_contract(week):
    predictions, labels = week
    canonical = [d for d in predictions if _canonical(d)]
    assert len(canonical) == 8 * PER_DAY
    assert len({d["_id"] for d in predictions}) == len(predictions)
    assert len({d["request_id"] for d in predictions}) == len(predictions)
    for doc in canonical:
        assert doc["model_name"] == dm.MODEL_NAME and doc["model_version"] in {"v1", "v2"}
        assert doc["timestamp"].tzinfo is not None and doc["timestamp"].microsecond % 1000 == 0  # BSON: ms
        if doc["status"] == "ok":
            probs = doc["prediction"]["probabilities"]
            assert set(probs) == set(dm.CLASSES) and abs(sum(probs.values()) - 1) < 1e-3
            assert doc["prediction"]["value"] == max(probs, key=probs.get) or probs["churn"] == 0.5
        else:
            assert doc["status"] == "error" and doc["error"] and doc["prediction"] == {"value": None}
    assert all(set(lab) == {"_id", "request_id", "label", "timestamp"} for lab in labels)
    assert all(lab["label"] in dm.CLASSES for lab in labels)


def test_traffic_follows_a_daily_cycle(week):
    hours = np.array([d["timestamp"].hour for d in week[0] if _canonical(d)])
    afternoon, night = np.sum((hours >= 12) & (hours < 18)), np.sum(hours < 6)
    assert afternoon > 3 * night > 0


def test_labels_arrive_after_their_predictions(week):
    predictions, labels = week
    by_id = {d["request_id"]: d for d in predictions}
    delays = []
    for lab in labels:
        pred = by_id[lab["request_id"]]
        assert pred["status"] == "ok"
        delays.append((lab["timestamp"] - pred["timestamp"]) / timedelta(hours=1))
    assert min(delays) >= 1 and max(delays) <= 7 * 24
    assert 2 < np.median(delays) < 72  # hours to days
    assert 0.55 < len(labels) / len(predictions) < 0.65
    assert [lab["timestamp"] for lab in labels] == sorted(lab["timestamp"] for lab in labels)


def test_drift_episode_on_days_3_and_4(week):
    days = _by_day(week[0])
    for name in ("income", "sessions_last_7d"):
        clean = _feature(days[1], name)
        assert _feature(days[4], name).mean() > clean.mean() + 0.5 * clean.std(), name
        assert _feature(days[3], name).mean() > clean.mean() + 0.2 * clean.std(), name
        assert abs(_feature(days[7], name).mean() - clean.mean()) < 0.15 * clean.std(), name
    day_of = {d["request_id"]: _day(d) for d in week[0] if _canonical(d)}
    churn = {
        day: np.mean([lab["label"] == dm.POSITIVE for lab in week[1] if day_of[lab["request_id"]] == day])
        for day in (1, 4)
    }
    assert churn[4] < churn[1] - 0.05  # the drift really changes who churns


def test_quality_incident_on_day_5(week):
    predictions, _ = week
    days = _by_day(predictions)
    for day, docs in days.items():
        missing = np.mean(["tenure_months" not in d["features"] for d in docs])
        new_country = np.mean([d["features"]["country"] == "XX" for d in docs])
        in_seconds = np.mean(_feature(docs, "avg_session_minutes") > 120)  # > 2 h: seconds, not minutes
        if day == 5:
            assert 0.25 < missing < 0.35 and 0.06 < new_country < 0.14 and 0.3 < in_seconds < 0.5
        else:
            assert missing == 0 and new_country == 0 and in_seconds < 0.005, day
    malformed = [d for d in predictions if not _canonical(d)]
    assert 5 <= len(malformed) < 0.005 * PER_DAY * 2  # a handful
    assert {(d["timestamp"] - START).days for d in malformed if isinstance(d["timestamp"], datetime)} == {5}
    assert any(isinstance(d["timestamp"], str) for d in malformed)
    assert any("<script>" in str(d["features"]) for d in malformed)


def test_service_incident_on_day_6_and_v2_canary(week):
    slo = load_config(CONFIG).model(dm.MODEL_NAME).service
    for day, docs in _by_day(week[0]).items():
        p95 = np.percentile([d["latency_ms"] for d in docs], 95)
        errors = np.mean([d["status"] != "ok" for d in docs])
        v2 = np.mean([d["model_version"] == "v2" for d in docs])
        if day == 6:
            assert p95 > slo.latency_p95_ms and 700 < p95 < 1100 and 0.05 < errors < 0.11
        else:
            assert 90 < p95 < 150 and errors < slo.max_error_rate, day
        assert (0.22 < v2 < 0.38) if day >= 6 else v2 == 0, day


def test_clean_scenario_has_no_incidents():
    predictions, _ = simulate(START, days=8, per_day=300, seed=5, scenario=Scenario.clean())
    assert all(_canonical(d) for d in predictions)
    assert {d["model_version"] for d in predictions} == {"v1"}
    assert max(d["latency_ms"] for d in predictions if _day(d) == 6) < 1_000


def test_demo_config_matches_the_simulator():
    model = load_config(CONFIG).model(dm.MODEL_NAME)
    assert model.source.filter == {"model_name": {"$eq": dm.MODEL_NAME}}
    assert list(model.features) == list(dm.FEATURES)
    assert model.numerical == list(dm.NUMERICAL) and model.categorical == list(dm.CATEGORICAL)
    assert all(spec.type in (Kind.NUMERICAL, Kind.CATEGORICAL) for spec in model.features.values())
    assert model.task is TaskType.BINARY and model.classes == list(dm.CLASSES)
    assert model.positive_class == dm.POSITIVE
    assert set(model.features["plan"].allowed or []) == set(dm.PLANS)
    lo, hi = model.quality.expected_volume.min, model.quality.expected_volume.max
    assert lo is not None and hi is not None and lo < 2_500 < hi  # the demo's default daily volume


@pytest.mark.integration
def test_write_is_idempotent_and_readable(mongo_db):
    predictions, labels = simulate(START, days=2, per_day=200, seed=9)
    seen = []
    counts = write(
        mongo_db, predictions, labels, batch_size=150, progress=lambda done, total: seen.append(done)
    )
    n = len(predictions)  # 400 served and day 1's shadow predictions
    assert counts == {"predictions": n, "labels": len(labels), "existing": 0}
    assert seen[-1] == n + len(labels) and seen == sorted(seen)
    again = write(mongo_db, predictions, labels)
    assert again == {"predictions": 0, "labels": 0, "existing": n + len(labels)}
    day1 = {"$gte": START + timedelta(days=1), "$lt": START + timedelta(days=2)}
    found = list(mongo_db.predictions.find({"model_name": {"$eq": dm.MODEL_NAME}, "timestamp": day1}))
    assert len([d for d in found if d.get("served") is not False]) == 200
    by_id = {d["_id"]: d for d in predictions}
    assert all(doc == by_id[doc["_id"]] for doc in found)  # round trip is exact (ms timestamps, UTC)


@pytest.mark.integration
def test_run_simulation_seeds_a_database(mongo_uri, mongo_db):
    summary = run_simulation(mongo_uri, mongo_db.name, start=START, days=2, per_day=100, seed=1)
    assert summary["labels"] > 0 and summary["existing"] == 0
    assert [row["day"] for row in summary["daily"]] == [0, 1]
    assert [row["predictions"] for row in summary["daily"]] == [100, 100]  # served; day 1 also has shadows
    assert mongo_db.predictions.count_documents({}) == summary["predictions"] > 200
    keys = {tuple(ix["key"]) for ix in mongo_db.predictions.list_indexes()}
    assert {("timestamp",), ("model_name", "timestamp"), ("request_id",)} <= keys


def test_correlation_change_on_day_9_keeps_marginals_and_other_days():
    """Day 9 re-pairs age and income (independent elsewhere) along a 0.8 copula: each keeps exactly its
    values; the other days are byte-identical to a scenario without the episode."""
    from scipy import stats

    on = simulate(START, days=10, per_day=600, seed=4)[0]
    off = simulate(START, days=10, per_day=600, seed=4, scenario=Scenario(correlation_day=None))[0]
    day9 = [isinstance(d["timestamp"], datetime) and _day(d) == 9 for d in on]
    assert [d for d, x in zip(on, day9, strict=True) if not x] == [
        d for d in off if not (isinstance(d["timestamp"], datetime) and _day(d) == 9)
    ]

    def pair(docs, day):
        rows = [  # served predictions (the shadow challenger scores the same requests again)
            d["features"]
            for d in docs
            if isinstance(d["timestamp"], datetime) and _day(d) == day and d.get("served", True)
        ]
        return np.array([r["age"] for r in rows]), np.array([r["income"] for r in rows])

    (age, income), (age0, income0) = pair(on, 9), pair(off, 9)
    assert sorted(age) == sorted(age0) and sorted(income) == sorted(income0)
    assert stats.spearmanr(age, income).statistic > 0.7 > 0.1 > abs(stats.spearmanr(age0, income0).statistic)
    assert Scenario.clean().correlation_day is None


def test_day_10_carries_a_two_percent_outlier_burst_and_nothing_else_changes():
    with_burst = simulate(START, days=11, per_day=500, seed=5)
    without = simulate(START, days=11, per_day=500, seed=5, scenario=Scenario(outlier_day=None))
    days, clean = _by_day(with_burst[0]), _by_day(without[0])
    assert all(days[d] == clean[d] for d in range(10))  # other days byte-identical
    ref = days[0]
    far = 0
    for a, b in zip(days[10], clean[10], strict=True):
        changed = [n for n in dm.NUMERICAL if a["features"].get(n) != b["features"].get(n)]
        if changed:
            (name,) = changed  # one far-out value per burst row
            assert a["features"][name] > _feature(ref, name).max()
            far += 1
    assert far == round(0.02 * len(days[10]))
    assert Scenario.clean().outlier_day is None
