"""Calibration of the drift decision rule (not a test): false alarms on null windows, power on shifts.

Reference: 100k rows × 20 features — 15 numerical (normal, lognormal and integer-valued Poisson(15), a
tied count column taking a few dozen values; five of each) and 5 categorical (2 to 12 categories, uniform and skewed). Windows are drawn from the
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
    python tests/benchmarks/calibrate_drift.py --compare  # rules side by side: null rate and power

``--compare`` scores the same seeded windows under each rule of :data:`RULES` (``before``: KS for every
numerical column, Bonferroni; the candidates: Anderson–Darling and/or chi-square on the reference bins
for discrete columns, Holm) and prints, per size, the null false-alarm share (any feature flagged) and
the smallest shift (in σ, grid :data:`SHIFTS`) found in at least 90% of windows on the normal column
``n0`` and the tied count column ``n2``. For the power search the other 19 columns of each window are
scored once and only the shifted column is re-scored per shift (the family and its correction are the
same as a full ``drift_table``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlmon.tasks.checks.decide import DriftSpec, correct, dataset_drift, drift_table, numerical_test
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import DriftConfig, Kind
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile

N_NUM, N_CAT = 15, 5
LOGNORMAL = (3.0, 0.5)  # mu, sigma of the log
POISSON = 15.0
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


def draw_column(name: str, n: int, rng: np.random.Generator, k: float) -> np.ndarray:
    """One numerical column of :func:`draw`, its mean moved by ``k`` σ."""
    i = int(name[1:])
    if i % 3 == 0:
        return rng.normal(k, 1.0, n)
    if i % 3 == 1:
        return rng.lognormal(*LOGNORMAL, n) + k * LN_SIGMA
    return rng.poisson(POISSON + k * np.sqrt(POISSON), n).astype(np.float64)


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


def specs_for(cfg: DriftConfig, columns: list[str], profile: Profile | None = None) -> dict[str, DriftSpec]:
    """The specs the pipeline would build (the numerical test chosen by the column's profiled shape)."""
    cat = DriftSpec(Kind.CATEGORICAL, cfg.categorical_test, cfg.categorical_effect, cfg.categorical_threshold)
    out = {}
    for c in columns:
        test = numerical_test(cfg, profile.columns.get(c) if profile else None)
        num = DriftSpec(Kind.NUMERICAL, test, cfg.numerical_effect, cfg.numerical_threshold)
        out[c] = num if c.startswith("n") else cat
    return out


RULES = {  # extra_methods off: they never enter the verdict, and the power search re-scores a lot
    "before": DriftConfig(correction="bonferroni", extra_methods=[]),
    "ks+holm (default)": DriftConfig(extra_methods=[]),
    "ad+holm": DriftConfig(numerical_test="anderson", correction="holm", extra_methods=[]),
    "shape: ks, ad discr": DriftConfig(discrete_test="anderson", correction="holm", extra_methods=[]),
    "shape: ks, chi2 discr": DriftConfig(
        discrete_test="chisquare_binned", correction="holm", extra_methods=[]
    ),
}
SHIFTS = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
POWER_FEATURES = {"n0": "normal", "n2": "tied count"}


def _flagged(p_adj: float | None, effect: float | None, spec: DriftSpec, cfg: DriftConfig) -> bool:
    """``decide._decide``'s rule for one column."""
    if effect is None:
        return False
    big = effect >= spec.threshold
    return big if spec.test is None else big and p_adj is not None and p_adj < cfg.alpha


def compare(profile: Profile, ref_columns: list[str], sizes: list[tuple[int, int, int]], seed: int) -> None:
    """Null false-alarm share and smallest shift found in ≥ 90% of windows, for every rule."""
    rules = {name: (cfg, specs_for(cfg, ref_columns, profile)) for name, cfg in RULES.items()}
    for name, (cfg, specs) in rules.items():
        tests = sorted({f"{c}:{s.test}" for c, s in specs.items() if c in ("n0", "n1", "n2")})
        print(f"rule {name:<21} {cfg.correction:<10} {', '.join(tests)}")
    print(
        f"\n{'rows':>9} {'null n':>6} {'power n':>7}  "
        + "  ".join(f"{name:>21}" for name in rules)
        + "\n"
        + " " * 26
        + "  ".join(f"{'null / n0 / n2':>21}" for _ in rules)
    )
    for i, (rows, n_null, n_power) in enumerate(sizes):
        rng = np.random.default_rng(seed + 100 + i)
        t0 = time.perf_counter()
        null_flags = dict.fromkeys(rules, 0)
        found = {(r, f, k): 0 for r in rules for f in POWER_FEATURES for k in SHIFTS}
        for w in range(max(n_null, n_power)):
            window = draw(rows, rng)
            for name, (cfg, specs) in rules.items():
                table = drift_table(profile, window, specs, cfg)
                if w < n_null:
                    null_flags[name] += any(d.drifted for d in table)
                if w >= n_power:
                    continue
                for feature in POWER_FEATURES:
                    others = [
                        float(d.p_value) for d in table if d.feature != feature and d.p_value is not None
                    ]
                    for k in SHIFTS:
                        moved = draw_column(
                            feature, rows, np.random.default_rng((seed, i, w, int(k * 1000))), k
                        )
                        row = drift_table(
                            profile, pd.DataFrame({feature: moved}), {feature: specs[feature]}, cfg
                        )[0]
                        p_adj = None
                        if row.p_value is not None:
                            p_adj = float(correct([float(row.p_value), *others], cfg.correction)[0])
                        found[(name, feature, k)] += _flagged(p_adj, row.effect, specs[feature], cfg)
        cells = []
        for name in rules:
            smallest = []
            for feature in POWER_FEATURES:
                ok = [k for k in SHIFTS if found[(name, feature, k)] >= 0.9 * n_power]
                smallest.append(f"{ok[0]:g}" if ok else f">{SHIFTS[-1]:g}")
            cells.append(f"{null_flags[name] / n_null:.1%} / {smallest[0]} / {smallest[1]}")
        print(
            f"{rows:>9,} {n_null:>6} {n_power:>7}  "
            + "  ".join(f"{c:>21}" for c in cells)
            + f"   ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )


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
    ap.add_argument("--compare", action="store_true", help="every rule of RULES side by side")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    cfg = DriftConfig()
    ref = draw(args.reference_rows, np.random.default_rng(args.seed))
    t = time.perf_counter()
    profile = fit_profile(
        ref, {c: specs_for(cfg, list(ref.columns))[c].kind for c in ref.columns}, "calibration"
    )
    fit_s = time.perf_counter() - t
    specs = specs_for(cfg, list(ref.columns), profile)
    if args.compare:
        sizes = (
            [(1_000, 20, 10), (10_000, 20, 10)]
            if args.quick
            else [(1_000, 200, 30), (10_000, 200, 30), (100_000, 50, 10), (1_000_000, 10, 3)]
        )
        compare(profile, list(ref.columns), sizes, args.seed)
        print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")
        return
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
