"""Mergeable window summaries: exact merges, and the same verdicts as the in-memory path.

The equivalence tests run both paths on windows that fit in memory: ``evaluate`` on the whole frame,
and ``evaluate_summary`` on the merge of per-shard summaries of the same rows. Every check both paths
produce must have the same status; statistics may differ only within the documented bounds.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmon.tasks import contract as c
from mlmon.tasks import summary as sm
from mlmon.tasks.checks.performance import reference_performance
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.reference import fit_profile
from tests import factories as fx

# Above BOOTSTRAP_MAX_ROWS labelled rows the in-memory path no longer bootstraps a failing metric (the
# sharded path never does): the equivalence windows are that big, so every verdict must agree.
N_EQUIV = 60_000

# checks only the in-memory path makes (needs every row at once / per segment); see tasks/summary.py
ROW_ONLY = {"duplicate_request_ids"}


def setup(n_ref: int = 6000, **cfg_changes):
    # KS on every numerical column (not anderson on the discrete ones, the default): the equivalence
    # below bounds the KS statistic by the fine bins; test_..._runs_on_the_sample covers anderson
    cfg_changes.setdefault("drift", {"discrete_test": None})
    cfg = fx.config(segments=[], **cfg_changes)
    ref = fx.frame(n_ref, seed=101)
    profile = replace(
        fit_profile(ref, profile_kinds(cfg), "ref0"), performance=reference_performance(ref, cfg)
    )
    return cfg, ref, profile, sm.fit_plan(cfg, profile, profile_kinds(cfg))


def shards(frame: pd.DataFrame, k: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """``frame`` cut at random places into ``k`` contiguous shards (some may be empty)."""
    cuts = np.sort(rng.integers(0, len(frame) + 1, k - 1))
    bounds = [0, *cuts.tolist(), len(frame)]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def summarise_all(parts, plan, cfg, window):
    return [sm.summarise(p, plan, cfg, window) for p in parts]


def assert_same_counts(a: sm.Summary, b: sm.Summary) -> None:
    assert a.n_rows == b.n_rows and a.n_errors == b.n_errors and a.n_latency == b.n_latency
    assert a.numerical.keys() == b.numerical.keys()
    for k in a.numerical:
        x, y = a.numerical[k], b.numerical[k]
        assert np.array_equal(x.counts, y.counts)
        assert (x.n_missing, x.n_out, x.n_implausible, x.n_rows) == (
            y.n_missing,
            y.n_out,
            y.n_implausible,
            y.n_rows,
        )
        assert x.observed == y.observed
        assert (
            x.moments.n == y.moments.n and x.moments.min == y.moments.min and x.moments.max == y.moments.max
        )
        np.testing.assert_allclose(x.sums, y.sums, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose([x.moments.mean, x.moments.m2], [y.moments.mean, y.moments.m2], rtol=1e-9)
    assert a.categorical == b.categorical
    assert a.quality.confusion == b.quality.confusion
    assert np.array_equal(a.quality.pos_hist, b.quality.pos_hist)
    assert np.array_equal(a.quality.neg_hist, b.quality.neg_hist)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_merge_of_any_split_equals_the_whole(seed):
    """Summaries of any cut into shards, merged in any order and grouping, equal the whole's summary."""
    cfg, _, _, plan = _SETUP
    rng = np.random.default_rng(seed)
    frame = _WINDOW.iloc[: int(rng.integers(0, len(_WINDOW)))]
    whole = sm.summarise(frame, plan, cfg, fx.window())
    parts = summarise_all(shards(frame, 1 + seed % 7, rng), plan, cfg, fx.window())
    chained = parts[0]
    for p in parts[1:]:
        chained = sm.merge(chained, p)
    order = rng.permutation(len(parts))
    tree = sm.merge_all([parts[i] for i in order])
    assert_same_counts(chained, whole)
    assert_same_counts(tree, whole)


def test_merge_is_commutative_and_associative():
    cfg, _, _, plan = _SETUP
    a, b, d = (sm.summarise(_WINDOW.iloc[i::3], plan, cfg, fx.window()) for i in range(3))
    assert_same_counts(sm.merge(a, b), sm.merge(b, a))
    assert_same_counts(sm.merge(sm.merge(a, b), d), sm.merge(a, sm.merge(b, d)))


def test_summaries_of_another_plan_do_not_merge():
    cfg, _ref, profile, plan = _SETUP
    other = sm.fit_plan(
        cfg.model_copy(update={"shards": cfg.shards.model_copy(update={"fine_bins": 64})}),
        profile,
        plan.kinds,
    )
    a = sm.summarise(_WINDOW, plan, cfg, fx.window())
    b = sm.summarise(_WINDOW, other, cfg, fx.window())
    with pytest.raises(sm.SummaryError, match="different plans"):
        sm.merge(a, b)


def test_bytes_round_trip():
    cfg, _, _, plan = _SETUP
    s = sm.merge_all(summarise_all(shards(_WINDOW, 4, np.random.default_rng(1)), plan, cfg, fx.window()))
    back = sm.from_bytes(sm.to_bytes(s))
    assert_same_counts(back, s)
    assert back.latency == s.latency and back.shards == s.shards == 4
    with pytest.raises(sm.SummaryError, match="unreadable"):
        sm.from_bytes(b"not a summary")


def _both(cfg, profile, plan, frame, k=5, seed=0):
    window = fx.window()
    full = evaluate(cfg, profile, Batch(frame=frame), window)
    parts = summarise_all(shards(frame, k, np.random.default_rng(seed)), plan, cfg, window)
    merged = sm.evaluate_summary(cfg, profile, sm.merge_all(parts), plan, window)
    return full, merged


def _statuses(result):
    return {(ch.check, ch.feature): ch.status for ch in result.checks if ch.segment == "all"}


@pytest.mark.parametrize(
    "case",
    ["clean", "shifted", "quality"],
)
def test_sharded_verdicts_equal_in_memory(case):
    """Same status for every check both paths make; statistics within the documented bounds."""
    cfg, _ref, profile, plan = _SETUP
    frame = {
        "clean": lambda: fx.frame(N_EQUIV, seed=7, labelled=0.9),
        "shifted": lambda: fx.frame(N_EQUIV, seed=8, shift=0.5, labelled=0.9),
        "quality": lambda: fx.data_quality_frame(N_EQUIV, seed=9),
    }[case]()
    full, merged = _both(cfg, profile, plan, frame)
    a, b = _statuses(full), _statuses(merged)
    missing = {k for k in a if k not in b}
    assert {k[0] for k in missing} <= ROW_ONLY, missing
    assert {k: b[k] for k in a if k in b} == {k: a[k] for k in a if k in b}
    assert full.status == merged.status
    if case != "clean":
        assert full.status.value == "fail"
    # statistics: exact for counts and categorical / binned methods, bounded for KS and Wasserstein
    for x, y in zip(full.drift, merged.drift, strict=True):
        assert x.feature == y.feature and x.status == y.status
        assert x.n_current == y.n_current and x.n_reference == y.n_reference
        if x.kind == "categorical":
            assert y.effect == pytest.approx(x.effect, rel=1e-12)
            assert y.p_value == pytest.approx(x.p_value, rel=1e-9, abs=1e-300)
            continue
        col = profile.columns[x.feature]
        b_ = sm.binned(
            col, sm.summarise(frame, plan, cfg, fx.window()).numerical[x.feature], plan.edges[x.feature]
        )
        d, upper, _ = sm.ks_binned(b_)
        assert d <= x.statistic + 1e-12 <= upper + 1e-12
        w, err = sm.wasserstein_binned(b_, col.std)
        assert abs(w - x.effect) <= err + 1e-12
    fm = {(m.metric, m.feature): m.value for m in full.metrics if m.segment == "all"}
    mm = {(m.metric, m.feature): m.value for m in merged.metrics if m.segment == "all"}
    for key in (
        "missing_share",
        "out_of_range_share",
        "unseen_share",
        "mean",
        "std",
        "error_rate",
        "accuracy",
    ):
        for k in [k for k in fm if k[0] == key]:
            assert mm[k] == pytest.approx(fm[k], rel=1e-9, abs=1e-12), k
    for p in (50, 95, 99):  # KLL: within its rank error, read as values of the window's latencies
        lat = np.sort(frame[c.LATENCY].to_numpy())
        err = 0.01  # ≥ 3× the sketch's normalized rank error
        lo, hi = np.quantile(lat, [max(0, p / 100 - err), min(1, p / 100 + err)])
        assert lo <= mm[(f"latency_p{p}_ms", "")] <= hi
    assert mm[("roc_auc", "")] == pytest.approx(fm[("roc_auc", "")], abs=1e-3)
    assert mm[("log_loss", "")] == pytest.approx(fm[("log_loss", "")], rel=1e-9)


def test_regression_scores_from_sums():
    cfg, _ref, profile, plan = setup(task="regression")
    frame = fx.frame(5000, seed=3, task="regression")
    full, merged = _both(cfg, profile, plan, frame)
    fm = {m.metric: m.value for m in full.metrics if m.feature == "" and m.segment == "all"}
    mm = {m.metric: m.value for m in merged.metrics if m.feature == ""}
    for k in ("mae", "rmse", "mape", "r2"):
        assert mm[k] == pytest.approx(fm[k], rel=1e-9)
    a, b = _statuses(full), _statuses(merged)
    assert {k: b[k] for k in a if k in b} == {k: a[k] for k in a if k in b}


def test_a_method_not_computable_from_bins_runs_on_the_sample():
    cfg, _ref, profile, plan = setup(drift={"numerical_test": "anderson"})
    frame = fx.frame(4000, seed=5, shift=0.5)
    s = sm.summarise(frame, plan, cfg, fx.window())
    no_sample = sm.evaluate_summary(cfg, profile, s, plan, fx.window())
    # no sample (a window merged from stored summaries): KS on the fine bins instead, said in the notes
    assert {d.status.value for d in no_sample.drift if d.kind == "numerical"} <= {"pass", "fail"}
    assert any("ks on the fine bins instead" in n for n in no_sample.notes)
    sample = sm.draw_sample([sm.shard_sample(frame, 0.5, 0, i) for i in range(1)], 3000, 0)
    with_sample = sm.evaluate_summary(cfg, profile, s, plan, fx.window(), sample=sample)
    assert any("ran on the seeded sample" in n for n in with_sample.notes)
    assert with_sample.status.value == "fail"


def test_seeded_sample_is_deterministic_and_bounded():
    parts = [sm.shard_sample(_WINDOW, 0.3, 7, i) for i in range(3)]
    again = [sm.shard_sample(_WINDOW, 0.3, 7, i) for i in range(3)]
    assert all(a.index.equals(b.index) for a, b in zip(parts, again, strict=True))
    assert len(sm.draw_sample(parts, 1000, 1)) == 1000
    assert sm.draw_sample(parts, 1000, 1).equals(sm.draw_sample(again, 1000, 1))


def test_empty_shards_merge_and_an_empty_window_fails_volume():
    cfg, _, profile, plan = _SETUP
    empty = sm.summarise(_WINDOW.iloc[:0], plan, cfg, fx.window())
    assert_same_counts(sm.merge(empty, empty), empty)
    res = sm.evaluate_summary(cfg, profile, empty, plan, fx.window())
    assert {ch.check: ch.status.value for ch in res.checks}["volume"] == "fail"


_SETUP = setup()
_WINDOW = fx.frame(3000, seed=11)


@pytest.mark.integration
def test_a_longer_window_from_stored_shorter_ones(pg_schema_uri):
    """Day summaries stored in Postgres merge into the week's; a gap or another plan is refused."""
    from mlmon.tasks.store import store
    from mlmon.tasks.window import Window

    cfg, _, _, plan = _SETUP
    days = [fx.window(i) for i in range(7)]
    frames = [fx.frame(400, seed=50 + i) for i in range(7)]
    store.migrate(pg_schema_uri)
    rows = [
        (d, plan.key, len(f), sm.to_bytes(sm.summarise(f, plan, cfg, d)))
        for d, f in zip(days, frames, strict=True)
    ]
    assert store.write_summaries(pg_schema_uri, cfg.name, rows) == 7
    assert store.write_summaries(pg_schema_uri, cfg.name, rows[:1]) == 1  # a re-run replaces its shard
    week = Window(days[0].start, days[-1].end)
    merged = sm.covering(week, store.read_summaries(pg_schema_uri, cfg.name, week), plan)
    assert_same_counts(merged, sm.summarise(pd.concat(frames, ignore_index=True), plan, cfg, week))
    assert merged.shards == 7
    with pytest.raises(sm.SummaryError, match="gap"):
        sm.covering(
            week, [r for r in store.read_summaries(pg_schema_uri, cfg.name, week) if r[0] != days[3]], plan
        )
    other = replace(plan, key="another")
    with pytest.raises(sm.SummaryError, match="binned against plan"):
        sm.covering(week, store.read_summaries(pg_schema_uri, cfg.name, week), other)


@pytest.mark.integration
def test_retention_deletes_old_shard_summaries_but_not_a_running_windows(pg_schema_uri):
    """``mlmon purge`` deletes stored shard summaries that ended before the cut-off (a dry run counts
    them), except the shards of a window whose run is in progress."""
    from mlmon.tasks.store import store
    from mlmon.tasks.window import Window

    cfg, _, _, plan = _SETUP
    days = [fx.window(i) for i in range(4)]
    store.migrate(pg_schema_uri)
    summary = sm.to_bytes(sm.summarise(fx.frame(200, seed=3), plan, cfg, days[0]))
    store.write_summaries(pg_schema_uri, cfg.name, [(d, plan.key, 200, summary) for d in days])
    store.mark_running(pg_schema_uri, cfg.name, Window(days[1].start, days[1].end), None)
    cutoff = days[2].end + timedelta(seconds=1)  # days 0, 1, 2 ended before it; day 1's run is running

    assert store.purge_windows(pg_schema_uri, cutoff, dry_run=True).rows["window_summaries"] == 2
    assert len(store.read_summaries(pg_schema_uri, cfg.name, Window(days[0].start, days[-1].end))) == 4
    assert store.purge_windows(pg_schema_uri, cutoff, dry_run=False).rows["window_summaries"] == 2
    left = store.read_summaries(pg_schema_uri, cfg.name, Window(days[0].start, days[-1].end))
    assert [shard for shard, _, _ in left] == [days[1], days[3]]
