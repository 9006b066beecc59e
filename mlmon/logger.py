"""Serving-side prediction logging: write canonical prediction and label documents to MongoDB.

Logging must never slow or break serving. :meth:`PredictionLogger.log_prediction` only copies the
caller's dicts, takes the time and puts one tuple on a bounded in-memory queue (no I/O, no waiting, ~10
µs); the writer thread builds the document. When the queue is full the document is dropped and counted. A daemon thread writes batches with ``insert_many(ordered=False)``. When MongoDB
is unreachable the thread retries the same batch with exponential backoff while serving goes on; memory
stays bounded by ``max_buffer + batch_size`` documents and :attr:`PredictionLogger.stats` says what was
lost. Retries are idempotent: every document gets its ``_id`` when it is logged, so a batch that was
partly written before a connection dropped is not duplicated (the ``_id`` is made once, before the first
attempt, from the time of the call).

The documents follow the log contract (:mod:`mlmon.tasks.contract`)::

    {"_id": ObjectId, "request_id": "9f1c…", "model_name": "churn", "model_version": "v3",
     "timestamp": <UTC datetime>, "features": {...},
     "prediction": {"value": "churn", "probabilities": {"churn": 0.81, "stay": 0.19}},
     "latency_ms": 12.5, "status": "ok"}                      # optional "error": "message"
    {"_id": ObjectId, "request_id": "9f1c…", "label": "stay", "timestamp": <UTC datetime>}

NaN and ±inf feature, probability and latency values become ``None`` (missing) and are counted in
``stats.non_finite``: the pipeline treats non-finite numbers as missing anyway, and some servers reject
them. Labels are append-only: a corrected label is logged again with a later timestamp, and readers take
the latest label per ``request_id`` (hence no unique index on ``labels.request_id``).

This module imports only the standard library and pymongo, so serving apps do not pull in pandas,
Prefect or Evidently. Create the logger once per process, *after* forking (e.g. in the app's startup
hook); a logger inherited through ``fork`` restarts its writer in the child on first use.

Usage in a FastAPI app::

    import time
    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from mlmon.logger import PredictionLogger, ensure_indexes

    @asynccontextmanager
    async def lifespan(app):
        app.state.pl = PredictionLogger(
            "mongodb://mongo:27017", model_name="churn", model_version="v3"
        )
        yield
        app.state.pl.close(timeout=5)  # writes what is still queued

    app = FastAPI(lifespan=lifespan)

    @app.post("/predict")
    def predict(features: dict):
        t0 = time.perf_counter()
        p_churn = float(model.predict_proba([features])[0, 1])
        label = "churn" if p_churn >= 0.5 else "stay"
        request_id = app.state.pl.log_prediction(
            features, label, probabilities={"churn": p_churn, "stay": 1 - p_churn},
            latency_ms=(time.perf_counter() - t0) * 1000,
        )
        return {"request_id": request_id, "prediction": label}

    @app.post("/feedback/{request_id}")
    def feedback(request_id: str, label: str):
        app.state.pl.log_label(request_id, label)

Flask is the same: create ``PredictionLogger`` at app creation, call ``log_prediction`` in the view and
``close`` at exit (an ``atexit`` hook already does a short final flush). Create the indexes once at
deploy time: ``ensure_indexes(pymongo.MongoClient(uri)["mlmon"])``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import queue
import random
import struct
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pymongo
from bson import ObjectId, encode
from pymongo.errors import BulkWriteError, ConnectionFailure, InvalidDocument, OperationFailure, PyMongoError

if TYPE_CHECKING:  # the live metrics (prometheus_client) are imported only by who turns them on
    from mlmon.live import LiveMetrics

log = logging.getLogger(__name__)

_PREDICTION, _LABEL = "prediction", "label"
_WAKE = object()  # queue marker: write what you hold now (flush / close)
_DUPLICATE_KEY = 11000
_MAX_BACKOFF_S = 30.0
_MAX_REFUSED_ATTEMPTS = 5  # a server that answers but refuses a batch this often will not take it
_MAX_BSON_SIZE = 16 * 1024 * 1024
_ID_POOL = 256  # request ids drawn per os.urandom call
_generation = 0  # bumped in every forked child: what the per-call fork check reads (os.getpid() is a syscall)


def _forked() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def process_generation() -> int:
    """A number that changes in a child process after ``os.fork``: objects holding threads, locks or
    clients compare it to the one they started with, on every call, to know they must restart."""
    return _generation


def ensure_indexes(db: Any, collection: str = "predictions", labels_collection: str = "labels") -> list[str]:
    """Create the indexes mlmon's reads need (idempotent); return their names.

    * predictions: ``timestamp`` (window reads), ``(model_name, timestamp)`` (one model's window),
      ``request_id`` (joining labels);
    * labels: ``(request_id, timestamp)`` (the join, latest label first) and ``timestamp`` (labels that
      arrived since a given time). Not unique: a corrected label is a new document and the latest wins.
    """
    asc = pymongo.ASCENDING
    preds, labels = db[collection], db[labels_collection]
    return [
        preds.create_index([("timestamp", asc)]),
        preds.create_index([("model_name", asc), ("timestamp", asc)]),
        preds.create_index([("request_id", asc)]),
        labels.create_index([("request_id", asc), ("timestamp", asc)]),
        labels.create_index([("timestamp", asc)]),
    ]


@dataclass(frozen=True)
class LoggerStats:
    """A snapshot of a logger's counters (documents, not calls, except ``failed_batches``).

    Every ``log_*`` call is counted in exactly one of ``written``, ``rejected``, ``dropped`` or ``pending``.
    """

    queued: int  # documents accepted onto the buffer since start
    written: int  # documents MongoDB acknowledged
    dropped: int  # lost for capacity: buffer full, logger closed, or not confirmed written when close() ended
    rejected: int  # invalid: refused by BSON encoding or the server, or bad call arguments (never retried)
    failed_batches: int  # write attempts that failed and were retried (one per attempt)
    non_finite: int  # NaN / ±inf values replaced by None
    pending: int  # in the buffer or in the batch being written right now
    last_error: str | None  # the most recent write or logging error, for health endpoints


class PredictionLogger:
    """Buffered, non-blocking writer of prediction and label documents (see the module docstring).

    ``uri``: MongoDB URI. ``max_buffer``: documents held in memory before new ones are dropped.
    ``batch_size``: documents per ``insert_many``. ``flush_interval``: seconds a partial batch waits
    for more documents. ``server_timeout_ms``: how long one write attempt waits for a reachable server.
    ``create_indexes``: run :func:`ensure_indexes` from the writer thread before the first write.
    ``metrics``: a :class:`mlmon.live.LiveMetrics` that every ``log_prediction`` also counts in
    (Prometheus; off by default, and then nothing of prometheus_client is imported).

    Sizing ``max_buffer``: it must hold what arrives faster than the writer drains it, for as long as
    that lasts: a burst of ``r`` documents/s for ``t`` seconds against a writer draining ``w``/s needs
    ``(r - w) * t``; an outage of ``t`` seconds at ``r``/s needs ``r * t``. The writer drains a few
    thousand documents/s against a single MongoDB (about 4,000/s against the embedded nx-27017, so a
    burst of 20,000 calls in 0.8 s overflows the default 10,000 and drops ~40 %). Memory is about
    ``max_buffer`` times a document's size (~0.5–1 KB for 20 features: ~10 MB at the default). Every
    drop is counted: ``stats.dropped``, a warning when the logger closes, and the Prometheus counter
    ``mlmon_logger_documents_total{outcome="dropped"}`` with ``metrics``.
    """

    def __init__(
        self,
        uri: str,
        database: str = "mlmon",
        collection: str = "predictions",
        labels_collection: str = "labels",
        *,
        model_name: str,
        model_version: str | None,
        max_buffer: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        server_timeout_ms: int = 2000,
        create_indexes: bool = False,
        metrics: LiveMetrics | None = None,
    ) -> None:
        if max_buffer < 1 or batch_size < 1 or flush_interval <= 0 or server_timeout_ms < 1:
            raise ValueError("max_buffer, batch_size, flush_interval and server_timeout_ms must be positive")
        self.model_name, self.model_version = model_name, model_version
        self._uri, self._names = uri, (database, collection, labels_collection)
        self._max_buffer, self._batch_size, self._flush_interval = max_buffer, batch_size, flush_interval
        self._timeout_ms, self._create_indexes = server_timeout_ms, create_indexes
        self._closed = False
        self._metrics = metrics
        if metrics is not None:
            metrics.prepare(model_version)
        self._start()
        # A final short flush at interpreter exit; a weak reference, so the hook keeps nothing alive.
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._atexit)

    def _start(self) -> None:
        """(Re)create everything that does not survive a fork: client, queue, lock, counters, thread."""
        self._generation = _generation
        # Constructing the client does no I/O (it connects in the background); a malformed URI fails here.
        self._client: pymongo.MongoClient = pymongo.MongoClient(
            self._uri,
            serverSelectionTimeoutMS=self._timeout_ms,
            connectTimeoutMS=self._timeout_ms,
            socketTimeoutMS=max(10 * self._timeout_ms, 10_000),
            appname="mlmon-logger",
        )
        db = self._client[self._names[0]]
        self._collections = {_PREDICTION: db[self._names[1]], _LABEL: db[self._names[2]]}
        # Unbounded and lock-free (C): the bound is ``max_buffer`` queued and not yet taken by the writer,
        # kept under ``_lock`` with the counters the call updates anyway (queue.Queue's own lock and
        # condition cost more than the rest of the call).
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = self._written = self._dropped = self._rejected = 0
        self._taken = 0  # documents the writer took off the queue (only the writer thread adds)
        self._ids: list[str] = []  # random request ids still to hand out (see _request_id)
        self._oid_random = os.urandom(5)  # an ObjectId's per-process part, made by the writer
        self._oid_count = random.getrandbits(24)
        self._settled = 0  # queued documents written, rejected or abandoned: what flush() waits for
        self._failed_batches = self._non_finite = 0
        self._last_error: str | None = None
        self._close_deadline = math.inf
        self._gave_up = False  # close() stopped waiting: the writer's late outcomes no longer count
        self._closing = threading.Event()
        self._idle = threading.Condition(self._lock)  # notified whenever documents are settled
        self._thread = threading.Thread(target=self._run, name="mlmon-prediction-logger", daemon=True)
        self._thread.start()

    # -- serving side: no I/O, never raises --------------------------------------------------------

    def log_prediction(
        self,
        features: dict[str, Any],
        prediction: Any,
        probabilities: dict[str, float] | None = None,
        latency_ms: float | None = None,
        status: str = "ok",
        error: str | None = None,
        request_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue one prediction document; return its ``request_id`` (32 random hex digits unless given).

        ``timestamp`` defaults to now (UTC); a naive datetime is taken as UTC.
        """
        request_id = request_id or self._request_id()
        try:
            features = dict(features)  # copies: the caller may reuse its dicts
            probabilities = None if probabilities is None else dict(probabilities)
        except Exception as e:  # e.g. features is not a mapping: a caller bug must not fail the request
            self._count_rejected(1, f"log_prediction: {type(e).__name__}: {e}")
            return request_id
        if self._metrics is not None:
            try:
                self._metrics.observe(
                    self.model_version, features, prediction, probabilities, latency_ms, status
                )
            except Exception as e:  # a metrics bug must not fail the request nor lose the document
                self._note_error(f"live metrics: {type(e).__name__}: {e}")
        # The writer thread builds the document (_document): the call keeps only what it needs.
        call = (_PREDICTION, time.time(), timestamp, request_id, features, probabilities)
        self._enqueue((*call, prediction, latency_ms, status, error))
        return request_id

    def log_label(self, request_id: str, label: Any, timestamp: datetime | None = None) -> None:
        """Queue the ground truth for ``request_id``; a later call for the same id corrects it."""
        self._enqueue((_LABEL, time.time(), timestamp, request_id, label))

    def _request_id(self) -> str:
        """32 random hex digits, as ``uuid.uuid4().hex`` gives (and as unguessable: ``os.urandom``), for a
        tenth of its cost: one system call per :data:`_ID_POOL` ids."""
        if self._generation != _generation:
            self._start()  # forked: the parent's pool must not be handed out twice
        try:
            return self._ids.pop()  # atomic: threads never get the same id
        except IndexError:
            pool = os.urandom(16 * _ID_POOL).hex()
            self._ids = [pool[i : i + 32] for i in range(32, len(pool), 32)]
            return pool[:32]

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        if self._generation != _generation:
            self._start()  # forked: the parent's thread and client do not exist here
        with self._lock:
            if not self._closed and self._queued - self._taken < self._max_buffer:
                self._queued += 1
                self._queue.put(item)
                return
            self._dropped += 1
        self._count_metric("dropped", 1)  # outside the lock: a metric must not hold up the writer

    # -- control -----------------------------------------------------------------------------------

    @property
    def stats(self) -> LoggerStats:
        with self._lock:
            return LoggerStats(
                queued=self._queued,
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                failed_batches=self._failed_batches,
                non_finite=self._non_finite,
                pending=self._queued - self._settled,
                last_error=self._last_error,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything logged before this call is written (or settled); False on timeout."""
        with self._lock:
            target = self._queued
        self._wake()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting documents, write what is queued for up to ``timeout`` s, then release the client.

        Documents not confirmed written when close() returns are counted in ``stats.dropped`` (also when
        the writer is stuck in a write to a stalled server: such a write may still land later, but
        close() cannot know). Logs one line with the totals (a warning when anything was lost).
        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        self._close_deadline = time.monotonic() + timeout
        self._closing.set()
        self._wake()
        # A write attempt in flight may need up to the server timeout before it notices the deadline.
        self._thread.join(timeout + self._timeout_ms / 1000 + 1.0)
        if self._thread.is_alive():  # stuck in a write to a hung server: it is a daemon, let it be
            n = self._give_up()
            log.warning(
                "mlmon logger: writer still busy after close(timeout=%s); not waiting, %d document(s) "
                "not confirmed written are counted as dropped", timeout, n,
            )  # fmt: skip
        else:
            self._client.close()
        if self._metrics is not None:
            try:
                self._metrics.sync()  # the last counts reach Prometheus before the process goes
            except Exception as e:
                self._note_error(f"live metrics: {type(e).__name__}: {e}")
        s = self.stats
        log.log(
            logging.WARNING if s.dropped or s.rejected else logging.INFO,
            "mlmon logger closed: %d written, %d dropped, %d rejected (max_buffer=%d)",
            s.written, s.dropped, s.rejected, self._max_buffer,
        )  # fmt: skip

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wake(self) -> None:
        self._queue.put(_WAKE)

    # -- writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        indexed = not self._create_indexes
        while True:
            if time.monotonic() > self._close_deadline:
                self._abandon(0)
                return
            batch = self._next_batch()
            if self._metrics is not None:
                self._metrics.queue_depth(self._queued - self._settled)  # plain reads: a gauge can lag
            if batch is None:
                return
            if not batch:
                continue
            if not indexed:
                indexed = self._try_ensure_indexes()
            try:
                self._write(batch)
            except Exception as e:  # a bug here must not silently stop all logging: count and go on
                log.exception("mlmon logger: unexpected error writing a batch")
                self._count_rejected(len(batch), f"unexpected {type(e).__name__}: {e}", settled=True)

    def _next_batch(self) -> list[tuple[Any, ...]] | None:
        """Up to ``batch_size`` queued calls: waits ``flush_interval`` for a partial batch; None = stop."""
        batch: list[tuple[Any, ...]] = []
        deadline = None
        while len(batch) < self._batch_size:
            if self._closing.is_set():
                timeout = 0.0
            elif deadline is None:
                timeout = self._flush_interval  # idle: wake up now and then to notice close()
            else:
                timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                if self._closing.is_set() and not batch:
                    return None
                if batch:
                    return batch
                continue
            if item is _WAKE:
                if batch or not self._closing.is_set():
                    return batch
                continue
            batch.append(item)
            self._taken += 1
            if deadline is None:
                deadline = time.monotonic() + self._flush_interval
        return batch

    def _try_ensure_indexes(self) -> bool:
        try:
            ensure_indexes(self._client[self._names[0]], self._names[1], self._names[2])
        except PyMongoError as e:
            self._note_error(f"ensure_indexes: {e}")
            return False
        return True

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """Write ``batch`` until it is settled: retried with backoff while MongoDB is unreachable."""
        docs: dict[str, list[dict[str, Any]]] = {_PREDICTION: [], _LABEL: []}
        for item in batch:
            docs[item[0]].append(self._clean(self._document(item)))
        attempt = refused = 0
        outage_logged = False
        while True:
            try:
                for kind in (_PREDICTION, _LABEL):
                    self._insert(kind, docs[kind], retry=attempt > 0)
                    docs[kind] = []
                if outage_logged:
                    log.info("mlmon logger: MongoDB reachable again after %d failed attempts", attempt)
                return
            except (ConnectionFailure, OperationFailure) as e:
                # ConnectionFailure (unreachable, timeout, failover) is retried for as long as it lasts;
                # OperationFailure (e.g. not authorized) a few times, then the batch is given up.
                attempt += 1
                refused += isinstance(e, OperationFailure)
                with self._lock:
                    self._failed_batches += 1
                    self._last_error = f"{type(e).__name__}: {e}"
                if refused >= _MAX_REFUSED_ATTEMPTS:
                    n = len(docs[_PREDICTION]) + len(docs[_LABEL])
                    self._count_rejected(n, f"MongoDB refused the batch {refused} times: {e}", settled=True)
                    return
                if not outage_logged:
                    log.warning("mlmon logger: cannot write to MongoDB (%s); retrying, serving goes on", e)
                    outage_logged = True
            remaining = self._close_deadline - time.monotonic()
            if remaining <= 0:
                self._abandon(len(docs[_PREDICTION]) + len(docs[_LABEL]))
                return
            delay = min(_MAX_BACKOFF_S, 0.1 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)
            if self._closing.is_set():
                time.sleep(min(delay, remaining))
            else:
                self._closing.wait(delay)  # close() cuts the wait short for a last attempt

    def _insert(self, kind: str, docs: list[dict[str, Any]], retry: bool) -> None:
        """``insert_many`` that settles every document as written or rejected, or raises to retry."""
        if not docs:
            return
        try:
            self._collections[kind].insert_many(docs, ordered=False)
        except BulkWriteError as e:
            errors = e.details.get("writeErrors", [])
            # On a retry a duplicate _id is our own earlier, partly acknowledged write: it is written.
            rejected = [err for err in errors if not (retry and err.get("code") == _DUPLICATE_KEY)]
            self._settle(written=len(docs) - len(rejected))
            if rejected:
                self._count_rejected(len(rejected), f"{kind}: {rejected[0].get('errmsg')}", settled=True)
            if e.details.get("writeConcernErrors"):
                self._note_error(f"{kind}: write concern error: {e.details['writeConcernErrors'][0]}")
            return
        except InvalidDocument as e:
            # BSON cannot encode some document (e.g. an object as a feature value): keep the others.
            good = [d for d in docs if _encodable(d)]
            if len(good) == len(docs):  # cannot tell which one: give the batch up rather than loop
                good = []
            self._count_rejected(
                len(docs) - len(good), f"{kind}: document not BSON-encodable: {e}", settled=True
            )
            self._insert(kind, good, retry)
            return
        self._settle(written=len(docs))

    def _document(self, item: tuple[Any, ...]) -> dict[str, Any]:
        """The contract document of one queued call (see the module docstring); its ``_id`` is made here as
        ``ObjectId()`` makes one (time, per-process random, counter), with the time of the call."""
        kind, called, timestamp, request_id = item[:4]
        if timestamp is None:
            timestamp = datetime.fromtimestamp(called, UTC)  # what datetime.now(UTC) gives at the call
        self._oid_count = (self._oid_count + 1) & 0xFFFFFF
        oid = ObjectId(
            struct.pack(">I", int(called) & 0xFFFFFFFF)
            + self._oid_random
            + self._oid_count.to_bytes(3, "big")
        )
        if kind == _LABEL:
            return {"_id": oid, "request_id": request_id, "label": item[4], "timestamp": timestamp}
        features, probabilities, prediction, latency_ms, status, error = item[4:]
        doc: dict[str, Any] = {
            "_id": oid,
            "request_id": request_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "timestamp": timestamp,
            "features": features,
            "prediction": {"value": prediction},
            "status": status,
        }
        if probabilities is not None:
            doc["prediction"]["probabilities"] = probabilities
        if latency_ms is not None:
            doc["latency_ms"] = latency_ms
        if error is not None:
            doc["error"] = error
        return doc

    def _clean(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Replace non-finite numbers by None and numpy scalars by Python ones (in the writer thread)."""
        replaced = 0
        for obj, keys in _scalar_slots(doc):
            for key in keys:
                obj[key], bad = _scalar(obj[key])
                replaced += bad
        if replaced:
            with self._lock:
                self._non_finite += replaced
        return doc

    def _settle(self, written: int) -> None:
        with self._idle:
            if self._gave_up:
                return
            self._written += written
            self._settled += written
            self._idle.notify_all()
        self._count_metric("written", written)

    def _count_rejected(self, n: int, message: str, settled: bool = False) -> None:
        """Count ``n`` invalid documents; ``settled``: they had been queued (the writer found them)."""
        with self._idle:
            if settled and self._gave_up:
                return
            before = self._rejected
            self._rejected += n
            self._settled += n if settled else 0
            self._last_error = message
            self._idle.notify_all()
        self._count_metric("rejected", n)
        # The first rejection and then one in a thousand: a caller bug must not flood the logs.
        level = logging.WARNING if before == 0 or before // 1000 != self._rejected // 1000 else logging.DEBUG
        log.log(level, "mlmon logger: %d document(s) rejected (%d in total): %s", n, before + n, message)

    def _abandon(self, n: int) -> None:
        while True:  # also whatever is still queued: close() has given up on it
            try:
                taken = self._queue.get_nowait() is not _WAKE
                n += taken
                self._taken += taken
            except queue.Empty:
                break
        with self._idle:
            if self._gave_up:
                return
            self._settled += n
            self._dropped += n
            self._idle.notify_all()
        self._count_metric("dropped", n)
        if n:
            log.warning("mlmon logger: closed with MongoDB unreachable; %d document(s) not written", n)

    def _give_up(self) -> int:
        """close() stops waiting for a stuck writer: whatever is not settled is dropped; return how many."""
        with self._idle:
            n = self._queued - self._settled
            self._dropped += n
            self._settled = self._queued
            self._gave_up = True
            self._idle.notify_all()
        self._count_metric("dropped", n)
        return n

    def _count_metric(self, outcome: str, n: int) -> None:
        if self._metrics is not None and n:
            try:
                self._metrics.documents(outcome, n)
            except Exception as e:  # never let metrics break logging
                self._note_error(f"live metrics: {type(e).__name__}: {e}")

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._last_error = message


def _scalar_slots(doc: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """The (object, keys) pairs of a document whose values are caller-provided scalars."""
    if "label" in doc:
        return [(doc, ["label"])]
    pred = doc["prediction"]
    return [
        (doc["features"], list(doc["features"])),
        (pred, ["value"]),
        (pred.get("probabilities") or {}, list(pred.get("probabilities") or {})),
        (doc, ["latency_ms"] if "latency_ms" in doc else []),
    ]


def _scalar(value: Any) -> tuple[Any, int]:
    """``(value, 0)``, or ``(None, 1)`` for NaN/±inf; numpy scalars become Python scalars."""
    if type(value) not in (str, int, bool, float, type(None)) and hasattr(value, "item"):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value, 0  # not a numpy scalar after all; BSON encoding decides
    if isinstance(value, float) and not math.isfinite(value):
        return None, 1
    return value, 0


def _encodable(doc: dict[str, Any]) -> bool:
    try:
        return len(encode(doc)) <= _MAX_BSON_SIZE
    except (InvalidDocument, TypeError, OverflowError):
        return False


def _close_at_exit(ref: weakref.ref[PredictionLogger]) -> None:
    logger = ref()
    if logger is not None:
        logger.close(timeout=2.0)
