"""Cost of the estimated-performance family (CBPE) at 100k and 1M rows (not a test; printed figures).

calibrate_cbpe.py's binary and multiclass models; the fit (isotonic calibration with its 5-fold check,
200 bootstrap chunks of 1,000 rows) runs once on a 20k-row labelled reference; a window is scored with
``estimated_checks`` (the family's run on one window or segment). Called by ``make bench``
(bench_pipeline.py) and runnable alone::

    python tests/benchmarks/bench_cbpe.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_cbpe import config, draw

from mlmon.tasks.checks.estimated import estimated_checks, fit_cbpe


def cbpe_cost(sizes: tuple[int, ...] = (100_000, 1_000_000)) -> None:
    print("\nestimated performance (CBPE): fit once on 20,000 labelled rows, then per window")
    for task in ("binary", "multiclass"):
        cfg = config(task)
        rng = np.random.default_rng(0)
        ref = draw(task, 20_000, rng)
        t = time.perf_counter()
        model = fit_cbpe(ref, cfg)
        fit = time.perf_counter() - t
        line = f"  {task:<10} fit {fit:.2f} s"
        for n in sizes:
            w = draw(task, n, rng)
            runs = []
            for _ in range(3 if n <= 100_000 else 1):
                t = time.perf_counter()
                estimated_checks(w, model, cfg.estimated_performance)
                runs.append(time.perf_counter() - t)
            line += f"; {n:>9,} rows {float(np.median(runs)):.3f} s"
        print(line, flush=True)


if __name__ == "__main__":
    cbpe_cost()
