"""Live metrics without servers: the spec from the profile, counting in the profile's own bins, bounded
labels, the helper's drop counter, multiprocess mode with two processes, the rule file."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import prometheus_client as pc
import pytest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from mlmon import live, promql
from mlmon.live import LiveMetrics, LiveSpec
from mlmon.logger import PredictionLogger
from mlmon.tasks import contract as c
from mlmon.tasks.checks import drift
from mlmon.tasks.config import load_config
from mlmon.tasks.profile import Profile
from mlmon.tasks.reference import fit_categorical, fit_numerical
from tests.test_logger import _closed_port

ROOT = Path(__file__).resolve().parents[1]


def _spec(**profiles) -> LiveSpec:
    cfg = load_config(ROOT / "deployments" / "models.yaml").model("demo_classifier")
    rng = np.random.default_rng(0)
    columns = {
        "age": fit_numerical(np.round(rng.normal(40, 12, 2000))),  # integer-valued: ties on the edges
        "income": fit_numerical(rng.lognormal(10.8, 0.5, 2000)),
        "plan": fit_categorical(rng.choice(["basic", "pro", "enterprise"], 2000, p=[0.6, 0.3, 0.1])),
        c.PREDICTION: fit_categorical(rng.choice(["stay", "churn"], 2000, p=[0.8, 0.2])),
        c.SCORE: fit_numerical(rng.beta(2, 5, 2000)),
        **profiles,
    }
    return LiveSpec.from_profile(cfg, Profile("h", 2000, columns))


def _values(registry: pc.CollectorRegistry, name: str, **labels: str) -> dict[str, float]:
    """bin -> value of the samples of ``name`` matching ``labels``."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                key = s.labels.get("bin", "")
                out[key] = out.get(key, 0) + s.value
    return out


def test_the_logger_imports_no_metrics_library_when_metrics_are_off():
    code = (
        "import mlmon.logger, sys; "
        "loaded = [m for m in ('prometheus_client', 'mlmon.live', 'numpy', 'pydantic', 'yaml') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_spec_carries_the_profiles_bins_and_shares():
    spec = _spec()
    cols = {(col.role, col.column): col for col in spec.columns}
    assert set(cols) == {("feature", "age"), ("feature", "income"), ("feature", "plan"),
                         ("output", "prediction"), ("output", "score")}  # fmt: skip
    age = cols["feature", "age"]
    profile = fit_numerical(np.round(np.random.default_rng(0).normal(40, 12, 2000)))
    assert age.edges == tuple(profile.bin_edges) and len(age.bins) == len(profile.bin_counts)
    assert age.reference_shares == pytest.approx(profile.bin_counts / profile.bin_counts.sum())
    plan = cols["feature", "plan"]
    assert plan.bins == ("basic", "enterprise", "pro", live.OTHER)
    assert plan.reference_shares[-1] == 0  # the reference has no other (PSI in PromQL floors it at EPS)
    assert live.EPS == drift.EPS == promql.EPS
    assert LiveSpec.load(_write(spec)) == spec


def _write(spec: LiveSpec) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "spec.json"
    path.write_text(spec.to_json())
    return path


def test_values_are_counted_in_the_bins_mlmons_psi_uses():
    spec = _spec()
    registry = pc.CollectorRegistry()
    metrics = LiveMetrics(spec, registry=registry)
    rng = np.random.default_rng(1)
    ages = np.round(rng.normal(45, 15, 3000))  # integers: many values sit exactly on an edge
    ages[:50] = np.nan
    plans = rng.choice(["basic", "pro", "enterprise", "family", None], 3000).tolist()
    odd = [None, "forty", True, np.float32(41.0), np.int64(39), float("inf")]  # missing, not numbers, numpy
    for i in range(3000):
        age = odd[i] if i < len(odd) else float(ages[i])
        metrics.observe("v1", {"age": age, "plan": plans[i]}, "stay", {"churn": 0.3, "stay": 0.7}, 12.0, "ok")
    metrics.sync()
    profile = fit_numerical(np.round(np.random.default_rng(0).normal(40, 12, 2000)))
    numbers = np.array([41.0, 39.0, *ages[len(odd) :]])  # the numpy scalars count, the rest is missing
    got = _values(registry, "mlmon_live_bin_total", column="age")
    assert list(got.values()) == drift.bin_counts(profile, numbers).tolist()
    plan = _values(registry, "mlmon_live_bin_total", column="plan")
    expected = {k: plans.count(k) for k in ("basic", "enterprise", "pro")} | {
        live.OTHER: plans.count("family")
    }
    assert plan == expected
    score = _values(registry, "mlmon_live_bin_total", column="score")
    assert sum(score.values()) == 3000  # p(churn) of a binary model
    assert _values(registry, "mlmon_live_bin_total", column="prediction") == {
        "churn": 0,
        "stay": 3000,
        live.OTHER: 0,
    }


def test_labels_stay_bounded_whatever_is_logged():
    registry = pc.CollectorRegistry()
    metrics = LiveMetrics(_spec(), registry=registry)
    for i in range(200):
        metrics.observe(f"v{i}", {}, "stay", None, float(i), f"status-{i}")
    metrics.sync()
    series = {
        (s.labels["version"], s.labels["status"])
        for f in registry.collect()
        for s in f.samples
        if s.name == "mlmon_live_predictions_total"
    }
    assert len({v for v, _ in series}) <= live.MAX_LABEL_VALUES + 1
    assert len({s for _, s in series}) <= live.MAX_LABEL_VALUES + 1
    assert sum(_values(registry, "mlmon_live_predictions_total").values()) == 200
    errors = {
        s.labels["outcome"]
        for f in registry.collect()
        for s in f.samples
        if s.name.startswith("mlmon_live_pred")
    }
    assert errors == {"error"}  # "status-i" is not an ok status of the config


def test_the_helpers_drops_reach_the_metric_and_a_metrics_bug_never_fails_a_call():
    registry = pc.CollectorRegistry()
    metrics = LiveMetrics(_spec(), registry=registry)
    logger = PredictionLogger(
        f"mongodb://127.0.0.1:{_closed_port()}/", model_name="demo_classifier", model_version="v1",
        max_buffer=500, batch_size=100, server_timeout_ms=100, metrics=metrics,
    )  # fmt: skip
    for i in range(2000):
        logger.log_prediction({"age": i % 90, "plan": "pro"}, "stay", latency_ms=5.0)
    logger.log_prediction({"age": object()}, "stay")  # the metrics cannot bin it: still logged
    logger.close(timeout=0.3)
    stats = logger.stats
    documents = {
        s.labels["outcome"]: s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == "mlmon_logger_documents_total"
    }
    assert stats.dropped == 2001 and documents == {"written": 0, "dropped": 2001, "rejected": stats.rejected}
    assert sum(_values(registry, "mlmon_live_predictions_total").values()) == 2001


_WORKER = textwrap.dedent("""
    import sys
    from mlmon.live import LiveMetrics, LiveSpec
    metrics = LiveMetrics(LiveSpec.load(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        metrics.observe("v1", {"age": 40.0, "plan": "pro"}, "stay", {"churn": 0.1, "stay": 0.9}, 8.0, "ok")
    metrics.queue_depth(3)
    metrics.sync()
""")


def test_two_processes_write_one_multiprocess_dir(tmp_path):
    spec = _write(_spec())
    mp_dir = tmp_path / "multiproc"
    mp_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(mp_dir), "PATH": "/usr/bin:/bin"}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(spec), str(n)], env=env) for n in (300, 700)
    ]
    assert [w.wait(60) for w in workers] == [0, 0]
    registry = pc.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(mp_dir))
    assert _values(registry, "mlmon_live_predictions_total") == {"": 1000}
    assert sum(_values(registry, "mlmon_live_bin_total", column="plan").values()) == 1000
    assert _values(registry, "mlmon_live_bin_total", column="plan")["pro"] == 1000
    shares = _values(registry, "mlmon_live_reference_share", column="plan")
    assert len(shares) == 4  # "max" across workers: one value per bin, not one per process


def test_the_rule_file_is_what_the_generator_writes_and_prometheus_accepts_it():
    done = subprocess.run([sys.executable, "-m", "mlmon.promql", "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) not installed: the generator check above ran")
    done = subprocess.run(
        [promtool, "check", "rules", str(promql.RULES_FILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_psi_noise_on_a_stream_from_the_reference_is_about_k_minus_1_over_n():
    """The documented noise level behind MIN_COUNT: 200 seeded windows from the reference itself."""
    ref = fit_numerical(np.random.default_rng(0).normal(size=20_000))
    k = ref.bin_counts.size
    for n in (200, promql.MIN_COUNT):
        values = [
            drift.psi(ref, np.random.default_rng([1, n, i]).normal(size=n)).statistic for i in range(200)
        ]
        assert np.mean(values) == pytest.approx((k - 1) / n, rel=0.15), n
    assert json.dumps(promql.rules())  # the rules are plain data


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Live metrics", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient. is deprecated")
def test_the_readmes_fastapi_example_serves_metrics(monkeypatch):
    """The README's FastAPI example, run as written (the model and the config's model are stand-ins)."""
    from fastapi.testclient import TestClient

    class Model:
        def predict_proba(self, rows):
            return np.array([[0.3, 0.7]] * len(rows))

    monkeypatch.setenv(
        "MLMON_MONGO_URI", f"mongodb://127.0.0.1:{_closed_port()}/?serverSelectionTimeoutMS=100"
    )
    monkeypatch.setattr(LiveSpec, "from_config", classmethod(lambda cls, path, model: _spec()))
    namespace = {"model": Model(), "__name__": "readme_example"}
    try:
        exec(compile(_readme_example(), "README.md", "exec"), namespace)
        with TestClient(namespace["app"]) as client:
            for age in (30, 45, 60):
                r = client.post("/predict", json={"age": age, "plan": "pro"})
                assert r.status_code == 200 and r.json()["prediction"] == "churn"
            page = client.get("/metrics/")
            assert page.status_code == 200
    finally:
        ours = {
            c
            for n, c in pc.REGISTRY._names_to_collectors.items()
            if n.startswith(("mlmon_live", "mlmon_logger"))
        }
        for collector in ours:  # the example registers in the global registry: leave it as it was
            pc.REGISTRY.unregister(collector)
    families = {f.name: f for f in text_string_to_metric_families(page.text)}
    bins = {
        s.labels["bin"]: s.value for s in families["mlmon_live_bin"].samples if s.labels["column"] == "plan"
    }
    assert bins["pro"] == 3
    predictions = [s for s in families["mlmon_live_predictions"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in predictions) == 3


def test_observe_takes_the_values_and_every_sync_counts_each_prediction_once(monkeypatch):
    """Calls take the values and the sync thread (or a scrape) bins them: concurrent scrapes while four
    threads log count every prediction exactly once; past MAX_DEFERRED a call counts inline."""
    import threading

    registry = pc.CollectorRegistry()
    metrics = LiveMetrics(_spec(), registry=registry, sync_interval=0.01)

    def log(n: int) -> None:
        for i in range(n):
            metrics.observe("v1", {"age": float(i % 90), "plan": "pro"}, "stay", None, 3.0, "ok")

    threads = [threading.Thread(target=log, args=(5000,)) for _ in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        live.generate(registry)  # a scrape syncs too, racing the sync thread
    for t in threads:
        t.join()
    metrics.sync()
    assert sum(_values(registry, "mlmon_live_bin_total", column="plan").values()) == 20_000
    assert sum(_values(registry, "mlmon_live_predictions_total").values()) == 20_000
    assert metrics.uncounted == 0
    # the backlog bound: with no room left, observe bins at once (nothing is deferred, nothing dropped)
    monkeypatch.setattr(live, "MAX_DEFERRED", 0)
    metrics.observe("v1", {"age": 40.0, "plan": "basic"}, "stay", None, 3.0, "ok")
    assert not metrics._deferred and sum(metrics._counts) > 0
    metrics.sync()
    assert _values(registry, "mlmon_live_bin_total", column="plan")["basic"] == 1


class _Unfloatable:
    """A logged value whose conversion fails with an error ``_count_value`` does not expect."""

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __str__(self) -> str:
        raise RuntimeError("no str")


def _hostile_values():
    from decimal import Decimal

    from hypothesis import strategies as st

    age_edges = [float(e) for e in _cached_spec().columns[0].edges]
    numbers = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(age_edges),  # exactly on an edge: right-closed bins
        st.sampled_from(age_edges).map(int),
        st.integers(-(2**70), 2**70),  # beyond 2**53: not exact as floats
        st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**40]),
    )
    odd = st.one_of(
        st.none(),
        st.booleans(),
        st.text(max_size=3),
        st.sampled_from(["basic", "pro", "enterprise", "family", "40", "nan"]),
        numbers.map(np.float64),
        st.integers(-1000, 1000).map(np.int64),
        st.floats(width=32).map(np.float32),
        st.sampled_from([Decimal("41.5"), Decimal("NaN"), np.str_("pro"), np.bool_(True), [1.0], (2,)]),
    )
    odd = st.one_of(odd, odd, odd, odd, odd, odd, odd, odd, odd, st.builds(_Unfloatable))  # rarely: a bug
    return numbers, odd, st


def _item_strategy():
    numbers, odd, st = _hostile_values()
    value = st.one_of(numbers, odd, numbers, numbers)
    features = st.fixed_dictionaries(
        {}, optional={"age": value, "income": value, "plan": st.one_of(odd, value), "other": value}
    )
    probabilities = st.one_of(
        st.none(), st.just({}), st.fixed_dictionaries({"churn": value, "stay": value}),
        st.fixed_dictionaries({"stay": value}),
    )  # fmt: skip
    return st.tuples(
        st.sampled_from(["v1", "v2", None]),
        st.one_of(features, features.map(lambda f: __import__("types").MappingProxyType(f))),
        st.one_of(st.sampled_from(["stay", "churn", None, 1, True, "other"]), value),
        probabilities,
        st.one_of(numbers, odd, st.just(12.5)),
        st.sampled_from(["ok", "error", 500, None]),
    )


@functools.cache
def _cached_spec() -> LiveSpec:
    return _spec()


def _pair(spec: LiveSpec | None = None) -> tuple[LiveMetrics, LiveMetrics]:
    spec = spec or _cached_spec()
    pair = LiveMetrics(spec, registry=None), LiveMetrics(spec, registry=None)
    for m in pair:
        m._stopped.set()  # no sync thread: the test drives both
    return pair


def _assert_same_counts(batched: LiveMetrics, one_by_one: LiveMetrics) -> None:
    assert batched._counts == one_by_one._counts
    assert batched._pending == one_by_one._pending
    assert batched._latencies.keys() == one_by_one._latencies.keys()
    for key, hist in one_by_one._latencies.items():
        assert batched._latencies[key][1:] == hist[1:]  # the bucket counts exactly,
        assert batched._latencies[key][0] == pytest.approx(hist[0], rel=1e-12)  # the sum to rounding
    assert batched.uncounted == one_by_one.uncounted


def test_batch_binning_counts_exactly_what_one_by_one_counts_on_hostile_values():
    """The sync thread bins a batch column by column with NumPy: NaN, ±inf, None, huge ints, bools,
    strings, numpy scalars, decimals, lists and missing keys land in the bins ``_count`` puts them in."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_item_strategy(), max_size=40))
    def check(items):
        batched, one_by_one = _pair()
        for item in items:
            one_by_one._count_one(item)
        if one_by_one.uncounted == 0:
            batched._count_batch(items)  # the vectorised path itself, no fallback
        else:
            batched._deferred.extend(items)
            batched._drain()
        _assert_same_counts(batched, one_by_one)

    check()


def test_one_bad_prediction_in_a_batch_is_uncounted_alone():
    """A value that breaks the batch (here: a number that cannot be converted) makes the drain count the
    batch one by one: that prediction is uncounted, the others are all counted."""
    batched, one_by_one = _pair()
    items = [
        ("v1", {"age": float(i % 90), "plan": "pro"}, "stay", {"churn": 0.2}, 3.0, "ok") for i in range(300)
    ]
    items[150] = ("v1", {"age": _Unfloatable(), "plan": "pro"}, "stay", None, 3.0, "ok")
    batched._deferred.extend(items)
    batched._drain()
    for item in items:
        one_by_one._count_one(item)
    _assert_same_counts(batched, one_by_one)
    assert batched.uncounted == 1 and not batched._deferred
    _, categories, offset, _ = next(c for c in batched._categorical if c[0] == "plan")
    # every other prediction's "pro" (the bad one stops at its bad value, as _count does)
    assert batched._counts[offset + categories["pro"]] == 299


def test_batch_binning_keeps_ints_beyond_float_precision_in_their_bin():
    """An int past 2**53 is not binned as a float (it would round onto an edge): as ``_count`` does."""
    spec = _spec(income=fit_numerical(2.0**53 + 4 * np.arange(2000)))  # edges: multiples of 4
    batched, one_by_one = _pair(spec)
    edges = next(col.edges for col in spec.columns if col.column == "income")
    values = [int(e) + d for e in edges for d in (-1, 0, 1)]
    items = [("v1", {"income": v}, "stay", None, 1.0, "ok") for v in values]
    for item in items:
        one_by_one._count_one(item)
    batched._count_batch(items)
    _assert_same_counts(batched, one_by_one)
