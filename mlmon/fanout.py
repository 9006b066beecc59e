"""A backfill fanned out over a Prefect process work pool: one deployment run per window.

``mlmon backfill MODEL --start … --end … --pool POOL`` does not run the windows itself: it makes sure the
process work pool ``POOL`` and the ``monitor-window/fanout`` deployment on it exist, creates one flow run
of that deployment per window, waits for them, and says which worker ran each. Workers are ordinary
``prefect worker start --pool POOL --type process`` processes, on this machine or others pointed at the
same Prefect server (each needs mlmon installed and the config and reference at the same paths). Each
worker takes as many runs at once as its ``--limit``; with ``--limit 1`` a worker runs one window at a
time, and two workers run two.

No window runs twice: each window is one flow run, and Prefect hands a flow run to exactly one worker
(its state moves to Pending under the work pool's lock). Re-running the fan-out is safe as the plain
backfill is: a window's results replace its earlier ones in the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlmon.tasks.errors import MlmonError

DEPLOYMENT = "fanout"
"""The name of the monitor-window deployment the fan-out creates on the pool."""
ENTRYPOINT = "mlmon.flows.monitor.monitor_window"  # a module path: workers need no project checkout
WORKER_LABEL = "prefect.worker.name"  # the label a Prefect worker gives each flow run it takes
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class FanOutError(MlmonError):
    """The fan-out could not finish: no worker took the runs in time, or the pool is not a process pool."""


@dataclass(frozen=True)
class WindowRun:
    """One window's flow run on the pool and what became of it."""

    window_start: datetime
    window_end: datetime
    flow_run_id: str
    state: str  # COMPLETED, FAILED, CRASHED, CANCELLED, or the last state seen on timeout
    worker: str | None  # the worker that took it (from its label), None if none did


def ensure_pool(pool: str) -> None:
    """Create the process work pool ``pool`` unless it exists; refuse a pool of another type."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            return
    if found.type != "process":
        raise FanOutError(
            f"work pool {pool!r} is of type {found.type!r}; the fan-out needs a process pool: pass another "
            f"--pool name (it is created as a process pool)"
        )


def deploy_monitor(pool: str) -> str:
    """Create or update the ``monitor-window/fanout`` deployment on ``pool``; return its id."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.callables import parameter_schema

    from mlmon.flows.monitor import monitor_window

    schema = parameter_schema(monitor_window.fn).model_dump_for_openapi()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(monitor_window.name)
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=DEPLOYMENT,
            work_pool_name=pool,
            entrypoint=ENTRYPOINT,
            parameter_openapi_schema=schema,
            description="One window of a fanned-out backfill (mlmon backfill --pool)",
            tags=["mlmon", "fanout"],
        )
    return str(deployment_id)


def submit(model: str, windows: list[Any], config: str | None) -> list[tuple[Any, str]]:
    """One flow run of the fan-out deployment per window (not waited for); ``(window, run id)`` pairs."""
    from prefect.deployments import run_deployment

    runs = []
    for w in windows:
        run = run_deployment(
            f"monitor-window/{DEPLOYMENT}",
            parameters={"model": model, "start": w.start, "end": w.end, "config": config},
            timeout=0,  # create it and go on: the workers run it
            flow_run_name=f"{model} {w.start.isoformat()}",
            tags=["mlmon", "fanout"],
        )
        runs.append((w, str(run.id)))
    return runs


def wait(runs: list[tuple[Any, str]], timeout: float, poll: float = 1.0) -> list[WindowRun]:
    """Wait until every run is in a terminal state (or ``timeout`` s); read who ran each and its verdict."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_runs = [client.read_flow_run(UUID(run_id)) for _, run_id in runs]
            done = all(fr.state is not None and fr.state.type.value in TERMINAL for fr in flow_runs)
            if done or time.monotonic() > deadline:
                break
            time.sleep(poll)
        out = []
        for (w, _), fr in zip(runs, flow_runs, strict=True):
            worker = (fr.labels or {}).get(WORKER_LABEL)
            state = fr.state.type.value if fr.state else "UNKNOWN"
            out.append(WindowRun(w.start, w.end, str(fr.id), state, str(worker) if worker else None))
    if not done:
        waiting = sum(r.state not in TERMINAL for r in out)
        raise FanOutError(
            f"{waiting} of {len(out)} window runs did not finish within {timeout:.0f} s: are workers running? "
            f"start them with `prefect worker start --pool <pool> --type process`"
        )
    return out


def fan_out(
    model: str, start: datetime, end: datetime, config: str | None, pool: str, *, timeout: float = 3600.0
) -> list[WindowRun]:
    """Run every window of ``model`` in ``[start, end)`` as a flow run on the process pool ``pool``."""
    from mlmon.settings import Settings
    from mlmon.tasks.config import load_config
    from mlmon.tasks.window import Window, as_utc

    cfg = load_config(Settings.from_env(config).config_path).model(model)
    windows = list(Window.range(as_utc(start), as_utc(end), cfg.window_length, cfg.window_anchor))
    ensure_pool(pool)
    deploy_monitor(pool)
    return wait(submit(model, windows, config), timeout)


def start_worker(
    pool: str, name: str, *, limit: int = 1, env: Mapping[str, str] | None = None, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``prefect worker start --pool … --type process`` (polling every second) in the background."""
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    worker_env = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "0"}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*cmd, "--name", name, "--limit", str(limit)],
            env={**os.environ, **worker_env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
