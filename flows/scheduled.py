"""Scheduling glue: the flow a schedule runs (``scheduled_monitor``) and a backfill that fans out.

``scheduled_monitor`` takes its window from the slot Prefect scheduled it for (never the wall clock),
then catches up every window of the last ``catch_up`` that has no successful run (missed slots,
downtime, DST skips). Each window is processed under a Postgres advisory lock and re-checked once the
lock is held, so two runs of the same slot (a DST double, a retry, two runners) never process a window
twice. Which windows: :mod:`tasks.schedule`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg2
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.monitor import backfill, monitor_window
from mlmon.settings import Settings
from tasks import schedule
from tasks.config import load_config
from tasks.errors import StoreError
from tasks.store import store
from tasks.window import Window, as_utc, parse_duration

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
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(todo)} windows failed:\n" + "\n".join(errors))
    return outcomes


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
    parallel), else in this process (``flows.monitor.backfill``)."""
    if fan_out is None:
        fan_out = _from_work_pool()
    if not fan_out:
        return backfill(model, start, end, config)
    from prefect.deployments import run_deployment

    cfg = load_config(Settings.from_env(config).config_path).model(model)
    windows = list(Window.range(as_utc(start), as_utc(end), cfg.window_length))
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
