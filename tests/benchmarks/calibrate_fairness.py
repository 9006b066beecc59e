"""Calibration of the fairness and class-balance families (not a test): false alarms on null windows,
detection of an injected group gap and of a class falling under its minimum share.

Windows: a binary classifier's predictions for 4 groups of a sensitive attribute (shares 30/30/20/20%),
70% of the rows labelled, labels agreeing with the prediction 80% of the time (so TPR and FPR are the
same in every group unless the selection rate differs). Defaults of FairnessConfig (limits 0.1 / 0.8 /
0.1 / 0.1, alpha 0.01, min_group_rows 100) and ClassBalanceConfig (alpha 0.01, min_shift 0.05) with
``min_share: {churn: 0.08}``; the class-balance reference is 5,000 rows predicting churn 30% of the time.

Cells (``fail`` = share of windows where at least one fairness check fails; ``warn`` = class balance):
- null: every group selected at 30% (no gap): must flag ≤ 5%;
- boundary: one group at 20%, a true gap of exactly the 0.1 limit: ``dp diff`` flags at the test's
  own level (≤ alpha); its ratio 0.67 really breaks 0.8, and its TPR really differs (0.63 vs 0.50), so
  those columns are detections, not false alarms;
- ratio boundary: one group at 24%, a ratio of exactly 0.8: ``dp ratio`` flags at ≤ alpha;
- gap 0.2: one group at 10% (and its ratio 0.33 breaks the four-fifths rule): must flag;
- class-balance null: churn at the reference's 30%; at the minimum: churn at exactly 8% (≤ alpha);
  under the minimum: churn at 3%.

    python tests/benchmarks/calibrate_fairness.py          # 200 windows per cell (~1 min)
    python tests/benchmarks/calibrate_fairness.py --quick  # 40
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.balance import balance_checks, fit_balance
from mlmon.tasks.checks.fairness import fairness_checks
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import model_from_dict

GROUPS = {"north": 0.3, "south": 0.3, "east": 0.2, "west": 0.2}


def config():
    return model_from_dict({
        "task": "binary", "classes": ["stay", "churn"], "positive_class": "churn",
        "features": {"x": {"type": "numerical"}},
        "business_fields": {"region": {"path": "customer.region", "type": "categorical"}},
        "fairness": {"enabled": True, "attributes": ["region"]},
        "class_balance": {"enabled": True, "min_share": {"churn": 0.08}},
    })  # fmt: skip


def window(n: int, rng: np.random.Generator, rates: dict[str, float]) -> pd.DataFrame:
    region = rng.choice(np.array(list(GROUPS), dtype=object), n, p=list(GROUPS.values()))
    p = np.vectorize(rates.get)(region).astype(float)
    pred = np.where(rng.random(n) < p, "churn", "stay").astype(object)
    target = np.where(rng.random(n) < 0.8, pred, np.where(pred == "churn", "stay", "churn")).astype(object)
    target[rng.random(n) >= 0.7] = None
    return pd.DataFrame({"x": 0.0, "region": region, c.PREDICTION: pred, c.TARGET: target})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    cfg = config()
    rng = np.random.default_rng(args.seed)
    n_win = 40 if args.quick else 200
    base = dict.fromkeys(GROUPS, 0.3)
    print("fairness: rule = one-sided bound of the worst pair beyond the limit (Newcombe / Katz), alpha 0.01")
    print(f"{'cell':<26} {'rows':>7} {'windows':>7} {'any fail':>9} {'dp diff':>8} {'dp ratio':>9} "
          f"{'eq opp':>7} {'eq odds':>8} {'warn':>6}")  # fmt: skip
    cells = [("null (no gap)", base), ("boundary (gap = 0.1)", base | {"south": 0.2}),
             ("ratio boundary (0.8)", base | {"south": 0.24}), ("gap 0.2", base | {"south": 0.1})]  # fmt: skip
    for label, rates in cells:
        for rows in (1_000, 10_000):
            fails = {"any": 0}
            warns = 0
            for _ in range(n_win):
                checks, _ = fairness_checks(window(rows, rng, rates), cfg)
                bad = {ch.check for ch in checks if ch.status is Status.FAIL}
                fails["any"] += bool(bad)
                warns += any(ch.status is Status.WARN for ch in checks)
                for name in bad:
                    fails[name] = fails.get(name, 0) + 1

            def r(k: str, f: dict[str, int] = fails) -> str:
                return f"{f.get(k, 0) / n_win:.1%}"

            print(f"{label:<26} {rows:>7,} {n_win:>7} {r('any'):>9} {r('demographic_parity_difference'):>8} "
                  f"{r('demographic_parity_ratio'):>9} {r('equal_opportunity_difference'):>7} "
                  f"{r('equalized_odds_difference'):>8} {warns / n_win:>6.1%}", flush=True)  # fmt: skip

    ref = fit_balance(window(5_000, rng, base), cfg)
    print("\nclass balance: warn = moved significantly (Bonferroni over classes) AND by ≥ 0.05; "
          "min share = Wilson upper bound below it")  # fmt: skip
    print(f"{'cell':<26} {'rows':>7} {'windows':>7} {'balance warn':>13} {'min-share warn':>15}")
    for label, share in (
        ("null (churn 30%)", 0.3),
        ("at the minimum (8%)", 0.08),
        ("under the minimum (3%)", 0.03),
    ):
        for rows in (1_000, 10_000):
            moved = under = 0
            for _ in range(n_win):
                checks, _ = balance_checks(window(rows, rng, dict.fromkeys(GROUPS, share)), ref, cfg)
                st = {ch.check: ch.status for ch in checks}
                moved += st["class_balance"] is Status.WARN
                under += st["class_min_share"] is Status.WARN
            print(
                f"{label:<26} {rows:>7,} {n_win:>7} {moved / n_win:>13.1%} {under / n_win:>15.1%}", flush=True
            )


if __name__ == "__main__":
    main()
