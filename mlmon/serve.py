"""The Prefect deployments of a models config, served in-process or written as a ``prefect.yaml``.

One list of :class:`DeploymentSpec` feeds both :func:`build_deployments` (``mlmon serve`` / ``mlmon
up``: Prefect's ``serve()`` runs the flows in subprocesses of this process, no work pool needed) and
:func:`prefect_yaml` (``deployments/prefect.yaml`` for ``prefect deploy --all`` on a work pool), so the
two cannot disagree; a test checks the checked-in file against the shipped config.

Deployments (``flow name/deployment name``):

* ``scheduled-monitor/<model>`` for every model, on the model's ``schedule.cron`` read in its
  ``schedule.timezone``, or by default once per window ``lateness`` after it closes (UTC);
* ``monitor-window/mlmon``: one window, parameters ``model``, ``start``, ``end`` (no schedule);
* ``backfill-windows/mlmon``: a range, parameters ``model``, ``start``, ``end`` (no schedule).

Regenerate the YAML after changing a model's schedule: ``python -m mlmon.serve > deployments/prefect.yaml``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlmon.tasks import schedule
from mlmon.tasks.config import ModelConfig, load_config
from mlmon.tasks.errors import MlmonError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

WORK_POOL = "mlmon"
"""Work pool the deployments of ``prefect.yaml`` go to (``prefect work-pool create mlmon --type process``)."""

PROJECT_DIR = "/app"
"""Where the worker finds the project (the Docker image's WORKDIR); the entrypoints are relative to it."""


class ServiceError(MlmonError):
    """A service mlmon needs (the Prefect API, a port) is missing or did not come up."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment, independent of how it is deployed."""

    name: str
    entrypoint: str  # "flows/<module>.py:<function>", relative to the project root
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    timezone: str | None = None
    interval: timedelta | None = None
    anchor_date: datetime | None = None

    @property
    def flow(self) -> Flow[..., Any]:
        path, func = self.entrypoint.split(":")
        # the repository's flows/ folder is installed as mlmon.flows
        return getattr(import_module("mlmon." + path.removesuffix(".py").replace("/", ".")), func)

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"


def model_schedule(cfg: ModelConfig) -> dict[str, Any]:
    """The model's schedule as spec fields: its own cron, else one run per window (:mod:`mlmon.tasks.schedule`)."""
    if cfg.schedule.cron:
        return {"cron": cfg.schedule.cron, "timezone": cfg.schedule.timezone}
    # derived from the UTC windows, so read in UTC whatever `timezone` says
    if cron := schedule.slot_cron(cfg):
        return {"cron": cron, "timezone": "UTC"}
    return {"interval": cfg.window_length, "anchor_date": schedule.slot_anchor(cfg), "timezone": "UTC"}


def deployment_specs(
    config_path: str | Path, *, config_parameter: str | None = None, catch_up: str | None = None
) -> list[DeploymentSpec]:
    """Every deployment of the config. ``config_parameter`` is passed to the flows as ``config`` (None:
    they read ``MLMON_CONFIG`` / the default path where they run); ``catch_up`` (a duration) overrides
    how far back scheduled runs look for missed windows (default: ``scheduled_monitor``'s, 7 days)."""
    cfg = load_config(config_path)
    common = {"config": config_parameter} if config_parameter else {}
    specs = [
        DeploymentSpec(
            name=name,
            entrypoint="flows/scheduled.py:scheduled_monitor",
            description=f"Monitor {name}: the window of each slot, then any missed window (catch-up).",
            parameters={"model": name, **common, **({"catch_up": catch_up} if catch_up else {})},
            **model_schedule(m),
        )
        for name, m in cfg.models.items()
    ]
    specs.append(
        DeploymentSpec(
            name="mlmon",
            entrypoint="flows/monitor.py:monitor_window",
            description="Run every check for one window of one model (parameters model, start, end).",
            parameters=dict(common),
        )
    )
    specs.append(
        DeploymentSpec(
            name="mlmon",
            entrypoint="flows/scheduled.py:backfill_deployment",
            description="Every window of a range (parameters model, start, end); fans out on a work pool.",
            parameters=dict(common),
        )
    )
    kept = cfg.retention
    specs.append(
        DeploymentSpec(
            name="mlmon",
            entrypoint="flows/maintenance.py:retention_flow",
            description="Delete results and reports of old windows (parameter older_than, default the "
            "config's retention.keep); never a window in progress.",
            parameters=dict(common),
            **({"cron": kept.cron, "timezone": kept.timezone} if kept else {}),
        )
    )
    return specs


def build_deployments(config_path: str | Path, *, catch_up: str | None = None) -> list[RunnerDeployment]:
    """Runner deployments for Prefect's ``serve()``: the flows get the config's absolute path."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron, Interval

    specs = deployment_specs(
        config_path, config_parameter=str(Path(config_path).resolve()), catch_up=catch_up
    )
    out = []
    for spec in specs:
        schedules = []
        if spec.cron:
            schedules.append(Cron(spec.cron, timezone=spec.timezone))
        elif spec.interval:
            schedules.append(Interval(spec.interval, anchor_date=spec.anchor_date, timezone=spec.timezone))
        out.append(
            spec.flow.to_deployment(
                name=spec.name,
                schedules=schedules,
                parameters=spec.parameters,
                description=spec.description,
                tags=["mlmon"],
                # imported by module, so `mlmon serve` works from any folder
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


def serve_all(config_path: str | Path, *, catch_up: str | None = None, limit: int | None = None) -> None:
    """Serve every deployment of the config until interrupted (Ctrl-C / SIGTERM); schedules stay active
    on shutdown, so runs missed while stopped are caught up by the next run.

    Needs a Prefect server at ``PREFECT_API_URL`` (``mlmon up`` starts one): without it Prefect would
    serve against a throw-away in-process server that nobody can see.
    """
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ServiceError(
            "PREFECT_API_URL is not set: point it at a Prefect server (e.g. http://127.0.0.1:4200/api), "
            "or run `mlmon up`, which starts one"
        )

    install_alerts_if_configured()
    serve(*build_deployments(config_path, catch_up=catch_up), pause_on_shutdown=False, limit=limit)


def install_alerts_if_configured() -> None:
    """With ``MLMON_ALERT_WEBHOOK_URL`` set, install (or update) the alert automations before serving, so
    a compose stack or ``mlmon up`` notifies without a manual step. A failure is reported, not fatal:
    the monitoring itself does not depend on it."""
    from mlmon import automations

    url = os.environ.get("MLMON_ALERT_WEBHOOK_URL")
    if not url:
        return
    try:
        done = automations.install(webhook_url=url)
    except Exception as e:
        print(f"mlmon: alert automations NOT installed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return
    names = ", ".join(f"{a.name} ({a.action})" for a in done)
    print(f"mlmon: alert automations installed: {names}", file=sys.stderr, flush=True)


def prefect_yaml(config_path: str | Path) -> str:
    """The ``prefect.yaml`` of the config, for ``prefect deploy --all`` (see the header it writes)."""
    deployments = []
    for spec in deployment_specs(config_path):
        d: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "description": spec.description,
            "tags": ["mlmon"],
            "parameters": spec.parameters,
            "work_pool": {"name": WORK_POOL, "work_queue_name": "default"},
        }
        if spec.cron:
            d["schedules"] = [{"cron": spec.cron, "timezone": spec.timezone, "active": True}]
        elif spec.interval:
            d["schedules"] = [
                {
                    "interval": int(spec.interval.total_seconds()),
                    "anchor_date": spec.anchor_date.isoformat() if spec.anchor_date else None,
                    "timezone": spec.timezone,
                    "active": True,
                }
            ]
        deployments.append(d)
    body = {
        "name": "mlmon",
        "prefect-version": _prefect_version(),
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": PROJECT_DIR}}],
        "deployments": deployments,
    }
    header = (
        "# Generated from deployments/models.yaml by `python -m mlmon.serve > deployments/prefect.yaml`;\n"
        "# do not edit by hand (tests/test_serve.py checks it matches the config).\n"
        f"# Deploy to a work pool: prefect work-pool create {WORK_POOL} --type process\n"
        "#   prefect deploy --all --prefect-file deployments/prefect.yaml   (from the project root)\n"
        f"#   prefect worker start --pool {WORK_POOL}   (where the project is at {PROJECT_DIR}, with the\n"
        "#   MLMON_* variables of the README set: the flows read their databases and config from them)\n"
        "# Without a work pool, `mlmon serve` serves the same deployments from one process.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False, width=110)


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


if __name__ == "__main__":  # pragma: no cover - regenerates deployments/prefect.yaml
    sys.stdout.write(prefect_yaml(sys.argv[1] if len(sys.argv) > 1 else "deployments/models.yaml"))
