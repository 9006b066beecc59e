"""Window writes: one transaction, replace-never-duplicate, hostile strings as data, NaN as NULL."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from mlmon.tasks.checks.outcome import Category, CheckResult, Metric, QuarantinedDoc, Status
from mlmon.tasks.errors import StoreError
from mlmon.tasks.store import store
from tests.postgres import rows as query
from tests.store.concurrency import at_once
from tests.store.factories import drift_row, expected_rows, result, window

pytestmark = pytest.mark.integration

HOSTILE = [
    "x'); drop table mlmon.metrics; --",
    'quote " double',
    "comma, and\nnewline\r\nand\ttab",
    "back\\slash \\N \\. end",
    "\\.",
    "before\n\\.\nafter",  # COPY's end-of-data marker on a line of its own
    "",
    "  spaces  ",
    "unicode é ü 中文 🚀",
    "nul\x00inside",
    "$$ dollar $$ %s %(x)s {}",
]


@pytest.fixture
def uri(pg_schema_uri: str) -> str:
    store.migrate(pg_schema_uri)
    return pg_schema_uri


def test_the_same_window_written_three_times_is_stored_once(uri: str) -> None:
    r = result()
    other = result(w=window(1))
    store.write_window(uri, other, report_path="churn/other.html", flow_run_id=None)
    for i in range(3):
        store.write_window(uri, r, report_path=f"churn/{i}.html", flow_run_id=f"run-{i}")
        assert store.window_rows(uri, r.model, r.window) == expected_rows(r)
    assert store.window_rows(uri, other.model, other.window) == expected_rows(other)
    (run,) = store.list_runs(uri, model="churn")[:1]
    assert (run.report_path, run.flow_run_id, run.status) == ("churn/2.html", "run-2", "warn")


def test_a_rerun_with_fewer_rows_leaves_no_stale_rows(uri: str) -> None:
    store.write_window(uri, result(n_features=5, n_quarantined=4), report_path=None, flow_run_id=None)
    smaller = result(n_features=1, segments=("all",), n_quarantined=0)
    store.write_window(uri, smaller, report_path=None, flow_run_id=None)
    assert store.window_rows(uri, "churn", window()) == expected_rows(smaller)


def test_the_run_row_and_rows_map_to_the_result(uri: str) -> None:
    r = result()
    store.write_window(uri, r, report_path="churn/report.html", flow_run_id="abc")
    (run,) = store.list_runs(uri)
    assert run.window == r.window and run.window_start.tzinfo is not None
    assert (run.status, run.n_rows, run.n_quarantined, run.n_labelled) == ("warn", 500, 2, 400)
    assert run.label_coverage == pytest.approx(0.8)
    assert run.n_failed_checks == 0 and run.evidently_rows == 500 and run.reference_hash == "ref-abc123"
    assert run.computed_at == r.computed_at == run.labels_checked_at
    assert run.message is not None and run.message.startswith(
        "2 warned: dataset_drift, dataset_drift@country=FR"
    )
    assert run.finished_at is not None and run.started_at is None  # no mark_running for this run
    # window-level rows: feature '' and segment 'all', never NULL
    assert query(uri, "SELECT feature, segment, value FROM mlmon.metrics WHERE metric = 'row_count'") == [
        ("", "all", 500.0)
    ]
    assert query(
        uri,
        "SELECT check_name, category, status, value, threshold, message FROM mlmon.checks "
        "WHERE check_name = 'volume'",
    ) == [("volume", "quality", "pass", 500.0, 100.0, "500 rows")]
    d = r.drift[0]
    assert query(
        uri,
        "SELECT kind, test_method, statistic, p_value, p_adjusted, effect_method, effect, effect_threshold, "
        "n_reference, n_current, status, message FROM mlmon.drift WHERE feature = %s AND segment = %s",
        d.feature,
        d.segment,
    ) == [
        ("numerical", "ks", d.statistic, d.p_value, d.p_adjusted, "wasserstein", d.effect, d.effect_threshold,
         1000, 480, "fail", d.message)
    ]  # fmt: skip
    assert query(uri, "SELECT seq, doc_id, reason, field FROM mlmon.quarantine ORDER BY seq") == [
        (0, "id0", "wrong_type", "age"),
        (1, "id1", "wrong_type", "age"),
    ]
    (latest,) = query(uri, "SELECT model, status, severity FROM mlmon.latest_runs")
    assert latest == ("churn", "warn", 1)


def test_a_failing_write_rolls_back_and_keeps_the_previous_results(uri: str) -> None:
    good = result()
    store.write_window(uri, good, report_path="churn/good.html", flow_run_id="good")
    before = store.list_runs(uri)
    metrics_before = query(uri, "SELECT * FROM mlmon.metrics ORDER BY metric, feature, segment")
    # metrics and checks are COPYed before drift: the bad drift row fails after deletes and inserts ran
    bad = replace(
        result(n_features=6, n_quarantined=0),
        drift=(*good.drift, drift_row("poison", n_current=-1)),
    )
    with pytest.raises(StoreError, match=r"writing 'churn'.*rolled back.*drift_counts"):
        store.write_window(uri, bad, report_path="churn/bad.html", flow_run_id="bad")
    assert store.window_rows(uri, good.model, good.window) == expected_rows(good)
    assert store.list_runs(uri) == before
    assert query(uri, "SELECT * FROM mlmon.metrics ORDER BY metric, feature, segment") == metrics_before


def test_an_unknown_status_is_refused_by_the_database(uri: str) -> None:
    good = result()
    store.write_window(uri, good, report_path=None, flow_run_id=None)
    bogus = drift_row("new_feature", status="bogus")
    with pytest.raises(StoreError, match="drift_status"):
        store.write_window(uri, replace(good, drift=(*good.drift, bogus)), report_path=None, flow_run_id=None)
    assert store.window_rows(uri, good.model, good.window) == expected_rows(good)


def test_hostile_names_and_strings_round_trip_as_data(uri: str) -> None:
    clean = [s.replace("\x00", "\ufffd") for s in HOSTILE]
    model = HOSTILE[0] + "\x00"
    r = result(
        model=model,
        metrics=tuple(Metric(name, float(i), feature=name, segment=name) for i, name in enumerate(HOSTILE)),
        checks=tuple(
            CheckResult(name or "empty", Category.HEALTH, Status.FAIL, None, None, name, feature=name)
            for name in HOSTILE
        ),
        drift=tuple(drift_row(name, message=name, test_method=name or None) for name in HOSTILE),
        quarantine=tuple(QuarantinedDoc(name, "wrong_type", name, name, name) for name in HOSTILE),
        n_quarantined=len(HOSTILE),
    )
    store.write_window(uri, r, report_path=HOSTILE[0], flow_run_id=HOSTILE[3])
    stored_model = model.replace("\x00", "\ufffd")
    assert store.window_rows(uri, model, r.window) == expected_rows(r)
    assert query(uri, "SELECT to_regclass('mlmon.metrics') IS NOT NULL") == [(True,)]
    assert query(uri, "SELECT metric, feature, segment FROM mlmon.metrics WHERE model = %s ORDER BY value",
                 stored_model) == [(s, s, s) for s in clean]  # fmt: skip
    assert sorted(query(uri, "SELECT feature, message FROM mlmon.checks")) == sorted((s, s) for s in clean)
    assert sorted(query(uri, "SELECT feature, message, test_method FROM mlmon.drift")) == sorted(
        (s, s, s or None) for s in clean
    )
    assert query(uri, "SELECT doc_id, field, detail, document FROM mlmon.quarantine ORDER BY seq") == [
        (s, s, s, s) for s in clean
    ]
    (run,) = store.list_runs(uri, model=model)
    assert (run.model, run.report_path, run.flow_run_id) == (stored_model, HOSTILE[0], HOSTILE[3])
    assert run.message is not None and run.message.startswith(f"{len(HOSTILE)} failed: ")


def test_lone_surrogates_do_not_fail_the_window(uri: str) -> None:
    r = result(quarantine=(QuarantinedDoc("a", "wrong_type", "f", "bad \ud800 text", "{}"),), n_quarantined=1)
    store.write_window(uri, r, report_path=None, flow_run_id=None)
    assert query(uri, "SELECT detail FROM mlmon.quarantine") == [("bad ? text",)]


def test_nan_and_infinity_are_stored_as_null_and_finite_extremes_exactly(uri: str) -> None:
    odd = [math.nan, math.inf, -math.inf]
    exact = [1e-300, 5e-324, 1.7976931348623157e308, -0.0, 0.1 + 0.2, 12345678901234567.0]
    metrics = [Metric("m", v, feature=f"odd{i}") for i, v in enumerate(odd)]
    metrics += [Metric("m", v, feature=f"exact{i}") for i, v in enumerate(exact)]
    r = result(
        metrics=tuple(metrics),
        checks=(CheckResult("c", Category.DRIFT, Status.FAIL, math.nan, math.inf, "nan"),),
        drift=(drift_row(statistic=math.inf, p_value=math.nan, p_adjusted=None, effect=-math.inf),),
        n_rows=0,
        n_labelled=0,
    )
    store.write_window(uri, r, report_path=None, flow_run_id=None)
    stored = dict(query(uri, "SELECT feature, value FROM mlmon.metrics"))
    assert [stored[f"odd{i}"] for i in range(len(odd))] == [None, None, None]
    assert [stored[f"exact{i}"] for i in range(len(exact))] == exact
    assert query(uri, "SELECT value, threshold FROM mlmon.checks") == [(None, None)]
    assert query(uri, "SELECT statistic, p_value, p_adjusted, effect, effect_threshold FROM mlmon.drift") == [
        (None, None, None, None, 0.1)
    ]
    assert store.list_runs(uri)[0].label_coverage is None  # empty window: no coverage
    # NULL is skipped by aggregates, where a stored NaN would make the average NaN
    assert query(uri, "SELECT avg(value) FROM mlmon.metrics WHERE feature IN ('odd0', 'odd1', 'exact0')") == [
        (1e-300,)
    ]


def test_mark_running_then_write_keeps_the_start_time(pg_schema_uri: str) -> None:
    # mark_running migrates by itself: it may be the first call against a new database
    w = window()
    store.mark_running(pg_schema_uri, "churn", w, "flow-1")
    (run,) = store.list_runs(pg_schema_uri)
    assert (run.status, run.flow_run_id, run.n_rows, run.finished_at) == ("running", "flow-1", None, None)
    assert run.started_at is not None
    store.write_window(pg_schema_uri, result(w=w), report_path="r.html", flow_run_id="flow-1")
    (done,) = store.list_runs(pg_schema_uri)
    assert done.status == "warn" and done.started_at == run.started_at
    assert done.finished_at is not None and done.finished_at >= done.started_at
    # another flow run's write does not inherit a stale start
    store.mark_running(pg_schema_uri, "churn", w, "flow-2")
    store.write_window(pg_schema_uri, result(w=w), report_path="r.html", flow_run_id="flow-3")
    assert store.list_runs(pg_schema_uri)[0].started_at is None
    explicit = datetime(2026, 3, 1, 12, tzinfo=UTC)
    store.write_window(pg_schema_uri, result(w=w), report_path="r.html", flow_run_id="x", started_at=explicit)
    assert store.list_runs(pg_schema_uri)[0].started_at == explicit


def test_a_failed_rerun_keeps_the_last_good_results(uri: str) -> None:
    good = result()
    store.write_window(uri, good, report_path="churn/good.html", flow_run_id="flow-1")
    store.mark_running(uri, good.model, good.window, "flow-2")
    assert store.window_rows(uri, good.model, good.window) == expected_rows(good)
    store.mark_failed(
        uri, good.model, good.window, "SourceUnavailable: mongo down\x00" + "x" * 5000, "flow-2"
    )
    (run,) = store.list_runs(uri)
    assert run.status == "error" and run.flow_run_id == "flow-2" and run.started_at is not None
    assert run.message is not None and run.message.startswith("SourceUnavailable: mongo down\ufffd")
    assert len(run.message) == 2000
    # the last good results and their description stay
    assert (run.n_rows, run.report_path, run.computed_at) == (500, "churn/good.html", good.computed_at)
    assert store.window_rows(uri, good.model, good.window) == expected_rows(good)
    # the next successful run replaces it all
    store.write_window(uri, good, report_path="churn/new.html", flow_run_id="flow-3")
    assert store.list_runs(uri)[0].status == "warn"


def test_mark_failed_on_a_new_window_and_a_new_database(pg_schema_uri: str) -> None:
    store.mark_failed(pg_schema_uri, "churn", window(), "boom", None)
    (run,) = store.list_runs(pg_schema_uri)
    assert (run.status, run.message, run.n_rows, run.started_at, run.computed_at) == (
        "error", "boom", None, None, None
    )  # fmt: skip
    assert store.window_rows(pg_schema_uri, "churn", window()) == dict(
        runs=1, metrics=0, checks=0, drift=0, quarantine=0
    )


def test_list_runs_filters_by_model_and_orders_by_window(uri: str) -> None:
    for model, day in [("b", 1), ("a", 2), ("a", 0), ("b", 0)]:
        store.write_window(uri, result(model=model, w=window(day)), report_path=None, flow_run_id=None)
    assert [(r.model, r.window_start.day) for r in store.list_runs(uri)] == [
        ("a", 5), ("a", 7), ("b", 5), ("b", 6)
    ]  # fmt: skip
    assert [r.window_start.day for r in store.list_runs(uri, model="a")] == [5, 7]
    assert store.list_runs(uri, model="nobody") == []
    assert query(uri, "SELECT model, window_start FROM mlmon.latest_runs ORDER BY model") == [
        ("a", window(2).start), ("b", window(1).start)
    ]  # fmt: skip
    assert query(uri, "SELECT DISTINCT model, window_start FROM mlmon.latest_checks ORDER BY model") == [
        ("a", window(2).start), ("b", window(1).start)
    ]  # fmt: skip


def test_concurrent_writes_of_one_window_never_duplicate(uri: str) -> None:
    r = result(n_features=20)
    at_once(lambda: [store.write_window(uri, r, report_path=None, flow_run_id=None) for _ in range(3)])
    assert store.window_rows(uri, r.model, r.window) == expected_rows(r)


def test_an_open_connection_is_reused_and_left_as_it_was(uri: str) -> None:
    conn = store.connect(uri)
    try:
        conn.autocommit = True
        store.write_window(conn, result(), report_path=None, flow_run_id=None)
        assert not conn.closed and conn.autocommit
        assert store.window_rows(conn, "churn", window())["runs"] == 1
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        with pytest.raises(ValueError, match="inside a transaction"):
            store.write_window(conn, result(), report_path=None, flow_run_id=None)
    finally:
        conn.close()


def test_windows_are_stored_as_utc_instants(uri: str) -> None:
    r = result()
    store.write_window(uri, r, report_path=None, flow_run_id=None)
    with psycopg2.connect(uri, options="-c TimeZone=America/New_York") as conn, conn.cursor() as cur:
        cur.execute("SELECT window_start, window_end FROM mlmon.runs")
        start, end = cur.fetchone()
    conn.close()
    assert (start, end) == (r.window.start, r.window.end)
    assert end - start == timedelta(hours=24)
