"""Deployments (served and in ``deployments/prefect.yaml``) and real scheduled runs on a real Prefect server.

The integration test starts a Prefect server the way ``mlmon up`` does (its database on the test
PostgreSQL, over the Unix socket), serves the deployments from a subprocess the way ``mlmon serve``
does, and creates runs of the scheduled deployment for past slots (Prefect schedules never create
runs in the past; the server's scheduler is off so nothing else runs). The served runner executes them
as it would any scheduled run. The verdict is read from ``mlmon.runs`` and from the Prefect API.
"""

from __future__ import annotations

import doctest
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from mlmon import serve
from mlmon.tasks.config import load_config
from mlmon.tasks.schedule import window_for_slot
from mlmon.tasks.window import Window, as_utc

REPO = Path(__file__).resolve().parents[1]
MODEL = "demo_classifier"
H = timedelta(hours=1)


# ------------------------------------------------------------------------------- deployment definitions


def test_prefect_yaml_is_the_one_generated_from_the_shipped_config() -> None:
    shipped = (REPO / "deployments" / "prefect.yaml").read_text()
    assert shipped == serve.prefect_yaml(REPO / "deployments" / "models.yaml"), (
        "deployments/prefect.yaml is out of date: python -m mlmon.serve > deployments/prefect.yaml"
    )


def test_prefect_yaml_is_valid_for_prefect_deploy_and_its_entrypoints_are_flows() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.flows import Flow, load_flow_from_entrypoint

    raw = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    PrefectYamlModel.model_validate(raw)
    config = load_config(REPO / "deployments" / "models.yaml")
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for d in raw["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO / d["entrypoint"]))  # what a worker does
        assert isinstance(flow, Flow)
        assert set(d["parameters"]) <= set(flow.parameters.properties)
        for s in d.get("schedules", []):
            _schedule_config_to_deployment_schedule(s)  # what `prefect deploy` does with it
        by_entry.setdefault(d["entrypoint"], []).append(d)
    scheduled = {d["parameters"]["model"]: d for d in by_entry["flows/scheduled.py:scheduled_monitor"]}
    assert set(scheduled) == set(config.models)
    for name, m in config.models.items():
        (sched,) = scheduled[name]["schedules"]
        assert (sched["cron"], sched["timezone"]) == (m.schedule.cron, m.schedule.timezone)
    assert len(by_entry["flows/monitor.py:monitor_window"]) == 1
    assert len(by_entry["flows/scheduled.py:backfill_deployment"]) == 1


def test_served_deployments_follow_the_config(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "deployments" / "models.yaml").read_text())
    body = raw["models"][MODEL]
    raw["models"] = {
        "daily_berlin": {**body, "schedule": {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}},
        "hourly_default": {**body, "window": "1h", "schedule": {"lateness": "10m"}},
        "odd_length": {**body, "window": "7h", "schedule": {"lateness": "20m"}},
    }
    raw["retention"] = {"keep": "90d", "cron": "0 4 * * 0"}
    cfg_path = tmp_path / "models.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    deps = {f"{d.flow_name}/{d.name}": d for d in serve.build_deployments(cfg_path, catch_up="2d")}
    assert set(deps) == {
        "scheduled-monitor/daily_berlin", "scheduled-monitor/hourly_default", "scheduled-monitor/odd_length",
        "monitor-window/mlmon", "backfill-windows/mlmon", "retention/mlmon",
    }  # fmt: skip
    berlin = deps["scheduled-monitor/daily_berlin"]
    (s,) = berlin.schedules
    assert (s.schedule.cron, s.schedule.timezone) == ("30 2 * * *", "Europe/Berlin")
    assert berlin.parameters == {"model": "daily_berlin", "config": str(cfg_path.resolve()), "catch_up": "2d"}
    (s,) = deps["scheduled-monitor/hourly_default"].schedules
    assert (s.schedule.cron, s.schedule.timezone) == ("10 * * * *", "UTC")
    (s,) = deps["scheduled-monitor/odd_length"].schedules  # no cron fires every 7 h: an interval does
    assert s.schedule.interval == timedelta(hours=7)
    assert as_utc(s.schedule.anchor_date) == datetime(1970, 1, 1, 0, 20, tzinfo=UTC)
    assert not deps["monitor-window/mlmon"].schedules and not deps["backfill-windows/mlmon"].schedules
    (s,) = deps["retention/mlmon"].schedules
    assert (s.schedule.cron, s.schedule.timezone) == ("0 4 * * 0", "UTC")
    # without `retention:` the deployment is there, unscheduled (run it by hand or from the UI)
    del raw["retention"]
    cfg_path.write_text(yaml.safe_dump(raw))
    plain = {f"{d.flow_name}/{d.name}": d for d in serve.build_deployments(cfg_path)}
    assert not plain["retention/mlmon"].schedules


def test_serve_refuses_to_run_without_a_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        pytest.raises(serve.ServiceError, match="mlmon up"),
    ):
        serve.serve_all(REPO / "deployments" / "models.yaml")


def test_reports_are_served_over_http(tmp_path: Path) -> None:
    from mlmon.up import serve_reports

    (tmp_path / "index.html").write_text("<h1>reports</h1>")
    httpd = serve_reports(tmp_path, port=0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{httpd.server_address[1]}/index.html") as r:
            assert r.read() == b"<h1>reports</h1>"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_doctests() -> None:
    import mlmon.up

    assert doctest.testmod(mlmon.up).failed == 0


@pytest.mark.integration
def test_window_lock_is_exclusive_and_released_with_its_connection(pg_uri: str) -> None:
    from mlmon.flows.scheduled import window_lock

    w = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    with window_lock(pg_uri, "m", w) as first:
        with window_lock(pg_uri, "m", w) as second, window_lock(pg_uri, "other", w) as other:
            assert (first, second, other) == (True, False, True)
    with window_lock(pg_uri, "m", w) as again:
        assert again


# ------------------------------------------------------------------------------- real scheduled runs


@dataclass
class Stack:
    pg: str  # the metrics database
    mongo: str
    reference_day: datetime  # traffic for the reference (built only after the first runs)
    cfg_path: Path
    reference: Path
    api_url: str
    log: Path
    slots: list[datetime]  # slot k is for window k (hourly, the last one <= now)
    env: dict[str, str]  # what `mlmon serve` runs with


def _database(pg_uri: str, name: str) -> str:
    from mlmon.up import ensure_database

    ensure_database(pg_uri, name)
    base, _, query = pg_uri.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def stack(pg_uri: str, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Hourly demo traffic around now, a Prefect server on PostgreSQL and ``serve`` in a subprocess."""
    from mlmon import simulate
    from mlmon.up import start_prefect_server

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    tmp = tmp_path_factory.mktemp("serve")
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    quarter = timedelta(minutes=15)
    last = hour + quarter if now >= hour + quarter else hour - 3 * quarter
    slots = [last - (7 - k) * H for k in range(8)]  # cron "15 * * * *": slot k closes window k

    database = f"serve_{uuid.uuid4().hex[:8]}"
    raw = yaml.safe_load((REPO / "deployments" / "models.yaml").read_text())
    m = raw["models"][MODEL]
    m["source"]["database"] = database
    m["reference"]["path"] = str(tmp / "reference.parquet")  # built later: the first runs fail
    m["window"] = "1h"
    m["schedule"] = {"cron": "15 * * * *", "timezone": "UTC", "lateness": "15m", "label_horizon": "1d"}
    m["quality"]["expected_volume"] = {"min": 1}
    m["performance"]["min_labelled"] = 10  # ~30 labelled predictions an hour
    m["evidently"] = {"enabled": False}
    cfg_path = tmp / "models.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    day0 = hour.replace(hour=0) - timedelta(days=1)
    # yesterday and today, ~50 predictions an hour; written while the Prefect server starts
    seeding = ThreadPoolExecutor(1).submit(simulate.run_simulation, mongo_uri, database, day0, 2, 1200, 7)
    pg = _database(pg_uri, database)
    server = start_prefect_server(
        pg_uri, tmp / "prefect", port=0, env={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "PREFECT_HOME": str(tmp / "prefect-client"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLMON_MONGO_URI": mongo_uri,
        "MLMON_POSTGRES_URI": pg,
        "MLMON_HOME": str(tmp / "home"),
        "MLMON_REPORTS_DIR": str(tmp / "reports"),
    }
    code = f"from mlmon.serve import serve_all; serve_all({str(cfg_path)!r}, catch_up='3h')"
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        seeding.result()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield Stack(
                pg, mongo_uri, day0, cfg_path, tmp / "reference.parquet", server.api_url, log, slots, env
            )
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.stop()


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _deployment_id(name: str, timeout: float = 60) -> Any:
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with _client() as client:
        while True:
            try:
                return client.read_deployment_by_name(name).id
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _schedule(deployment_id: Any, slot: datetime) -> Any:
    """A run of the deployment for a past slot, as the scheduler would have created it then."""
    from prefect.states import Scheduled

    with _client() as client:
        return client.create_flow_run_from_deployment(deployment_id, state=Scheduled(scheduled_time=slot)).id


def _retry(run_id: Any) -> None:
    """What the UI's "Retry" does: the same flow run goes back to the runner."""
    from prefect.states import Scheduled

    with _client() as client:
        client.set_flow_run_state(run_id, Scheduled(name="AwaitingRetry"), force=True)


def _wait(run_ids: list[Any], log: Path, timeout: float = 60) -> dict[Any, Any]:
    deadline = time.monotonic() + timeout
    with _client() as client:
        while True:
            runs = {i: client.read_flow_run(i) for i in run_ids}
            if all(r.state is not None and r.state.is_final() for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"runs not finished after {timeout:.0f}s: "
                    f"{[(r.name, r.state_name) for r in runs.values()]}\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)


def _runs_table(pg: str) -> dict[Window, tuple[str, str, datetime]]:
    """(status, flow_run_id, finished_at) of each window in mlmon.runs."""
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute(
            "select window_start, window_end, status, flow_run_id, finished_at"
            " from mlmon.runs where model = %s",
            (MODEL,),
        )
        return {Window(s, e): (status, rid, fin) for s, e, status, rid, fin in cur.fetchall()}


def _window_runs() -> list[tuple[Window, str, str, str]]:
    """Every monitor-window flow run: (window, final state, id of the scheduled run that started it, id)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    out = []
    with _client() as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["monitor-window"])))
        for r in runs:
            parent = client.read_task_run(r.parent_task_run_id).flow_run_id
            w = Window(as_utc(r.parameters["start"]), as_utc(r.parameters["end"]))
            out.append((w, r.state.type.value, str(parent), str(r.id)))
    return out


@pytest.mark.integration
@pytest.mark.prefect
def test_scheduled_runs_process_each_window_exactly_once(stack: Stack) -> None:
    from mlmon.tasks import reference

    t0 = time.monotonic()
    cfg = load_config(stack.cfg_path).model(MODEL)
    w = [window_for_slot(cfg, s) for s in stack.slots]  # w[k] is the window of slot k
    dep = _deployment_id(f"scheduled-monitor/{MODEL}")

    # 1. slot 3 runs while the reference is missing: its window and the two before (catch-up 3h) fail
    a = _schedule(dep, stack.slots[3])
    (run_a,) = _wait([a], stack.log).values()
    assert run_a.state.is_failed()
    assert {x: v[0] for x, v in _runs_table(stack.pg).items()} == dict.fromkeys(w[1:4], "error")

    # 2. the cause is fixed and the run retried: same flow run, same slot -> the same three windows.
    #    Meanwhile slots 4 and 5 never ran (downtime) and slot 6's run starts over an hour late: it
    #    processes its own window (not the wall clock's, w[7]) and catches up the two it finds missing.
    day0 = stack.reference_day
    reference.build_from_mongo(stack.mongo, cfg, day0, day0 + timedelta(hours=12), stack.reference)
    assert datetime.now(UTC) - stack.slots[6] >= H
    _retry(a)
    b = _schedule(dep, stack.slots[6])
    runs = _wait([a, b], stack.log)
    assert runs[a].state.is_completed() and runs[a].run_count == 2
    assert as_utc(runs[a].expected_start_time) == stack.slots[3]
    assert runs[b].state.is_completed()
    after_b = _runs_table(stack.pg)
    assert set(after_b) == {w[k] for k in range(1, 7)}
    assert all(v[0] in ("pass", "warn", "fail") for v in after_b.values())

    # 3. all at once: slot 7 fires twice (a DST fall-back, two runners), and slot 3's run is
    #    retried once more although it succeeded; slot 7's window is processed once, nothing else is
    c1, c2 = _schedule(dep, stack.slots[7]), _schedule(dep, stack.slots[7])
    _retry(a)
    runs_c = _wait([c1, c2, a], stack.log)
    assert all(r.state.is_completed() for r in runs_c.values()) and runs_c[a].run_count == 3
    final = _runs_table(stack.pg)
    assert set(final) == {w[k] for k in range(1, 8)}
    assert all(final[x] == after_b[x] for x in after_b)
    assert all(status in ("pass", "warn", "fail") for status, _, _ in final.values())

    # exactly once, from Prefect's side: one completed monitor-window run per window, started by the
    # scheduled run whose slot (or catch-up) it belongs to, and the one mlmon.runs points at
    window_runs = _window_runs()
    completed = [(x, parent, rid) for x, state, parent, rid in window_runs if state == "COMPLETED"]
    assert Counter(x for x, _, _ in completed) == {w[k]: 1 for k in range(1, 8)}
    failed = Counter(x for x, state, _, _ in window_runs if state == "FAILED")
    assert failed == {w[1]: 1, w[2]: 1, w[3]: 1}
    assert {x: rid for x, _, rid in completed} == {x: rid for x, (_, rid, _) in final.items()}
    parent = {x: p for x, p, _ in completed}
    assert {parent[w[k]] for k in (1, 2, 3)} == {str(a)}
    assert {parent[w[k]] for k in (4, 5, 6)} == {str(b)}
    assert parent[w[7]] in (str(c1), str(c2))
    print(f"scheduled-run scenario: {time.monotonic() - t0:.1f}s")


def _rows_by_window(pg: str) -> dict[Window, dict[str, list[tuple]]]:
    """Every row of every window table, per window (runs rows as dicts, the others as sorted tuples)."""
    from mlmon.tasks.store import store

    out: dict[Window, dict[str, list]] = {}
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        for t in store.WINDOW_TABLES:
            cur.execute(f"SELECT * FROM mlmon.{t} WHERE model = %s", (MODEL,))
            cols = [d.name for d in cur.description]
            for r in cur.fetchall():
                row = dict(zip(cols, r, strict=True))
                out.setdefault(Window(row["window_start"], row["window_end"]), {}).setdefault(t, []).append(
                    row
                )
    return {w: {t: sorted(v, key=repr) for t, v in tables.items()} for w, tables in out.items()}


LABEL_CATEGORIES = ("performance", "fairness", "versions")
"""What a late-label re-evaluation replaces: model quality and the label-dependent families."""


def _model_quality(row: dict[str, Any], table: str) -> bool:
    from mlmon.tasks.labels import MODEL_QUALITY_METRICS

    if table == "checks":
        return row["category"] in LABEL_CATEGORIES
    if table != "metrics":
        return False
    name = row["metric"]  # the families' metrics: fairness_* / version_*, each gap and its bound
    gap = name.removesuffix("_bound")
    return (
        name in MODEL_QUALITY_METRICS
        or name.startswith(("fairness_", "version_"))
        or gap.endswith(("_difference", "_ratio"))
    )


VERDICT = ("n_labelled", "label_coverage", "labels_checked_at", "status", "n_failed_checks", "message")


def _split(tables: dict[str, list[dict]], *, ignore: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """(model-quality rows, the rest) of one window; run rows split by VERDICT, ``ignore`` dropped."""
    mq = {t: [r for r in rows if _model_quality(r, t)] for t, rows in tables.items() if t != "runs"}
    rest = {t: [r for r in rows if not _model_quality(r, t)] for t, rows in tables.items() if t != "runs"}
    (run,) = tables["runs"]
    mq["runs"] = {k: run[k] for k in VERDICT if k not in ignore}
    rest["runs"] = {k: v for k, v in run.items() if k not in VERDICT and k not in ignore}
    return mq, rest


@pytest.mark.integration
@pytest.mark.prefect
def test_a_late_label_changes_its_windows_model_quality_on_the_next_run_and_nothing_else(
    stack: Stack,
) -> None:
    """Labels corrected after a window ran: the next scheduled run (whose own window is done already)
    re-evaluates that window's model quality, and every other row of every window stays as it was."""
    import pymongo

    cfg = load_config(stack.cfg_path).model(MODEL)
    w = [window_for_slot(cfg, s) for s in stack.slots]
    dep = _deployment_id(f"scheduled-monitor/{MODEL}")
    # the simulator stamps labels with their future arrival; make them all arrived, so that the
    # corrections below are the newest labels (latest wins)
    client: pymongo.MongoClient = pymongo.MongoClient(stack.mongo, tz_aware=True)
    db = client[cfg.source.database]
    t = datetime.now(UTC) - timedelta(minutes=1)
    db.labels.update_many({"timestamp": {"$gt": t}}, {"$set": {"timestamp": t}})
    # settle: a run that does the rechecks that calls for
    settle = _schedule(dep, stack.slots[7])
    assert _wait([settle], stack.log)[settle].state.is_completed()
    before = _rows_by_window(stack.pg)
    # the simulated traffic follows the hour of the day: take the processed window with the most labels
    # (the night's hourly windows can hold fewer than min_labelled, whose quality is then not judged)
    target = max((x for x in w[1:7] if x in before), key=lambda x: before[x]["runs"][0]["n_labelled"])
    assert before[target]["runs"][0]["n_labelled"] > 10

    # every label of the target window is corrected (logged again, flipped) now
    try:
        ids = [
            d["request_id"]
            for d in db.predictions.find(
                {"timestamp": {"$gte": target.start, "$lt": target.end}}, {"request_id": 1, "_id": 0}
            )
        ]
        labelled = {d["request_id"]: d["label"] for d in db.labels.find({"request_id": {"$in": ids}})}
        now = datetime.now(UTC)
        flip = {"churn": "stay", "stay": "churn"}
        db.labels.insert_many(
            [{"request_id": r, "label": flip[v], "timestamp": now} for r, v in labelled.items()]
        )
    finally:
        client.close()
    time.sleep(0.05)  # the run's "now" must be later than the labels' (BSON dates are milliseconds)

    again = _schedule(dep, stack.slots[7])
    assert _wait([again], stack.log)[again].state.is_completed()
    after = _rows_by_window(stack.pg)

    assert set(after) == set(before)
    for x in before:
        if x == target:
            continue  # other windows may have been rechecked for a simulated label that came due
        assert _split(after[x], ignore=("labels_checked_at",)) == _split(
            before[x], ignore=("labels_checked_at",)
        ), x
    mq_before, rest_before = _split(before[target])
    mq_after, rest_after = _split(after[target])
    assert rest_after == rest_before  # drift, data quality, health, quarantine, the report link
    assert mq_after["runs"]["labels_checked_at"] > now
    acc = {
        when: next(r["value"] for r in mq["metrics"] if r["metric"] == "accuracy" and r["segment"] == "all")
        for when, mq in (("before", mq_before), ("after", mq_after))
    }
    assert acc["after"] == pytest.approx(1 - acc["before"]), acc  # every label flipped


@pytest.mark.integration
@pytest.mark.prefect
def test_backfill_fans_out_one_run_per_window(stack: Stack) -> None:
    """On a work pool a backfill submits one monitor-window run per window; here the served runner runs
    them (``fan_out=True`` forces what a worker-run backfill detects by itself)."""
    from mlmon.flows.scheduled import child_idempotency_key

    cfg = load_config(stack.cfg_path).model(MODEL)
    w1, w2 = window_for_slot(cfg, stack.slots[1]), window_for_slot(cfg, stack.slots[2])
    params = {"model": MODEL, "start": w1.start.isoformat(), "end": w2.end.isoformat(), "fan_out": True}
    with _client() as client:
        dep = client.read_deployment_by_name("backfill-windows/mlmon")
        parent = client.create_flow_run_from_deployment(dep.id, parameters=params).id
    (run,) = _wait([parent], stack.log, timeout=90).values()
    assert run.state.is_completed(), run.state
    rows = _runs_table(stack.pg)
    with _client() as client:
        for w in (w1, w2):
            child = client.read_flow_run(rows[w][1])  # the run that wrote the window
            assert child.parent_task_run_id is not None
            assert client.read_task_run(child.parent_task_run_id).flow_run_id == parent
            assert child.idempotency_key == child_idempotency_key(str(parent), MODEL, w)
            assert Window(as_utc(child.parameters["start"]), as_utc(child.parameters["end"])) == w


@pytest.mark.integration
@pytest.mark.prefect
def test_up_prints_what_runs_where_and_stops_on_ctrl_c(stack: Stack, tmp_path: Path) -> None:
    """``run_up`` against the running Prefect server (PREFECT_API_URL set: it starts none)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("<h1>index</h1>")
    env = {**stack.env, "MLMON_CONFIG": str(stack.cfg_path), "MLMON_REPORTS_DIR": str(reports)}
    code = (
        "import sys; from mlmon.settings import Settings; from mlmon.up import run_up; "
        "sys.exit(run_up(Settings.from_env(), reports_port=0))"
    )
    out = tmp_path / "up.log"
    with out.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "being served" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        text = out.read_text()
        urls = dict(re.findall(r"^  (\S+ ?\S*) +(\S+://\S+)", text, flags=re.MULTILINE))
        assert urls["Prefect UI"] == stack.api_url.removesuffix("/api")
        with urllib.request.urlopen(urls["HTML reports"]) as r:
            assert r.read() == b"<h1>index</h1>"
        assert f"scheduled-monitor/{MODEL}" in text and "cron 15 * * * * (UTC)" in text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code_ = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("mlmon up did not stop on Ctrl-C:\n" + out.read_text()[-4000:]) from None
    assert code_ == 0 and "mlmon up: stopped" in out.read_text(), out.read_text()[-4000:]
