"""Benchmark: the report of a failing 20-feature window at 100k and 1M rows: size and render time.

Not a test. The window has the demo's kinds of incidents on the benchmark's 15 numerical + 5
categorical columns (a unit change ×60 on 40 % of one column, 30 % of another missing, a shifted
column, a new category), so every failing column gets its picture. Prints, per size:

* histograms — counting every column on the reference's bins (part of ``evaluate``, the only work on
  rows that the pictures need);
* render     — ``write_report`` (incidents, pictures, trends from ten stored windows, every table), the
  rows never touched;
* the page size, the number of inline SVG pictures and which failing columns have one.

    python tests/benchmarks/bench_report.py                 # 100k and 1M
    python tests/benchmarks/bench_report.py --sizes 100000
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mlmon.reports import render
from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Metric
from mlmon.tasks.evaluate import drift_specs, evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.histograms import histograms
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.store.store import HistoryPoint
from mlmon.tasks.window import Window
from tests.benchmarks.bench_pipeline import columns, config, reference_frame

T0 = pd.Timestamp("2026-03-02", tz="UTC").to_pydatetime()


def failing_window(n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame(columns(n, rng, shift=0.3))
    unit = rng.random(n) < 0.4
    df.loc[unit, "n1"] = df.loc[unit, "n1"] * 60  # minutes logged as seconds on 40 % of rows
    df.loc[rng.random(n) < 0.3, "n2"] = np.nan
    df.loc[rng.random(n) < 0.09, "c0"] = "XX"
    p = rng.random(n) ** 0.7
    df[c.SCORE] = p
    df[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    df[c.TARGET] = np.where(rng.random(n) < 0.5, np.where(rng.random(n) < p, "yes", "no"), None).astype(
        object
    )
    df[c.TIMESTAMP] = pd.Timestamp(T0) + pd.to_timedelta(np.arange(n) * (86_400 / n), unit="s")
    df[c.LATENCY] = rng.lognormal(np.log(60), 0.6, n)
    df[c.STATUS] = np.where(rng.random(n) < 0.01, "error", "ok").astype(object)
    return df


def history(window: Window, n: int = 10) -> list[HistoryPoint]:
    out = []
    for k in range(n, 0, -1):
        s = window.start - k * window.length
        e = s + window.length
        out += [
            HistoryPoint(s, e, "n_rows", "", 1e6),
            HistoryPoint(s, e, "latency_p95_ms", "", 150.0 + k),
            HistoryPoint(s, e, "error_rate", "", 0.01),
            HistoryPoint(s, e, "f1", "", 0.7),
            *(HistoryPoint(s, e, "drift_effect", f, 0.01 * k) for f in ("n0", "n1", "n2", "c0")),
        ]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--reference-rows", type=int, default=100_000)
    args = ap.parse_args(argv)
    cfg = config()
    ref = reference_frame(args.reference_rows, np.random.default_rng(0))
    profile = fit_profile(ref, profile_kinds(cfg), "bench")
    print(
        f"{'rows':>10}  {'histograms':>10}  {'render':>8}  {'size':>9}  {'svg':>4}  failing columns with a picture"
    )
    for n in args.sizes:
        frame = failing_window(n, np.random.default_rng(n))
        window = Window(T0, T0 + timedelta(days=1))
        t = time.perf_counter()
        histograms(profile, frame, list(drift_specs(cfg, profile)))
        t_hist = time.perf_counter() - t
        result = evaluate(cfg, profile, Batch(frame=frame), window)
        result = result.__class__(
            **{**result.__dict__, "metrics": (*result.metrics, Metric("mean", 1e308, "n3", ALL))}
        )
        past = history(window)
        with tempfile.TemporaryDirectory() as out:
            render.write_report(result, cfg, Path(out), None, history=past)  # warm the templates
            t = time.perf_counter()
            page = render.write_report(result, cfg, Path(out), None, history=past)
            t_render = time.perf_counter() - t
            html = page.read_text()
        size = len(html.encode())
        blocks = dict(re.findall(r'<li class="incident \w+" data-key="([^"]+)">(.*?)</li>', html, re.S))
        failing = sorted({ch.feature for ch in result.failed if ch.feature in cfg.features})
        pictured = [f for f in failing if "<svg" in blocks.get(f"column:{f}", "")]
        print(
            f"{n:>10,}  {t_hist:>9.3f}s  {t_render:>7.3f}s  {size / 1024:>6.0f} KB  {html.count('<svg'):>4}  "
            f"{len(pictured)}/{len(failing)} ({', '.join(pictured)}); incidents {len(blocks)}"
        )


if __name__ == "__main__":
    main()
