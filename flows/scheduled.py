"""Scheduling glue: the flow a schedule runs (``scheduled_monitor``) and a backfill that fans out.

``scheduled_monitor`` takes its window from the slot Prefect scheduled it for (never the wall clock),
then catches up every window of the last ``catch_up`` that has no successful run (missed slots,
downtime, DST skips). Each window is processed under a Postgres advisory lock and re-checked once the
lock is held, so two runs of the same slot (a DST double, a retry, two runners) never process a window
twice. Which windows: :mod:`mlmon.tasks.schedule`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg2
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from mlmon.flows.monitor import _notify, backfill, monitor_window, report_link
from mlmon.settings import Settings
from mlmon.tasks import alerts, schedule
from mlmon.tasks.config import ModelConfig, load_config
from mlmon.tasks.errors import StoreError
from mlmon.tasks.store import store
from mlmon.tasks.window import Window, as_utc, parse_duration

MONITOR_WINDOW_DEPLOYMENT = "monitor-window/mlmon"
"""The parameterised one-window deployment (see ``mlmon.serve``) that a fanned-out backfill submits to."""


def _slot_run_name() -> str:
    slot = as_utc(flow_run.scheduled_start_time)
    return f"{flow_run.parameters.get('model', '?')} {slot:%Y-%m-%dT%H:%MZ}"


@flow(name="scheduled-monitor", flow_run_name=_slot_run_name, log_prints=True)
def scheduled_monitor(model: str, config: str | None = None, catch_up: str = "7d") -> list[dict[str, Any]]:
    """Process the window of this run's slot, then every due window of the last ``catch_up``."""
    log = get_run_logger()
    settings = Settings.from_env(config)
    cfg = load_config(settings.config_path).model(model)
    slot = as_utc(flow_run.scheduled_start_time)  # a pendulum DateTime: stdlib UTC before arithmetic
    pg_uri = settings.postgres_uri()
    store.migrate(pg_uri)
    todo = schedule.windows_to_run(
        cfg, slot, store.list_runs(pg_uri, model), catch_up=parse_duration(catch_up), now=datetime.now(UTC)
    )
    log.info(
        "[%s] slot %s (run %d): window %s; due: %s", model, slot.isoformat(), flow_run.run_count,
        schedule.window_for_slot(cfg, slot).label, ", ".join(w.label for w in todo) or "none",
    )  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    errors: list[str] = []
    for w in todo:
        try:
            outcomes.append({"window": w.label, **_process(model, w, config, pg_uri)})
        except Exception as e:  # one bad window must not stop the others
            errors.append(f"{w.label}: {type(e).__name__}: {e}")
            outcomes.append({"window": w.label, "action": "processed", "status": "error"})
    try:
        for w in labels_task(cfg, settings, pg_uri):
            outcomes.append(
                {
                    "window": w.label,
                    "action": "labels rechecked",
                    "status": _alert_stored(cfg, settings, pg_uri, w),
                }
            )
    except Exception as e:  # the windows above are stored; say what failed and fail the run
        errors.append(f"late-label recheck: {type(e).__name__}: {e}")
    if errors:
        raise RuntimeError(
            f"{len(errors)} failed (of {len(todo)} windows and the recheck):\n" + "\n".join(errors)
        )
    return outcomes


@task(name="labels", task_run_name="labels {cfg.name}", cache_policy=NO_CACHE)
def labels_task(cfg: ModelConfig, settings: Settings, pg_uri: str) -> list[Window]:
    """Re-evaluate the model quality of windows whose labels arrived after they ran (``mlmon.tasks.labels``)."""
    from mlmon.tasks import labels, reference
    from mlmon.tasks.connect import mongo_client

    if cfg.source.labels is None or cfg.source.labels.timestamp is None:
        return []  # no separate labels with an arrival time: nothing can arrive late
    log = get_run_logger()
    client = mongo_client(settings.mongo_uri())
    try:
        done = labels.recheck(
            pg_uri, client[cfg.source.database], cfg,
            lambda: reference.baseline(cfg, settings.profiles_dir), datetime.now(UTC), settings.reports_dir,
        )  # fmt: skip
    finally:
        client.close()
    for w in done:
        log.info("[%s %s] late labels: model quality re-evaluated", cfg.name, w.label)
    return done


def _alert_stored(cfg: ModelConfig, settings: Settings, pg_uri: str, w: Window) -> str:
    """Alert on a re-evaluated window from its stored checks (sends only if its failures changed)."""
    run = next(r for r in store.list_runs(pg_uri, cfg.name) if r.window == w)
    link = None
    if run.report_path:
        path = settings.reports_dir / run.report_path
        link = report_link(path, settings)
    alert = alerts.stored_alert(pg_uri, cfg, w, link)
    _notify(cfg, pg_uri, alert)
    return run.status


def _process(model: str, w: Window, config: str | None, pg_uri: str) -> dict[str, Any]:
    """Run ``monitor_window`` on ``w`` if no other run holds it and it is still due once locked."""
    log = get_run_logger()
    with window_lock(pg_uri, model, w) as held:
        if not held:
            log.info("[%s %s] skipped: another run is processing it", model, w.label)
            return {"action": "skipped", "status": "locked"}
        current = next((r for r in store.list_runs(pg_uri, model) if r.window == w), None)
        if current is not None and not schedule.is_due(current, now=datetime.now(UTC)):
            log.info("[%s %s] skipped: already %s", model, w.label, current.status)
            return {"action": "skipped", "status": current.status}
        summary = monitor_window(model, w.start, w.end, config)
        return {"action": "processed", "status": summary["status"]}


@contextmanager
def window_lock(pg_uri: str, model: str, window: Window) -> Iterator[bool]:
    """Try to take the (model, window) advisory lock on a connection of its own; yield whether we got it.

    The lock lives as long as the connection: closing it (or the process dying) releases it, so a
    crashed run never leaves a window locked.
    """
    key = f"mlmon.scheduled\x1f{model}\x1f{window.start.isoformat()}\x1f{window.end.isoformat()}"
    conn = store.connect(pg_uri)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
            held = bool(cur.fetchone()[0])
    except psycopg2.Error as e:
        conn.close()
        raise StoreError(f"could not lock {model!r} {window}: {e}".strip()) from e
    try:
        yield held
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------ backfill


def child_idempotency_key(parent_run_id: str, model: str, window: Window) -> str:
    """One child per (backfill run, window): a retried backfill run never submits a window twice, while a
    new backfill of the same range (after a fix) does run it again."""
    return f"{parent_run_id}:{model}:{window.start.isoformat()}"


@flow(name="backfill-windows", flow_run_name="backfill {model} {start}..{end}", log_prints=True)
def backfill_deployment(
    model: str, start: datetime, end: datetime, config: str | None = None, fan_out: bool | None = None
) -> list[dict[str, Any]]:
    """Every window of ``[start, end)``: one child run per window of the ``monitor-window`` deployment
    when ``fan_out`` (default: when this run came from a work pool, whose workers run them in
    parallel), else in this process (``mlmon.flows.monitor.backfill``)."""
    if fan_out is None:
        fan_out = _from_work_pool()
    if not fan_out:
        return backfill(model, start, end, config)
    from prefect.deployments import run_deployment

    cfg = load_config(Settings.from_env(config).config_path).model(model)
    windows = list(Window.range(as_utc(start), as_utc(end), cfg.window_length, cfg.window_anchor))
    parent = str(flow_run.id)
    children = {
        w: run_deployment(
            MONITOR_WINDOW_DEPLOYMENT,
            parameters={"model": model, "start": w.start, "end": w.end, "config": config},
            flow_run_name=f"{model} {w.label}",
            idempotency_key=child_idempotency_key(parent, model, w),
            timeout=0,  # submit all, then wait for all
        ).id
        for w in windows
    }
    get_run_logger().info(
        "[%s] submitted %d window runs to %s", model, len(children), MONITOR_WINDOW_DEPLOYMENT
    )
    states = _wait_for(children)
    failed = [f"{w.label}: {s}" for w, s in states.items() if s != "COMPLETED"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(windows)} windows failed:\n" + "\n".join(failed))
    return [{"window": w.label, "flow_run_id": str(children[w]), "state": s} for w, s in states.items()]


def _from_work_pool() -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run.id).work_pool_name is not None


def _wait_for(children: dict[Window, Any], poll_s: float = 2.0) -> dict[Window, str]:
    """Final state type of each child run, polling until every one has finished."""
    from prefect.client.orchestration import get_client

    final: dict[Window, str] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(children):
            for w, run_id in children.items():
                if w not in final:
                    state = client.read_flow_run(run_id).state
                    if state is not None and state.is_final():
                        final[w] = state.type.value
            if len(final) < len(children):
                time.sleep(poll_s)
    return dict(sorted(final.items()))
