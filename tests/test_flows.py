"""End to end through real Prefect flows, MongoDB over the wire and a real PostgreSQL.

One Prefect test harness for the session. The demo scenario (a reference day then seven monitored
days) is seeded once at a small size; the assertions read Postgres, as Grafana would.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from tests.demo import demo_config
from tests.postgres import rows
from tests.receiver import Receiver, receiver

pytestmark = [pytest.mark.integration, pytest.mark.prefect]

START = datetime(2026, 2, 2, tzinfo=UTC)
DAYS = 8  # day 0 = reference, days 1-7 monitored (day 7: the shadow challenger is worse)
PER_DAY = 900
WEBHOOK_ENV = "MLMON_TEST_FLOWS_WEBHOOK"


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def webhook() -> Iterator[Receiver]:
    """The demo model's direct alert webhook (alerts.webhook_env = WEBHOOK_ENV) for the whole module."""
    with receiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def demo_env(
    prefect_harness: None,
    webhook: Receiver,
    mongo_uri: str,
    pg_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Seeded demo traffic in its own database, a config pointing at it, and the env the flows read."""
    import uuid

    from mlmon import simulate
    from mlmon.tasks import reference
    from mlmon.tasks.config import load_config

    tmp = tmp_path_factory.mktemp("flows")
    database = f"flows_{uuid.uuid4().hex[:8]}"
    cfg_path = demo_config(
        tmp,
        database,
        "demo_classifier.parquet",
        expected_volume={"min": int(PER_DAY * 0.7), "max": int(PER_DAY * 1.3)},
        alerts={"webhook_env": WEBHOOK_ENV},
    )
    simulate.run_simulation(mongo_uri, database, START, DAYS, PER_DAY, 7)
    cfg = load_config(cfg_path).model("demo_classifier")
    reference.build_from_mongo(mongo_uri, cfg, START, START + timedelta(days=1), cfg.reference_path)
    env = {
        "MLMON_MONGO_URI": mongo_uri,
        "MLMON_POSTGRES_URI": pg_uri,
        "MLMON_HOME": str(tmp / "home"),
        "MLMON_CONFIG": str(cfg_path),
        "MLMON_REPORTS_DIR": str(tmp / "reports"),
        "MLMON_REPORTS_URL": "http://reports.example:8080",
        WEBHOOK_ENV: webhook.url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield env
    shutil.rmtree(tmp, ignore_errors=True)


def day(i: int) -> tuple[datetime, datetime]:
    return START + timedelta(days=i), START + timedelta(days=i + 1)


def test_same_window_three_times_leaves_one_set_of_rows(demo_env: dict[str, str]) -> None:
    from mlmon.flows.monitor import monitor_window

    pg = demo_env["MLMON_POSTGRES_URI"]
    start, end = day(1)
    counts = []
    for _ in range(3):
        monitor_window("demo_classifier", start, end)
        counts.append(
            [
                rows(
                    pg,
                    f"select count(*) from mlmon.{t} where model = %s and window_start = %s",
                    "demo_classifier",
                    start,
                )[0][0]
                for t in ("runs", "checks", "metrics", "drift", "quarantine")
            ]
        )
    assert counts[0][0] == 1 and counts[0][1] > 10 and counts[0][2] > 50
    assert counts[0] == counts[1] == counts[2]
    report = Path(demo_env["MLMON_REPORTS_DIR"])
    assert len([p for p in report.glob("demo_classifier/*.html") if ".evidently." not in p.name]) == 1
    assert (report / "index.html").exists()


def test_backfill_finds_the_incidents_and_passes_the_clean_days(demo_env: dict[str, str]) -> None:
    from mlmon.flows.monitor import backfill

    pg = demo_env["MLMON_POSTGRES_URI"]
    results = backfill("demo_classifier", day(1)[0], day(7)[1])
    assert len(results) == 7
    status = dict(rows(pg, "select window_start, status from mlmon.runs where model = %s", "demo_classifier"))
    failed = {
        (ws, check)
        for ws, check in rows(
            pg,
            "select window_start, check_name from mlmon.checks where model = %s and status = 'fail'",
            "demo_classifier",
        )
    }

    def failed_on(i: int) -> set[str]:
        return {ch for ws, ch in failed if ws == day(i)[0]}

    for clean in (1, 2):
        assert failed_on(clean) == set(), (clean, failed_on(clean))
        assert status[day(clean)[0]] in ("pass", "warn")
    # day 7: the shadow challenger v3-shadow is worse, and only that fails: its documents (every day) are
    # kept out of every other check
    assert failed_on(7) == {"version_quality"}, failed_on(7)
    verdicts = rows(
        pg,
        "select window_start, feature, status from mlmon.checks where model = %s and check_name = "
        "'version_quality' and segment = 'all' and category = 'versions'",
        "demo_classifier",
    )
    assert {(ws, f, st) for ws, f, st in verdicts if ws in (day(1)[0], day(2)[0], day(7)[0])} == {
        (day(1)[0], "v3-shadow", "pass"),
        (day(2)[0], "v3-shadow", "pass"),
        (day(7)[0], "v3-shadow", "fail"),
        (day(7)[0], "v2", "warn"),
    }
    assert "dataset_drift" in failed_on(4)  # the drift episode at its height
    assert failed_on(5) & {"missing_share", "unseen_categories", "out_of_range"}  # the quality incident
    assert failed_on(6) & {"latency_p95", "latency_p99", "error_rate"}  # the latency / error spike
    quarantined = rows(pg, "select count(*) from mlmon.quarantine where model = %s", "demo_classifier")[0][0]
    assert quarantined > 0


def fails_within_seconds(error: type[Exception], match: str) -> None:
    """A monitor run of day 2 raises ``error`` (message matching ``match``) in under 30 s."""
    from mlmon.flows.monitor import monitor_window

    t = time.monotonic()
    with pytest.raises(error, match=match):
        monitor_window("demo_classifier", *day(2))
    assert time.monotonic() - t < 30


def test_unreachable_postgres_is_a_clear_error_within_seconds(
    demo_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlmon.tasks.errors import StoreError

    monkeypatch.setenv("MLMON_POSTGRES_URI", f"postgresql://postgres@/postgres?host={tmp_path / 'nowhere'}")
    fails_within_seconds(StoreError, "Postgres")


def test_unreachable_mongo_is_a_clear_error_within_seconds(
    demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from mlmon.tasks.errors import SourceUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLMON_MONGO_URI", f"mongodb://127.0.0.1:{port}/")
    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", "1")
    since = datetime.now(UTC)
    fails_within_seconds(SourceUnavailable, "MLMON_MONGO_URI")
    # the window's first MongoDB query (its size) was retried twice, as every database task is
    (size,) = task_runs_since("size demo_classifier", since)
    assert size.state.is_failed() and size.run_count == 3


def task_runs_since(name_prefix: str, since: datetime) -> list:
    """Task runs whose name starts with ``name_prefix``, started after ``since`` (the Prefect API's)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterStartTime

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(like_=name_prefix), start_time=TaskRunFilterStartTime(after_=since)
            )
        )
    return [r for r in runs if r.name.startswith(name_prefix)]


def server_events(name: str, since: datetime) -> list[dict]:
    """Events of ``name`` the Prefect server has stored since ``since`` (its own events API)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        r = client._client.post(
            "/events/filter",
            json={
                "filter": {"event": {"name": [name]}, "occurred": {"since": since.isoformat()}},
                "limit": 50,
            },
        )
        r.raise_for_status()
        return r.json()["events"]


def latest_artifact(key: str) -> dict:
    """The newest version of the artifact ``key`` on the Prefect server (its own artifacts API)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        r = client._client.post(
            "/artifacts/latest/filter", json={"artifacts": {"key": {"any_": [key]}}, "limit": 1}
        )
        r.raise_for_status()
        [found] = r.json()
        return found


def wait_until(what: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.25)


def test_a_failing_window_alerts_once_by_event_webhook_and_automation(
    demo_env: dict[str, str], webhook: Receiver
) -> None:
    """The quality-incident day fails: one mlmon.window.failed event on the Prefect server, one webhook
    POST, and one notification from the installed automation; re-running the window sends none of them
    again, and a clean day sends nothing."""
    from mlmon import automations
    from mlmon.flows.monitor import monitor_window
    from mlmon.tasks.store import store

    pg = demo_env["MLMON_POSTGRES_URI"]
    store.migrate(pg)
    rows(pg, "delete from mlmon.alerts where model = %s returning 1", "demo_classifier")  # order-proof
    since = datetime.now(UTC) - timedelta(seconds=1)
    seen = len(webhook.posts)  # earlier tests of the module alerted too
    bad, good = day(5), day(1)
    label = "2026-02-07T00:00Z"  # day 5
    with receiver() as chat:
        installed = automations.install(webhook_url=chat.url)
        assert {a.name for a in installed} == {"mlmon-window-failed", "mlmon-window-resolved"}
        assert [a.action for a in automations.install(webhook_url=chat.url)] == ["updated", "updated"]
        time.sleep(2)  # the server's trigger service picks up new automations every few seconds

        first = monitor_window("demo_classifier", *bad)
        assert first["status"] == "fail" and first["alerts"] == {"prefect-event": "sent", "webhook": "sent"}
        # the run's artifacts: a table of the incidents (verdict in its description), a link to the report
        table = latest_artifact("mlmon-demo-classifier-incidents")
        assert table["type"] == "table" and table["description"].startswith(f"demo_classifier {label}: FAIL")
        rows_ = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
        # one row per thing that broke (this fixture's day 5 also carries the drift of days 3-4, so it
        # can hold more than the demo's six), each data-quality problem among them
        whats = [r["what"] for r in rows_]
        assert len(whats) == len(set(whats)) and {"avg_session_minutes", "country", "tenure_months"} <= set(
            whats
        )
        assert any("missing (reference" in r["sentence"] for r in rows_)
        link = latest_artifact("mlmon-demo-classifier-report")
        assert link["type"] == "markdown" or link["type"] == "link"
        assert "http://reports.example:8080/demo_classifier/" in str(link["data"])
        assert monitor_window("demo_classifier", *good)["alerts"] == {
            "prefect-event": "quiet",
            "webhook": "quiet",
        }
        again = monitor_window("demo_classifier", *bad)
        assert again["alerts"] == {"prefect-event": "duplicate", "webhook": "duplicate"}

        # the direct webhook: Slack-compatible JSON naming the model, window, checks and report
        posts = [p for p in webhook.bodies()[seen:] if label in p["text"]]
        assert len(posts) == 1, posts
        text = posts[0]["text"]
        assert text.startswith(f"mlmon: demo_classifier {label} FAIL\n")
        body = posts[0]["blocks"][1]["text"]["text"]
        assert "• [new] " in body and "missing (reference" in body  # the incidents' sentences
        assert "<http://reports.example:8080/demo_classifier/" in text
        assert not [p for p in webhook.bodies()[seen:] if "2026-02-03T00:00Z" in p["text"]]  # day 1 passed

        # the Prefect event, as stored by the server
        wait_until(lambda: server_events("mlmon.window.failed", since))
        events = server_events("mlmon.window.failed", since)
        assert len(events) == 1, [e["payload"]["window"] for e in events]
        ev = events[0]
        assert ev["resource"]["prefect.resource.id"] == "mlmon.model.demo_classifier"
        assert ev["payload"]["window_start"] == bad[0].isoformat()
        assert {c["check"] for c in ev["payload"]["failed_checks"]} >= {"missing_share", "unseen_categories"}
        assert ev["payload"]["report_url"].startswith("http://reports.example:8080/demo_classifier/")
        assert any(r["prefect.resource.role"] == "flow-run" for r in ev["related"])

        # the automation turned it into one notification, through the notification block
        wait_until(lambda: chat.posts, timeout=60)
        time.sleep(3)  # a duplicate would arrive within this
        assert len(chat.posts) == 1, chat.posts
        note = chat.posts[0]["text"]
        assert note.startswith(f"mlmon: demo_classifier {label} FAIL\n") and note.count("mlmon:") == 1
        assert "missing_share" in note and "Report: http://reports.example:8080/demo_classifier/" in note


def test_every_log_line_of_a_window_run_names_the_model_and_window(demo_env: dict[str, str]) -> None:
    """What the console and the Prefect UI show for each line: the run's name (task run for task lines,
    flow run for flow lines) and the message. Each names the model and the window's day."""
    import logging

    from mlmon.flows.monitor import monitor_window

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    monitor_window("demo_classifier", *day(2))  # a process's first flow run configures Prefect's logging
    collect = Collect()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    for lg in loggers:
        lg.addHandler(collect)
    try:
        monitor_window("demo_classifier", *day(2))
    finally:
        for lg in loggers:
            lg.removeHandler(collect)
    lines = []
    for r in collect.records:
        if r.name.startswith("prefect.task_runs"):
            lines.append(f"Task run {getattr(r, 'task_run_name', '?')!r} - {r.getMessage()}")
        else:
            lines.append(f"Flow run {getattr(r, 'flow_run_name', '?')!r} - {r.getMessage()}")
    assert len(lines) > 10, lines
    unnamed = [line for line in lines if "demo_classifier" not in line or "2026-02-04" not in line]
    assert not unnamed, unnamed


def test_the_retention_flow_counts_old_windows_in_a_dry_run_and_deletes_nothing(
    demo_env: dict[str, str],
) -> None:
    from mlmon.flows.maintenance import retention_flow
    from mlmon.flows.monitor import monitor_window
    from mlmon.tasks.errors import ConfigError

    pg = demo_env["MLMON_POSTGRES_URI"]
    monitor_window("demo_classifier", *day(1))  # at least one old window, whatever ran before
    before = rows(pg, "select count(*) from mlmon.runs where model = %s", "demo_classifier")[0][0]
    out = retention_flow(older_than="1d", dry_run=True)
    assert out["dry_run"] and out["windows"] >= before > 0 and out["rows"]["runs"] >= before
    assert rows(pg, "select count(*) from mlmon.runs where model = %s", "demo_classifier")[0][0] == before
    with pytest.raises(ConfigError, match=r"has no `retention: \{keep"):
        retention_flow()  # the module's config has no `retention:`


def test_a_webhook_url_can_come_from_a_prefect_secret_block(demo_env: dict[str, str]) -> None:
    from prefect.blocks.system import Secret

    from mlmon.tasks import alerts
    from mlmon.tasks.config import AlertsConfig

    Secret(value="https://hooks.example/services/T/B/s3cret").save("mlmon-test-webhook", overwrite=True)
    assert alerts.webhook_url(AlertsConfig(webhook_secret="mlmon-test-webhook"), env={}) == (
        "https://hooks.example/services/T/B/s3cret"
    )
    with pytest.raises(alerts.AlertError, match="cannot read the Prefect Secret block 'no-such-block'"):
        alerts.webhook_url(AlertsConfig(webhook_secret="no-such-block"), env={})


@contextmanager
def refused(pg_uri: str, table: str, start: datetime, when: str = "true") -> Iterator[None]:
    """A real store failure: PostgreSQL refuses every row written to ``table`` for the window at ``start``."""
    name = f"mlmon_test_refuse_{table}"
    with psycopg2.connect(pg_uri) as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'disk full (test)'; END $$;"
            f" CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON mlmon.{table} FOR EACH ROW"
            f" WHEN (NEW.window_start = '{start.isoformat()}' AND {when}) EXECUTE FUNCTION {name}()"
        )
    try:
        yield
    finally:
        with psycopg2.connect(pg_uri) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS {name} ON mlmon.{table}; DROP FUNCTION IF EXISTS {name}()")


def test_after_a_store_failure_the_report_and_postgres_agree(demo_env: dict[str, str]) -> None:
    """Report and index are published only after the store commits; the run row says error, and when
    even that cannot be written, mlmon status calls the leftover running row stale."""
    from mlmon.flows.monitor import monitor_window
    from mlmon.tasks import operations
    from mlmon.tasks.config import load_config
    from mlmon.tasks.store import store
    from mlmon.tasks.window import Window

    pg, reports = demo_env["MLMON_POSTGRES_URI"], Path(demo_env["MLMON_REPORTS_DIR"])
    start, end = day(6)
    w = Window(start, end)
    monitor_window("demo_classifier", start, end)
    page = next(reports.glob(f"*/{w.slug}.html"))
    published = [page, page.with_suffix(".json"), reports / "index.html"]
    before = {p: p.read_bytes() for p in published}
    good = rows(pg, "SELECT status, computed_at FROM mlmon.runs WHERE model = 'demo_classifier'"
                    " AND window_start = %s", start)  # fmt: skip

    with refused(pg, "checks", start), pytest.raises(Exception, match="disk full"):
        monitor_window("demo_classifier", start, end)
    assert {p: p.read_bytes() for p in published} == before  # the old result, everywhere
    assert not any((reports / ".staging").rglob("*.*"))  # nothing staged is left behind
    (status, message, computed_at), = rows(
        pg, "SELECT status, message, computed_at FROM mlmon.runs WHERE model = 'demo_classifier'"
            " AND window_start = %s", start)  # fmt: skip
    assert status == "error" and "disk full" in message and computed_at == good[0][1]

    # the database refuses even the error mark: the row stays running, and status says it is stale
    with refused(pg, "checks", start), refused(pg, "runs", start, "NEW.status = 'error'"):
        with pytest.raises(Exception, match="disk full"):
            monitor_window("demo_classifier", start, end)
    (run,) = [r for r in store.list_runs(pg, "demo_classifier") if r.window == w]
    assert run.status == "running"
    cfg = load_config(demo_env["MLMON_CONFIG"]).model("demo_classifier")
    later = run.started_at + timedelta(hours=3)
    assert operations.status_from_runs(cfg, [run], later).last_status == "running (stale)"
    assert operations.status_from_runs(cfg, [run], run.started_at).last_status == "running"
    assert "running (stale)" in operations.format_status([operations.status_from_runs(cfg, [run], later)])
    assert {p: p.read_bytes() for p in published} == before


def test_a_window_with_evidently_gets_its_section_from_the_worker_processes(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    """Evidently on (the module's config has it off): its parts run in worker processes while the
    checks run, and the window's report links Evidently's page."""
    import yaml

    from mlmon.flows.monitor import monitor_window
    from mlmon.tasks.window import Window

    raw = yaml.safe_load(Path(demo_env["MLMON_CONFIG"]).read_text())
    raw["models"]["demo_classifier"]["evidently"] = {"enabled": True, "max_rows": 400, "workers": 2}
    cfg_path = tmp_path / "models.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    pg, reports = demo_env["MLMON_POSTGRES_URI"], Path(demo_env["MLMON_REPORTS_DIR"])
    start, end = day(3)
    monitor_window("demo_classifier", start, end, str(cfg_path))
    slug = Window(start, end).slug
    evid = next(reports.glob(f"demo_classifier/{slug}.evidently.html")).read_text()
    assert "window.drawDashboard(" in evid and "Data drift and summary: 400 rows" in evid
    assert f"{slug}.evidently.html" in next(reports.glob(f"demo_classifier/{slug}.html")).read_text()
    (used,) = rows(
        pg,
        "SELECT evidently_rows FROM mlmon.runs WHERE model = 'demo_classifier' AND window_start = %s",
        start,
    )[0]
    assert used == 400
