"""The installed distribution is one namespace: ``mlmon``. The repository keeps its top-level ``tasks/``,
``flows/`` and ``reports/`` folders, but they install as ``mlmon.tasks`` … so a user's own Prefect
project, which very often has ``flows/`` and ``tasks/`` folders, neither shadows nor is shadowed by us."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel, and what building it printed."""
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        cwd=build,
        capture_output=True,
        text=True,
    )
    (whl,) = out.glob("mlmon-*.whl")
    return whl, done.stdout + done.stderr


def test_the_wheel_installs_the_mlmon_package_only(built: tuple[Path, str]) -> None:
    wheel, printed = built
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert top == {"mlmon"}, top
    for sub in ("mlmon/tasks/extract.py", "mlmon/flows/monitor.py", "mlmon/reports/render.py"):
        assert sub in names
    # the data files travel with their packages
    assert any(n.startswith("mlmon/tasks/store/migrations/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("mlmon/reports/templates/") for n in names)
    assert any(n.startswith("mlmon/reports/static/") for n in names)
    # and no screenful of setuptools warnings about their folders in `make demo`'s install
    assert "is absent from the `packages` configuration" not in printed, printed[-2000:]


def test_outside_the_repository_tasks_is_not_importable_and_mlmon_tasks_is(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u, mlmon.tasks.config, mlmon.flows.monitor, mlmon.reports.render\n"
        "assert all(u.find_spec(n) is None for n in ('tasks', 'flows', 'reports')), 'a top-level package leaked'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
