"""A backfill fanned out over a process work pool with two real ``prefect worker start`` workers: both
take windows, no window runs twice, each window's row in the store was written by its one flow run.

Runs tests/benchmarks/bench_workers.py (its own state folder, databases and Prefect server, stopped at the
end) on two windows with two workers; it exits 1 on any of those problems. Slow: ~3-4 min here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks" / "bench_workers.py"

pytestmark = [pytest.mark.slow, pytest.mark.prefect, pytest.mark.integration]


def test_two_workers_share_the_windows_and_none_runs_twice():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--days", "2", "--workers", "2", "--per-day", "500"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = re.findall(r"^  (\d{4}-\d\d-\d\d)  (\w+)\s+(\S+)$", done.stdout, re.M)
    assert len(runs) == 2 and {state for _, state, _ in runs} == {"COMPLETED"}, done.stdout
    assert len({day for day, _, _ in runs}) == 2  # each window once
    assert len({worker for _, _, worker in runs}) == 2, done.stdout  # both workers took one
    assert "every window ran once and is stored once" in done.stdout
