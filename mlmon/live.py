"""Live metrics from the serving process: Prometheus counters on the reference profile's bins.

Between two batch windows, the serving app itself exposes what it sees so Prometheus can scrape it and
Grafana can show it within minutes. :class:`LiveMetrics` is handed to
:class:`mlmon.logger.PredictionLogger` (``metrics=``); every ``log_prediction`` then also counts:

* ``mlmon_live_predictions_total{model, version, status, outcome}``: requests (``outcome`` is ``ok`` or
  ``error`` by the model's ``service.ok_statuses``);
* ``mlmon_live_latency_seconds{model, version}``: a latency histogram;
* ``mlmon_live_bin_total{model, role, column, bin}``: one counter per bin of the reference profile the
  batch pipeline fits (``role="feature"`` for each feature, ``role="output"`` for ``prediction`` and
  ``score``): the profile's right-closed quantile bins for a numerical column, its categories plus
  ``(other)`` for a categorical one. Missing values are not counted in a bin (as in the batch PSI);
* ``mlmon_live_reference_share{model, role, column, bin}``: the reference's share of each bin (a gauge,
  set once; 0 for an empty bin), so PSI and the Jensen–Shannon distance are computed in PromQL
  (:mod:`mlmon.promql`) from the counters and these shares;
* ``mlmon_logger_queue_depth{model}`` and ``mlmon_logger_documents_total{model, outcome}`` (``written``,
  ``dropped``, ``rejected``): the logging helper's own health.

Why counters per bin rather than a Prometheus histogram: the bins differ per column (a histogram has one
bucket layout per metric), and PSI needs each bin's count, not the cumulative ``le`` counts.

Cardinality is bounded: no request id or raw value becomes a label; a categorical column keeps at most
:data:`MAX_CATEGORIES` reference categories (the rarest fold into ``(other)``); at most
:data:`MAX_LABEL_VALUES` distinct versions and statuses, then ``other``.

One config: :meth:`LiveSpec.from_config` reads the model's entry in the models config (features, kinds,
classes, reference) and the profile fitted from its reference (:func:`mlmon.tasks.reference.baseline`);
nothing is declared twice. A serving image without the reference file can load a spec exported once with
``python -m mlmon.live spec CONFIG MODEL > live-spec.json`` (:meth:`LiveSpec.load`, stdlib only).

Multi-process servers (gunicorn, uvicorn ``--workers``): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
folder before the workers start (prometheus_client's multiprocess mode); :func:`asgi_app` /
:func:`wsgi_app` then aggregate every worker's values.

Requires the ``live`` extra: ``pip install 'mlmon[live]'``.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import json
import logging
import math
import operator
import os
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import prometheus_client as pc

from mlmon.logger import process_generation

log = logging.getLogger(__name__)

EPS = 1e-4
"""Share PSI gives an empty bin, as :data:`mlmon.tasks.checks.drift.EPS` (a test keeps them equal)."""
MAX_CATEGORIES = 50
MAX_LABEL_VALUES = 20
OTHER = "(other)"
MAX_DEFERRED = 50_000
"""Predictions taken but not yet binned beyond which ``observe`` bins inline (memory stays bounded)."""
DRAIN_BATCH = 4096
"""Predictions the sync thread takes and bins at once, column by column with NumPy (see ``_drain``)."""
DRAIN_INTERVAL_S = 0.05
"""How often the sync thread bins what ``observe`` took."""
FEATURE, OUTPUT = "feature", "output"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NUMERICAL, CATEGORICAL = "numerical", "categorical"


# ----------------------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ColumnBins:
    """One column's live bins and the reference's share in each (fitted by the batch profile)."""

    role: str  # FEATURE or OUTPUT
    column: str  # the feature's configured name, or "prediction" / "score"
    kind: str  # NUMERICAL or CATEGORICAL
    edges: tuple[float, ...]  # numerical: interior right-closed edges (bin i is (e[i-1], e[i]])
    categories: tuple[str, ...]  # categorical: reference categories; one more bin, OTHER, follows
    reference_shares: tuple[float, ...]  # per bin (0 for an empty one)

    @property
    def bins(self) -> tuple[str, ...]:
        """Label of each bin: ``"03 (0.12, 0.35]"`` (numbered so they sort) or the category."""
        if self.kind == CATEGORICAL:
            return (*self.categories, OTHER)
        bounds = [-math.inf, *self.edges, math.inf]
        width = len(str(len(bounds) - 2))
        return tuple(
            f"{i:0{width}d} ({_num(lo)}, {_num(hi)}{')' if hi == math.inf else ']'}"
            for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
        )


@dataclass(frozen=True)
class LiveSpec:
    """What the live metrics of one model count: its columns' bins, classes and ok statuses."""

    model: str
    task: str  # regression, binary, multiclass or none
    positive_class: str | None
    ok_statuses: tuple[str, ...]
    columns: tuple[ColumnBins, ...]

    @classmethod
    def from_profile(cls, cfg: Any, profile: Any) -> LiveSpec:
        """The spec of model config ``cfg`` from its fitted reference ``profile`` (batch side: numpy)."""
        from mlmon.tasks import contract as c
        from mlmon.tasks.profile import NumericalProfile

        wanted = [(FEATURE, name, name) for name in cfg.features]
        wanted += [(OUTPUT, "prediction", c.PREDICTION), (OUTPUT, "score", c.SCORE)]
        columns = []
        for role, label, key in wanted:
            prof = profile.columns.get(key)
            if prof is None:
                continue
            if isinstance(prof, NumericalProfile):
                counts = [int(x) for x in prof.bin_counts]
                columns.append(
                    ColumnBins(role, label, NUMERICAL, tuple(float(e) for e in prof.bin_edges), (),
                               _shares(counts))
                )  # fmt: skip
            else:
                pairs = sorted(zip(prof.counts.tolist(), prof.categories, strict=True), key=lambda p: -p[0])
                kept = sorted(pairs[:MAX_CATEGORIES], key=lambda p: p[1])
                other = sum(n for n, _ in pairs[MAX_CATEGORIES:])
                shares = _shares([n for n, _ in kept] + [other])
                columns.append(ColumnBins(role, label, CATEGORICAL, (), tuple(k for _, k in kept), shares))
        return cls(
            model=cfg.name,
            task=str(cfg.task.value),
            positive_class=cfg.positive_class,
            ok_statuses=tuple(str(s) for s in cfg.service.ok_statuses),
            columns=tuple(columns),
        )

    @classmethod
    def from_config(
        cls, config_path: str | Path, model: str, profiles_dir: str | Path | None = None
    ) -> LiveSpec:
        """Read the models config and the model's reference profile (fitted and cached if needed).

        ``profiles_dir`` defaults to ``MLMON_HOME/profiles``, the batch pipeline's cache.
        """
        from mlmon.settings import Settings
        from mlmon.tasks.config import load_config
        from mlmon.tasks.reference import baseline

        cfg = load_config(config_path).model(model)
        directory = profiles_dir or Settings.from_env().profiles_dir
        return cls.from_profile(cfg, baseline(cfg, directory).profile)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> LiveSpec:
        """A spec written by :meth:`to_json` (``python -m mlmon.live spec``)."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        cols = tuple(
            ColumnBins(**{**col, "edges": tuple(col["edges"]), "categories": tuple(col["categories"]),
                          "reference_shares": tuple(col["reference_shares"])})
            for col in raw.pop("columns")
        )  # fmt: skip
        return cls(**{**raw, "ok_statuses": tuple(raw["ok_statuses"]), "columns": cols})


def _shares(counts: list[int]) -> tuple[float, ...]:
    """Each bin's share; an empty bin's is 0 (PSI in PromQL floors it at EPS, Jensen–Shannon needs none)."""
    total = sum(counts)
    return tuple(n / total if total else 0.0 for n in counts)


def _num(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:.4g}"


# -------------------------------------------------------------------------------------- the metrics


class LiveMetrics:
    """The Prometheus metrics of one model in this process (see the module docstring).

    ``registry``: where the metrics are registered (prometheus_client's global one by default; tests
    and apps exposing several models pass their own). :meth:`observe` never raises.

    Why the counts are not written into prometheus_client per call: incrementing ~25 of its children per
    prediction (each takes its own lock, and an mmap write in multiprocess mode) cost ~40 µs a call here,
    and binning 20 values in Python another ~12 µs. So :meth:`observe` only appends the call's values to
    a deque; the sync thread bins them into plain lists and moves the deltas into the Prometheus metrics
    (:meth:`sync`): every ``sync_interval`` seconds, and before every scrape served by :func:`asgi_app` /
    :func:`wsgi_app` / :func:`generate`. A scrape may lag that much behind. The binning still costs the
    process the same CPU, only not on the request path (``bench_logger.py`` prints both).
    """

    def __init__(
        self,
        spec: LiveSpec,
        registry: pc.CollectorRegistry | None = pc.REGISTRY,
        *,
        sync_interval: float = 1.0,
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.sync_interval = sync_interval
        self.uncounted = 0  # predictions whose values could not be binned (a bug: logged once)
        m = spec.model
        self._predictions = pc.Counter(
            "mlmon_live_predictions", "Predictions logged, by model version, status and outcome (ok/error)",
            ["model", "version", "status", "outcome"], registry=registry,
        )  # fmt: skip
        self._latency = pc.Histogram(
            "mlmon_live_latency_seconds", "Prediction latency as logged (latency_ms / 1000)",
            ["model", "version"], buckets=LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip
        bins = pc.Counter(
            "mlmon_live_bin", "Values per reference-profile bin (features and model outputs)",
            ["model", "role", "column", "bin"], registry=registry,
        )  # fmt: skip
        share = pc.Gauge(
            "mlmon_live_reference_share", "The reference's share of each bin (0 when empty)",
            ["model", "role", "column", "bin"], registry=registry, multiprocess_mode="max",
        )  # fmt: skip
        self._queue_depth = pc.Gauge(
            "mlmon_logger_queue_depth", "Documents waiting in the logging helper's buffer",
            ["model"], registry=registry, multiprocess_mode="livesum",
        ).labels(m)  # fmt: skip
        documents = pc.Counter(
            "mlmon_logger_documents", "Documents by outcome: written, dropped (buffer full, unsent at close), "
            "rejected (invalid)", ["model", "outcome"], registry=registry,
        )  # fmt: skip
        self._documents = {o: documents.labels(m, o) for o in ("written", "dropped", "rejected")}
        for child in self._documents.values():
            child.inc(0)
        # Every bin of every column is one slot of a flat list; a column is (name, lookup, offset, size).
        self._bin_children: list[Any] = []
        self._numerical: list[tuple[str, tuple[float, ...], int]] = []  # features: (name, edges, offset)
        self._categorical: list[tuple[str, dict[Any, int], int, int]] = []  # (name, index, offset, other)
        self._outputs: dict[str, tuple[Any, int]] = {}
        for col in spec.columns:
            offset = len(self._bin_children)
            self._bin_children += [bins.labels(m, col.role, col.column, b) for b in col.bins]
            for b, s in zip(col.bins, col.reference_shares, strict=True):
                share.labels(m, col.role, col.column, b).set(s)
            lookup: Any = col.edges if col.kind == NUMERICAL else {k: i for i, k in enumerate(col.categories)}
            if col.kind == CATEGORICAL:
                lookup[None] = len(col.categories)  # marks the OTHER slot (None itself is never counted)
            if col.role == FEATURE and col.kind == NUMERICAL:
                self._numerical.append((col.column, lookup, offset))
            elif col.role == FEATURE:
                self._categorical.append((col.column, lookup, offset, lookup[None]))
            else:
                self._outputs[col.column] = (lookup, offset)
        # The same columns for the batch binning: (feature name or None, lookup, edges as an array, offset)
        self._batch_features = [(n, e, np.asarray(e, dtype=np.float64), o) for n, e, o in self._numerical]
        self._batch_features += [(n, k, None, o) for n, k, o, _ in self._categorical]
        self._batch_outputs = {
            name: (lookup, np.asarray(lookup, dtype=np.float64) if type(lookup) is tuple else None, offset)
            for name, (lookup, offset) in self._outputs.items()
        }
        self._feature_names = tuple(n for n, *_ in self._batch_features)
        self._ok = frozenset(spec.ok_statuses)
        self._series: dict[tuple[Any, Any], tuple[Any, Any]] = {}  # (version, status) -> children
        self._versions: dict[Any, str] = {}  # logged value -> label (at most MAX_LABEL_VALUES)
        self._statuses: dict[Any, str] = {}
        positive = spec.positive_class
        self._score = (lambda p: p.get(positive)) if spec.task == "binary" else (
            (lambda p: max(p.values(), default=None)) if spec.task == "multiclass" else None
        )  # fmt: skip
        self._start()
        _INSTANCES.add(self)

    def _start(self) -> None:
        """(Re)create what does not survive a fork: the locks, the pending deltas, the sync thread."""
        self._generation = process_generation()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time (a fork may copy it held)
        self._counts = [0] * len(self._bin_children)
        self._pending: dict[tuple[Any, Any], int] = {}
        self._latencies: dict[tuple[Any, Any], list[float]] = {}  # (version, status) -> [sum, counts…]
        self._deferred: collections.deque[tuple[Any, ...]] = collections.deque()  # taken, not yet binned
        self._stopped = threading.Event()
        threading.Thread(target=self._sync_loop, name="mlmon-live-metrics", daemon=True).start()

    def observe(
        self,
        version: str | None,
        features: Mapping[str, Any],
        prediction: Any,
        probabilities: Mapping[str, float] | None,
        latency_ms: float | None,
        status: Any,
    ) -> None:
        """Take one prediction (called by ``PredictionLogger.log_prediction``); counted at the next sync.

        Only a tuple is appended to a deque here (no lock, no binning): the request path pays well under a
        microsecond, and the sync thread bins the values. ``features`` and ``probabilities`` are kept by
        reference until then: pass mappings the caller does not change afterwards (the logger passes its
        own copies). When the sync thread is :data:`MAX_DEFERRED` predictions behind, the call counts
        inline instead, so memory stays bounded and nothing is dropped.
        """
        if self._generation != process_generation():
            self._start()  # forked: the parent's deltas are the parent's, and its thread is gone
        item = (version, features, prediction, probabilities, latency_ms, status)
        if len(self._deferred) < MAX_DEFERRED:
            self._deferred.append(item)
        else:
            with self._lock:
                self._count(item)

    def _drain(self) -> None:
        """Bin the predictions deferred so far into the pending counts, :data:`DRAIN_BATCH` at a time.

        Why big batches rather than short chunks: whenever a request thread hands the GIL over (it waits
        for a request or for I/O; with the logger's older ``uuid4`` request ids, inside every call, as
        ``os.urandom`` releases it), a sync thread with work takes it and holds it until it hands it back.
        Binned 16 at a time (~0.2 ms per hold), a 50 ms backlog made one
        call in ten ~0.2 ms slower (wall p99 230-530 µs at back-to-back calls). A whole backlog binned at
        once, column by column with NumPy (:meth:`_count_batch`, ~4 µs per prediction instead of ~8 µs),
        is handed back only a few times per drain: a few calls wait longer (up to the interpreter's
        switch interval, 5 ms; ``bench_logger.py`` prints p99.9 and the max too), the wall p99 is back to
        the call's own CPU p99. Calls made while a drain runs wait for the next one. A batch that cannot be
        binned at once is counted one prediction at a time (:meth:`_count_one`): a prediction whose
        values cannot be counted is skipped and logged, never the batch.
        """
        deferred, pop = self._deferred, self._deferred.popleft
        todo = len(deferred)  # what was taken so far: later calls wait for the next drain (big batches)
        while todo > 0:
            with self._lock:  # every drain pops under the lock: len() only grows meanwhile
                batch = [pop() for _ in range(min(DRAIN_BATCH, todo, len(deferred)))]
                todo -= DRAIN_BATCH
                if not batch:
                    return
                try:
                    self._count_batch(batch)
                except Exception:
                    for item in batch:
                        self._count_one(item)
            time.sleep(0)

    def _count_one(self, item: tuple[Any, ...]) -> None:
        """:meth:`_count`, a failure counted in :attr:`uncounted` and logged once (the caller holds ``_lock``)."""
        try:
            self._count(item)
        except Exception:
            self.uncounted += 1
            if self.uncounted == 1:
                log.exception("mlmon live metrics: a prediction could not be counted")

    def _count_batch(self, items: list[tuple[Any, ...]]) -> None:
        """Count ``items`` exactly as :meth:`_count` one by one would, a column at a time (``_lock`` held).

        Everything is binned into local counts first and added only when the whole batch went through:
        on an exception nothing is counted and the caller counts the batch item by item. A numerical column
        of floats, small ints and None is binned by ``np.searchsorted`` (``bisect_left``: right-closed
        bins; NaN, ±inf and None are missing); a categorical one of str and None by a ``Counter``; any
        other column (strings in a numerical one, numpy scalars, bools…) value by value (:func:`_count_value`).

        The Python part (taking the values out of the mappings) runs first and the NumPy part after it:
        NumPy may hand the GIL back, and every hand-over lets a waiting request thread through but costs
        it the next Python stretch; one stretch per batch, then only short NumPy ones.
        """
        if not items:
            return
        versions, features, predictions, probabilities, latencies, statuses = zip(*items, strict=True)
        one_version, one_status = set(versions), set(statuses)
        if len(one_version) == 1 and len(one_status) == 1:  # the usual batch: one series, no key per item
            keys = None
            per_key = {(one_version.pop(), one_status.pop()): len(items)}
        else:
            keys = list(zip(versions, statuses, strict=True))
            per_key = collections.Counter(keys)
        size = len(self._counts)
        local = [0] * (size + 1)  # the last slot takes what is not counted
        numerical: list[tuple[np.ndarray, np.ndarray, int]] = []  # (values, edges, offset), binned below
        names = self._feature_names
        if names:
            rows = None
            if set(map(type, features)) == {dict}:  # plain dicts (the logger's copies): one C call each
                take = operator.itemgetter(*names)
                try:
                    rows = [take(f) for f in features] if len(names) > 1 else [(take(f),) for f in features]
                except KeyError:  # a feature not logged: missing, as .get says
                    rows = None
            if rows is None:
                rows = [tuple(map(f.get, names)) for f in features]
            columns = list(zip(*rows, strict=True))
            del rows  # fewer objects alive: fewer garbage collections for the request threads too
            for (_, lookup, edges, offset), values in zip(self._batch_features, columns, strict=True):
                _bin_column(values, lookup, edges, offset, local, numerical)
        out = self._batch_outputs
        if "prediction" in out:
            _bin_column(predictions, *out["prediction"], local, numerical)
        if "score" in out and self._score is not None:
            if self.spec.task == "binary":  # self._score, inlined
                positive = self.spec.positive_class
                scores = [p.get(positive) if p else None for p in probabilities]
            else:
                get_score = self._score
                scores = [get_score(p) if p else None for p in probabilities]
            _bin_column(scores, *out["score"], local, numerical)
        latency = _as_floats(latencies)
        index = {key: i for i, key in enumerate(per_key)}
        if latency is not None and keys is not None:
            series = np.array([index[key] for key in keys], dtype=np.int64)
        # NumPy from here on.
        if numerical:
            slots = []
            for values, edges, offset in numerical:
                found = np.searchsorted(edges, values) + offset  # side="left": bisect_left
                found[~np.isfinite(values)] = size  # NaN (None too), ±inf: not counted
                slots.append(found)
            binned = np.bincount(np.concatenate(slots), minlength=size + 1).tolist()
            local = [a + b for a, b in zip(local, binned, strict=True)]
        buckets = len(LATENCY_BUCKETS_S) + 1
        if latency is not None:  # the latency histograms too: counts and sums per (version, status)
            ok = (latency >= 0) & (latency < math.inf)  # as _count: NaN (None) is not counted
            seconds = latency[ok] / 1000
            series = series[ok] if keys is not None else 0
            flat = series * buckets + np.searchsorted(_LATENCY_BUCKETS, seconds)  # bisect_left
            bucket_counts = np.bincount(flat, minlength=len(index) * buckets).reshape(len(index), buckets)
            sums = np.bincount(series, seconds, len(index)) if keys is not None else [seconds.sum()]
        # All binned: add it (nothing below raises).
        self._counts = [a + b for a, b in zip(self._counts, local[:size], strict=True)]
        pending = self._pending
        for key, n in per_key.items():
            pending[key] = pending.get(key, 0) + n
        hists = self._latencies
        if latency is not None:
            for key, i in index.items():
                if bucket_counts[i].any():
                    hist = hists.get(key)
                    if hist is None:
                        hist = hists[key] = [0.0] + [0] * buckets
                    hist[0] += float(sums[i])
                    hist[1:] = [a + b for a, b in zip(hist[1:], bucket_counts[i].tolist(), strict=True)]
            return
        keys = keys if keys is not None else [next(iter(per_key))] * len(items)
        for key, latency_ms in zip(keys, latencies, strict=True):  # one by one, as _count
            if type(latency_ms) in (float, int) and 0 <= latency_ms < math.inf:
                seconds = latency_ms / 1000
                hist = hists.get(key)
                if hist is None:
                    hist = hists[key] = [0.0] + [0] * buckets
                hist[0] += seconds
                hist[1 + bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1

    def _count(self, item: tuple[Any, ...]) -> None:
        """Count one prediction into the pending deltas (the caller holds ``_lock``)."""
        version, features, prediction, probabilities, latency_ms, status = item
        score = None
        if probabilities and self._score is not None and "score" in self._outputs:
            score = self._score(probabilities)
        counts = self._counts
        key = (version, status)
        self._pending[key] = self._pending.get(key, 0) + 1
        if type(latency_ms) in (float, int) and 0 <= latency_ms < math.inf:
            seconds = latency_ms / 1000
            hist = self._latencies.get(key)
            if hist is None:
                hist = self._latencies[key] = [0.0] + [0] * (len(LATENCY_BUCKETS_S) + 1)
            hist[0] += seconds  # the sum, then one count per bucket (the last one is +Inf)
            hist[1 + bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        get = features.get
        for name, edges, offset in self._numerical:  # _count_value, inlined for the common types
            value = get(name)
            t = type(value)
            if t is float or t is int:
                if -_INF < value < _INF:  # False for NaN too
                    counts[offset + _bisect(edges, value)] += 1
            elif value is not None:
                _count_value(counts, edges, offset, value)
        for name, categories, offset, other in self._categorical:
            value = get(name)
            if type(value) is str:
                counts[offset + categories.get(value, other)] += 1
            elif value is not None:
                _count_value(counts, categories, offset, value)
        out = self._outputs
        if prediction is not None and "prediction" in out:
            _count_value(counts, *out["prediction"], prediction)
        if score is not None:
            _count_value(counts, *out["score"], score)

    def sync(self) -> None:
        """Move the counts kept since the last sync into the Prometheus metrics."""
        with self._sync_lock:
            self._drain()
            with self._lock:
                counts, self._counts = self._counts, [0] * len(self._counts)
                pending, self._pending = self._pending, {}
                latencies, self._latencies = self._latencies, {}
            for child, n in zip(self._bin_children, counts, strict=True):
                if n:
                    child.inc(n)
            for key, n in pending.items():
                self._children(*key)[0].inc(n)
            for key, hist in latencies.items():
                _add_to_histogram(self._children(*key)[1], hist)

    def _sync_loop(self) -> None:
        """Bin what was taken every :data:`DRAIN_INTERVAL_S` (a backlog of at most that long, binned in
        one batch); sync every ``sync_interval``."""
        generation = self._generation
        step = min(DRAIN_INTERVAL_S, self.sync_interval)
        next_sync = time.monotonic() + self.sync_interval
        while not self._stopped.wait(step) and generation == process_generation():
            try:
                if time.monotonic() >= next_sync:
                    next_sync = time.monotonic() + self.sync_interval
                    self.sync()
                else:
                    self._drain()
            except Exception:  # a metrics bug must not end the metrics silently: say it, go on
                log.exception("mlmon live metrics: sync failed")

    def _children(self, version: Any, status: Any) -> tuple[Any, Any]:
        """The counter and histogram of ``(version, status)``, created once; labels stay bounded."""
        key = (version, status)
        found = self._series.get(key)
        if found is not None:
            return found
        v, s = _label(self._versions, version), _label(self._statuses, status)
        outcome = "ok" if str(status) in self._ok else "error"
        m = self.spec.model
        found = (self._predictions.labels(m, v, s, outcome), self._latency.labels(m, v))
        if len(self._series) < MAX_LABEL_VALUES**2:  # a cache, bounded like the labels
            self._series[key] = found
        return found

    def prepare(self, version: str | None) -> None:
        """Create the series of ``version`` at 0 for the ok statuses and ``error`` (the logger calls it).

        A counter first scraped at 1,500 has no visible increase in ``rate()``: series that exist at 0
        from the start count their first predictions too.
        """
        with self._sync_lock:
            for status in (*self.spec.ok_statuses, "error"):
                self._children(version, status)

    # the logging helper's own counters (called by PredictionLogger; rare, so written directly)

    def documents(self, outcome: str, n: int) -> None:
        if n:
            self._documents[outcome].inc(n)

    def queue_depth(self, n: int) -> None:
        self._queue_depth.set(n)


_INF = math.inf
_bisect = bisect.bisect_left
_INSTANCES: weakref.WeakSet[LiveMetrics] = weakref.WeakSet()


def sync_all() -> None:
    """Sync every :class:`LiveMetrics` of this process (before a scrape is served)."""
    for metrics in list(_INSTANCES):
        metrics.sync()


def _add_to_histogram(child: Any, hist: list[float]) -> None:
    """Add per-bucket counts and a sum to a prometheus_client histogram child.

    prometheus_client has no public call for that (only ``observe`` of one value, ~1 µs each), so this
    writes its per-bucket values (``_buckets``, ``_sum``: non-cumulative counts, as ``observe`` keeps
    them, in both the single- and the multi-process value classes); the version is pinned and a test
    checks the exposed histogram against the values observed.
    """
    child._sum.inc(hist[0])
    for bucket, n in zip(child._buckets, hist[1:], strict=True):
        if n:
            bucket.inc(n)


def _label(seen: dict[Any, str], value: Any) -> str:
    """The label of a logged version or status: itself for the first MAX_LABEL_VALUES seen, then other."""
    label = seen.get(value)
    if label is None:
        if len(seen) >= MAX_LABEL_VALUES:
            return "other"
        label = seen[value] = "" if value is None else str(value)
    return label


_FLOATS = frozenset({float, type(None)})
_NUMBERS = frozenset({float, int, type(None)})
_STRINGS = frozenset({str, type(None)})
_EXACT_INT = 2**53  # ints up to this are exact as floats: binned as floats, the same bin as the int
_LATENCY_BUCKETS = np.array(LATENCY_BUCKETS_S)


def _as_floats(values: Any) -> np.ndarray | None:
    """``values`` as float64 (None as NaN) when they are all floats, exact ints or None, else None."""
    types = set(map(type, values))
    if types <= _FLOATS or (
        types <= _NUMBERS and all(-_EXACT_INT <= v <= _EXACT_INT for v in values if type(v) is int)
    ):
        return np.array(values, dtype=np.float64)
    return None


def _bin_column(
    values: Any, lookup: Any, edges: np.ndarray | None, offset: int, local: list[int],
    numerical: list[tuple[np.ndarray, np.ndarray, int]],
) -> None:  # fmt: skip
    """Bin one column of a batch as :func:`_count_value` would each value (None is missing).

    A numerical column of floats / exact ints / None goes to ``numerical`` as an array (binned by the
    caller with NumPy); a categorical one of str / None, and any other column, is added to ``local``.
    """
    array = _as_floats(values) if edges is not None else None
    if array is not None:
        numerical.append((array, edges, offset))
    elif edges is None and set(map(type, values)) <= _STRINGS:
        other = lookup[None]
        for value, n in collections.Counter(values).items():
            if value is not None:
                local[offset + lookup.get(value, other)] += n
    else:
        for value in values:
            if value is not None:
                _count_value(local, lookup, offset, value)


def _count_value(counts: list[int], lookup: Any, offset: int, value: Any) -> None:
    """Count ``value`` in its bin: a binary search over numerical edges, a dict for categories."""
    if type(lookup) is tuple:  # numerical: bin i holds (e[i-1], e[i]], as the profile's bin counts
        t = type(value)
        if t is not float and t is not int:
            if t is bool or t is str:
                return  # not a number here (the batch contract quarantines them)
            try:
                value = float(value)  # numpy scalars, decimals
            except (TypeError, ValueError):
                return
        if value != value or value == math.inf or value == -math.inf:
            return
        counts[offset + bisect.bisect_left(lookup, value)] += 1
    else:
        i = lookup.get(value if type(value) is str else str(value))
        counts[offset + (lookup[None] if i is None else i)] += 1


# ------------------------------------------------------------------------------------- /metrics apps


def multiprocess() -> bool:
    """Whether prometheus_client runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir"))


def collecting_registry(registry: pc.CollectorRegistry | None = None) -> pc.CollectorRegistry:
    """What ``/metrics`` serves: every worker's values in multiprocess mode, else ``registry``."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        fresh = pc.CollectorRegistry()
        mp.MultiProcessCollector(fresh)
        return fresh
    return registry or pc.REGISTRY


def generate(registry: pc.CollectorRegistry | None = None) -> bytes:
    """The metrics page (Prometheus text format), counts synced first."""
    sync_all()
    return pc.generate_latest(collecting_registry(registry))


def asgi_app(registry: pc.CollectorRegistry | None = None) -> Any:
    """An ASGI app serving the metrics (FastAPI: ``app.mount("/metrics", asgi_app())``)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = generate(registry)
        headers = [(b"content-type", pc.CONTENT_TYPE_LATEST.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_app(registry: pc.CollectorRegistry | None = None) -> Any:
    """A WSGI app serving the metrics (Flask: ``DispatcherMiddleware(app, {"/metrics": wsgi_app()})``)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = generate(registry)
        start_response(
            "200 OK", [("Content-Type", pc.CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlmon.live", description="live metrics helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    spec = sub.add_parser("spec", help="print a model's live spec (bins, reference shares) as JSON")
    spec.add_argument("config")
    spec.add_argument("model")
    args = parser.parse_args(argv)
    print(LiveSpec.from_config(args.config, args.model).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
