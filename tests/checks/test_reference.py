"""Fitting the reference profile (values, bins, categories) and caching it by content hash."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import reference
from mlmon.tasks.config import Kind, ModelConfig
from mlmon.tasks.errors import ReferenceDataError
from mlmon.tasks.profile import PROFILE_VERSION, CategoricalProfile, NumericalProfile, Profile
from mlmon.tasks.reference import (
    content_hash,
    fit_categorical,
    fit_numerical,
    fit_profile,
    load_profile,
    save_profile,
)


def test_content_hash_is_the_sha256_prefix_of_the_bytes(tmp_path: Path) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc" * 1_000_000)  # several read chunks
    assert content_hash(f) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()[:16]
    f.write_bytes(b"abd")
    assert content_hash(f) == hashlib.sha256(b"abd").hexdigest()[:16]


def test_fit_numerical_summary_and_missing() -> None:
    values = pd.Series([3.0, None, 1.0, np.nan, 2.0, np.inf, 2.0, -np.inf], dtype=object)
    p = fit_numerical(values)
    finite = np.array([1.0, 2.0, 2.0, 3.0])
    assert p.sorted_values.tolist() == finite.tolist() and p.sorted_values.dtype == np.float64
    assert (p.n, p.n_missing, p.missing_share) == (4, 4, 0.5)  # NaN, None and ±inf are not usable values
    assert (p.mean, p.min, p.max) == (2.0, 1.0, 3.0)
    assert p.std == pytest.approx(np.std(finite), rel=1e-15)  # population σ
    assert p.quantiles == {q: pytest.approx(np.quantile(finite, q)) for q in reference.QUANTILES}


def test_fit_numerical_continuous_gets_equal_mass_bins() -> None:
    x = np.random.default_rng(0).lognormal(0, 1, 10_000)
    p = fit_numerical(x)
    assert p.bin_edges.size == reference.N_BINS - 1
    assert np.all(np.diff(p.bin_edges) > 0)
    assert p.bin_counts.sum() == x.size and np.all(p.bin_counts == 500)
    want = pd.Series(pd.cut(x, [-np.inf, *p.bin_edges, np.inf], right=True)).value_counts(sort=False)
    assert p.bin_counts.tolist() == want.tolist()  # right-closed bins (e[i-1], e[i]]


def test_fit_numerical_integer_values_get_one_bin_each() -> None:
    x = np.random.default_rng(1).poisson(4, 20_000).astype(float)
    p = fit_numerical(x)
    assert set(p.bin_edges.tolist()) <= set(np.unique(x).tolist())  # observed values, not interpolated
    assert p.bin_edges.size == np.unique(p.bin_edges).size < reference.N_BINS - 1  # de-duplicated
    # every interior bin holds exactly one integer value
    for lo, hi, n in zip(p.bin_edges[:-1], p.bin_edges[1:], p.bin_counts[1:-1], strict=True):
        assert n == np.sum(x == hi) and hi - lo == 1


def test_fit_numerical_degenerate_columns() -> None:
    const = fit_numerical(np.full(50, 7.0))
    assert const.bin_edges.tolist() == [7.0] and const.bin_counts.tolist() == [50, 0] and const.std == 0.0
    empty = fit_numerical(np.array([np.nan, np.nan]))
    assert empty.n == 0 and empty.n_missing == 2 and np.isnan(empty.mean) and empty.bin_counts.sum() == 0
    words = fit_numerical(pd.Series(["1.5", "x", None], dtype=object))
    assert words.sorted_values.tolist() == [1.5] and words.n_missing == 2


def test_fit_categorical_counts_sorted_categories() -> None:
    p = fit_categorical(pd.Series(["b", None, "a", np.nan, "b", 3, "3"], dtype=object))
    assert p.categories == ("3", "a", "b")  # non-strings count as their str
    assert p.counts.tolist() == [2, 1, 2] and p.counts.dtype == np.int64
    assert (p.n, p.n_missing) == (5, 2)
    assert fit_categorical([]).categories == ()


def test_fit_profile_skips_absent_columns() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan], "plan": ["a", None, "b"]})
    kinds = {"x": Kind.NUMERICAL, "plan": Kind.CATEGORICAL, "gone": Kind.NUMERICAL}
    prof = fit_profile(df, kinds, "abc")
    assert (prof.reference_hash, prof.n_rows, prof.version) == ("abc", 3, PROFILE_VERSION)
    assert set(prof.columns) == {"x", "plan"}
    assert isinstance(prof.columns["x"], NumericalProfile) and isinstance(
        prof.columns["plan"], CategoricalProfile
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(100.0), "plan": ["a", "b"] * 50})
    prof = fit_profile(df, {"x": Kind.NUMERICAL, "plan": Kind.CATEGORICAL}, "h1")
    path = tmp_path / "sub" / "p.pkl"
    save_profile(prof, path)
    got = load_profile(path)
    assert got is not None and got.reference_hash == "h1"
    assert np.array_equal(got.columns["x"].sorted_values, prof.columns["x"].sorted_values)
    assert got.columns["plan"].categories == ("a", "b")
    assert list(tmp_path.glob("sub/*.tmp")) == []


def test_load_returns_none_for_anything_unusable(tmp_path: Path) -> None:
    assert load_profile(tmp_path / "missing.pkl") is None
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle")
    assert load_profile(tmp_path / "garbage.pkl") is None
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert load_profile(tmp_path / "other.pkl") is None
    old = replace(Profile(reference_hash="h", n_rows=0, columns={}), version=PROFILE_VERSION - 1)
    save_profile(old, tmp_path / "old.pkl")
    assert load_profile(tmp_path / "old.pkl") is None


def _cfg(tmp_path: Path) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "m/1",
            "features": {"x": {"type": "numerical"}, "plan": {"type": "categorical"}},
            "reference": {"path": "ref.parquet"},
            "base_dir": str(tmp_path),
        }
    )


def test_baseline_fits_once_per_reference_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path)
    pd.DataFrame({"x": np.arange(300.0), "plan": ["a", "b", "c"] * 100}).to_parquet(cfg.reference_path)
    profiles = tmp_path / "profiles"
    first = reference.baseline(cfg, profiles)
    assert first.profile.reference_hash == content_hash(cfg.reference_path)
    assert len(first.frame) == 300 and len(list(profiles.glob("*.pkl"))) == 1

    def refit(*_a: object, **_k: object) -> Profile:
        raise AssertionError("the cached profile should have been reused")

    with monkeypatch.context() as m:
        m.setattr(reference, "fit_profile", refit)
        again = reference.baseline(cfg, profiles)
    assert again.profile.columns["x"].n == 300

    pd.DataFrame({"x": np.arange(400.0), "plan": ["a", "b"] * 200}).to_parquet(cfg.reference_path)
    changed = reference.baseline(cfg, profiles)  # new content: refitted, cached beside the old one
    assert changed.profile.columns["x"].n == 400 and len(list(profiles.glob("*.pkl"))) == 2


def test_missing_or_incomplete_reference_says_what_to_do(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(ReferenceDataError, match="not found; build it with `mlmon reference build"):
        reference.load_reference(cfg)
    pd.DataFrame({"x": [1.0]}).to_parquet(cfg.reference_path)
    with pytest.raises(ReferenceDataError, match=r"lacks configured features \['plan'\]"):
        reference.load_reference(cfg)
