"""Cost of the versions family (not a test): seconds per window at 100k and 1M served rows.

Shadow: a challenger scores every request again (so the family sees 2× the rows: pairing on the
request id, McNemar, prediction drift of label and score); split: two versions share the traffic 50/50.
Every row is labelled (the most work the quality tests can get). Windows from calibrate_versions.draw.

    python tests/benchmarks/bench_versions.py                  # 100k and 1M, 3 / 1 runs
    python tests/benchmarks/bench_versions.py --sizes 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_versions import config, draw

from mlmon.tasks.checks.versions import version_checks


def run(sizes: list[int]) -> list[tuple[str, int, float]]:
    cfg = config()
    rng = np.random.default_rng(20261201)
    out = []
    for n in sizes:
        for mode in ("shadow", "split"):
            served, shadow = draw(n, rng, mode=mode)
            times = []
            for _ in range(3 if n <= 100_000 else 1):
                t = time.perf_counter()
                version_checks(served, shadow, cfg)
                times.append(time.perf_counter() - t)
            out.append((mode, n, float(np.median(times))))
            print(f"versions family  {mode:<7} {n:>10,} served rows: {out[-1][2]:.2f} s / window", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    run(ap.parse_args(argv).sizes)


if __name__ == "__main__":
    main()
