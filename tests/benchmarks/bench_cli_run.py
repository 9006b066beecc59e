"""Benchmark: wall time of ``mlmon run`` for one demo window with the embedded databases already up.

Not a test. Needs a state folder where ``mlmon demo`` ran (so the databases, the seeded traffic and the
reference exist). Runs each command ``--repeat`` times, alternating, and prints per variant the median
wall time and the median time until the flow run began (process start, imports and reaching a Prefect
API: the part a temporary Prefect server adds to).

    MLMON_HOME=/tmp/bench mlmon demo --days 2
    python tests/benchmarks/bench_cli_run.py --home /tmp/bench --start 2026-11-30 \\
        --variant after=.venv/bin/mlmon --variant before=/path/to/old/venv/bin/mlmon

``--no-evidently`` runs a copy of the config with ``evidently.enabled: false`` for the demo model, to
show the Prefect and engine cost without Evidently's report.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

_BEGIN = re.compile(r"Beginning flow run")


def run_once(exe: str, args: list[str], env: dict[str, str]) -> tuple[float, float | None, int]:
    """Wall seconds, seconds until the flow run began (first log line saying so), exit code."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    began = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if began is None and _BEGIN.search(line):
            began = time.monotonic() - t0
    code = proc.wait()
    return time.monotonic() - t0, began, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", required=True, help="MLMON_HOME where `mlmon demo` ran")
    ap.add_argument("--config", default="deployments/models.yaml")
    ap.add_argument("--model", default="demo_classifier")
    ap.add_argument("--start", required=True, help="window start, e.g. 2026-11-30")
    ap.add_argument("--variant", action="append", required=True, help="name=path/to/mlmon")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-evidently", action="store_true")
    a = ap.parse_args()

    config = Path(a.config).resolve()
    if a.no_evidently:
        raw = yaml.safe_load(config.read_text())
        raw["models"][a.model]["evidently"] = {
            **raw["models"][a.model].get("evidently", {}),
            "enabled": False,
        }
        ref = raw["models"][a.model]["reference"]
        ref["path"] = str((config.parent / ref["path"]).resolve())
        tmp = Path(tempfile.mkdtemp()) / "models.yaml"
        tmp.write_text(yaml.safe_dump(raw))
        config = tmp
    env = {**os.environ, "MLMON_HOME": a.home, "MLMON_CONFIG": str(config), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PREFECT_API_URL", None)
    variants = dict(v.split("=", 1) for v in a.variant)
    results: dict[str, list[tuple[float, float | None, int]]] = {k: [] for k in variants}
    for _ in range(a.repeat):
        for name, exe in variants.items():
            results[name].append(run_once(exe, ["run", a.model, "--start", a.start], env))
    print(
        f"mlmon run {a.model} --start {a.start} (evidently {'off' if a.no_evidently else 'on'}), {a.repeat} runs each"
    )
    print(f"{'variant':<10} {'median wall s':>14} {'median to flow start s':>23}  all walls / exit codes")
    for name, rs in results.items():
        walls = [w for w, _, _ in rs]
        starts = [b for _, b, _ in rs if b is not None]
        med_start = f"{statistics.median(starts):.1f}" if starts else "-"
        print(
            f"{name:<10} {statistics.median(walls):>14.1f} {med_start:>23}  "
            f"{', '.join(f'{w:.1f}' for w in walls)} / {sorted({c for _, _, c in rs})}"
        )


if __name__ == "__main__":
    main()
