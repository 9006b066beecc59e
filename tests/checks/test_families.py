"""The model-health family registry: one contract over every registered method, fit-once caching,
and a failing method kept to its own result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks import families
from mlmon.tasks.checks.families import FamilyMethod, family_checks, fit_families, methods, needs_fit
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.profile import Profile

FAMILY_CATEGORIES = {
    Category.DRIFT,  # class_balance: on the prediction (tasks/checks/balance.py)
    Category.OUTLIERS,
    Category.MULTIVARIATE_DRIFT,
    Category.EXPLANATIONS,
    Category.FAIRNESS,
    Category.ESTIMATED_PERFORMANCE,
    Category.VERSIONS,
}


def contract_frame(n: int, seed: int, missing: float = 0.0) -> pd.DataFrame:
    """A binary classifier's window: its score depends on the features, labels follow the score, a
    logged ``group`` field, two versions scoring the traffic, unique request ids."""
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 10.0, n)
    b = rng.normal(5.0, 1.0, n)
    flag = rng.integers(0, 2, n).astype(float)
    cat = rng.choice(["a", "b", "c"], n).astype(object)
    logit = 0.05 * (a - 20) + 0.8 * (b - 5) + 0.5 * flag
    p = 1 / (1 + np.exp(-logit))
    pred = np.where(p >= 0.5, "churn", "stay").astype(object)
    target = np.where(rng.uniform(size=n) < p, "churn", "stay").astype(object)
    df = pd.DataFrame(
        {
            "num_a": a,
            "num_b": b,
            "flag": flag,
            "cat": cat,
            "group": rng.choice(["x", "y"], n).astype(object),
            c.REQUEST_ID: [f"r{seed}-{i}" for i in range(n)],
            c.VERSION: rng.choice(["v1", "v2"], n).astype(object),
            c.TIMESTAMP: pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
            c.PREDICTION: pred,
            c.SCORE: p,
            f"{c.PROBA_PREFIX}churn": p,
            f"{c.PROBA_PREFIX}stay": 1 - p,
            c.TARGET: target,
        }
    )
    if missing:
        for col in ("num_a", "num_b", "cat", "group", c.TARGET):
            hole = rng.uniform(size=n) < missing
            df.loc[hole, col] = np.nan if df[col].dtype.kind == "f" else None
    return df


def contract_config(m: FamilyMethod) -> ModelConfig:
    return model_from_dict(
        {
            "task": "binary",
            "classes": ["churn", "stay"],
            "positive_class": "churn",
            "features": {
                "num_a": {"type": "numerical"},
                "num_b": {"type": "numerical"},
                "flag": {"type": "numerical"},
                "cat": {"type": "categorical"},
            },
            "business_fields": {"group": {"path": "context.group", "type": "categorical"}},
            m.config: {**m.example, "enabled": True},
        }
    )


def _profile(cfg: ModelConfig, reference: pd.DataFrame) -> Profile:
    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.evaluate import profile_kinds
    from mlmon.tasks.reference import fit_profile

    profile = fit_profile(reference, profile_kinds(cfg), "contract")
    profile = replace(profile, performance=reference_performance(reference, cfg))
    return fit_families(profile, reference, cfg)


def _run(m: FamilyMethod, cfg: ModelConfig, profile: Profile, frame: pd.DataFrame, ref: pd.DataFrame):
    checks, metrics = family_checks(cfg, frame, profile, reference=ref)
    return [x for x in checks if x.category is m.category], [x for x in metrics]


def test_the_builtin_methods_are_registered_under_family_categories() -> None:
    names = {m.name for m in methods()}
    assert "isolation_forest" in names
    assert {m.category for m in methods()} <= FAMILY_CATEGORIES


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return contract_frame(4_000, seed=0)


@pytest.mark.parametrize("name", sorted(m.name for m in methods()))
def test_contract_every_registered_method(name: str, reference: pd.DataFrame) -> None:
    """Its own category only; deterministic; no alarm on a null window, none on an empty or tiny one
    (insufficient data warns at most); NaN-safe (no error with missing values); disabled costs nothing."""
    m = families.METHODS[name]
    cfg = contract_config(m)
    profile = _profile(cfg, reference)
    assert not needs_fit(profile, cfg)
    null = contract_frame(3_000, seed=1)
    first, metrics = _run(m, cfg, profile, null, reference)
    again, _ = _run(m, cfg, profile, null, reference)
    assert first, f"{name} produced no check on a 3,000-row window"
    assert all(ch.category is m.category for ch in first)
    assert [(x.check, x.status, x.value, x.feature) for x in first] == [
        (x.check, x.status, x.value, x.feature) for x in again
    ]
    assert all(ch.status is Status.PASS for ch in first), [ch.message for ch in first]
    assert all(np.isfinite(x.value) for x in metrics)
    for tiny in (null.iloc[:0], null.iloc[:15]):
        checks, _ = _run(m, cfg, profile, tiny, reference)
        assert all(ch.status in (Status.PASS, Status.WARN) for ch in checks), [ch.message for ch in checks]
    holes, _ = _run(m, cfg, profile, contract_frame(3_000, seed=2, missing=0.1), reference)
    assert all(ch.status is not Status.ERROR for ch in holes), [ch.message for ch in holes]
    off = cfg.model_copy(update={m.config: getattr(cfg, m.config).model_copy(update={"enabled": False})})
    assert _run(m, off, profile, null, reference) == ([], [])


def test_settings_changed_since_the_fit_refit_instead_of_scoring_stale_state(reference) -> None:
    m = families.METHODS["isolation_forest"]
    cfg = contract_config(m)
    profile = _profile(cfg, reference)
    changed = cfg.model_copy(update={"outliers": cfg.outliers.model_copy(update={"contamination": 0.05})})
    assert needs_fit(profile, changed)
    (check,), _ = family_checks(changed, contract_frame(500, 3), profile)
    assert check.status is Status.ERROR and "refit" in check.message
    refit = fit_families(profile, reference, changed)
    assert (
        not needs_fit(refit, changed)
        and refit.fitted["isolation_forest"][1] is not profile.fitted["isolation_forest"][1]
    )
    assert fit_families(refit, reference, changed) is refit  # nothing to do: the same object back


def test_a_method_that_raises_is_an_error_check_and_the_others_still_run(reference, monkeypatch) -> None:
    def broken(inp: families.FamilyInput) -> families.Findings:
        raise RuntimeError("boom")

    m = families.METHODS["isolation_forest"]
    cfg = contract_config(m)
    profile = _profile(cfg, reference)
    monkeypatch.setitem(families.METHODS, "broken", replace(m, name="broken", run=broken, fit=None))
    checks, _ = family_checks(cfg, contract_frame(500, 4), profile)
    by = {ch.check: ch for ch in checks}
    assert by["broken"].status is Status.ERROR and "RuntimeError: boom" in by["broken"].message
    assert by["outlier_share"].status is Status.PASS
