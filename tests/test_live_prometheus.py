"""The live half on real parts: a real Prometheus scrapes the demo serving app (mlmon.serving, the logging
helper with live metrics on) on 127.0.0.1, run as two worker processes in prometheus_client's
multiprocess mode; every recording rule and every query of the live dashboard returns data of the shape
its panel needs, and live PSI in PromQL equals mlmon's own PSI on the same values.

Bounded: a 1 s scrape interval, a few seconds of traffic, every process stopped at the end.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlmon import demo_model as dm
from mlmon import promql
from mlmon.tasks import contract as c
from mlmon.tasks.checks import drift
from mlmon.tasks.config import load_config
from mlmon.tasks.profile import NumericalProfile, Profile
from mlmon.tasks.reference import baseline
from mlmon.up import Service, prometheus_binary, start_prometheus, start_serving_demo
from tests.deploy import grafana

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deployments" / "models.yaml"
MODEL = "demo_classifier"
LIVE = grafana.dashboards()["live.json"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="needs the prometheus server on PATH or /usr/bin/prometheus (Debian package `prometheus`; "
        ".ci/run installs it)",
    ),
]


@dataclass
class Live:
    prometheus: Service
    workers: list[Service]
    profile: Profile
    sent: dict[str, list[Any]]  # column -> every value sent so far (features, prediction, score)

    def query(self, expr: str) -> list[dict[str, Any]]:
        return _get(self.prometheus.url, "/api/v1/query", {"query": expr})["result"]

    def query_range(self, expr: str, seconds: float, step: str = "1s") -> dict[str, Any]:
        now = time.time()
        return _get(
            self.prometheus.url,
            "/api/v1/query_range",
            {"query": expr, "start": now - seconds, "end": now, "step": step},
        )

    def post(self, frame: Any) -> None:
        """Send ``frame``'s customers to the workers in turns, and remember what was sent."""
        rows = frame.to_dict("records")
        for i in range(0, len(rows), 250):
            worker = self.workers[(i // 250) % len(self.workers)]
            body = json.dumps({"instances": rows[i : i + 250]}).encode()
            url = worker.url.replace("/metrics", "/predict")
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                predictions = json.load(r)["predictions"]
            for name in dm.FEATURES:
                self.sent.setdefault(name, []).extend(frame[name].iloc[i : i + 250].tolist())
            self.sent.setdefault("prediction", []).extend(p["prediction"] for p in predictions)
            self.sent.setdefault("score", []).extend(p["probability"] for p in predictions)

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        """Until Prometheus has scraped ``n`` predictions and evaluated its rules on that scrape."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.query("sum(mlmon_live_predictions_total)")
            if got and float(got[0]["value"][1]) == n:
                time.sleep(2.5)  # evaluation_interval = 1 s: the recording rules catch up
                return
            time.sleep(0.3)
        pytest.fail(f"Prometheus did not see {n} predictions within {timeout} s: {got}")


def _get(base: str, path: str, params: dict[str, Any]) -> Any:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live")
    multiproc = home / "prometheus-multiproc"
    multiproc.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}  # two workers, one metrics dir (as gunicorn's)
    started: list[Service] = []
    try:
        for _ in range(2):
            started.append(start_serving_demo(
                CONFIG, mongo_uri, home, port=0, rate=0, database="t_live", env=env, timeout=180
            ))  # fmt: skip
        # Prometheus scrapes one port only, as it would a gunicorn master: the other worker's values
        # reach it through the shared multiprocess directory.
        target = urllib.parse.urlsplit(started[0].url).netloc
        prom = start_prometheus(home / "prometheus", [target], port=0, scrape_interval="1s")
        started.append(prom)
        cfg = load_config(CONFIG).model(MODEL)
        live = Live(prom, started[:2], baseline(cfg, home / "profiles").profile, {})
        deadline = time.monotonic() + 15  # the first scrape sees every counter at 0
        while not live.query("up == 1 and on () sum(mlmon_live_bin_total) == 0"):
            assert time.monotonic() < deadline, "Prometheus did not scrape the serving app"
            time.sleep(0.2)
        live.post(dm.customers(np.random.default_rng(7), 3000))
        live.wait_for(3000)
        yield live
    finally:
        for service in reversed(started):
            service.stop()


def _by_column(result: list[dict[str, Any]]) -> dict[str, float]:
    return {r["metric"]["column"]: float(r["value"][1]) for r in result}


def _mlmon_statistic(live: Live, method: Callable[..., Any]) -> dict[str, float]:
    """mlmon's own ``method`` (a drift method of tasks/checks/drift.py) on everything sent, per column."""
    keys = {name: name for name in dm.FEATURES} | {"prediction": c.PREDICTION, "score": c.SCORE}
    found = {}
    for col, key in keys.items():
        profile = live.profile.columns[key]
        values = np.asarray(live.sent[col], dtype=float if isinstance(profile, NumericalProfile) else object)
        found[col] = method(profile, values).statistic
    return found


def test_two_worker_processes_are_counted_through_one_multiprocess_dir(live: Live) -> None:
    # only worker 0 is scraped, and it served half of the 3,000 predictions
    (total,) = live.query("sum(mlmon_live_predictions_total)")
    assert float(total["value"][1]) == 3000
    (age,) = live.query('sum(mlmon_live_bin_total{column="age"})')
    assert float(age["value"][1]) == 3000
    shares = live.query('mlmon_live_reference_share{column="plan"}')
    assert len(shares) == len(live.profile.columns["plan"].categories) + 1  # one per bin, not per worker


def assert_promql_equals(
    live: Live, expected: dict[str, float], formula: Callable[[str, str], str], rule: str
) -> None:
    """``formula`` over everything sent so far gives ``expected`` per column (to float rounding), and so
    does the recording rule ``rule`` (an increase over 15 min: its ratios are the counts' ratios)."""
    counts = f"sum by ({', '.join(promql.BIN)}) (mlmon_live_bin_total)"  # everything sent so far
    exact = _by_column(live.query(formula(promql.shares(counts), promql.reference_shares())))
    assert sorted(exact) == sorted(expected)
    for col, value in expected.items():
        assert exact[col] == pytest.approx(value, rel=1e-9, abs=1e-12), col
    recorded = _by_column(live.query(promql.names()[rule]))
    for col, value in expected.items():
        assert recorded[col] == pytest.approx(value, rel=1e-6, abs=1e-9), col


def test_live_psi_in_promql_equals_mlmons_psi_on_the_same_values(live: Live) -> None:
    assert_promql_equals(live, _mlmon_statistic(live, drift.psi), promql.psi, "psi")


def test_live_jensen_shannon_in_promql_equals_mlmons_on_the_same_values(live: Live) -> None:
    expected = _mlmon_statistic(live, drift.jensen_shannon)
    assert_promql_equals(live, expected, promql.jensen_shannon, "jensen_shannon")
    assert all(0 <= v < 0.1 for v in expected.values())  # a stream from the reference's own distribution


def test_every_recording_rule_returns_finite_data(live: Live) -> None:
    for rule in promql.recording_rules():
        result = live.query(rule["record"])
        assert result, f"{rule['record']} is empty"
        assert all(math.isfinite(float(r["value"][1])) for r in result), rule["record"]
    groups = _get(live.prometheus.url, "/api/v1/rules", {})["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(promql.recording_rules()) + len(promql.alert_rules())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def _expand(expr: str) -> str:
    # Grafana: a single-value variable as itself; $__rate_interval is max(4 × scrape interval, ...)
    return expr.replace("$model", MODEL).replace("$__rate_interval", "4s")


def test_the_live_dashboard_offers_the_models_that_report(live: Live) -> None:
    variable = grafana.variables(LIVE)["model"]
    assert variable["datasource"]["uid"] == "mlmon-prometheus"
    metric = variable["definition"].removeprefix("label_values(").removesuffix(", model)")
    values = _get(live.prometheus.url, "/api/v1/label/model/values", {"match[]": metric})
    assert values == [MODEL]


def test_every_live_panel_query_returns_what_its_panel_shows(live: Live) -> None:
    for panel in grafana.panels(LIVE):
        for target in panel.get("targets", []):
            expr = _expand(target["expr"])
            where = f"{panel['title']} / {target['refId']}: {expr}"
            if target["instant"]:
                result = live.query(expr)
                assert result, where
                assert all("bin" in r["metric"] for r in result), where  # the bars' x axis
                assert all(0 <= float(r["value"][1]) <= 1 for r in result), where
            else:
                data = live.query_range(expr, 20)
                assert data["resultType"] == "matrix" and data["result"], where
                for series in data["result"]:
                    values = [float(v) for _, v in series["values"]]
                    assert values and all(math.isfinite(v) for v in values), where
                    legend = target["legendFormat"]
                    for label in re.findall(r"\{\{(\w+)\}\}", legend):
                        assert label in series["metric"], f"{where}: legend {legend}"
    # the two bar charts: window and reference shares over the same bins
    for panel in grafana.panels(LIVE):
        if panel["type"] == "barchart":
            window, reference = (
                {r["metric"]["bin"] for r in live.query(_expand(t["expr"]))} for t in panel["targets"]
            )
            assert window == reference, panel["title"]


def test_live_psi_rises_on_a_shifted_stream_within_the_window(live: Live) -> None:
    psi_15m = promql.names()["psi"]
    before = _by_column(live.query(psi_15m))
    js_before = _by_column(live.query(promql.names()["jensen_shannon"]))
    start = time.monotonic()
    live.post(dm.customers(np.random.default_rng(8), 1500, shift=2.0))  # income, sessions +2σ
    live.wait_for(4500)
    after = _by_column(live.query(psi_15m))
    assert before["income"] < 0.05 and after["income"] > 0.25, (before["income"], after["income"])
    assert after["sessions_last_7d"] > before["sessions_last_7d"] + 0.1
    assert after["age"] < 0.05  # an unshifted feature stays put
    js_after = _by_column(live.query(promql.names()["jensen_shannon"]))
    assert js_after["income"] > js_before["income"] + 0.1 and js_after["age"] < 0.1
    # a window holding only the shifted stream
    window = f"{math.ceil(time.monotonic() - start) + 1}s"
    recent = promql.psi(promql.shares(promql.bin_counts(window)), promql.reference_shares())
    assert _by_column(live.query(recent))["income"] > after["income"]


def test_mlmon_up_starts_the_serving_app_and_a_prometheus_that_scrapes_it() -> None:
    from mlmon import up
    from mlmon.settings import Settings
    from tests.test_logger import _closed_port

    # MongoDB down on purpose: the simulated logs must not land in the session's shared "mlmon"
    # database, and live metrics do not depend on MongoDB (the logger counts the drops)
    nowhere = f"mongodb://127.0.0.1:{_closed_port()}/"
    started = up._start_live(Settings.from_env(CONFIG), nowhere, "127.0.0.1", 0, 0)
    try:
        serving, prometheus = started
        assert prometheus.name == "Prometheus" and serving.url.endswith("/metrics")
        target = urllib.parse.urlsplit(serving.url).netloc
        deadline = time.monotonic() + 30  # simulated traffic (2/s) scraped every 5 s
        while True:
            got = _get(prometheus.url, "/api/v1/query", {"query": "sum(mlmon_live_predictions_total)"})[
                "result"
            ]
            if got and float(got[0]["value"][1]) > 0:
                break
            assert time.monotonic() < deadline, "no simulated prediction reached Prometheus"
            time.sleep(0.5)
        up_ = _get(prometheus.url, "/api/v1/query", {"query": "up"})["result"]
        assert [(r["metric"]["instance"], r["value"][1]) for r in up_] == [(target, "1")]
        groups = _get(prometheus.url, "/api/v1/rules", {})["groups"]
        assert {g["name"] for g in groups} == {"mlmon-live-recording", "mlmon-live-alerts"}
    finally:
        for service in reversed(started):
            service.stop()
    assert all(s.process.poll() is not None for s in started)
