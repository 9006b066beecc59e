"""Housekeeping flows: ``retention`` deletes results and reports of old windows (``mlmon.tasks.operations``).

Served as the ``retention/mlmon`` deployment; scheduled when the config has a top-level ``retention:``
(``keep``, ``cron``), otherwise run from the UI, ``prefect deployment run`` or ``mlmon retention``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from mlmon.settings import Settings
from mlmon.tasks.config import load_config
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.operations import retention
from mlmon.tasks.window import parse_duration


@flow(name="retention", log_prints=True)
def retention_flow(
    older_than: str | None = None, config: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Delete every window that ended more than ``older_than`` ago (default: the config's
    ``retention.keep``), never one whose run is in progress; ``dry_run`` only counts."""
    settings = Settings.from_env(config)
    if older_than is None:
        kept = load_config(settings.config_path).retention
        if kept is None:
            raise ConfigError("no older_than given and the config has no `retention: {keep: ...}`")
        older_than = kept.keep
    result = retention(
        settings.postgres_uri(),
        settings.reports_dir,
        parse_duration(older_than),
        datetime.now(UTC),
        dry_run=dry_run,
    )
    get_run_logger().info("[retention older than %s] %s", older_than, result.summary())
    return {
        "cutoff": result.cutoff.isoformat(), "dry_run": dry_run, "windows": result.windows,
        "rows": result.rows, "files": result.files, "kept_running": result.kept_running,
    }  # fmt: skip
