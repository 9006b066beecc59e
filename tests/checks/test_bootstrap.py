"""The vectorised bootstrap of model quality gives the values of the per-resample computation it replaced.

``loop_values`` is that computation, frozen here: the same seeded resamples, one ``model_scores`` call on
each resampled frame. The weighted form must agree with it for every metric of every task, with ties in
the scores, rows without a prediction or a score, and classes some resamples do not hold.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.performance import (
    BOOTSTRAP_ROUNDS,
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    bootstrap_values,
    model_scores,
)
from mlmon.tasks.config import ModelConfig


def loop_all(labelled: pd.DataFrame, cfg: ModelConfig) -> dict[str, list[float]]:
    """Every metric on each of the seeded resamples, as ``_unless_noise`` computed it before."""
    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = {}
    for _ in range(BOOTSTRAP_ROUNDS):
        sample = labelled.iloc[rng.integers(0, len(labelled), len(labelled))]
        for name, v in model_scores(sample, cfg).values.items():
            if np.isfinite(v):
                out.setdefault(name, []).append(v)
    return out


@functools.cache
def case(task: str, n: int) -> tuple[pd.DataFrame, ModelConfig, dict[str, list[float]]]:
    frame = {"binary": binary, "multiclass": multiclass, "regression": regression}[task](n, seed=n)
    config = cfg(task, positive_class="yes") if task == "binary" else cfg(task)
    return frame, config, loop_all(frame, config)


def cfg(task: str, **kw: Any) -> ModelConfig:
    body = {"name": "m", "features": {"x": {"type": "numerical"}}, "reference": {"path": "r.parquet"}}
    return ModelConfig.model_validate({**body, "base_dir": ".", "task": task, **kw})


def binary(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 1)  # few distinct values: many ties
    truth = np.where(rng.random(n) < score, "yes", "no").astype(object)
    pred = np.where(score > 0.5, "yes", "no").astype(object)
    pred[rng.random(n) < 0.05] = None
    score[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({c.TARGET: truth, c.PREDICTION: pred, c.SCORE: score})


def multiclass(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(["a", "b", "c", "rare"], dtype=object)
    truth = names[rng.choice(4, n, p=[0.5, 0.3, 0.19, 0.01])]
    pred = np.where(rng.random(n) < 0.7, truth, names[rng.integers(0, 3, n)])
    return pd.DataFrame({c.TARGET: truth, c.PREDICTION: pred})


def regression(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(10, 3, n))
    y[:5] = 0.0  # mape skips them
    pred = y + rng.normal(0, 1, n)
    pred[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({c.TARGET: y, c.PREDICTION: pred})


CASES = [
    *[("binary", m) for m in CLASSIFICATION_METRICS],
    *[("multiclass", m) for m in ("accuracy", "precision", "recall", "f1")],
    *[("regression", m) for m in REGRESSION_METRICS],
]


@pytest.mark.parametrize(("task", "name"), CASES, ids=[f"{t}-{m}" for t, m in CASES])
@pytest.mark.parametrize("n", [40, 700])
def test_weighted_bootstrap_equals_the_per_resample_loop(task: str, name: str, n: int) -> None:
    frame, config, every = case(task, n)
    want = every.get(name, [])
    got = bootstrap_values(name, frame, config)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert float(np.std(got, ddof=1)) == pytest.approx(float(np.std(want, ddof=1)), rel=1e-9)


def test_unconfigured_positive_class_takes_the_per_resample_path() -> None:
    frame = binary(300, seed=1)
    config = cfg("binary")  # positive class: the second sorted label each resample happens to hold
    every = loop_all(frame, config)
    for name in ("precision", "roc_auc"):
        assert bootstrap_values(name, frame, config) == every[name]
