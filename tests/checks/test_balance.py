"""Class balance: warns when a class's predicted share moves beyond noise and a minimum effect, or falls
significantly under its configured minimum; quiet on noise at any window size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.balance import balance_checks, fit_balance
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.config import model_from_dict


def config(**balance):
    return model_from_dict({
        "task": "binary", "classes": ["stay", "churn"], "positive_class": "churn",
        "features": {"x": {"type": "numerical"}}, "class_balance": {"enabled": True, **balance},
    })  # fmt: skip


def frame(n: int, churn: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": 0.0, c.PREDICTION: np.where(rng.random(n) < churn, "churn", "stay").astype(object)}
    )


def status(checks, name):
    (ch,) = [x for x in checks if x.check == name]
    return ch.status


@pytest.mark.parametrize(
    "n, churn, expected",
    [
        (2_000, 0.30, Status.PASS),  # the reference's balance
        (1_000_000, 0.32, Status.PASS),  # significant at 1M rows, but a 2-point move: below min_shift
        (2_000, 0.40, Status.WARN),  # a 10-point move, significant
        (100, 0.40, Status.WARN),  # too few rows: insufficient data (a warning, never a fail)
    ],
)
def test_a_move_warns_only_beyond_noise_and_the_minimum_shift(n, churn, expected) -> None:
    cfg = config()
    ref = fit_balance(frame(5_000, 0.30, 0), cfg)
    checks, _ = balance_checks(frame(n, churn, 1), ref, cfg)
    assert status(checks, "class_balance") is expected


def test_a_class_under_its_minimum_share_warns_when_significantly_under() -> None:
    cfg = config(min_share={"churn": 0.2}, min_shift=1.0)
    ref = fit_balance(frame(5_000, 0.30, 0), cfg)
    assert status(balance_checks(frame(3_000, 0.12, 2), ref, cfg)[0], "class_min_share") is Status.WARN
    assert status(balance_checks(frame(3_000, 0.25, 3), ref, cfg)[0], "class_min_share") is Status.PASS
    # 18% on 300 rows is not significantly under 20%
    exact = pd.DataFrame({c.PREDICTION: ["churn"] * 54 + ["stay"] * 246})
    assert status(balance_checks(exact, ref, cfg)[0], "class_min_share") is Status.PASS


def test_a_class_the_reference_never_predicted_counts_as_moved() -> None:
    cfg = config()
    ref = fit_balance(frame(5_000, 0.0, 0), cfg)
    checks, metrics = balance_checks(frame(2_000, 0.2, 5), ref, cfg)
    assert status(checks, "class_balance") is Status.WARN and "churn" in checks[0].message
    assert {m.feature for m in metrics if m.metric == "reference_prediction_share"} == {"churn", "stay"}


def test_the_config_rejects_unknown_classes_and_a_regression_model() -> None:
    from mlmon.tasks.errors import ConfigError

    with pytest.raises(ConfigError, match="not in classes"):
        config(min_share={"gone": 0.1})
    with pytest.raises(ConfigError, match="needs a classifier"):
        model_from_dict({"task": "regression", "features": {"x": {"type": "numerical"}},
                         "class_balance": {"enabled": True}})  # fmt: skip
