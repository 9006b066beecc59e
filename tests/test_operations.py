"""``mlmon status`` and retention: pure status logic, then both against a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlmon.tasks import operations as ops
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import Config
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests import factories

DAY = timedelta(days=1)
D0 = datetime(2026, 3, 1, tzinfo=UTC)


def day(i: int) -> Window:
    return Window(D0 + i * DAY, D0 + (i + 1) * DAY)


def cfg(name: str = "m"):
    return factories.config(name, schedule={"lateness": "15m"})


# ------------------------------------------------------------------------------------------ pure status


def test_status_of_a_model_never_run() -> None:
    row = ops.status_from_runs(cfg(), [], D0)
    assert row.last_status is None and row.windows_behind is None and row.n_error_or_missing == 0


# ------------------------------------------------------------------------------------------ integration


@pytest.fixture
def pg(pg_schema_uri: str) -> str:
    store.migrate(pg_schema_uri)
    return pg_schema_uri


def write(pg: str, model: str, w: Window, status: Status = Status.PASS) -> None:
    store.write_window(pg, factories.small_result(model, w, status), report_path=None, flow_run_id=None)


@pytest.mark.integration
def test_status_shows_how_far_behind_after_a_gap(pg: str) -> None:
    for i in (0, 1, 2):
        write(pg, "m", day(i))
    store.mark_failed(pg, "m", day(5), "boom", None)
    now = D0 + 8 * DAY + timedelta(hours=1)
    config = Config(models={"m": cfg("m"), "fresh": cfg("fresh")})

    rows = {r.model: r for r in ops.status_rows(config, pg, now)}

    m = rows["m"]
    assert (m.last_window_start, m.last_status) == (day(5).start, "error")
    assert m.windows_behind == 5  # days 3..7 closed after the last processed day 2
    assert m.behind_by == 5 * DAY
    # last 7 days start at day 1 + 1h: days 2..7 expected; 3, 4, 6, 7 missing and 5 error
    assert m.n_error_or_missing == 5
    assert rows["fresh"].last_status is None and rows["fresh"].windows_behind is None
    text = ops.format_status(rows.values())
    assert "5 (5d 0h)" in text and "never" in text
    assert text.splitlines()[0].split()[:2] == ["model", "last"]


@pytest.mark.integration
def test_status_up_to_date_is_zero_behind(pg: str) -> None:
    for i in (0, 1):
        write(pg, "m", day(i))
    rows = ops.status_rows(Config(models={"m": cfg()}), pg, day(1).end + timedelta(minutes=20))
    assert (rows[0].windows_behind, rows[0].behind_by, rows[0].n_error_or_missing) == (0, timedelta(0), 0)


# ------------------------------------------------------------------------------------------- retention


def fake_report(reports: Path, model: str, w: Window) -> list[Path]:
    from mlmon.reports import render

    folder = reports / render.model_dir(model)
    folder.mkdir(parents=True, exist_ok=True)
    result = factories.small_result(model, w)
    paths = [folder / f"{w.slug}{s}" for s in ops.REPORT_SUFFIXES]
    paths[0].write_text("<html></html>")
    paths[1].write_text("<html>evidently</html>")
    summary = render.summarize(result, f"{folder.name}/{paths[0].name}")
    paths[2].write_text(json.dumps(summary.to_json()))
    paths[3].write_text(json.dumps(render.result_to_json(result)))
    return paths


def all_counts(pg: str, model: str, windows: list[Window]) -> dict[Window, dict[str, int]]:
    return {w: store.window_rows(pg, model, w) for w in windows}


@pytest.mark.integration
def test_retention_deletes_old_windows_but_keeps_running_and_new_ones(pg: str, tmp_path: Path) -> None:
    old, running, new = [day(0), day(1)], day(2), day(40)
    windows = [*old, running, new]
    files = {}
    for w in windows:
        write(pg, "m", w)
        files[w] = fake_report(tmp_path, "m", w)
    store.mark_running(pg, "m", running, "flow-1")
    now = day(40).end + timedelta(hours=1)
    before = all_counts(pg, "m", windows)

    dry = ops.retention(pg, tmp_path, timedelta(days=30), now, dry_run=True)

    assert dry.dry_run and dry.windows == 2 and dry.kept_running == 1
    assert dry.rows["runs"] == 2 and dry.rows["metrics"] == 2 and dry.rows["checks"] == 2
    assert dry.files == 8
    assert all_counts(pg, "m", windows) == before
    assert all(p.exists() for ps in files.values() for p in ps)

    done = ops.retention(pg, tmp_path, timedelta(days=30), now, dry_run=False)

    assert (done.windows, done.rows, done.files) == (dry.windows, dry.rows, dry.files)
    after = all_counts(pg, "m", windows)
    for w in old:
        assert set(after[w].values()) == {0}
        assert not any(p.exists() for p in files[w])
    assert after[running] == before[running] and after[new] == before[new]
    assert [r.status for r in store.list_runs(pg, "m")] == ["running", "pass"]
    assert all(p.exists() for w in (running, new) for p in files[w])
    index = (tmp_path / "index.html").read_text()
    assert day(40).label[:10] in index and day(0).label[:10] not in index
    # nothing left to do
    again = ops.retention(pg, tmp_path, timedelta(days=30), now, dry_run=False)
    assert again.windows == 0 and again.files == 0 and again.kept_running == 1


@pytest.mark.integration
def test_retention_also_clears_the_windows_alerts(pg: str, tmp_path: Path) -> None:
    import psycopg2

    with psycopg2.connect(pg) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO mlmon.alerts (model, window_start, window_end, channel, fingerprint, status, n_failed)"
            " VALUES ('m', %s, %s, 'webhook', 'a', 'fail', 1), ('m', %s, %s, 'webhook', 'b', 'fail', 2)",
            (day(0).start, day(0).end, day(40).start, day(40).end),
        )
    write(pg, "m", day(0))
    r = ops.retention(pg, tmp_path, timedelta(days=30), day(40).end, dry_run=False)
    assert r.rows["alerts"] == 1 and r.rows["runs"] == 1
