"""Health checks: latency percentiles against numpy, SLOs, error rate, throughput and the boundary cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.health import health_checks
from mlmon.tasks.checks.outcome import ALL, Category, Status
from mlmon.tasks.config import ModelConfig
from tests.checks.results import by_name, metrics_of


def make_cfg(**kw: Any) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "m",
            "features": {"x": {"type": "numerical"}},
            "reference": {"path": "r.parquet"},
            "base_dir": ".",
            **kw,
        }
    )


def frame(latency: Any = None, is_error: Any = None) -> pd.DataFrame:
    data: dict[str, Any] = {}
    if latency is not None:
        data[c.LATENCY] = np.asarray(latency, dtype=np.float64)
    if is_error is not None:
        data[c.IS_ERROR] = is_error
    return pd.DataFrame(data)


def test_percentiles_match_numpy_linear_interpolation():
    rng = np.random.default_rng(0)
    lat = rng.gamma(2.0, 15.0, 20_001)
    lat[rng.random(lat.size) < 0.2] = np.nan
    _, metrics = health_checks(frame(lat, np.zeros(lat.size, dtype=bool)), make_cfg(), 3600)
    m = metrics_of(metrics)
    expected = np.percentile(lat[~np.isnan(lat)], [50, 95, 99], method="linear")
    assert [m["latency_p50_ms"], m["latency_p95_ms"], m["latency_p99_ms"]] == list(expected)


def test_percentiles_tiny_hand_made():
    # sorted [10, 20, 30, 40]: p50 = 25, p95 = 30 + 0.85 * 10, p99 = 30 + 0.97 * 10
    _, metrics = health_checks(frame([40, np.nan, 10, 30, 20], [False] * 5), make_cfg(), 60)
    m = metrics_of(metrics)
    assert m["latency_p50_ms"] == 25.0
    assert m["latency_p95_ms"] == pytest.approx(38.5, abs=1e-12)
    assert m["latency_p99_ms"] == pytest.approx(39.7, abs=1e-12)


def test_slo_checks_only_where_configured():
    lat = np.arange(1.0, 101.0)  # p50 = 50.5, p95 = 95.05, p99 = 99.01
    cfg = make_cfg(service={"latency_p50_ms": 60, "latency_p99_ms": 99})
    checks = by_name(health_checks(frame(lat, [False] * 100), cfg, 3600)[0])
    assert "latency_p95" not in checks
    p50, p99 = checks["latency_p50"], checks["latency_p99"]
    assert (p50.status, p50.value, p50.threshold) == (Status.PASS, 50.5, 60)
    assert p99.status is Status.FAIL and p99.value == pytest.approx(99.01)
    assert p99.message == "p99 latency 99.0 ms > 99 ms SLO (100 requests)"
    assert p50.category is Category.HEALTH


def test_slo_equal_to_value_passes():
    cfg = make_cfg(service={"latency_p50_ms": 5})
    checks = by_name(health_checks(frame([4.0, 5.0, 6.0], [False] * 3), cfg, 60)[0])
    assert checks["latency_p50"].status is Status.PASS


@pytest.mark.parametrize("how", ["no_column", "all_nan"])
def test_latency_not_logged_warns(how):
    df = frame(None if how == "no_column" else [np.nan] * 4, [False] * 4)
    checks, metrics = health_checks(df, make_cfg(), 60)
    w = by_name(checks)["latency_logged"]
    assert w.status is Status.WARN and w.message.startswith("latency not logged")
    assert not [m for m in metrics if m.metric.startswith("latency")]
    # with SLOs configured the SLO checks themselves warn (stable names for dashboards)
    checks = by_name(health_checks(df, make_cfg(service={"latency_p95_ms": 100}), 60)[0])
    assert "latency_logged" not in checks
    assert checks["latency_p95"].status is Status.WARN
    assert checks["latency_p95"].value is None and checks["latency_p95"].threshold == 100


def test_latency_deliberately_not_logged_is_quiet():
    cfg = make_cfg(fields={"latency_ms": None})
    checks, _ = health_checks(frame(None, [False] * 3), cfg, 60)
    assert not [x for x in checks if x.check.startswith("latency")]


def test_error_rate():
    flags = np.r_[np.ones(30, dtype=bool), np.zeros(270, dtype=bool)]
    checks, metrics = health_checks(frame([1.0] * 300, flags), make_cfg(), 60)
    e = by_name(checks)["error_rate"]
    assert (e.status, e.value, e.threshold) == (Status.FAIL, 0.1, 0.05)
    assert e.message == "10.0% of 300 requests failed (30) > 5.0% allowed"
    assert metrics_of(metrics)["error_rate"] == 0.1
    checks, _ = health_checks(frame([1.0] * 300, flags), make_cfg(service={"max_error_rate": 0.1}), 60)
    assert by_name(checks)["error_rate"].status is Status.PASS


def test_error_rate_above_the_limit_by_chance_is_not_flagged():
    # 6 errors in 100 requests at a 5 % limit: P(X >= 6 | p = 0.05) = 0.38, noise not an incident
    flags = np.r_[np.ones(6, dtype=bool), np.zeros(94, dtype=bool)]
    e = by_name(health_checks(frame([1.0] * 100, flags), make_cfg(), 60)[0])["error_rate"]
    assert e.status is Status.PASS and e.value == 0.06
    assert "not significant at 100 requests (p=0.38)" in e.message


def test_error_flags_as_object_with_none():
    flags = pd.Series([True, None, False, True], dtype=object)
    checks, _ = health_checks(frame([1.0] * 4, flags), make_cfg(), 60)
    assert by_name(checks)["error_rate"].value == 0.5


def test_status_not_logged_warns_unless_configured_so():
    checks, _ = health_checks(frame([1.0, 2.0]), make_cfg(), 60)
    assert by_name(checks)["error_rate"].status is Status.WARN
    # the mapped status is absent from every document: extraction flags no error, but we cannot know
    df = frame([1.0, 2.0], [False, False]).assign(**{c.STATUS: pd.Series([None, None], dtype=object)})
    e = by_name(health_checks(df, make_cfg(), 60)[0])["error_rate"]
    assert e.status is Status.WARN and e.message.endswith("(no row has a status)")
    # `fields.status: null` is a deliberate choice: no check, even though extraction fills __is_error
    checks, metrics = health_checks(frame([1.0, 2.0], [False, False]), make_cfg(fields={"status": None}), 60)
    assert "error_rate" not in by_name(checks) and "error_rate" not in metrics_of(metrics)


def test_throughput_and_row_count():
    _, metrics = health_checks(frame([1.0] * 120, [False] * 120), make_cfg(), 3600)
    m = metrics_of(metrics)
    assert m["requests_per_minute"] == 2.0 and m["row_count"] == 120.0


def test_empty_window_publishes_zero_throughput_and_no_checks():
    checks, metrics = health_checks(
        frame([], np.zeros(0, dtype=bool)), make_cfg(service={"latency_p95_ms": 5}), 900
    )
    assert checks == []
    assert metrics_of(metrics) == {"row_count": 0.0, "requests_per_minute": 0.0}
    assert health_checks(pd.DataFrame(), make_cfg(), 900)[0] == []


def test_invalid_window_length_raises():
    with pytest.raises(ValueError, match="window_seconds"):
        health_checks(frame([1.0], [False]), make_cfg(), 0)


def test_segment_passed_through():
    checks, metrics = health_checks(
        frame([1.0, 2.0], [False, True]), make_cfg(), 60, segment="model_version=v1"
    )
    assert {x.segment for x in checks} == {"model_version=v1"}
    assert {m.segment for m in metrics} == {"model_version=v1"}
    checks, _ = health_checks(frame([1.0], [False]), make_cfg(), 60)
    assert {x.segment for x in checks} == {ALL}


# ------------------------------------------------------------------------------------ learned volume

from datetime import UTC, datetime, timedelta  # noqa: E402

from mlmon.tasks.checks.health import PastVolume, volume_history  # noqa: E402
from mlmon.tasks.window import Window  # noqa: E402

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def daily_history(
    days: int, seed: int, weekday_rows: float = 2500, weekend_rows: float = 900
) -> list[PastVolume]:
    """Daily traffic with a weekly pattern (quiet weekends), day-to-day variation and Poisson noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(days):
        start = MONDAY + timedelta(days=i)
        mean = weekend_rows if start.weekday() >= 5 else weekday_rows
        out.append(
            PastVolume(
                Window(start, start + timedelta(days=1)), int(rng.poisson(mean * rng.lognormal(0, 0.1)))
            )
        )
    return out


def day(i: int) -> Window:
    return Window(MONDAY + timedelta(days=i), MONDAY + timedelta(days=i + 1))


def test_a_day_with_9_percent_of_usual_traffic_fails_and_says_which_history() -> None:
    past = daily_history(56, seed=3)
    r = volume_history(225, day(56), past)  # a Monday: 9 % of 2,500
    assert r.status is Status.FAIL and r.category is Category.HEALTH
    assert "same weekday (Mondays)" in r.message and "last 8" in r.message and "mlmon.runs" in r.message
    assert "9% of usual" in r.message
    assert volume_history(2400, day(56), past).status is Status.PASS
    # a quiet Sunday is normal for a Sunday: compared with Sundays, not with weekdays
    sunday = volume_history(880, day(62), past)
    assert sunday.status is Status.PASS and "Sundays" in sunday.message
    assert volume_history(80, day(62), past).status is Status.FAIL


def test_too_little_history_is_insufficient_not_an_alarm() -> None:
    r = volume_history(10, day(3), daily_history(3, seed=1))
    assert r.status is Status.PASS and "insufficient history" in r.message
    # windows of another length or in the future are not history
    other = [
        PastVolume(Window(w.window.start, w.window.start + timedelta(hours=1)), 100)
        for w in daily_history(30, 1)
    ]
    assert "insufficient history" in volume_history(10, day(3), other + daily_history(40, 1)[5:]).message


def test_hourly_windows_compare_with_the_same_hour_of_the_week_when_there_are_four_weeks() -> None:
    rng = np.random.default_rng(5)
    past = []
    for h in range(24 * 7 * 5):
        start = MONDAY + timedelta(hours=h)
        busy = 400 if 9 <= start.hour < 18 and start.weekday() < 5 else 40
        past.append(PastVolume(Window(start, start + timedelta(hours=1)), int(rng.poisson(busy))))
    now = Window(MONDAY + timedelta(weeks=5, hours=10), MONDAY + timedelta(weeks=5, hours=11))
    r = volume_history(36, now, past)  # 9 % of a busy Monday 10:00
    assert r.status is Status.FAIL and "same hour of the week (Mon 10:00 UTC)" in r.message
    night = Window(MONDAY + timedelta(weeks=5, hours=3), MONDAY + timedelta(weeks=5, hours=4))
    assert volume_history(38, night, past).status is Status.PASS  # 3 a.m. is quiet every night


def test_false_alarms_on_ordinary_traffic_are_rare() -> None:
    """500 seeded histories of ordinary traffic (±10 % day to day, Poisson): a normal day fails < 1 %."""
    fails = 0
    for seed in range(500):
        past = daily_history(57, seed=seed)
        fails += volume_history(past[-1].rows, day(56), past[:-1]).status is Status.FAIL
    assert fails / 500 < 0.01, fails


@pytest.mark.integration
def test_the_store_reads_the_history_and_evaluate_adds_the_check(pg_schema_uri: str) -> None:
    from dataclasses import replace

    from mlmon.tasks.store import store
    from tests.store.factories import result

    store.migrate(pg_schema_uri)
    for i in range(6):
        store.write_window(
            pg_schema_uri,
            replace(result("churn", day(i)), n_rows=1000 + i),
            report_path=None,
            flow_run_id=None,
        )
    store.mark_failed(pg_schema_uri, "churn", day(6), "boom", None)  # not processed: not history
    store.write_window(
        pg_schema_uri,
        replace(result("churn", Window(day(7).start, day(7).start + timedelta(hours=1))), n_rows=5),
        report_path=None,
        flow_run_id=None,
    )
    got = store.volume_history(pg_schema_uri, "churn", day(8))
    assert [(h.window, h.rows) for h in got] == [(day(i), 1000 + i) for i in reversed(range(6))]
    assert volume_history(90, day(8), got).status is Status.FAIL
