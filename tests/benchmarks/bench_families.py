"""Cost of issue 10's model-health families at 100k and 1M rows, and all three together against the
univariate checks of the same window (not a test; ``make bench`` runs it through bench_pipeline.py).

Frames: target 1's workload of bench_pipeline.py (``workload_frame``: 15 numerical + 5 categorical
features; reference of n rows, seed 1; window of n rows, seed 2, n0–n2 shifted by +0.2σ) with a
logged model output added (a score leaning on n0, n3 and c0, its predicted label, a request id), the
same frames for every measurement, in this one process. Families: ``outliers`` (IsolationForest +
robust bounds), ``multivariate_drift`` (domain classifier), ``explanations`` (drift impact), each with
its default settings, fitted once on the reference (fit timed apart: it runs once per reference and is
cached in the profile) and run on the window the way ``evaluate`` runs it (``family_checks`` with the
window's drift table). The baseline, "what the univariate checks cost today", is ``evaluate`` (the
engine behind ``mlmon.compare`` and the flows) with the three families off: drift of the 20 features,
the prediction and the score, data quality and service health, on the same window. Then ``evaluate``
with all three on, so the increment is also measured through the public path.

Every part is run ``--repeats`` times, alternating, so the parts of one repeat see the same load; the
medians are printed with wall and CPU seconds (the machine is shared: CPU seconds move less), peak
memory above the start of the call (the kernel's high-water mark, bench_pipeline's ``timed``) and the
rows each family used, i.e. what it sampled.

    python tests/benchmarks/bench_families.py                    # 100k and 1M rows
    python tests/benchmarks/bench_families.py --sizes 100000     # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from bench_pipeline import T0, Run, timed, workload_config, workload_frame

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import family_checks, fit_families
from mlmon.tasks.checks.multivariate import IMPORTANCE_ROWS
from mlmon.tasks.checks.outcome import ALL, CheckResult, Metric
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.window import Window

FAMILIES = ("outliers", "multivariate_drift", "explanations")  # issue 10's (config section names)
TOGETHER, UNIVARIATE, INCREMENT = "all three together", "univariate checks", "evaluate: all three on − off"


def with_output(frame: pd.DataFrame) -> pd.DataFrame:
    """The workload frame with what a binary classifier logs: a score leaning on n0, n3 and c0 (so
    the drift-impact family has something to rank), its label and a request id."""
    logit = 0.8 * frame["n0"] + 0.3 * (frame["n3"] - 3) / 1.3 + 0.5 * (frame["c0"] == "c0_0") - 0.5
    p = 1 / (1 + np.exp(-logit.to_numpy(np.float64)))
    frame[c.SCORE] = p
    frame[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    frame[c.REQUEST_ID] = ("r" + pd.Series(np.arange(len(frame))).astype(str)).to_numpy(object)
    return frame


def config(*enabled: str) -> ModelConfig:
    """The workload's features as a binary classifier, with the named families on (defaults)."""
    features = {name: {"type": f.type.value} for name, f in workload_config().features.items()}
    return model_from_dict(
        {
            "features": features,
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            **{f: {"enabled": f in enabled} for f in FAMILIES},
        }
    )


@dataclass
class Part:
    """One measured part at one size: its runs, and what it used."""

    runs: list[Run]
    used: str = ""
    verdict: str = ""

    @property
    def wall(self) -> float:
        return float(np.median([r.seconds[0] for r in self.runs]))

    @property
    def cpu(self) -> float:
        return float(np.median([r.cpu[0] for r in self.runs]))

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)


def used(family: str, cfg: ModelConfig, n: int, metrics: list[Metric], fitted: Any) -> str:
    """What the family used of the window (and of the reference): its samples, read off its result."""
    value = {m.metric: m.value for m in metrics if m.segment == ALL and not m.feature}
    if family == "outliers":
        oc, k = cfg.outliers, int(value["outlier_rows"])
        how = "a seeded sample of" if k < n else "all"
        return (
            f"IsolationForest and the excess test on {how} {k:,} of {n:,} rows; robust-bounds screening of "
            f"all {n:,} rows for the top {oc.top_k} outliers and the bounds shares"
        )
    if family == "multivariate_drift":
        mc, k = cfg.multivariate_drift, int(value["multivariate_rows"])
        return (
            f"domain classifier on {k:,} + {k:,} seeded rows (window + reference), {mc.folds} folds × "
            f"{mc.max_iter} iterations; importances on ≤ {IMPORTANCE_ROWS:,} held-out rows per fold"
        )
    ec = cfg.explanations
    return (
        f"attributions move {len(fitted.sample):,} held-out reference rows with values from a seeded "
        f"{min(n, ec.max_rows):,}-row window sample; ranks the drift table of all {n:,} rows (the "
        "univariate checks'); mean output over all rows"
    )


def verdict(checks: list[CheckResult]) -> str:
    return ", ".join(f"{ch.check}{'@' + ch.feature if ch.feature else ''}={ch.status.value}" for ch in checks)


def run_size(n: int, repeats: int) -> dict[str, Part]:
    ref = with_output(workload_frame(n, seed=1))
    cur = with_output(workload_frame(n, seed=2, shift=0.2))
    window = Window(T0, T0 + timedelta(days=1))
    off, on = config(), config(*FAMILIES)
    alone = {f: config(f) for f in FAMILIES}
    print(f"\n== issue 10's families on {n:,} + {n:,} rows (window shifted +0.2σ on n0–n2) ==", flush=True)
    profile = fit_profile(ref, profile_kinds(on), "families")
    for f in FAMILIES:
        fit, _ = timed(lambda f=f: fit_families(profile, ref, alone[f]), 1)
        print(
            f"  fit {f:<19} on {n:,} reference rows: {fit.seconds[0]:6.2f} s wall, {fit.cpu[0]:6.2f} s CPU, "
            f"+{fit.peak_mb:4.0f} MB (once per reference, cached in the profile)"
        )
    profile = fit_families(profile, ref, on)
    parts: dict[str, Part] = {k: Part([]) for k in (UNIVARIATE, *FAMILIES, TOGETHER, INCREMENT)}
    for _ in range(repeats):  # alternating: the parts of one repeat see the same load
        run, result = timed(lambda: evaluate(off, profile, Batch(frame=cur), window), 1)
        parts[UNIVARIATE].runs.append(run)
        table = tuple(d for d in result.drift if d.segment == ALL)  # what evaluate hands the families
        for f in FAMILIES:
            run, (checks, metrics) = timed(
                lambda f=f, t=table: family_checks(alone[f], cur, profile, drift=t), 1
            )
            state = profile.fitted.get({"explanations": "drift_impact"}.get(f, ""), (None, None))[1]
            parts[f] = Part([*parts[f].runs, run], used(f, alone[f], n, metrics, state), verdict(checks))
        run, (checks, _) = timed(lambda t=table: family_checks(on, cur, profile, drift=t), 1)
        parts[TOGETHER].runs.append(run)
        parts[TOGETHER].verdict = verdict(checks)
        both, _ = timed(lambda: evaluate(on, profile, Batch(frame=cur), window), 1)
        uni = parts[UNIVARIATE].runs[-1]
        parts[INCREMENT].runs.append(
            Run([both.seconds[0] - uni.seconds[0]], both.peak_mb, [both.cpu[0] - uni.cpu[0]])
        )
    parts[UNIVARIATE].used = f"every row: drift of 22 columns, data quality, service health ({n:,} rows)"
    print(f"  {'part':<30} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  rows used / sampled")
    for name, p in parts.items():
        peak = f"{p.peak_mb:8.0f}" if name != INCREMENT else f"{'':>8}"
        print(f"  {name:<30} {p.wall:7.3f} {p.cpu:7.3f} {peak}  {p.used}")
        if p.verdict:
            print(f"  {'':<30} verdict: {p.verdict[:160]}")
    runs = ", ".join(
        f"{t.seconds[0]:.2f}/{u.seconds[0]:.2f}"
        for t, u in zip(parts[TOGETHER].runs, parts[UNIVARIATE].runs, strict=True)
    )
    print(f"  wall s per repeat, together / univariate: {runs}", flush=True)
    return parts


def met(parts: dict[str, Part]) -> bool:
    """All three together cost no more than the univariate checks, in wall and in CPU seconds."""
    t, u = parts[TOGETHER], parts[UNIVARIATE]
    return t.wall <= u.wall and t.cpu <= u.cpu


def summary(results: dict[int, dict[str, Part]]) -> list[str]:
    """The summary lines (bench_pipeline.py prints them with its targets)."""
    lines = []
    for n, parts in results.items():
        each = "; ".join(f"{f} {parts[f].wall:.2f} s / {parts[f].cpu:.2f} s CPU" for f in FAMILIES)
        lines.append(f"  issue 10 families at {n:>9,} rows (wall / CPU, medians): {each}")
    n = max(results)
    t, u, inc = results[n][TOGETHER], results[n][UNIVARIATE], results[n][INCREMENT]
    ok = "MET" if met(results[n]) else "NOT MET"
    if n < 1_000_000:
        ok = f"not measured at 1M ({ok} at {n:,})"
    lines.append(
        f"  issue 10 families together at {n:,} rows: {t.wall:.2f} s wall / {t.cpu:.2f} s CPU (through evaluate: "
        f"+{inc.wall:.2f} s / +{inc.cpu:.2f} s) vs the univariate checks {u.wall:.2f} s / {u.cpu:.2f} s"
    )
    lines.append(f"  target: all families together ≤ univariate checks at 1M -> {ok}")
    return lines


def run(sizes: list[int], repeats: int = 3) -> dict[int, dict[str, Part]]:
    return {n: run_size(n, repeats) for n in sizes}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of every part per size")
    args = ap.parse_args(argv)
    if argv is None and os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        # as bench_pipeline.py: fixed glibc thresholds, so a freed stage never hides the next one's peak
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "1048576"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: wall times vary)")
    results = run(args.sizes, args.repeats)
    print(f"\nsummary (load average now {os.getloadavg()[0]:.1f})")
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
