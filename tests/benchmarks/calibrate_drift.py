"""Calibration of the drift decision rule (not a test): false alarms on null windows, power on shifts.

Reference: 100k rows × 20 features — 15 numerical (normal, lognormal and integer-valued Poisson, five
of each) and 5 categorical (2 to 12 categories, uniform and skewed). Windows are drawn from the
reference's own distribution (null), or with the mean of ONE feature moved by 0.05σ / 0.1σ:
normal and lognormal values are shifted by kσ; the integer-valued feature stays integer-valued
(Poisson with λ + k·√λ). Every window goes through ``drift_table`` + ``dataset_drift`` with the default
:class:`~mlmon.tasks.config.DriftConfig` (20 columns in the family).

Columns of the table: ``any flag`` = share of windows with at least one drifted feature (the dataset
verdict fails); ``shifted found`` = share of windows where the moved feature is flagged; ``others`` =
share of windows where some other feature is flagged; ``score s`` = mean seconds per window spent in
drift_table + dataset_drift (data generation excluded); ``wall s`` = the whole cell.

    python tests/benchmarks/calibrate_drift.py            # 200 null windows per size, 20 at 1M (~5 min)
    python tests/benchmarks/calibrate_drift.py --quick    # 20 windows per cell, no 1M row (~1 min)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmon.tasks.checks.decide import DriftSpec, dataset_drift, drift_table
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import DriftConfig, Kind
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile

N_NUM, N_CAT = 15, 5
LOGNORMAL = (3.0, 0.5)  # mu, sigma of the log
POISSON = 4.0
CATS = [
    ["a", "b", "c", "d"],
    ["x", "y"],
    [f"c{i}" for i in range(12)],
    ["eu", "us", "apac"],
    ["web", "ios", "android"],
]
PROBS = [
    np.full(4, 0.25),
    np.array([0.7, 0.3]),
    np.linspace(1, 3, 12) / np.linspace(1, 3, 12).sum(),
    np.array([0.5, 0.3, 0.2]),
    np.array([0.6, 0.25, 0.15]),
]
LN_SIGMA = float(np.sqrt((np.exp(LOGNORMAL[1] ** 2) - 1) * np.exp(2 * LOGNORMAL[0] + LOGNORMAL[1] ** 2)))


def draw(n: int, rng: np.random.Generator, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """``n`` rows; ``shift`` maps a numerical feature to a mean shift in its σ."""
    shift = shift or {}
    cols: dict[str, np.ndarray] = {}
    for i in range(N_NUM):
        name, k = f"n{i}", shift.get(f"n{i}", 0.0)
        if i % 3 == 0:
            cols[name] = rng.normal(k, 1.0, n)
        elif i % 3 == 1:
            cols[name] = rng.lognormal(*LOGNORMAL, n) + k * LN_SIGMA
        else:
            cols[name] = rng.poisson(POISSON + k * np.sqrt(POISSON), n).astype(np.float64)
    for i in range(N_CAT):
        cols[f"c{i}"] = np.array(CATS[i], dtype=object)[rng.choice(len(CATS[i]), n, p=PROBS[i])]
    return pd.DataFrame(cols)


@dataclass(frozen=True)
class Cell:
    label: str
    rows: int
    windows: int
    feature: str | None = None  # the shifted feature
    sigma: float = 0.0


def specs_for(cfg: DriftConfig, columns: list[str]) -> dict[str, DriftSpec]:
    num = DriftSpec(Kind.NUMERICAL, cfg.numerical_test, cfg.numerical_effect, cfg.numerical_threshold)
    cat = DriftSpec(Kind.CATEGORICAL, cfg.categorical_test, cfg.categorical_effect, cfg.categorical_threshold)
    return {c: num if c.startswith("n") else cat for c in columns}


def run_cell(cell: Cell, profile: Profile, specs: dict[str, DriftSpec], cfg: DriftConfig, seed: int) -> str:
    rng = np.random.default_rng(seed)
    features = set(specs)
    t0 = time.perf_counter()
    scoring = 0.0
    any_flag = found = others = 0
    for _ in range(cell.windows):
        window = draw(cell.rows, rng, {cell.feature: cell.sigma} if cell.feature else None)
        t = time.perf_counter()
        table = drift_table(profile, window, specs, cfg)
        verdict = dataset_drift(table, cfg, features)
        scoring += time.perf_counter() - t
        flagged = {d.feature for d in table if d.drifted}
        any_flag += verdict.status is Status.FAIL
        found += cell.feature in flagged
        others += bool(flagged - {cell.feature})
        del window
    wall = time.perf_counter() - t0
    n = cell.windows
    shifted = f"{found / n:.1%}" if cell.feature else "-"
    return (
        f"{cell.label:<22} {cell.rows:>9,} {n:>5}  {any_flag / n:>8.1%}  {shifted:>13}  {others / n:>7.1%}"
        f"  {scoring / n:>8.3f}  {wall:>7.1f}"
    )


def plan(quick: bool) -> list[Cell]:
    """Null windows at every size; the required shifts (one normal feature) at 10k and 100k; the other
    feature families at 10k only (at 100k every shift of 0.05σ is found anyway)."""
    null = 20 if quick else 200
    cells = [Cell("null", rows, null) for rows in (1_000, 10_000, 100_000)]
    if not quick:
        cells.append(Cell("null", 1_000_000, 20))
    for sigma in (0.05, 0.1):
        cells.append(Cell(f"{sigma:g}σ shift, normal", 10_000, 20 if quick else 100, "n0", sigma))
        cells.append(Cell(f"{sigma:g}σ shift, normal", 100_000, 20 if quick else 50, "n0", sigma))
    if not quick:
        for feature, kind in (("n1", "lognormal"), ("n2", "integer")):
            for sigma in (0.05, 0.1):
                cells.append(Cell(f"{sigma:g}σ shift, {kind}", 10_000, 50, feature, sigma))
    return cells


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 windows per cell, no 1M-row cell")
    ap.add_argument("--reference-rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    cfg = DriftConfig()
    ref = draw(args.reference_rows, np.random.default_rng(args.seed))
    specs = specs_for(cfg, list(ref.columns))
    t = time.perf_counter()
    profile = fit_profile(ref, {c: s.kind for c, s in specs.items()}, "calibration")
    fit_s = time.perf_counter() - t
    print(
        f"rule: {cfg.correction} at alpha={cfg.alpha} AND effect >= {cfg.numerical_threshold} "
        f"({cfg.numerical_test} + normed {cfg.numerical_effect}) / {cfg.categorical_threshold} "
        f"({cfg.categorical_test} + {cfg.categorical_effect}); min_rows {cfg.min_rows}\n"
        f"reference {len(ref):,} rows × {len(specs)} features ({N_NUM} numerical, {N_CAT} categorical), "
        f"profile fitted in {fit_s:.2f}s\n"
    )
    print(
        f"{'windows':<22} {'rows':>9} {'n':>5}  {'any flag':>8}  {'shifted found':>13}  {'others':>7}"
        f"  {'score s':>8}  {'wall s':>7}"
    )
    for i, cell in enumerate(plan(args.quick)):
        print(run_cell(cell, profile, specs, cfg, args.seed + 1 + i), flush=True)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
