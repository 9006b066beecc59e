"""Windows past one process: time shards extracted and summarised on a Dask cluster, merged, judged.

``monitor_window`` hands a window over to :func:`run_sharded` by itself when its estimated size passes
``shards.max_in_memory_rows``. Each shard is one Prefect task run on ``prefect-dask``'s
``DaskTaskRunner``: a local cluster (``shards.workers`` workers of ``shards.worker_memory``) or the
existing cluster whose scheduler address is in the env var ``shards.dask_address_env``
(``MLMON_DASK_ADDRESS``). The logic lives in :mod:`mlmon.tasks.summary`; this module only wires it.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from mlmon.flows.retries import retried_on
from mlmon.reports import render
from mlmon.settings import Settings
from mlmon.tasks import extract, summary
from mlmon.tasks.config import ModelConfig, load_config
from mlmon.tasks.connect import mongo_client
from mlmon.tasks.errors import SourceUnavailable, StoreError
from mlmon.tasks.evaluate import profile_kinds
from mlmon.tasks.store import store
from mlmon.tasks.window import Window, as_utc


def task_runner(cfg: ModelConfig) -> Any:
    """The Dask task runner of the shards: the cluster at ``$MLMON_DASK_ADDRESS`` if set, else local."""
    from prefect_dask import DaskTaskRunner

    address = os.environ.get(cfg.shards.dask_address_env)
    if address:
        return DaskTaskRunner(address=address)
    from prefect.settings import PREFECT_API_URL

    cluster: dict[str, Any] = {
        "n_workers": cfg.shards.workers,
        "threads_per_worker": 1,
        "memory_limit": cfg.shards.worker_memory,
        "processes": True,
        "dashboard_address": None,  # no web dashboard: it would take port 8787 (and clash with another cluster)
    }
    api = PREFECT_API_URL.value()
    if api:  # the workers report to the same Prefect API (without it each would boot a temporary server)
        cluster["env"] = {"PREFECT_API_URL": str(api)}
    return DaskTaskRunner(cluster_kwargs=cluster)


@task(name="shard", task_run_name="shard {cfg.name} {shard.label}", **retried_on(SourceUnavailable))
def shard_task(
    cfg: ModelConfig, shard: Window, plan: summary.Plan, mongo_uri: str, rate: float, index: int
) -> summary.ShardOutput:
    """Extract one shard from MongoDB and summarise it (runs on a Dask worker)."""
    client = mongo_client(mongo_uri)
    try:
        batch = extract.read_window(client[cfg.source.database], extract.in_one_process(cfg), shard)
    finally:
        client.close()
    return summary.summarise_batch(batch, plan, cfg, shard, rate=rate, index=index)


@task(name="size", task_run_name="size {cfg.name} {window.label}", **retried_on(SourceUnavailable))
def size_task(cfg: ModelConfig, window: Window, mongo_uri: str) -> int:
    """About how many documents the window holds (:func:`mlmon.tasks.summary.estimate_rows`)."""
    from pymongo.errors import PyMongoError

    client = mongo_client(mongo_uri)
    try:
        return summary.estimate_rows(client[cfg.source.database][cfg.source.collection], cfg, window)
    except PyMongoError as e:
        raise SourceUnavailable(
            f"MongoDB count of {cfg.source.database}.{cfg.source.collection} for model {cfg.name!r} failed: "
            f"{e}. Check MLMON_MONGO_URI and that the server is running."
        ) from e
    finally:
        client.close()


@flow(name="monitor-window-sharded", flow_run_name="{model} {start} (sharded)", log_prints=True)
def monitor_sharded(
    model: str, start: datetime, end: datetime, config: str | None = None, estimated_rows: int = 0
) -> dict[str, Any]:
    """One big window: shards summarised on Dask, the merge judged, stored like any window."""
    from mlmon.flows import monitor as m

    settings = Settings.from_env(config)
    cfg = load_config(settings.config_path).model(model)
    window = Window(as_utc(start), as_utc(end))
    run_id = str(flow_run.id) if flow_run.id else None
    pg_uri, mongo_uri = settings.postgres_uri(), settings.mongo_uri()
    log = get_run_logger()
    staging = None
    try:
        store.mark_running(pg_uri, model, window, run_id)
        base = m.reference_task(cfg, settings.profiles_dir, window)
        plan = summary.fit_plan(cfg, base.profile, profile_kinds(cfg))
        shards = summary.shard_windows(window, cfg)
        rate = summary.sample_rate(cfg, estimated_rows)
        futures = [shard_task.submit(cfg, s, plan, mongo_uri, rate, i) for i, s in enumerate(shards)]
        outputs: list[summary.ShardOutput] = [f.result() for f in futures]
        store.migrate(pg_uri)
        store.write_summaries(pg_uri, model, ((o.shard, plan.key, o.n_rows, o.summary) for o in outputs))
        merged = summary.merge_all(summary.from_bytes(o.summary) for o in outputs)
        sample = summary.draw_sample([o.sample for o in outputs], cfg.shards.sample_rows, cfg.shards.seed)
        log.info(
            "[%s %s] %d shards, %d rows, sample %d",
            model,
            window.label,
            len(shards),
            merged.n_rows,
            len(sample),
        )
        result = summary.evaluate_summary(
            cfg, base.profile, merged, plan, window, sample=sample, reference=base.frame
        )
        result = summary.with_shard_details(result, outputs)
        evid = m.evidently_task(cfg, base, extract.Batch(frame=sample), window)
        result = summary.with_evidently(result, evid, len(sample), len(shards))
        states, trend = m.incidents_task(pg_uri, cfg, result)
        staging = render.stage_dir(settings.reports_dir)
        rel = m.report_task(result, cfg, staging, evid, states, trend).relative_to(staging)
        m.store_task(pg_uri, result, str(rel), run_id)
        m.store_incidents_task(pg_uri, result, states)
        m.publish_task(staging, settings.reports_dir, result)
        path = settings.reports_dir / rel
    except Exception as e:
        if staging is not None:
            render.discard(staging)
        try:
            store.mark_failed(pg_uri, model, window, f"{type(e).__name__}: {e}", run_id)
        except StoreError:
            pass  # the store itself is down: the flow's own failure says so
        raise
    link = m.report_link(path, settings)
    sent = m.alert_task(cfg, pg_uri, result, link, states)
    return {
        "model": model,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "status": result.status.value,
        "rows": result.n_rows,
        "quarantined": result.n_quarantined,
        "failed_checks": [f"{ch.check}:{ch.feature}:{ch.segment}" for ch in result.failed],
        "report": link,
        "alerts": sent,
        "shards": len(shards),
        "sample_rows": len(sample),
    }


def run_sharded(
    model: str, start: datetime, end: datetime, config: str | None = None, estimated_rows: int = 0
) -> dict[str, Any]:
    """:func:`monitor_sharded` on the model's Dask task runner."""
    cfg = load_config(Settings.from_env(config).config_path).model(model)
    runner = task_runner(cfg)
    return monitor_sharded.with_options(task_runner=runner)(model, start, end, config, estimated_rows)


@flow(name="monitor-from-summaries", flow_run_name="{model} {start}..{end} (stored shards)", log_prints=True)
def monitor_from_summaries(
    model: str, start: datetime, end: datetime, config: str | None = None
) -> dict[str, Any]:
    """A longer window (a week) judged by merging its stored shard summaries: MongoDB is not read."""
    from mlmon.flows import monitor as m

    settings = Settings.from_env(config)
    cfg = load_config(settings.config_path).model(model)
    window = Window(as_utc(start), as_utc(end))
    pg_uri = settings.postgres_uri()
    base = m.reference_task(cfg, settings.profiles_dir, window)
    plan = summary.fit_plan(cfg, base.profile, profile_kinds(cfg))
    merged = summary.covering(window, store.read_summaries(pg_uri, model, window), plan)
    note = (
        f"Computed from {merged.shards} stored shard summaries (mlmon.window_summaries) without reading "
        "MongoDB: no sample, so Evidently and the row-level analyses did not run.",
    )
    result = summary.evaluate_summary(cfg, base.profile, merged, plan, window, notes=note)
    staging = render.stage_dir(settings.reports_dir)
    rel = m.report_task(result, cfg, staging, None).relative_to(staging)
    m.store_task(pg_uri, result, str(rel), str(flow_run.id) if flow_run.id else None)
    m.publish_task(staging, settings.reports_dir, result)
    return {"model": model, "status": result.status.value, "rows": result.n_rows, "shards": merged.shards}
