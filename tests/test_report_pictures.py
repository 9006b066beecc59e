"""The report's first screen: verdict, incidents with their pictures, trends; human numbers; re-renders."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mlmon.reports import charts, render
from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Histogram, Metric, Status, WindowResult
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile
from tests import factories as fx

N = 2500


@pytest.fixture(scope="module")
def setup() -> tuple[ModelConfig, Profile]:
    cfg = fx.config()
    return cfg, fit_profile(fx.frame(N, seed=1), profile_kinds(cfg), "ref")


def _evaluate(setup: tuple[ModelConfig, Profile], cur, day: int = 4) -> WindowResult:
    cfg, profile = setup
    return evaluate(cfg, profile, Batch(frame=cur), fx.window(day))


def _incident_blocks(html: str) -> dict[str, str]:
    return dict(re.findall(r'<li class="incident \w+" data-key="([^"]+)">(.*?)</li>', html, re.S))


def test_failing_report_opens_with_incidents_each_with_its_picture(
    setup: tuple[ModelConfig, Profile], tmp_path: Path
) -> None:
    r = _evaluate(setup, fx.data_quality_frame(N))
    page = render.write_report(r, setup[0], tmp_path, None)
    html = page.read_text()
    blocks = _incident_blocks(html)
    assert 1 <= len(blocks) <= 6
    failing = {ch.feature for ch in r.failed if ch.feature in setup[0].features}
    assert failing >= {"avg_session_minutes", "tenure_months", "country"}
    for f in failing:
        assert "<svg" in blocks[f"column:{f}"], f  # an inline picture for every failing column
    # the verdict and the incidents come before every table
    assert html.index('id="incidents"') < html.index("<table")
    assert "values about 60× larger than in the reference" in blocks["column:avg_session_minutes"]
    assert len(page.read_bytes()) < 400_000
    assert "<script src=" not in html and "http://" not in html.split("<svg", 1)[1].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_clean_report_says_so_in_one_line(setup: tuple[ModelConfig, Profile], tmp_path: Path) -> None:
    r = _evaluate(setup, fx.frame(N, seed=9))
    r = replace(r, checks=tuple(ch for ch in r.checks if ch.status is Status.PASS))
    html = render.write_report(r, setup[0], tmp_path, None).read_text()
    assert re.search(r"All [\d,]+ checks passed: nothing broke in this window\.", html)
    assert _incident_blocks(html) == {}


def test_class_balance_confidence_latency_and_quality_pictures(
    setup: tuple[ModelConfig, Profile], tmp_path: Path
) -> None:
    r = _evaluate(setup, fx.frame(N, seed=3))
    html = render.write_report(r, setup[0], tmp_path, None).read_text()
    model = html[html.index('id="model"') : html.index('id="health"')]
    assert 'aria-label="class balance: reference vs this window"' in model
    assert 'aria-label="confidence: reference vs this window"' in model
    assert 'aria-label="model quality against the reference (band: sampling noise)"' in model
    health = html[html.index('id="health"') : html.index('id="quarantine"')]
    assert 'aria-label="latency percentiles against the SLO"' in health


def test_chart_text_is_escaped_and_long_labels_keep_their_full_value() -> None:
    long = "x" * 30
    h = Histogram("c", "categorical", (fx.HOSTILE, long), (5, 5), (3, 7), new=(True, False))
    svg = str(charts.histogram(h, f"title {fx.HOSTILE}"))
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert (
        f"<title>{long}</title>" in svg and f"</title>{long}</text>" not in svg
    )  # cut on the axis, full on hover


def test_numbers_are_human_and_internal_names_never_show(
    setup: tuple[ModelConfig, Profile], tmp_path: Path
) -> None:
    r = _evaluate(setup, fx.data_quality_frame(N))
    r = replace(r, metrics=(*r.metrics, Metric("mean", 1e308, "income", ALL)))
    html = render.write_report(r, setup[0], tmp_path, None).read_text()
    assert "1.0e308" in html and not re.search(r"\d{20}", html)
    assert c.PREDICTION not in html and c.SCORE not in html


# --------------------------------------------------------------------------------------- trends


def test_trends_show_ten_stored_windows_in_order(
    setup: tuple[ModelConfig, Profile], pg_schema_uri: str, tmp_path: Path
) -> None:
    from mlmon.tasks.store import store

    cfg = setup[0]
    store.migrate(pg_schema_uri)
    p95 = [100.0 + 10 * day for day in range(10)]  # rising: 100, 110, ... 190 ms
    for day, v in enumerate(p95[:-1]):
        past = replace(
            fx.small_result(cfg.name, fx.window(day)),
            metrics=(Metric("latency_p95_ms", v),),
            n_rows=1000 + day,
        )
        store.write_window(pg_schema_uri, past, report_path=None, flow_run_id=None)
    later = replace(fx.small_result(cfg.name, fx.window(12)), metrics=(Metric("latency_p95_ms", 999.0),))
    store.write_window(pg_schema_uri, later, report_path=None, flow_run_id=None)  # after: never drawn
    now = replace(fx.small_result(cfg.name, fx.window(9)), metrics=(Metric("latency_p95_ms", p95[-1]),))
    wanted, features = render.trend_query(now, cfg)
    history = store.metric_history(
        pg_schema_uri, cfg.name, now.window.start, render.TREND_WINDOWS - 1, wanted, features
    )
    html = render.write_report(now, cfg, tmp_path, None, history=history).read_text()
    spark = re.search(
        r'<svg class="chart spark"[^>]*aria-label="latency p95: last 10 windows".*?</svg>', html, re.S
    )
    assert spark, "no latency sparkline"
    tips = re.findall(r'<circle class="(pt|now)"[^>]*><title>([^<]+)</title>', spark.group(0))
    assert [t.split(": ")[1] for _, t in tips] == [f"{v:.0f} ms" for v in p95]
    assert [t.split(": ")[0] for _, t in tips] == [f"2026-01-{6 + d:02d}" for d in range(10)]
    assert [cls for cls, _ in tips] == ["pt"] * 9 + ["now"]  # this window is the marked last point
    volume = re.search(r'aria-label="volume \(rows\): last 10 windows".*?</svg>', html, re.S)
    assert volume and re.findall(r"<title>[^<]+: ([\d,]+)</title>", volume.group(0)) == [
        f"{1000 + d:,}" for d in range(9)
    ] + ["100"]


def test_index_shows_a_sparkline_per_model(tmp_path: Path) -> None:
    cfg = fx.config()
    for day in range(4):
        status = Status.FAIL if day % 2 else Status.PASS
        render.write_report(fx.small_result("m", fx.window(day), status), cfg, tmp_path, None)
    html = render.write_index(tmp_path, render.scan_index(tmp_path)).read_text()
    spark = re.search(r'<span class="spark"[^>]*>(.*?)</span>', html, re.S)
    assert spark and "incidents per window, last 4" in spark.group(1)
    assert re.findall(r"<title>2026-01-0\d \((\w+)\): ", spark.group(1)) == ["pass", "fail", "pass", "fail"]


def test_saved_result_round_trips(setup: tuple[ModelConfig, Profile], tmp_path: Path) -> None:
    r = _evaluate(setup, fx.data_quality_frame(N))
    render.write_report(r, setup[0], tmp_path, None)
    back = render.load_result(tmp_path, r.model, r.window)
    assert back is not None
    assert back.checks == r.checks and back.histograms == r.histograms and back.window == r.window
    assert [m.metric for m in back.metrics] == [m.metric for m in r.metrics]
    assert back.computed_at == r.computed_at.astimezone(
        back.computed_at.tzinfo
    ) or back.computed_at - r.computed_at == timedelta(0)
