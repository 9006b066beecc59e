"""Install the test KPI package (tests/plugin_src/mlmon-test-kpis) into the running venv, once.

It is a real distribution with a ``mlmon.checks`` entry point, so the tests see what a user's own
package gives: checks discovered through package metadata, not by importing a test file."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).parent / "plugin_src" / "mlmon-test-kpis"
NAME, VERSION = "mlmon-test-kpis", "0.2.0"


def ensure_kpi_plugin() -> None:
    """pip-install the package (no index, no build isolation: offline and quick) unless it is there."""
    try:
        installed = importlib.metadata.version(NAME)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != VERSION:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--no-build-isolation", "--force-reinstall", str(SOURCE)],
            check=True, capture_output=True,
        )  # fmt: skip
        importlib.invalidate_caches()
    from mlmon.tasks.checks import registry

    registry.discover(refresh=True)
