"""Multivariate drift: a correlation flip that every per-feature test passes fails here; bounded,
seeded samples; segments against their own reference rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlmon.tasks import contract as c
from mlmon.tasks.checks.decide import dataset_drift, drift_table
from mlmon.tasks.checks.families import family_checks, fit_families, methods
from mlmon.tasks.checks.multivariate import roc_auc
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.evaluate import drift_specs, profile_kinds
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile


def frame(n: int, rho: float, seed: int) -> pd.DataFrame:
    """x and y standard normal with correlation ``rho`` (marginals never change), two more features."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    return pd.DataFrame(
        {
            "x": z[:, 0],
            "y": rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1],
            "w": rng.gamma(2.0, 1.0, n),
            "k": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
            c.VERSION: rng.choice(np.array(["v1", "v2"], dtype=object), n),
        }
    )


def config(**section: object) -> ModelConfig:
    return model_from_dict(
        {
            "features": {
                "x": {"type": "numerical"},
                "y": {"type": "numerical"},
                "w": {"type": "numerical"},
                "k": {"type": "categorical"},
            },
            "segments": ["model_version"],
            "multivariate_drift": {"enabled": True, "max_rows": 1_500, **section},
        }
    )


@pytest.fixture(scope="module")
def setup() -> tuple[ModelConfig, Profile, pd.DataFrame]:
    cfg = config()
    ref = frame(6_000, 0.7, seed=0)
    profile = fit_families(fit_profile(ref, profile_kinds(cfg), "t"), ref, cfg)
    return cfg, profile, ref


def _mv(cfg: ModelConfig, profile: Profile, cur: pd.DataFrame, segment: str = "all"):
    checks, metrics = family_checks(cfg, cur, profile, segment=segment)
    (check,) = [ch for ch in checks if ch.category is Category.MULTIVARIATE_DRIFT]
    return check, {(m.metric, m.feature): m.value for m in metrics}


def test_the_domain_classifier_is_registered() -> None:
    assert {"domain_classifier"} <= {m.name for m in methods() if m.category is Category.MULTIVARIATE_DRIFT}


def test_a_correlation_flip_with_unchanged_marginals_fails_while_univariate_drift_passes(setup) -> None:
    cfg, profile, _ = setup
    flipped = frame(3_000, -0.7, seed=1)
    table = drift_table(profile, flipped, drift_specs(cfg, profile), cfg.drift)
    assert dataset_drift(table, cfg.drift, set(cfg.features)).status is Status.PASS
    assert not any(d.drifted for d in table)
    check, metrics = _mv(cfg, profile, flipped)
    assert check.status is Status.FAIL, check.message
    assert check.value is not None and check.value >= cfg.multivariate_drift.min_auc
    # the features it relies on: the flipped pair, named in the message and stored per feature
    importance = {f: v for (m, f), v in metrics.items() if m == "multivariate_importance"}
    assert sorted(importance, key=lambda f: -importance[f])[:2] in (["x", "y"], ["y", "x"])
    assert "relies on x" in check.message or "relies on y" in check.message


def test_the_same_distribution_passes_and_the_samples_are_bounded_and_said(setup) -> None:
    cfg, profile, _ = setup
    check, metrics = _mv(cfg, profile, frame(4_000, 0.7, seed=2))
    assert check.status is Status.PASS, check.message
    assert metrics[("multivariate_rows", "")] == 1_500
    assert "1,500 of 4,000 window rows vs 1,500 of 6,000 reference rows" in check.message


def test_deterministic_and_seeded(setup) -> None:
    cfg, profile, _ = setup
    cur = frame(2_000, -0.2, seed=3)
    assert _mv(cfg, profile, cur) == _mv(cfg, profile, cur)
    reseeded = cfg.model_copy(
        update={"multivariate_drift": cfg.multivariate_drift.model_copy(update={"seed": 7})}
    )
    again = fit_families(profile, frame(6_000, 0.7, seed=0), reseeded)
    assert _mv(reseeded, again, cur)[0].value != _mv(cfg, profile, cur)[0].value


def test_a_small_window_is_insufficient_data_not_an_alarm(setup) -> None:
    cfg, profile, _ = setup
    check, metrics = _mv(cfg, profile, frame(150, -0.7, seed=4))
    assert check.status is Status.WARN and "insufficient data" in check.message and not metrics


def test_a_segment_is_compared_with_its_own_reference_rows(setup) -> None:
    cfg, profile, _ = setup
    cur = frame(3_000, 0.7, seed=5)
    cur = cur[cur[c.VERSION] == "v2"]
    check, _ = _mv(cfg, profile, cur, segment="model_version=v2")
    assert check.status is Status.PASS and check.segment == "model_version=v2", check.message
    assert f"{len(cur):,} of {len(cur):,} window rows" in check.message


def test_unseen_categories_and_missing_values_are_encoded_not_errors(setup) -> None:
    cfg, profile, _ = setup
    cur = frame(2_000, 0.7, seed=6)
    cur.loc[cur.index[:300], "x"] = np.nan
    cur.loc[cur.index[:50], "w"] = np.inf
    cur.loc[cur.index[300:1_300], "k"] = "new"
    check, _ = _mv(cfg, profile, cur)
    assert check.status is Status.FAIL, check.message  # half the rows carry a category never seen


def test_rank_auc_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + 0.3 * y, 1)  # with ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
