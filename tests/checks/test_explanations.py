"""Drift impact: importance from a surrogate of the logged predictions ranks a drifted important
feature above a drifted unimportant one, and prediction drift is attributed to the feature behind it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks.decide import drift_table
from mlmon.tasks.checks.families import family_checks, fit_families, methods
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.evaluate import drift_specs, profile_kinds
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_profile


def frame(n: int, seed: int, shift: float = 0.0, with_score: bool = True) -> pd.DataFrame:
    """The model's score leans on ``big`` and barely on ``small``; ``shift`` moves both by that many σ."""
    rng = np.random.default_rng(seed)
    big, small = rng.normal(shift, 1.0, n), rng.normal(shift, 1.0, n)
    other = rng.choice(np.array(["a", "b"], dtype=object), n)
    p = 1 / (1 + np.exp(-(2.0 * big + 0.02 * small + 0.3 * (other == "a"))))
    f = pd.DataFrame({"big": big, "small": small, "other": other})
    if with_score:
        f[c.SCORE] = p
        f[c.PREDICTION] = np.where(p >= 0.5, "yes", "no").astype(object)
    return f


def config() -> ModelConfig:
    return model_from_dict(
        {
            "features": {
                "big": {"type": "numerical"},
                "small": {"type": "numerical"},
                "other": {"type": "categorical"},
            },
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            "explanations": {"enabled": True, "max_fit_rows": 3_000, "max_rows": 1_000, "n_repeats": 3},
        }
    )


@pytest.fixture(scope="module")
def setup() -> tuple[ModelConfig, Profile]:
    cfg = config()
    ref = frame(6_000, seed=0)
    return cfg, fit_families(fit_profile(ref, profile_kinds(cfg), "t"), ref, cfg)


def _run(cfg, profile, cur, *, pass_drift: bool = True):
    table = tuple(drift_table(profile, cur, drift_specs(cfg, profile), cfg.drift))
    checks, metrics = family_checks(cfg, cur, profile, drift=table if pass_drift else None)
    return [ch for ch in checks if ch.category is Category.EXPLANATIONS], metrics


def test_registered_under_explanations() -> None:
    assert "drift_impact" in {m.name for m in methods() if m.category is Category.EXPLANATIONS}


def test_importance_comes_from_the_logged_predictions(setup) -> None:
    _, profile = setup
    s = profile.fitted["drift_impact"][1]
    assert s.output == "score" and s.r2 > 0.9
    assert s.importance["big"] > 0.8 > 0.05 > s.importance["small"]
    assert sum(s.importance.values()) == pytest.approx(1.0)


def test_a_drifted_important_feature_ranks_above_a_drifted_unimportant_one(setup) -> None:
    cfg, profile = setup
    checks, metrics = _run(cfg, profile, frame(3_000, seed=1, shift=0.3))
    impact = {m.feature: m.value for m in metrics if m.metric == "drift_impact"}
    assert impact["big"] > impact["small"] > 0
    by = {(ch.check, ch.feature): ch for ch in checks}
    assert by[("feature_impact", "big")].status is Status.FAIL
    assert by[("feature_impact", "small")].status is Status.PASS
    assert "barely uses it" in by[("feature_impact", "small")].message
    # the score drifted: attributed to `big`, which explains most of the shift
    attribution = by[("prediction_drift_attribution", "")]
    assert attribution.status is Status.FAIL and "explained by big" in attribution.message
    assert attribution.value is not None and 0.6 < attribution.value < 1.4
    shift = {m.feature: m.value for m in metrics if m.metric == "prediction_shift_attribution"}
    assert shift["big"] > 10 * abs(shift["small"])


def test_a_null_window_passes_with_no_feature_check(setup) -> None:
    cfg, profile = setup
    checks, metrics = _run(cfg, profile, frame(3_000, seed=2))
    assert [(ch.check, ch.status) for ch in checks] == [("prediction_drift_attribution", Status.PASS)]
    assert {m.metric for m in metrics} >= {
        "feature_importance",
        "drift_impact",
        "prediction_shift_attribution",
    }


def test_without_the_drift_table_it_computes_the_same_one(setup) -> None:
    cfg, profile = setup
    cur = frame(2_000, seed=3, shift=0.3)
    assert _run(cfg, profile, cur) == _run(cfg, profile, cur, pass_drift=False)


def test_no_logged_output_in_the_reference_warns() -> None:
    cfg = config()
    ref = frame(2_000, seed=4, with_score=False)
    profile = fit_families(fit_profile(ref, profile_kinds(cfg), "t"), ref, cfg)
    checks, metrics = family_checks(cfg, frame(1_000, seed=5), profile)
    (ch,) = checks
    assert ch.status is Status.WARN and "no model output" in ch.message and not metrics


def test_a_classifier_logging_only_labels_uses_the_positive_class_share() -> None:
    cfg = config()
    ref = frame(4_000, seed=6).drop(columns=[c.SCORE])
    profile = fit_families(fit_profile(ref, profile_kinds(cfg), "t"), ref, cfg)
    s = profile.fitted["drift_impact"][1]
    assert s.output == "P(prediction = yes)" and s.importance["big"] > s.importance["small"]


def test_the_shuffled_baseline_is_fitted_once_and_an_older_profile_still_works(setup) -> None:
    """The attributions' baseline (each feature shuffled within the reference rows) does not depend on
    the window: the fit keeps it; a profile fitted before it was kept computes the same one per window."""
    from dataclasses import replace

    from mlmon.tasks.checks.explanations import attributions

    cfg, profile = setup
    s = profile.fitted["drift_impact"][1]
    assert s.shuffled is not None and s.shuffled.shape == (len(s.encoding.names),)
    cur = frame(2_000, seed=9, shift=0.5)
    assert attributions(replace(s, shuffled=None), cur, cfg.explanations) == attributions(
        s, cur, cfg.explanations
    )
