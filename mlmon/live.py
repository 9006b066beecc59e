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
  set once; empty bins floored at the batch PSI's ``EPS``), so PSI is computed in PromQL
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
import itertools
import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import prometheus_client as pc

EPS = 1e-4
"""Share given to an empty bin, as :data:`mlmon.tasks.checks.drift.EPS` (a test keeps them equal)."""
MAX_CATEGORIES = 50
MAX_LABEL_VALUES = 20
OTHER = "(other)"
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
    reference_shares: tuple[float, ...]  # per bin, floored at EPS

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
    total = sum(counts)
    return tuple((n / total if total else 0.0) or EPS for n in counts)


def _num(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:.4g}"


# -------------------------------------------------------------------------------------- the metrics


class LiveMetrics:
    """The Prometheus metrics of one model in this process (see the module docstring).

    ``registry``: where the metrics are registered (prometheus_client's global one by default; tests
    and apps exposing several models pass their own). :meth:`observe` never raises.
    """

    def __init__(self, spec: LiveSpec, registry: pc.CollectorRegistry | None = pc.REGISTRY) -> None:
        self.spec = spec
        self.registry = registry
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
            "mlmon_live_reference_share", "The reference's share of each bin (empty bins floored at 1e-4)",
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
        self._features: list[tuple[str, Any, list[Any]]] = []  # (name, lookup, counters), features only
        self._outputs: dict[str, tuple[Any, list[Any]]] = {}
        for col in spec.columns:
            counters = [bins.labels(m, col.role, col.column, b) for b in col.bins]
            for b, s in zip(col.bins, col.reference_shares, strict=True):
                share.labels(m, col.role, col.column, b).set(s)
            lookup: Any = col.edges if col.kind == NUMERICAL else {k: i for i, k in enumerate(col.categories)}
            if col.role == FEATURE:
                self._features.append((col.column, lookup, counters))
            else:
                self._outputs[col.column] = (lookup, counters)
        self._ok = frozenset(spec.ok_statuses)
        self._series: dict[tuple[Any, Any], tuple[Any, Any]] = {}  # (version, status) -> children
        self._lock = threading.Lock()
        positive = spec.positive_class
        self._score = (lambda p: p.get(positive)) if spec.task == "binary" else (
            (lambda p: max(p.values(), default=None)) if spec.task == "multiclass" else None
        )  # fmt: skip

    def observe(
        self,
        version: str | None,
        features: Mapping[str, Any],
        prediction: Any,
        probabilities: Mapping[str, float] | None,
        latency_ms: float | None,
        status: Any,
    ) -> None:
        """Count one prediction (called by ``PredictionLogger.log_prediction``)."""
        counted, latency = self._children(version, status)
        counted.inc()
        if type(latency_ms) in (float, int) and latency_ms >= 0 and latency_ms < math.inf:
            latency.observe(latency_ms / 1000)
        for name, lookup, counters in self._features:
            _count(lookup, counters, features.get(name))
        out = self._outputs
        if "prediction" in out:
            _count(*out["prediction"], prediction)
        if "score" in out and probabilities and self._score is not None:
            _count(*out["score"], self._score(probabilities))

    def _children(self, version: Any, status: Any) -> tuple[Any, Any]:
        key = (version, status)
        found = self._series.get(key)
        if found is not None:
            return found
        with self._lock:
            versions = {v for v, _ in self._series}
            statuses = {s for _, s in self._series}
            v = "" if version is None else str(version)
            s = "" if status is None else str(status)
            if version not in versions and len(versions) >= MAX_LABEL_VALUES:
                v = "other"
            if status not in statuses and len(statuses) >= MAX_LABEL_VALUES:
                s = "other"
            outcome = "ok" if str(status) in self._ok else "error"
            m = self.spec.model
            found = (self._predictions.labels(m, v, s, outcome), self._latency.labels(m, v))
            self._series[key] = found
            return found

    # the logging helper's own counters (called by PredictionLogger)

    def documents(self, outcome: str, n: int) -> None:
        if n:
            self._documents[outcome].inc(n)

    def queue_depth(self, n: int) -> None:
        self._queue_depth.set(n)


def _count(lookup: Any, counters: list[Any], value: Any) -> None:
    """Count ``value`` in its bin: a binary search over numerical edges, a dict for categories."""
    if value is None:
        return
    if type(lookup) is tuple:  # numerical: bin i holds (e[i-1], e[i]], as the profile's bin counts
        t = type(value)
        if t is not float and t is not int:
            if t is bool or t is str:
                return  # not a number here (the batch contract quarantines them)
            try:
                value = float(value)  # numpy scalars, decimals
            except (TypeError, ValueError):
                return
        if value != value or value in (math.inf, -math.inf):
            return
        counters[bisect.bisect_left(lookup, value)].inc()
    else:
        counters[lookup.get(value if type(value) is str else str(value), len(counters) - 1)].inc()


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


def asgi_app(registry: pc.CollectorRegistry | None = None) -> Any:
    """An ASGI app serving ``/metrics`` (mount it: ``app.mount("/metrics", asgi_app())``)."""
    return pc.make_asgi_app(collecting_registry(registry))


def wsgi_app(registry: pc.CollectorRegistry | None = None) -> Any:
    """A WSGI app serving the metrics (Flask: ``DispatcherMiddleware(app, {"/metrics": wsgi_app()})``)."""
    return pc.make_wsgi_app(collecting_registry(registry))


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
