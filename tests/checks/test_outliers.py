"""Outliers: a forest fitted once on the reference, a binomial verdict per window, the rows named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.checks.outliers import fit_outliers, outlier_checks
from mlmon.tasks.config import model_from_dict


def cfg(**outliers: object):
    return model_from_dict(
        {
            "features": {
                "a": {"type": "numerical"},
                "b": {"type": "numerical"},
                "city": {"type": "categorical"},
            },
            "outliers": {"enabled": True, **outliers},
        }
    )


def draw(n: int, rng: np.random.Generator) -> pd.DataFrame:
    a = rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "a": a,
            "b": 0.5 * a + rng.normal(0, 1, n),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            c.REQUEST_ID: [f"r{i}" for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def fitted():
    m = cfg()
    return m, fit_outliers(draw(20_000, np.random.default_rng(0)), m)


def test_a_two_percent_burst_fails_and_names_its_rows_and_features(fitted) -> None:
    m, model = fitted
    w = draw(5_000, np.random.default_rng(1))
    burst = np.random.default_rng(2).choice(len(w), 100, replace=False)  # 2%
    w.loc[burst, "a"] = np.random.default_rng(3).uniform(6, 10, 100)  # scattered, not one new cluster
    w.loc[burst, c.REQUEST_ID] = [f"bad{i}" for i in range(100)]
    (check,), metrics = outlier_checks(w, model, m.outliers)
    assert check.category is Category.OUTLIERS and check.status is Status.FAIL
    assert check.value >= 0.025  # the reference's own 1% plus most of the burst
    top = [x for x in metrics if x.metric == "outlier_top_score"]
    assert len(top) == m.outliers.top_k and all(x.feature.startswith("bad") for x in top)
    assert "a (z=" in check.message


def test_a_null_window_passes_and_a_small_one_is_insufficient_data(fitted) -> None:
    m, model = fitted
    (check,), _ = outlier_checks(draw(5_000, np.random.default_rng(3)), model, m.outliers)
    assert check.status is Status.PASS
    (small,), _ = outlier_checks(draw(100, np.random.default_rng(4)), model, m.outliers)
    assert small.status is Status.WARN and small.message.startswith("insufficient data")


def test_a_huge_window_is_not_an_alarm_for_a_tiny_excess(fitted) -> None:
    """0.2 percentage points more outliers in 200k rows is significant but below min_excess."""
    m, model = fitted
    w = draw(200_000, np.random.default_rng(5))
    extra = np.random.default_rng(6).choice(len(w), 400, replace=False)
    w.loc[extra, "a"] = np.random.default_rng(7).uniform(6, 10, 400)
    (check,), metrics = outlier_checks(w, model, m.outliers)
    p = next(x.value for x in metrics if x.metric == "outlier_p_value")
    assert p < m.outliers.alpha and check.status is Status.PASS


def test_off_by_default_and_unknown_keys_refused() -> None:
    from pydantic import ValidationError

    from mlmon.tasks.errors import ConfigError

    m = model_from_dict({"features": {"a": {"type": "numerical"}}})
    assert m.outliers.enabled is False and outlier_checks(
        draw(300, np.random.default_rng(0)), None, m.outliers
    ) == ([], [])
    with pytest.raises((ConfigError, ValidationError)):
        cfg(contamnation=0.02)


def test_compare_fits_once_and_reports_the_family() -> None:
    import mlmon

    rng = np.random.default_rng(7)
    ref, cur = draw(4_000, rng), draw(2_000, rng)
    cur.loc[:59, "a"] = rng.uniform(6, 10, 60)  # 3%
    body = {
        "features": {"a": {"type": "numerical"}, "b": {"type": "numerical"}, "city": {"type": "categorical"}},
        "outliers": {"enabled": True},
    }
    r = mlmon.compare(ref.drop(columns=[c.REQUEST_ID]), cur.drop(columns=[c.REQUEST_ID]), body)
    rows = r.checks[r.checks["category"] == "outliers"]
    assert set(rows["status"]) == {"fail"}
