"""Benchmark: wall time of ``mlmon check`` on Parquet files (15 numerical + 5 categorical features, a binary
prediction, its score and the label), reference = current = n rows.

Not a test. Runs the real console command in a fresh process (interpreter start and imports included,
as a CI job pays them), a few times per size, and prints the median and the range; then the in-process
stages of the same comparison (read, fit the reference, compare) so the total can be read.

    python tests/benchmarks/bench_check.py                 # 100k rows
    python tests/benchmarks/bench_check.py --sizes 10000 100000 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_NUM, N_CAT = 15, 5


def dataset(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(N_NUM):
        cols[f"num_{i}"] = rng.normal(0, 1, n) + (shift if i == 0 else 0.0)
    for i in range(N_CAT):
        cols[f"cat_{i}"] = rng.choice([f"v{k}" for k in range(8)], n)
    score = 1 / (1 + np.exp(-cols["num_0"] - cols["num_1"]))
    cols["score"] = score
    cols["prediction"] = np.where(score > 0.5, "yes", "no")
    cols["label"] = np.where(rng.uniform(size=n) < score, "yes", "no")
    return pd.DataFrame(cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    mlmon_cmd = Path(sys.executable).with_name("mlmon")
    print(f"{'rows':>10}  {'case':<8} {'exit':>4}  {'mlmon check wall (median, min–max)':<36}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in args.sizes:
            dataset(n, 0).to_parquet(d / "ref.parquet")
            dataset(n, 1).to_parquet(d / "null.parquet")
            dataset(n, 2, shift=0.1).to_parquet(d / "shifted.parquet")
            for case in ("null", "shifted"):
                times, code = [], None
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    out = subprocess.run(
                        [str(mlmon_cmd), "check", "--reference", str(d / "ref.parquet"),
                         "--current", str(d / f"{case}.parquet"), "--format", "json"],
                        capture_output=True, text=True,
                    )  # fmt: skip
                    times.append(time.perf_counter() - t0)
                    code = out.returncode
                med = statistics.median(times)
                print(f"{n:>10,}  {case:<8} {code:>4}  {med:6.2f} s ({min(times):.2f}–{max(times):.2f} s)")
            stages(d, n)


def stages(d: Path, n: int) -> None:
    """The same comparison in process, stage by stage."""
    import mlmon.tasks.checks.performance
    import mlmon.tasks.evaluate  # noqa: F401  (imports are timed apart, below)
    from mlmon.tasks import compare as api

    t0 = time.perf_counter()
    ref = api.read_frame(d / "ref.parquet")
    cur = api.read_frame(d / "shifted.parquet")
    t1 = time.perf_counter()
    fitted = api.fit(ref)
    t2 = time.perf_counter()
    fitted.compare(cur)
    t3 = time.perf_counter()
    t4 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlmon.tasks.compare, mlmon.tasks.evaluate"], check=True)
    t5 = time.perf_counter()
    print(
        f"{'':>10}  stages: read {t1 - t0:.2f} s · fit reference (contract + profile) {t2 - t1:.2f} s · "
        f"compare (contract + evaluate) {t3 - t2:.2f} s · interpreter + imports {t5 - t4:.2f} s"
    )


if __name__ == "__main__":
    main()
