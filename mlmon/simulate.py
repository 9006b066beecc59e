"""A traffic simulator for the demo model ``demo_classifier``: days of canonical prediction and label logs.

Day 0 is the clean reference period; days 1..N are monitored. Each day has a daily traffic cycle (busy
afternoons, quiet nights), lognormal latencies, a few errors, and labels arriving hours to days after
~60% of the successful predictions. Predictions come from real scikit-learn models
(:mod:`mlmon.demo_model`): ``v1``, then a ``v2`` canary on part of the traffic of the last days. The
default :class:`Scenario` plants one incident per day so every check has something to find:

======  ========================================================================================
day     what happens
======  ========================================================================================
0       reference period (clean, v1 only)
1, 2    clean
3, 4    drift: ``income`` and ``sessions_last_7d`` rise to +1σ over day 3 and stay there on day 4;
        predictions and the true churn rate move with them
5       data quality: 40% of requests log ``avg_session_minutes`` in seconds (×60), 30% miss
        ``tenure_months``, a new country ``XX`` appears, and 8 malformed documents are logged
6       service: p95 latency ~900 ms, 8% errors; v2 canary starts on 30% of traffic
7       shadow challenger worse: ``v3-shadow``'s feature pipeline sends ``tenure_months`` in years and
        loses ``support_tickets`` (imputed): its accuracy drops ~13 points (v2 canary continues)
8       fairness: the model stops predicting churn for the ``south`` region (``customer.region``, a
        logged field that is not a feature): its selection rate collapses, and the overall churn share
        with it (class balance)
9       correlation change: ``age`` and ``income`` (independent in the reference) become strongly
        related (rank correlation ~0.8), each keeping exactly its day's values (marginals unchanged)
10      outliers: a burst of 2% of requests with one value far outside the reference (income ×8–15,
        avg_session_minutes 150–400, support_tickets 12–25 or sessions_last_7d 25–40; a quarter of
        the burst each, so no single feature's out-of-range share reaches the quality limit of 1%)
======  =================================================================================
Everything is a pure function of the seed (document ids included), so writing the same simulation twice
adds nothing the second time.

>>> from datetime import UTC, datetime
>>> preds, labels = simulate(datetime(2026, 1, 1, tzinfo=UTC), days=1, per_day=50, seed=1)
>>> len(preds), preds[0]["model_name"], sorted(preds[0]["prediction"])
(50, 'demo_classifier', ['probabilities', 'value'])
>>> all(lab["timestamp"] > datetime(2026, 1, 1, tzinfo=UTC) for lab in labels)
True
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from bson import ObjectId
from pymongo.errors import BulkWriteError, PyMongoError

from mlmon import demo_model as dm
from mlmon.logger import ensure_indexes
from mlmon.tasks.connect import mongo_client
from mlmon.tasks.errors import SourceUnavailable
from mlmon.tasks.window import as_utc

_Z95 = 1.6448536269514722  # standard normal 95th percentile: p95 = median * exp(_Z95 * sigma)
_LATENCY_SIGMA = 0.5
_ERRORS = (
    "TimeoutError: feature store did not answer within 500 ms",
    "RuntimeError: model worker unavailable",
    "ValueError: could not convert request body",
)
REGIONS = {"north": 0.3, "south": 0.3, "east": 0.2, "west": 0.2}  # customer.region: logged, not a feature
SIMULATOR_VERSION = 2  # bump when the simulated traffic changes: `mlmon demo` then seeds it again
_INTEGER_FEATURES = frozenset({"age", "tenure_months", "sessions_last_7d", "support_tickets"})

Progress = Callable[[int, int], None]
"""``progress(done, total)``: documents written so far, out of all."""


@dataclass(frozen=True)
class Scenario:
    """Which incident happens on which day index (day 0 = reference); ``None`` turns an incident off."""

    drift_days: tuple[int, int] | None = (3, 4)  # first and last day of the drift episode
    drift_sigma: float = 1.0  # final shift of income (log scale) and sessions_last_7d, in σ
    drift_ramp_days: float = 1.0  # the shift grows linearly from 0 over this long, then holds
    quality_day: int | None = 5
    seconds_share: float = 0.4  # requests logging avg_session_minutes in seconds (×60)
    missing_tenure_share: float = 0.3  # requests without tenure_months
    new_country: str = "XX"
    new_country_share: float = 0.1
    malformed: bool = True  # also log a handful of malformed documents on the quality day
    spike_day: int | None = 6
    spike_latency_p95_ms: float = 900.0
    spike_error_rate: float = 0.08
    latency_p95_ms: float = 120.0
    error_rate: float = 0.005
    v2_from_day: int | None = 6  # v2 canary from this day on
    v2_share: float = 0.3
    correlation_day: int | None = 9  # two features become related, marginals unchanged (multivariate drift)
    correlation_features: tuple[str, str] = ("age", "income")
    correlation_rho: float = 0.8  # Gaussian-copula correlation the pair is re-paired with on that day
    outlier_day: int | None = 10  # a burst of outlying requests on this day (outliers family)
    outlier_share: float = 0.02  # share of that day's requests in the burst
    label_share: float = 0.6  # successful predictions that get a label
    label_delay_median_h: float = 20.0  # lognormal delay, clipped to [1 h, 7 d]
    shadow_version: str | None = "v3-shadow"  # scores every successful request again, not served
    shadow_from_day: int = 1
    shadow_worse_day: int | None = 7  # its inputs are degraded that day (see _shadow)
    bias_day: int | None = 8  # the served model stops predicting churn for one region
    bias_region: str = "south"
    bias_share: float = 1.0  # of that region's churn predictions turned into "stay"

    @classmethod
    def clean(cls) -> Scenario:
        """No incidents and no v2: every day looks like the reference."""
        return cls(
            drift_days=None, quality_day=None, spike_day=None, v2_from_day=None, bias_day=None, correlation_day=None,
            outlier_day=None,
            shadow_version=None, shadow_worse_day=None,
        )  # fmt: skip

    def drift_shift(self, day: int, day_fraction: np.ndarray) -> np.ndarray:
        """Shift in σ for requests at ``day_fraction`` ∈ [0, 1) of ``day``."""
        if self.drift_days is None or not self.drift_days[0] <= day <= self.drift_days[1]:
            return np.zeros_like(day_fraction)
        elapsed = (day - self.drift_days[0]) + day_fraction
        return self.drift_sigma * np.minimum(elapsed / self.drift_ramp_days, 1.0)


@functools.lru_cache(maxsize=8)
def _model(version: str, seed: int) -> Any:
    return dm.train(version, seed)


def simulate(
    start: datetime, days: int, per_day: int, seed: int, scenario: Scenario | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Canonical prediction documents (by time; a day's malformed ones last) and labels (by arrival).

    ``start`` is the beginning of day 0 (UTC). Each day holds ``per_day`` predictions, plus the
    malformed documents on the quality day. Day ``d`` only depends on ``(seed, d)``.
    """
    if days < 1 or per_day < 1:
        raise ValueError(f"days and per_day must be positive, got days={days}, per_day={per_day}")
    scenario = scenario or Scenario()
    start = as_utc(start)
    predictions: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for day in range(days):
        p, lab = _simulate_day(start + timedelta(days=day), day, per_day, seed, scenario)
        predictions += p
        labels += lab
    labels.sort(key=lambda d: d["timestamp"])
    return predictions, labels


def _simulate_day(
    day_start: datetime, day: int, n: int, seed: int, sc: Scenario
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng([seed, day])
    offsets_ms = _diurnal_offsets_ms(rng, n)
    truth = dm.customers(rng, n, shift=sc.drift_shift(day, offsets_ms / 86_400_000))
    if day == sc.correlation_day:
        truth = _related(
            truth, sc.correlation_features, sc.correlation_rho, np.random.default_rng([seed, day, 9])
        )
    outcome = dm.sample_churn(rng, truth)

    logged = truth.copy()  # what serving received (and logged): differs from the truth on day 5
    if day == sc.quality_day:
        minutes = truth["avg_session_minutes"]
        logged["avg_session_minutes"] = np.where(
            rng.random(n) < sc.seconds_share, np.round(minutes * 60, 2), minutes
        )
        logged.loc[rng.random(n) < sc.missing_tenure_share, "tenure_months"] = np.nan
        logged.loc[rng.random(n) < sc.new_country_share, "country"] = sc.new_country
    if day == sc.outlier_day:
        logged = _outlier_burst(logged, np.random.default_rng([seed, day, 10]), sc.outlier_share)

    canary = sc.v2_from_day is not None and day >= sc.v2_from_day
    v2 = rng.random(n) < (sc.v2_share if canary else 0.0)
    label, p_churn = dm.predict(_model("v1", seed), logged)
    if v2.any():
        label2, p2 = dm.predict(_model("v2", seed), logged)
        label, p_churn = np.where(v2, label2, label), np.where(v2, p2, p_churn)

    # the region comes from its own stream, so every other value of the day is what it was without it
    region = _regions(np.random.default_rng([seed, day, 1]), n)
    if day == sc.bias_day:
        flip = (region == sc.bias_region) & (label == dm.POSITIVE)
        flip &= np.random.default_rng([seed, day, 2]).random(n) < sc.bias_share
        label = np.where(flip, dm.CLASSES[0], label)
        p_churn = np.where(flip, p_churn * 0.45, p_churn)  # served as "stay": p(churn) below 0.5

    spike = day == sc.spike_day
    p95 = sc.spike_latency_p95_ms if spike else sc.latency_p95_ms
    latency = np.round(rng.lognormal(math.log(p95) - _Z95 * _LATENCY_SIGMA, _LATENCY_SIGMA, n), 2)
    failed = rng.random(n) < (sc.spike_error_rate if spike else sc.error_rate)
    error_kind = rng.integers(0, len(_ERRORS), n)
    labelled = ~failed & (rng.random(n) < sc.label_share)
    delay_h = np.clip(rng.lognormal(math.log(sc.label_delay_median_h), 1.0, n), 1.0, 7 * 24.0)
    ids = rng.integers(0, 2**63, size=(n, 3))  # request id (2 words) and ObjectId entropy

    features = _feature_dicts(logged)
    predictions, labels = [], []
    for i in range(n):
        ts = day_start + timedelta(milliseconds=int(offsets_ms[i]))
        request_id = f"{ids[i, 0]:016x}{ids[i, 1]:016x}"
        doc: dict[str, Any] = {
            "_id": _object_id(ts, int(ids[i, 2])),
            "request_id": request_id,
            "model_name": dm.MODEL_NAME,
            "model_version": "v2" if v2[i] else "v1",
            "timestamp": ts,
            "features": features[i],
            "customer": {"region": str(region[i])},
        }
        if failed[i]:
            doc["prediction"] = {"value": None}
            doc.update(latency_ms=float(latency[i]), status="error", error=_ERRORS[error_kind[i]])
        else:
            p = round(float(p_churn[i]), 4)
            probabilities = {dm.POSITIVE: p, dm.CLASSES[0]: round(1 - p, 4)}
            doc["prediction"] = {"value": str(label[i]), "probabilities": probabilities}
            doc.update(latency_ms=float(latency[i]), status="ok")
        predictions.append(doc)
        if labelled[i]:
            arrived = ts + timedelta(milliseconds=int(delay_h[i] * 3_600_000))
            labels.append(
                {
                    "_id": _object_id(arrived, int(ids[i, 2])),
                    "request_id": request_id,
                    "label": str(outcome[i]),
                    "timestamp": arrived,
                }
            )
    if sc.shadow_version is not None and day >= sc.shadow_from_day:
        predictions += _shadow(predictions, logged, day, seed, sc)
    if day == sc.quality_day and sc.malformed:
        predictions += _malformed(day_start, rng)
    return predictions, labels


def _related(
    frame: pd.DataFrame, names: tuple[str, str], rho: float, rng: np.random.Generator
) -> pd.DataFrame:
    """``frame`` with the two columns re-paired along a Gaussian copula of correlation ``rho``: each
    column keeps exactly its values (its marginal), only which rows they sit in changes. Its own
    generator, so the rest of the day's traffic is what it would have been."""
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], len(frame))
    out = frame.copy()
    for k, name in enumerate(names):
        values = np.sort(frame[name].to_numpy())
        out[name] = values[np.argsort(np.argsort(z[:, k], kind="stable"), kind="stable")]
    return out


def _regions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array(list(REGIONS), dtype=object), size=n, p=list(REGIONS.values()))


def _shadow(
    served: list[dict[str, Any]], logged: pd.DataFrame, day: int, seed: int, sc: Scenario
) -> list[dict[str, Any]]:
    """The shadow challenger's documents for the day's successful requests (its own random stream: the
    served documents are unchanged by it)."""
    rng = np.random.default_rng([seed, day, 3])
    inputs = logged.copy()
    if day == sc.shadow_worse_day:  # the shadow's own feature pipeline breaks: a unit bug, a lost lookup
        inputs["tenure_months"] = np.round(inputs["tenure_months"] / 12, 1)
        inputs["support_tickets"] = np.nan
    label, p_churn = dm.predict(_model("v3", seed), inputs)
    latency = np.round(rng.lognormal(math.log(sc.latency_p95_ms) - _Z95 * _LATENCY_SIGMA, _LATENCY_SIGMA,
                                     len(served)), 2)  # fmt: skip
    entropy = rng.integers(0, 2**63, size=len(served))
    features = _feature_dicts(inputs)
    docs = []
    for i, doc in enumerate(served):
        if doc["status"] != "ok":
            continue  # a failed request was never scored by anyone
        p = round(float(p_churn[i]), 4)
        docs.append(
            {
                "_id": _object_id(doc["timestamp"], int(entropy[i])),
                "request_id": doc["request_id"],
                "model_name": dm.MODEL_NAME,
                "model_version": sc.shadow_version,
                "timestamp": doc["timestamp"],
                "features": features[i],
                "prediction": {
                    "value": str(label[i]),
                    "probabilities": {dm.POSITIVE: p, dm.CLASSES[0]: round(1 - p, 4)},
                },
                "latency_ms": float(latency[i]),
                "status": "ok",
                "served": False,
                **({"customer": doc["customer"]} if "customer" in doc else {}),  # the request's context
            }
        )
    return docs


_BURST = (  # (feature, low, high, multiply?): one value far outside the reference, a quarter each
    ("income", 8.0, 15.0, True),
    ("avg_session_minutes", 150.0, 400.0, False),
    ("support_tickets", 12.0, 25.0, False),
    ("sessions_last_7d", 25.0, 40.0, False),
)


def _outlier_burst(logged: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """``logged`` with ``share`` of its rows given one far-out value each (own generator: the day's
    other draws, and so the rest of its traffic, are unchanged)."""
    out = logged.copy()
    rows = rng.choice(len(out), round(share * len(out)), replace=False)
    for k, i in enumerate(rows):
        name, low, high, multiply = _BURST[k % len(_BURST)]
        value = rng.uniform(low, high)
        col = out.columns.get_loc(name)
        if multiply:
            value *= out.iat[i, col]
        out.iat[i, col] = (
            round(value, 2) if name in ("income", "avg_session_minutes") else float(round(value))
        )
    return out


def _diurnal_offsets_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sorted millisecond offsets within a day: traffic peaks at 15:00 and is ~9× lower at 03:00."""
    minute = np.arange(1440)
    weight = 1.0 + 0.8 * np.cos(2 * np.pi * (minute / 1440 - 15 / 24))
    chosen = rng.choice(minute, size=n, p=weight / weight.sum())
    return np.sort(chosen * 60_000 + rng.integers(0, 60_000, n))


def _feature_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One ``features`` object per row: integers as int, missing numbers left out (not null)."""
    columns = []
    for name in dm.FEATURES:
        values = frame[name].tolist()
        if name in _INTEGER_FEATURES:
            values = [None if v != v else int(v) for v in values]  # v != v: NaN
        elif name in dm.NUMERICAL:
            values = [None if v != v else float(v) for v in values]
        columns.append((name, values))
    return [{name: vals[i] for name, vals in columns if vals[i] is not None} for i in range(len(frame))]


def _object_id(ts: datetime, entropy: int) -> ObjectId:
    """A deterministic ObjectId whose embedded time is ``ts`` (so ``_id`` order matches time order)."""
    return ObjectId(int(ts.timestamp()).to_bytes(4, "big") + (entropy & (2**64 - 1)).to_bytes(8, "big"))


def _malformed(day_start: datetime, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A handful of documents the log contract must quarantine (plus one hostile but valid string)."""
    base = {"age": 35, "income": 48_000.0, "tenure_months": 12, "sessions_last_7d": 4,
            "avg_session_minutes": 9.5, "support_tickets": 1, "plan": "basic", "country": "US",
            "device": "mobile"}  # fmt: skip
    pred = {"value": "stay", "probabilities": {"churn": 0.2, "stay": 0.8}}
    broken: list[tuple[str, dict[str, Any]]] = [
        ("wrong_type", {"features": {**base, "age": "forty-two"}}),
        ("wrong_type", {"features": {**base, "tenure_months": True}}),  # a bool is not a number
        ("nested_value", {"features": {**base, "income": {"amount": 48_000, "currency": "EUR"}}}),
        ("wrong_type", {"features": [["age", 35], ["plan", "basic"]]}),  # features not an object
        ("unparseable", {"timestamp": "yesterday around noon"}),
        ("string_too_long", {"features": {**base, "device": "x" * 5_000}}),
        ("wrong_type", {"latency_ms": "fast"}),
        # Valid per the contract (an unseen category) but hostile: reports must escape it.
        ("xss_probe", {"features": {**base, "plan": "<script>alert(1)</script>"}}),
    ]
    docs = []
    for k, (_, override) in enumerate(broken):
        ts = day_start + timedelta(hours=12, minutes=7 * k)
        ids = rng.integers(0, 2**63, size=3)
        doc = {
            "_id": _object_id(ts, int(ids[2])),
            "request_id": f"{ids[0]:016x}{ids[1]:016x}",
            "model_name": dm.MODEL_NAME,
            "model_version": "v1",
            "timestamp": ts,
            "features": dict(base),
            "prediction": pred,
            "latency_ms": 42.0,
            "status": "ok",
        }
        docs.append({**doc, **override})
    return docs


def write(
    db: Any,
    predictions: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    batch_size: int = 1_000,
    progress: Progress | None = None,
    collection: str = "predictions",
    labels_collection: str = "labels",
) -> dict[str, int]:
    """Insert the documents with ``insert_many(ordered=False)`` in batches.

    Returns ``{"predictions": inserted, "labels": inserted, "existing": already there}``; documents
    already present (same ``_id``, e.g. the same simulation written twice) are skipped, not duplicated.
    Raises :class:`~mlmon.tasks.errors.SourceUnavailable` when MongoDB cannot be reached or refuses a document.
    """
    total, done = len(predictions) + len(labels), 0
    counts = {"predictions": 0, "labels": 0, "existing": 0}
    for key, name, docs in (("predictions", collection, predictions), ("labels", labels_collection, labels)):
        for i in range(0, len(docs), batch_size):
            batch = docs[i : i + batch_size]
            inserted = _insert(db[name], batch)
            counts[key] += inserted
            counts["existing"] += len(batch) - inserted
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return counts


def _insert(col: Any, batch: list[dict[str, Any]]) -> int:
    try:
        return len(col.insert_many(batch, ordered=False).inserted_ids)
    except BulkWriteError as e:
        other = [err for err in e.details["writeErrors"] if err.get("code") != 11000]
        if other:
            first = other[0].get("errmsg")
            raise SourceUnavailable(
                f"MongoDB refused {len(other)} document(s) in {col.full_name}: {first}"
            ) from None
        return int(e.details["nInserted"])
    except PyMongoError as e:
        raise SourceUnavailable(f"cannot write simulated traffic to {col.full_name}: {e}") from e


def run_simulation(
    uri: str,
    database: str = "mlmon",
    start: datetime | None = None,
    days: int = 8,
    per_day: int = 2_500,
    seed: int = 0,
    scenario: Scenario | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Simulate and write ``days`` days of demo traffic into ``database``; return a summary.

    ``start`` defaults to ``days`` days before today's midnight (UTC), so the last simulated day is
    yesterday. Creates the indexes of :func:`mlmon.logger.ensure_indexes` first.
    """
    scenario = scenario or Scenario()
    if start is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    start = as_utc(start)
    t0 = time.perf_counter()
    predictions, labels = simulate(start, days, per_day, seed, scenario)
    t_generate = time.perf_counter() - t0
    client = mongo_client(uri)
    try:
        db = client[database]
        try:
            ensure_indexes(db)
        except PyMongoError as e:
            raise SourceUnavailable(f"cannot create indexes in MongoDB database {database!r}: {e}") from e
        counts = write(db, predictions, labels, progress=progress)
    finally:
        client.close()
    return {
        "model_name": dm.MODEL_NAME,
        "database": database,
        "start": start,
        "end": start + timedelta(days=days),
        "days": days,
        "per_day": per_day,
        "seed": seed,
        **counts,
        "generate_seconds": round(t_generate, 2),
        "seconds": round(time.perf_counter() - t0, 2),
        "daily": daily_summary(predictions, labels, start),
        "scenario": asdict(scenario),
    }


def daily_summary(
    predictions: list[dict[str, Any]], labels: list[dict[str, Any]], start: datetime
) -> list[dict[str, Any]]:
    """Per day: documents, error rate, p95 latency, label share and accuracy of the labelled predictions."""
    start = as_utc(start)
    truth = {lab["request_id"]: lab["label"] for lab in labels}
    by_day: dict[int, list[dict[str, Any]]] = {}
    for doc in predictions:
        if doc.get("served") is False:
            continue  # shadow predictions: the day's traffic is what was served
        if isinstance(doc["timestamp"], datetime):
            by_day.setdefault((as_utc(doc["timestamp"]) - start).days, []).append(doc)
    rows = []
    for day, docs in sorted(by_day.items()):
        ok = [d for d in docs if d.get("status") == "ok" and isinstance(d.get("prediction"), dict)]
        latency = [d["latency_ms"] for d in docs if isinstance(d.get("latency_ms"), float)]
        hits = [d["prediction"]["value"] == truth[d["request_id"]] for d in ok if d["request_id"] in truth]
        rows.append(
            {
                "day": day,
                "predictions": len(docs),
                "error_rate": round(1 - len(ok) / len(docs), 4),
                "latency_p95_ms": round(float(np.percentile(latency, 95)), 1) if latency else None,
                "labelled_share": round(len(hits) / len(docs), 4),
                "accuracy": round(float(np.mean(hits)), 4) if hits else None,
            }
        )
    return rows
