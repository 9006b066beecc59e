"""Alerts: what they say, and that each channel announces a window's failures once (real PostgreSQL, a
real HTTP endpoint standing in for the webhook). The Prefect event path is in tests/test_flows.py."""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from mlmon.tasks import alerts
from mlmon.tasks.checks.outcome import Category, CheckResult, Status
from mlmon.tasks.config import AlertsConfig
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests import factories
from tests.receiver import receiver

W = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
ENV = "MLMON_TEST_ALERT_WEBHOOK"


def check(name: str, status: Status, feature: str = "", segment: str = "all", msg: str = "") -> CheckResult:
    return CheckResult(name, Category.DRIFT, status, 0.3, 0.1, msg or f"{name} is off", feature, segment)


FAILING = [
    check("feature_drift", Status.FAIL, "income"),
    check("error_rate", Status.FAIL),
    check("missing_share", Status.WARN, "age"),
    check("volume", Status.PASS),
]


def alert(checks: list[CheckResult], cfg: AlertsConfig | None = None) -> alerts.Alert:
    return alerts.alert_for(
        "churn", W, checks, cfg or AlertsConfig(), "http://reports:8080/churn/2026-03-01.html"
    )


# ------------------------------------------------------------------------------------------ contents


def test_an_alert_lists_the_checks_at_or_above_min_status_worst_first() -> None:
    a = alert(FAILING)
    assert [c.check for c in a.checks] == ["error_rate", "feature_drift"]
    assert a.status is Status.FAIL and a.firing
    warn = alert(FAILING, AlertsConfig(min_status="warn"))
    assert {c.check for c in warn.checks} == {"feature_drift", "error_rate", "missing_share"}
    assert warn.checks[-1].check == "missing_share"  # the warning after the failures
    assert not alert([check("volume", Status.PASS), check("x", Status.WARN)]).firing


def test_the_fingerprint_is_the_set_of_failures_not_their_order_or_values() -> None:
    a = alert(FAILING)
    assert alert(list(reversed(FAILING))).fingerprint == a.fingerprint
    other_values = [
        CheckResult(c.check, c.category, c.status, 9.9, 1.0, "new words", c.feature, c.segment)
        for c in FAILING
    ]
    assert alert(other_values).fingerprint == a.fingerprint
    assert alert(FAILING[1:]).fingerprint != a.fingerprint  # a failure fewer
    escalated = [*FAILING[:1], check("error_rate", Status.ERROR), *FAILING[2:]]
    assert alert(escalated).fingerprint != a.fingerprint  # fail -> error
    segment = [*FAILING, check("error_rate", Status.FAIL, segment="model_version=v2")]
    assert alert(segment).fingerprint != a.fingerprint


def test_the_event_payload_is_json_with_everything_a_notification_needs() -> None:
    nan = CheckResult("latency_p95", Category.HEALTH, Status.FAIL, float("nan"), float("inf"), "p95 up")
    a = alert([*FAILING, nan])
    payload = json.loads(json.dumps(alerts.event_payload(a), allow_nan=False))
    assert payload["model"] == "churn" and payload["status"] == "fail" and payload["n_failed"] == 3
    assert payload["window_start"] == "2026-03-01T00:00:00+00:00"
    assert payload["report_url"].endswith("/churn/2026-03-01.html")
    assert {(c["check"], c["feature"]) for c in payload["failed_checks"]} == {
        ("feature_drift", "income"), ("error_rate", ""), ("latency_p95", ""),
    }  # fmt: skip
    p95 = next(c for c in payload["failed_checks"] if c["check"] == "latency_p95")
    assert p95["value"] is None and p95["threshold"] is None
    assert alerts.event_resource(a)["prefect.resource.id"] == "mlmon.model.churn"


def test_slack_text_cannot_be_hijacked_by_values_from_the_logs() -> None:
    hostile = check(
        "unseen_categories", Status.FAIL, "country", "plan=<!channel>", "new <!here> & <http://evil|x>"
    )
    payload = alerts.slack_payload(alert([hostile]))
    text = payload["text"] + json.dumps(payload["blocks"])
    assert "<!channel>" not in text and "<!here>" not in text and "<http://evil" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert "<http://reports:8080/churn/2026-03-01.html|Open the report>" in payload["text"]


def test_reserved_columns_are_named_as_in_the_report() -> None:
    a = alert(
        [check("prediction_drift", Status.FAIL, "__prediction"), check("x", Status.FAIL, "__proba::churn")]
    )
    assert "prediction_drift[prediction]" in alerts.summary_line(a) and "x[p(churn)]" in alerts.summary_line(
        a
    )
    assert alerts.event_payload(a)["failed_checks"][0]["column"] == "prediction"


def test_a_long_list_is_cut_in_the_message_but_not_in_the_event() -> None:
    many = [check("feature_drift", Status.FAIL, f"f{i:02d}") for i in range(40)]
    a = alert(many)
    section = alerts.slack_payload(a)["blocks"][1]["text"]["text"]
    assert section.count("• ") == alerts.MAX_LISTED and "and 25 more" in section
    assert len(alerts.event_payload(a)["failed_checks"]) == 40


def test_config_takes_one_webhook_source_and_only_a_variable_name() -> None:
    with pytest.raises(ValueError, match="not both"):
        AlertsConfig(webhook_env="X", webhook_secret="y")
    with pytest.raises(ValueError, match="pattern"):
        AlertsConfig(webhook_env="https://hooks.slack.com/services/T/B/x")
    with pytest.raises(ValueError, match=r"webhook\n.*Extra inputs are not permitted"):
        factories.config("m", alerts={"webhook": "https://x"})


# ----------------------------------------------------------------------------------- deduplication


@pytest.fixture
def pg(pg_schema_uri: str) -> str:
    store.migrate(pg_schema_uri)
    return pg_schema_uri


def alert_rows(pg: str) -> list[tuple]:
    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT model, channel, status, n_failed FROM mlmon.alerts ORDER BY channel")
        return cur.fetchall()


@pytest.mark.integration
def test_each_channel_sends_a_window_once_then_updates_and_resolution(pg: str) -> None:
    cfg = AlertsConfig(webhook_env=ENV)
    events: list[tuple[str, dict]] = []

    def emit(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        events.append((event, payload))

    with receiver() as rec:
        env = {ENV: rec.url}

        def notify(checks: list[CheckResult]) -> dict[str, str]:
            return alerts.notify(pg, cfg, alert(checks, cfg), emit=emit, env=env)

        assert notify(FAILING) == {"prefect-event": "sent", "webhook": "sent"}
        assert len(rec.posts) == 1 and rec.posts[0]["text"].startswith(
            "mlmon: churn 2026-03-01T00:00Z FAIL\n2 failed: error_rate, feature_drift[income]\n<http://"
        )
        assert alert_rows(pg) == [("churn", "prefect-event", "fail", 2), ("churn", "webhook", "fail", 2)]
        # a re-run that changes nothing sends nothing new (also when only the numbers moved)
        assert notify(FAILING) == {"prefect-event": "duplicate", "webhook": "duplicate"}
        assert len(rec.posts) == 1 and len(events) == 1
        # a new failure is news
        worse = [*FAILING, check("latency_p99", Status.FAIL)]
        assert notify(worse) == {"prefect-event": "sent", "webhook": "sent"}
        assert len(rec.posts) == 2 and "latency_p99" in rec.posts[1]["blocks"][1]["text"]["text"]
        # the window passes again: "resolved" once, then quiet
        passing = [check("volume", Status.PASS)]
        assert notify(passing) == {"prefect-event": "resolved", "webhook": "resolved"}
        assert notify(passing) == {"prefect-event": "quiet", "webhook": "quiet"}
        assert "resolved" in rec.posts[2]["text"] and len(rec.posts) == 3
        assert [e for e, _ in events] == ["mlmon.window.failed"] * 2 + ["mlmon.window.resolved"]
        assert alert_rows(pg) == []
        # and fails again: a fresh alert
        assert notify(FAILING)["webhook"] == "sent" and len(rec.posts) == 4


@pytest.mark.integration
def test_a_window_that_passes_from_the_start_sends_nothing(pg: str) -> None:
    with receiver() as rec:
        out = alerts.notify(
            pg, AlertsConfig(webhook_env=ENV), alert([check("volume", Status.PASS)]), emit=None,
            env={ENV: rec.url},
        )  # fmt: skip
        assert out == {"webhook": "quiet"} and rec.posts == []


@pytest.mark.integration
def test_a_failed_send_is_not_recorded_and_the_next_run_sends_it(pg: str) -> None:
    cfg = AlertsConfig(webhook_env=ENV)
    with receiver() as rec:
        rec.status = 500
        out = alerts.notify(pg, cfg, alert(FAILING), emit=None, env={ENV: rec.url})
        assert out["webhook"].startswith("error: webhook http://127.0.0.1:")
        assert (
            "HTTP 500" in out["webhook"] and "secret-token" not in out["webhook"]
        )  # the URL's secret stays out
        assert alert_rows(pg) == []
        rec.status = 200
        assert alerts.notify(pg, cfg, alert(FAILING), emit=None, env={ENV: rec.url}) == {"webhook": "sent"}
        assert len(rec.posts) == 1


@pytest.mark.integration
def test_an_emit_that_raises_does_not_stop_the_webhook(pg: str) -> None:
    def broken(*_: Any) -> None:
        raise ConnectionError("events websocket closed")

    with receiver() as rec:
        out = alerts.notify(
            pg, AlertsConfig(webhook_env=ENV), alert(FAILING), emit=broken, env={ENV: rec.url}
        )
    assert out["prefect-event"].startswith("error: ConnectionError") and out["webhook"] == "sent"
    assert [r[1] for r in alert_rows(pg)] == ["webhook"]  # the event is retried by the next run


@pytest.mark.integration
def test_a_missing_webhook_variable_is_a_clear_error_not_a_crash(pg: str) -> None:
    out = alerts.notify(pg, AlertsConfig(webhook_env=ENV), alert(FAILING), emit=None, env={})
    assert out == {"webhook": f"error: alerts.webhook_env names {ENV}, which is not set: export it "
                   "(the webhook URL), or remove webhook_env from the model's alerts config"}  # fmt: skip


@pytest.mark.integration
def test_disabled_alerts_send_nothing(pg: str) -> None:
    with receiver() as rec:
        out = alerts.notify(
            pg, AlertsConfig(enabled=False, webhook_env=ENV), alert(FAILING), emit=None, env={ENV: rec.url}
        )
    assert out == {"alerts": "disabled"} and rec.posts == [] and alert_rows(pg) == []


@pytest.mark.integration
def test_two_runs_of_one_window_at_once_send_one_alert(pg: str) -> None:
    """The claim's row lock makes the second run wait for the first to send and commit, then see it."""
    cfg = AlertsConfig(webhook_env=ENV)
    with receiver() as rec:
        slow_post_started = threading.Event()

        def slow_post(url: str, payload: dict[str, Any]) -> None:
            slow_post_started.set()
            threading.Event().wait(0.5)
            alerts.post_json(url, payload)

        results: list[dict[str, str]] = []
        first = threading.Thread(
            target=lambda: results.append(
                alerts.notify(pg, cfg, alert(FAILING), emit=None, env={ENV: rec.url}, post=slow_post)
            )
        )
        first.start()
        assert slow_post_started.wait(10)
        results.append(alerts.notify(pg, cfg, alert(FAILING), emit=None, env={ENV: rec.url}))
        first.join(10)
    assert sorted(r["webhook"] for r in results) == ["duplicate", "sent"]
    assert len(rec.posts) == 1


@pytest.mark.integration
def test_retention_deletes_a_windows_alerts_with_it(pg: str) -> None:
    with receiver() as rec:
        alerts.notify(pg, AlertsConfig(webhook_env=ENV), alert(FAILING), emit=None, env={ENV: rec.url})
    purge = store.purge_windows(pg, W.end + timedelta(days=1), dry_run=False)
    assert purge.rows["alerts"] == 1 and alert_rows(pg) == []


def test_the_shipped_automations_are_valid_prefect_automations_on_our_events() -> None:
    import uuid

    from mlmon import automations

    block = uuid.uuid4()
    loaded = automations.load(automations.AUTOMATIONS_FILE, block)
    assert {a.name: a.trigger.expect for a in loaded} == {
        "mlmon-window-failed": {alerts.EVENT_FAILED},
        "mlmon-window-resolved": {alerts.EVENT_RESOLVED},
    }
    assert all(a.actions[0].block_document_id == block for a in loaded)
    # the placeholder is the only thing missing for `prefect automation create --from-file`
    assert automations.PLACEHOLDER in automations.AUTOMATIONS_FILE.read_text()


# ------------------------------------------------------------------------ alerts follow incidents


def test_alerts_follow_incidents_not_windows(pg_schema_uri: str) -> None:
    """Four failing windows of the same seasonal drift: one alert when it opens, none while it is only
    ongoing, a reminder after ``remind_every``, one "resolved" when it goes; the same sentences."""
    from mlmon.tasks import incidents as inc

    store.migrate(pg_schema_uri)
    cfg = AlertsConfig(remind_every="3d")
    drift = inc.Incident("column:income", inc.Kind.COLUMN, "income", Status.FAIL, "income: drift 1.2 σ")
    checks = [check("feature_drift", Status.FAIL, "income")]
    sent: list[tuple[str, dict[str, Any]]] = []

    def emit(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        sent.append((event, payload))

    previous: list[inc.PreviousIncident] = []
    outcomes = []
    for day, now in enumerate([[drift], [drift], [drift], [drift], []]):
        w = factories.window(day)
        states = inc.track(now, previous, w, timedelta(days=3))
        a = alerts.incident_alert("m", w, checks if now else [], states, cfg, None)
        outcomes.append(alerts.notify(pg_schema_uri, cfg, a, emit=emit)["prefect-event"])
        assert alerts.notify(pg_schema_uri, cfg, a, emit=emit)["prefect-event"] in (
            "duplicate",
            "quiet",
        )  # re-run
        previous = [
            inc.PreviousIncident(
                s.incident.key, s.incident.kind, s.incident.subject, s.incident.status, s.incident.sentence,
                s.incident.feature, s.opened_start, s.n_windows, s.last_announced_start,
            )
            for s in states
            if s.change is not inc.Change.RESOLVED
        ]  # fmt: skip
    assert outcomes == ["sent", "quiet", "quiet", "sent", "sent"]  # opened, ongoing ×2, reminder, resolved
    events = [e for e, _ in sent]
    assert events == [alerts.EVENT_FAILED, alerts.EVENT_FAILED, alerts.EVENT_RESOLVED]
    assert [p["incidents"][0]["change"] for _, p in sent] == ["opened", "ongoing", "resolved"]
    assert sent[1][1]["incidents"][0]["reminder"] is True
    assert all(p["incidents"][0]["sentence"] == "income: drift 1.2 σ" for _, p in sent)
    text = alerts.slack_payload(
        alerts.incident_alert(
            "m", factories.window(0), checks, inc.fresh([drift], factories.window(0)), cfg, None
        )
    )["text"]
    assert "1 new: income" in text
    body = alerts.slack_payload(
        alerts.incident_alert(
            "m", factories.window(0), checks, inc.fresh([drift], factories.window(0)), cfg, None
        )
    )["blocks"][1]["text"]["text"]
    assert "• [new] income: drift 1.2 σ" in body


SECRET_PATH = "/services/T0SEC/B0SEC/sec ret-token-42"


@pytest.mark.integration
@pytest.mark.parametrize(
    "how",
    ["space in the path (http.client.InvalidURL)", "bad port (ValueError)", "any other exception type"],
)
def test_the_webhook_secret_appears_nowhere_whatever_the_error(
    pg: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = {
        "space in the path (http.client.InvalidURL)": f"http://127.0.0.1:9{SECRET_PATH}",
        "bad port (ValueError)": f"http://127.0.0.1:9x{SECRET_PATH}",
        "any other exception type": f"https://hooks.example{SECRET_PATH}",
    }[how]

    def post(u: str, payload: dict[str, Any]) -> None:
        if how == "any other exception type":
            raise KeyError(f"cannot post to {u!r} ({urllib.parse.quote(u)})")
        alerts.post_json(u, payload)

    caplog.set_level(logging.DEBUG)
    out = alerts.notify(
        pg, AlertsConfig(webhook_env=ENV), alert(FAILING), emit=None, env={ENV: url}, post=post
    )
    assert out["webhook"].startswith("error: ")
    said = out["webhook"] + caplog.text
    for piece in ("sec ret", "sec%20ret", "T0SEC", "B0SEC", "token-42", SECRET_PATH):
        assert piece not in said, (piece, said)
    assert alert_rows(pg) == []  # not recorded: the next run tries again
