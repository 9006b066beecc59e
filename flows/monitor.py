"""Prefect flows: one window (``monitor_window``) and a range of windows (``backfill``).

Flows compose, tasks wrap, functions compute: every task below is a thin wrapper (retries, logging)
around a plain function in ``tasks/`` or ``reports/``; no pandas in a flow.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from mlmon.flows import sharded
from mlmon.flows.retries import retried_on
from mlmon.reports import render
from mlmon.settings import Settings
from mlmon.tasks import alerts, extract, incidents, reference, rolling
from mlmon.tasks.checks import presets
from mlmon.tasks.checks.health import PastVolume
from mlmon.tasks.checks.outcome import WindowResult
from mlmon.tasks.config import ModelConfig, load_config
from mlmon.tasks.connect import mongo_client
from mlmon.tasks.errors import SourceUnavailable, StoreError
from mlmon.tasks.evaluate import evaluate
from mlmon.tasks.store import store
from mlmon.tasks.summary import use_shards
from mlmon.tasks.window import Window, as_utc


@task(
    name="extract",
    task_run_name="extract {cfg.name} {window.label}",
    **retried_on(SourceUnavailable),
)
def extract_task(
    cfg: ModelConfig, window: Window, mongo_uri: str, expected_rows: int | None = None
) -> extract.Batch:
    """The window's frame (``expected_rows``: its estimated size, which starts the decoding workers at
    once on a big window)."""
    log = get_run_logger()
    client = mongo_client(mongo_uri)
    try:
        batch = extract.read_window(client[cfg.source.database], cfg, window, expected_rows=expected_rows)
    finally:
        client.close()
    log.info(
        "[%s %s] extracted %d rows, quarantined %d, labels joined %d (%.1fs)",
        cfg.name, window.label, len(batch.frame), batch.n_quarantined, batch.n_labels_joined, batch.seconds,
    )  # fmt: skip
    return batch


@task(name="reference", task_run_name="reference {cfg.name} {window.label}", cache_policy=NO_CACHE)
def reference_task(cfg: ModelConfig, profiles_dir: Path, window: Window) -> reference.Baseline:
    """The model's reference and its fitted profile (``window`` only names the task run)."""
    return reference.baseline(cfg, profiles_dir)


@task(
    name="rolling-reference",
    task_run_name="rolling reference {cfg.name} {window.label}",
    **retried_on(SourceUnavailable),
)
def rolling_task(
    cfg: ModelConfig, base: reference.Baseline, window: Window, mongo_uri: str, profiles_dir: Path
) -> rolling.References:
    """The references of the window: the fixed one, and a rolling one read from the logs for the
    families configured so (nothing is read when none is)."""
    if not rolling.rolling_families(cfg):
        return rolling.fixed_only(base)
    client = mongo_client(mongo_uri)
    try:
        batch = rolling.read_rolling(client[cfg.source.database], cfg, window)
    finally:
        client.close()
    return rolling.references(cfg, base, window, batch, profiles_dir)


@task(name="checks", task_run_name="checks {cfg.name} {window.label}", cache_policy=NO_CACHE)
def checks_task(
    cfg: ModelConfig,
    base: reference.Baseline,
    batch: extract.Batch,
    window: Window,
    history: list[PastVolume] | None = None,
    refs: rolling.References | None = None,
) -> WindowResult:
    if refs is not None:
        return rolling.evaluate_with(cfg, refs, batch, window, reference=base.frame, volume_history=history)
    return evaluate(cfg, base.profile, batch, window, reference=base.frame, volume_history=history)


@task(name="evidently", task_run_name="evidently {cfg.name} {window.label}", cache_policy=NO_CACHE)
def evidently_task(
    cfg: ModelConfig, base: reference.Baseline, batch: extract.Batch, window: Window
) -> presets.EvidentlyOutput | None:
    if not cfg.evidently.enabled:
        return None
    return _logged(cfg, window, presets.run_evidently(base.frame, batch.frame, cfg))


@task(name="evidently", task_run_name="evidently {cfg.name} {window.label}", cache_policy=NO_CACHE)
def evidently_result_task(
    cfg: ModelConfig, job: presets.EvidentlyJob | None, window: Window
) -> presets.EvidentlyOutput | None:
    """Evidently's section, computed in worker processes while the checks ran (waits for it)."""
    if job is None:
        return None
    return _logged(cfg, window, job.result())


def _logged(cfg: ModelConfig, window: Window, out: presets.EvidentlyOutput) -> presets.EvidentlyOutput:
    for err in out.errors:  # shown in the report too; the run goes on without that part
        get_run_logger().warning("[%s %s] Evidently: %s", cfg.name, window.label, err)
    return out


@task(
    name="incidents",
    task_run_name="incidents {cfg.name} {result.window.label}",
    **retried_on(StoreError),
)
def incidents_task(
    pg_uri: str, cfg: ModelConfig, result: WindowResult
) -> tuple[list[incidents.IncidentState], list[store.HistoryPoint]]:
    """The window's incidents against the open ones of the previous window, and the trend history."""

    store.migrate(pg_uri)
    metrics, features = render.trend_query(result, cfg)
    history = store.metric_history(
        pg_uri, cfg.name, result.window.start, render.TREND_WINDOWS - 1, metrics, features
    )
    return incidents.track_stored(pg_uri, cfg, result), history


@task(
    name="store-incidents",
    task_run_name="store incidents {result.model} {result.window.label}",
    **retried_on(StoreError),
)
def store_incidents_task(pg_uri: str, result: WindowResult, states: list[incidents.IncidentState]) -> None:
    store.write_incidents(pg_uri, result.model, result.window, states)


@task(name="report", task_run_name="report {cfg.name} {result.window.label}", cache_policy=NO_CACHE)
def report_task(
    result: WindowResult,
    cfg: ModelConfig,
    staging: Path,
    evid: presets.EvidentlyOutput | None,
    states: list[incidents.IncidentState] | None = None,
    trend: list[store.HistoryPoint] | None = None,
) -> Path:
    """Render the report into ``staging`` (published only once the store has committed), with the
    window's incidents and its trends."""
    return render.write_report(
        result, cfg, staging, evid.html if evid else None, incidents=states, history=trend or ()
    )


@task(name="publish", task_run_name="publish {result.model} {result.window.label}", cache_policy=NO_CACHE)
def publish_task(staging: Path, out_dir: Path, result: WindowResult) -> None:
    """Move the staged report into place and rewrite the index (``result`` only names the task run)."""
    render.publish(staging, out_dir)


@task(
    name="store",
    task_run_name="store {result.model} {result.window.label}",
    **retried_on(StoreError),
)
def store_task(pg_uri: str, result: WindowResult, report_path: str, flow_run_id: str | None) -> None:
    store.migrate(pg_uri)
    store.write_window(pg_uri, result, report_path=report_path, flow_run_id=flow_run_id)


@task(name="alert", task_run_name="alert {cfg.name} {result.window.label}", cache_policy=NO_CACHE)
def alert_task(
    cfg: ModelConfig,
    pg_uri: str,
    result: WindowResult,
    report_url: str,
    states: list[incidents.IncidentState] | None = None,
) -> dict[str, str]:
    """Announce what changed in the window's incidents (deduplicated; see :mod:`mlmon.tasks.alerts`). Never
    fails the run: the results are stored already, and a failed channel is retried by the next run."""
    if states is None:
        alert = alerts.alert_for(cfg.name, result.window, result.checks, cfg.alerts, report_url)
    else:
        alert = alerts.incident_alert(cfg.name, result.window, result.checks, states, cfg.alerts, report_url)
    return _notify(cfg, pg_uri, alert)


def _notify(cfg: ModelConfig, pg_uri: str, alert: alerts.Alert) -> dict[str, str]:
    from prefect.events import emit_event

    def emit(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        emit_event(event=event, resource=resource, payload=payload)

    log = get_run_logger()
    outcome = alerts.notify(pg_uri, cfg.alerts, alert, emit=emit)
    for channel, what in outcome.items():
        level = logging.ERROR if what.startswith("error") else logging.INFO
        log.log(level, "[%s %s] alert %s: %s", cfg.name, alert.window.label, channel, what)
    return outcome


def _with_evidently_note(result: WindowResult, evid: presets.EvidentlyOutput | None) -> WindowResult:
    from dataclasses import replace

    if evid is None:
        return replace(result, notes=(*result.notes, "Evidently report disabled in the config."))
    notes = (*result.notes, *evid.notes, *(f"Evidently: {e}" for e in evid.errors))
    if evid.sampled:
        notes = (
            *notes,
            f"Evidently ran on a seeded sample of {evid.rows_used:,} of {result.n_rows:,} rows "
            f"(evidently.max_rows); mlmon's own checks used every row.",
        )
    return replace(result, evidently_rows=evid.rows_used, notes=notes)


@flow(name="monitor-window", flow_run_name="{model} {start}", log_prints=True)
def monitor_window(model: str, start: datetime, end: datetime, config: str | None = None) -> dict[str, Any]:
    """Run every check for one model over ``[start, end)`` and store the results (idempotent)."""
    settings = Settings.from_env(config)
    cfg = load_config(settings.config_path).model(model)
    window = Window(as_utc(start), as_utc(end))
    run_id = str(flow_run.id) if flow_run.id else None
    pg_uri, mongo_uri = settings.postgres_uri(), settings.mongo_uri()
    staging = None
    try:
        store.mark_running(pg_uri, model, window, run_id)
        estimated = sharded.size_task(cfg, window, mongo_uri)
        if use_shards(cfg, estimated):  # past shards.max_in_memory_rows: the sharded path
            if cfg.evidently.enabled:
                presets.preload()  # Evidently runs on the shards' sample in this process
            return sharded.run_sharded(model, start, end, config, estimated)
        presets.prewarm(cfg)  # Evidently's import, in its own process, overlaps the extraction
        batch = extract_task(cfg, window, mongo_uri, estimated)
        base = reference_task(cfg, settings.profiles_dir, window)
        history = store.volume_history(pg_uri, model, window)
        refs = rolling_task(cfg, base, window, mongo_uri, settings.profiles_dir)
        # Evidently's parts run in worker processes while the checks run here
        job = presets.submit_evidently(base.frame, batch.frame, cfg) if cfg.evidently.enabled else None
        result = checks_task(cfg, base, batch, window, history, refs)
        evid = evidently_result_task(cfg, job, window)
        result = _with_evidently_note(result, evid)
        states, trend = incidents_task(pg_uri, cfg, result)
        # the report and the index show a result only once Postgres holds it: staged, stored, published
        staging = render.stage_dir(settings.reports_dir)
        rel = report_task(result, cfg, staging, evid, states, trend).relative_to(staging)
        store_task(pg_uri, result, str(rel), run_id)
        store_incidents_task(pg_uri, result, states)
        publish_task(staging, settings.reports_dir, result)
        path = settings.reports_dir / rel
    except Exception as e:
        if staging is not None:
            render.discard(staging)
        _record_failure(pg_uri, model, window, e, run_id)
        raise
    link = report_link(path, settings)
    sent = alert_task(cfg, pg_uri, result, link, states)
    summary = {**_summary(result, link), "alerts": sent}
    _publish_artifacts(model, result, states, link)
    return {k: v for k, v in summary.items() if k != "markdown"}


def _publish_artifacts(
    model: str, result: WindowResult, states: list[incidents.IncidentState], link: str
) -> None:
    """Prefect's table (the incidents, with the verdict in its description) and link (the report)."""
    key = _artifact_key(model)
    verdict = f"{model} {result.window.label}: {result.status.value.upper()} — {incidents.headline(states)}"
    create_table_artifact(key=f"{key}-incidents", table=incidents.table(states), description=verdict)
    create_link_artifact(key=f"{key}-report", link=link, link_text=f"report: {verdict}", description=verdict)


def _record_failure(pg_uri: str, model: str, window: Window, error: Exception, run_id: str | None) -> None:
    """Best effort: mark the run as errored without touching the last good results."""
    try:
        store.mark_failed(pg_uri, model, window, f"{type(error).__name__}: {error}", run_id)
    except StoreError:
        pass  # the store itself is down: the flow's own failure says so


def _artifact_key(model: str) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in model.lower()).strip("-")
    return f"mlmon-{safe or 'model'}"[:100]


def report_link(path: Path, settings: Settings) -> str:
    """The report's URL under MLMON_REPORTS_URL, or its file URI when that is not set."""
    if settings.reports_url:
        return f"{settings.reports_url.rstrip('/')}/{path.relative_to(settings.reports_dir).as_posix()}"
    return path.resolve().as_uri()


def _summary(result: WindowResult, link: str) -> dict[str, Any]:
    failed = result.failed
    lines = [
        f"# {result.model} — {result.window.label}: **{result.status.value.upper()}**",
        "",
        f"Window `{result.window}` · {result.n_rows:,} rows · {result.n_quarantined:,} quarantined · "
        f"label coverage {'n/a' if result.label_coverage is None else f'{result.label_coverage:.0%}'}",
        "",
        f"[Open the HTML report]({link})",
        "",
    ]
    if failed:
        lines += ["| check | feature | segment | status | message |", "|---|---|---|---|---|"]
        for ch in failed[:30]:
            msg = ch.message.replace("|", "\\|")
            lines.append(f"| {ch.check} | {ch.feature} | {ch.segment} | {ch.status.value} | {msg} |")
        if len(failed) > 30:
            lines.append(f"\n… and {len(failed) - 30} more failed checks in the report.")
    else:
        lines.append("No failed checks.")
    return {
        "model": result.model,
        "window_start": result.window.start.isoformat(),
        "window_end": result.window.end.isoformat(),
        "status": result.status.value,
        "rows": result.n_rows,
        "quarantined": result.n_quarantined,
        "failed_checks": [f"{ch.check}:{ch.feature}:{ch.segment}" for ch in failed],
        "report": link,
        "markdown": "\n".join(lines),
    }


@flow(name="backfill", flow_run_name="backfill {model} {start}..{end}", log_prints=True)
def backfill(model: str, start: datetime, end: datetime, config: str | None = None) -> list[dict[str, Any]]:
    """Run ``monitor_window`` for every window of the model in ``[start, end)``; safe to re-run."""
    settings = Settings.from_env(config)
    cfg = load_config(settings.config_path).model(model)
    windows = list(Window.range(as_utc(start), as_utc(end), cfg.window_length, cfg.window_anchor))
    log = get_run_logger()
    progress = create_progress_artifact(progress=0.0, description=f"backfill {model}: {len(windows)} windows")
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for i, w in enumerate(windows, 1):
        try:
            results.append(monitor_window(model, w.start, w.end, config))
            status = results[-1]["status"]
        except Exception as e:
            errors.append(f"{w.label}: {type(e).__name__}: {e}")
            log.error("[%s %s] window failed: %s", model, w.label, e)
            status = "error"
        update_progress_artifact(progress, progress=100.0 * i / len(windows))
        _bar(i, len(windows), model, w, status)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(windows)} windows failed:\n" + "\n".join(errors))
    return results


def _bar(done: int, total: int, model: str, w: Window, status: str) -> None:
    width = 30
    filled = round(width * done / total)
    print(
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {model} {w.label} {status}",
        file=sys.stderr,
        flush=True,
    )
