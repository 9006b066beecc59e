"""Outliers: a forest fitted once on the reference, a one-sided excess test per window, the rows named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.checks.outliers import fit_outliers, outlier_checks
from mlmon.tasks.config import model_from_dict


def cfg(**outliers: object):
    return model_from_dict(
        {
            "features": {
                "a": {"type": "numerical"},
                "b": {"type": "numerical"},
                "city": {"type": "categorical"},
            },
            "outliers": {"enabled": True, **outliers},
        }
    )


def draw(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a = rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "a": a,
            "b": 0.5 * a + rng.normal(0, 1, n),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            c.REQUEST_ID: [f"r{i}" for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def fitted():
    m = cfg()
    return m, fit_outliers(draw(20_000, np.random.default_rng(0)), m)


def test_a_two_percent_burst_fails_and_names_its_rows_and_features(fitted) -> None:
    m, model = fitted
    w = draw(5_000, np.random.default_rng(1))
    burst = np.random.default_rng(2).choice(len(w), 100, replace=False)  # 2%
    w.loc[burst, "a"] = np.random.default_rng(3).uniform(6, 10, 100)  # scattered, not one new cluster
    w.loc[burst, c.REQUEST_ID] = [f"bad{i}" for i in range(100)]
    (check,), metrics = outlier_checks(w, model, m.outliers)
    assert check.category is Category.OUTLIERS and check.status is Status.FAIL
    assert check.value >= 0.025  # the reference's own 1% plus most of the burst
    top = [x for x in metrics if x.metric == "outlier_top_score"]
    assert len(top) == m.outliers.top_k and all(x.feature.startswith("bad") for x in top)
    assert "a (z=" in check.message


def test_a_null_window_passes_and_a_small_one_is_insufficient_data(fitted) -> None:
    m, model = fitted
    (check,), _ = outlier_checks(draw(5_000, np.random.default_rng(3)), model, m.outliers)
    assert check.status is Status.PASS
    (small,), _ = outlier_checks(draw(100, np.random.default_rng(4)), model, m.outliers)
    assert small.status is Status.WARN and small.message.startswith("insufficient data")


def test_a_huge_window_is_not_an_alarm_for_a_tiny_excess(fitted) -> None:
    """0.4 percentage points more outliers in 200k rows (scored on 50k) is significant but below
    min_excess."""
    m, model = fitted
    oc = m.outliers.model_copy(update={"max_score_rows": 50_000})
    w = draw(200_000, np.random.default_rng(5))
    extra = np.random.default_rng(6).choice(len(w), 800, replace=False)
    w.loc[extra, "a"] = np.random.default_rng(7).uniform(6, 10, 800)
    (check,), metrics = outlier_checks(w, model, oc)
    p = next(x.value for x in metrics if x.metric == "outlier_p_value")
    assert p < oc.alpha and check.status is Status.PASS


def test_a_sampled_window_is_tested_on_the_sample_but_its_top_outliers_come_from_every_row(fitted) -> None:
    """Above max_score_rows the count and its test use a seeded sample (said in the message and the
    ``outlier_rows`` metric); the robust bounds screen every row, so the most extreme row of the window
    is listed first even when the sample missed it, and the bounds shares count every row."""
    m, model = fitted
    oc = m.outliers.model_copy(update={"max_score_rows": 1_000})
    w = draw(30_000, np.random.default_rng(8))
    sample = set(np.random.default_rng(oc.seed).choice(len(w), oc.max_score_rows, replace=False))
    far = next(i for i in range(len(w)) if i not in sample)
    w.loc[far, ["a", c.REQUEST_ID]] = [60.0, "far"]
    (check,), metrics = outlier_checks(w, model, oc)
    by = {x.metric: x.value for x in metrics if not x.feature}
    assert by["outlier_rows"] == 1_000 and "seeded sample of 1,000 of 30,000 rows" in check.message
    top = [x.feature for x in metrics if x.metric == "outlier_top_score"]
    assert top[0] == "far" and "far (a (z=" in check.message
    bounds = {x.feature: x.value for x in metrics if x.metric == "outlier_bounds_share"}
    whole = outlier_checks(w, model, oc.model_copy(update={"max_score_rows": len(w)}))[1]
    assert bounds == {x.feature: x.value for x in whole if x.metric == "outlier_bounds_share"}


def test_off_by_default_and_unknown_keys_refused() -> None:
    from pydantic import ValidationError

    from mlmon.tasks.errors import ConfigError

    m = model_from_dict({"features": {"a": {"type": "numerical"}}})
    assert m.outliers.enabled is False and outlier_checks(
        draw(300, np.random.default_rng(0)), None, m.outliers
    ) == ([], [])
    with pytest.raises((ConfigError, ValidationError)):
        cfg(contamnation=0.02)


def test_compare_fits_once_and_reports_the_family() -> None:
    import mlmon

    rng = np.random.default_rng(7)
    ref, cur = draw(4_000, rng), draw(2_000, rng)
    cur.loc[:59, "a"] = rng.uniform(6, 10, 60)  # 3%
    body = {
        "features": {"a": {"type": "numerical"}, "b": {"type": "numerical"}, "city": {"type": "categorical"}},
        "outliers": {"enabled": True},
    }
    r = mlmon.compare(ref.drop(columns=[c.REQUEST_ID]), cur.drop(columns=[c.REQUEST_ID]), body)
    rows = r.checks[r.checks["category"] == "outliers"]
    assert set(rows["status"]) == {"fail"}


@pytest.mark.integration
def test_the_demo_outlier_day_fails_and_the_clean_days_pass(mongo_uri: str, tmp_path) -> None:
    """The demo (models.yaml, the simulator through Mongo and the real extraction): outlier_share fails
    on day 10 (2% burst), passes on the clean days 1, 2, and the report lists the burst's rows."""
    from datetime import UTC, datetime, timedelta

    import pymongo
    import yaml

    from mlmon import simulate
    from mlmon.reports.render import _report_context
    from mlmon.tasks import extract, reference
    from mlmon.tasks.config import load_config
    from mlmon.tasks.evaluate import evaluate
    from mlmon.tasks.window import Window

    start, per_day, db = datetime(2026, 3, 1, tzinfo=UTC), 2_500, "outlier_demo"  # the demo's volume
    raw = yaml.safe_load((Path(__file__).parents[2] / "deployments" / "models.yaml").read_text())
    model = raw["models"]["demo_classifier"]
    model["source"]["database"] = db
    model["reference"]["path"] = str(tmp_path / "reference.parquet")
    model["evidently"] = {"enabled": False}
    model["segments"] = []
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(tmp_path / "models.yaml").model("demo_classifier")
    assert cfg.outliers.enabled
    simulate.run_simulation(mongo_uri, db, start, 11, per_day, 7)
    reference.build_from_mongo(mongo_uri, cfg, start, start + timedelta(days=1), cfg.reference_path)
    base = reference.baseline(cfg, tmp_path / "profiles")
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True)
    status, results = {}, {}
    try:
        for day in (1, 2, 6, 10):
            w = Window(start + timedelta(days=day), start + timedelta(days=day + 1))
            r = evaluate(cfg, base.profile, extract.read_window(client[db], cfg, w), w, reference=base.frame)
            (check,) = [ch for ch in r.checks if ch.check == "outlier_share" and ch.segment == "all"]
            status[day], results[day] = check.status, r
    finally:
        client.drop_database(db)
        client.close()
    assert status == {1: Status.PASS, 2: Status.PASS, 6: Status.PASS, 10: Status.FAIL}
    top = _report_context(results[10], cfg, None, {})["outlier_top"]
    assert len(top) == cfg.outliers.top_k and all(t.features for t in top)
    far = {"income", "avg_session_minutes", "support_tickets", "sessions_last_7d"}
    assert all(t.features[0].split(" ")[0] in far for t in top)


def test_doctests() -> None:
    import doctest

    from mlmon.tasks.checks import outliers

    assert doctest.testmod(outliers).failed == 0


def test_the_excess_test_counts_the_reference_as_a_sample() -> None:
    """A small reference's share is an estimate: the same excess is less significant against 750
    held-out rows than against 75,000 (where it tends to the binomial test against a known share)."""
    from scipy import stats

    from mlmon.tasks.checks.outliers import excess_p_value

    small, big = excess_p_value(52, 1500, 0.0187, 750), excess_p_value(52, 1500, 0.0187, 75_000)
    assert small > 0.01 > big
    assert big == pytest.approx(stats.binomtest(52, 1500, 0.0187, alternative="greater").pvalue, rel=0.3)
    assert excess_p_value(0, 0, 0.02, 100) == 1.0


def test_a_segment_is_compared_with_the_same_segment_of_the_reference() -> None:
    """Rows of a rare city are spread wider: their own outlier share is higher than the whole's. A null
    window of that segment passes against the segment's held-out share (it failed against the whole's)."""
    m = model_from_dict(
        {
            "features": {"a": {"type": "numerical"}, "city": {"type": "categorical"}},
            "segments": ["city"],
            "outliers": {"enabled": True},
        }
    )

    def frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
        city = rng.choice(["paris", "nice"], n, p=[0.9, 0.1])
        return pd.DataFrame({"a": rng.normal(0, np.where(city == "nice", 4.0, 1.0)), "city": city})

    model = fit_outliers(frame(40_000, np.random.default_rng(0)), m)
    share, n = model.baseline("city=nice")
    assert share > 2 * model.reference_share and n > 1_000
    window = frame(30_000, np.random.default_rng(1))
    nice = window[window["city"] == "nice"]
    (check,), _ = outlier_checks(nice, model, m.outliers, segment="city=nice")
    assert check.status is Status.PASS, check.message
    (against_whole,), _ = outlier_checks(nice, model, m.outliers)
    assert against_whole.status is Status.FAIL
    assert model.baseline("city=lyon") == (model.reference_share, model.n_holdout)  # unseen: the whole's
