"""The serving-side logger: contract documents, never blocking serving, bounded memory, recovery."""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pymongo
import pytest

from mlmon.logger import PredictionLogger, ensure_indexes

FEATURES = {"age": 42, "income": 52_000.5, "plan": "pro"}


def _closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accounted(stats) -> int:
    return stats.written + stats.rejected + stats.dropped + stats.pending


def test_import_pulls_in_nothing_heavy():
    code = (
        "import mlmon.logger, sys; "
        "heavy = [m for m in ('pandas', 'prefect', 'evidently', 'numpy', 'sklearn') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_serving_is_not_slowed_while_mongo_is_down():
    calls, max_buffer, batch_size = 10_000, 1_000, 200
    logger = PredictionLogger(
        f"mongodb://127.0.0.1:{_closed_port()}/",
        model_name="m",
        model_version="v1",
        max_buffer=max_buffer,
        batch_size=batch_size,
        server_timeout_ms=200,
    )
    try:
        t0 = time.perf_counter()
        slowest = 0.0
        for i in range(calls):
            t = time.perf_counter()
            logger.log_prediction(FEATURES, "churn", {"churn": 0.7, "stay": 0.3}, latency_ms=i / 100)
            slowest = max(slowest, time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
        stats = logger.stats
        assert elapsed < 1.0, f"{calls} log calls took {elapsed:.2f} s"
        assert slowest < 0.2, f"one log call took {slowest * 1000:.0f} ms"  # no I/O, no waiting
        # Memory stays bounded: at most the buffer plus the batch being retried.
        assert stats.pending <= max_buffer + batch_size
        assert stats.dropped >= calls - max_buffer - batch_size
        assert stats.written == 0 and _accounted(stats) == calls
        assert not logger.flush(timeout=0.3)  # honest: nothing could be written
        deadline = time.monotonic() + 5
        while logger.stats.failed_batches == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logger.stats.failed_batches >= 1
        assert "ServerSelectionTimeoutError" in (logger.stats.last_error or "")
    finally:
        t = time.perf_counter()
        logger.close(timeout=0.5)
        closing = time.perf_counter() - t
    assert closing < 0.5 + 0.2 + 1.5, f"close took {closing:.1f} s"
    stats = logger.stats
    assert stats.pending == 0 and stats.written == 0 and stats.dropped == calls, stats
    # After close, logging is still harmless.
    logger.log_prediction(FEATURES, "stay")
    assert logger.stats.dropped == calls + 1


def test_bad_arguments_never_raise():
    with PredictionLogger(
        f"mongodb://127.0.0.1:{_closed_port()}/", model_name="m", model_version="v1", server_timeout_ms=100
    ) as logger:
        request_id = logger.log_prediction(None, "churn")  # type: ignore[arg-type]
        assert isinstance(request_id, str) and request_id
        assert logger.log_prediction(FEATURES, "x", request_id="given") == "given"
        stats = logger.stats
        assert stats.rejected == 1 and "log_prediction" in (stats.last_error or "")
        assert _accounted(stats) == 2
        logger.close(timeout=0.2)  # the server is down: do not wait the default 5 s


@pytest.mark.integration
def test_writes_contract_documents(mongo_uri, mongo_db):
    ts = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    with PredictionLogger(
        mongo_uri, database=mongo_db.name, model_name="churn", model_version="v3", flush_interval=0.05
    ) as logger:
        rid = logger.log_prediction(
            {**FEATURES, "score": np.float32(0.25), "visits": np.int64(7)},
            "churn",
            probabilities={"churn": 0.81, "stay": 0.19},
            latency_ms=12.5,
            timestamp=ts,
        )
        before = datetime.now(UTC)
        err = logger.log_prediction(
            {"age": float("nan"), "income": math.inf, "plan": None}, None, status="error", error="boom"
        )
        logger.log_label(rid, "stay", timestamp=ts + timedelta(days=2))
        logger.log_label(rid, "churn")  # a correction: appended, the latest wins
        assert logger.flush(timeout=10)
        stats = logger.stats
    assert (stats.written, stats.dropped, stats.rejected, stats.pending) == (4, 0, 0, 0)
    assert stats.non_finite == 2

    doc = mongo_db.predictions.find_one({"request_id": {"$eq": rid}}, {"_id": 0})
    assert doc == {
        "request_id": rid,
        "model_name": "churn",
        "model_version": "v3",
        "timestamp": ts,  # BSON keeps milliseconds; the fixture's client reads tz-aware UTC
        "features": {**FEATURES, "score": 0.25, "visits": 7},
        "prediction": {"value": "churn", "probabilities": {"churn": 0.81, "stay": 0.19}},
        "latency_ms": 12.5,
        "status": "ok",
    }

    failed = mongo_db.predictions.find_one({"request_id": {"$eq": err}})
    assert failed["features"] == {"age": None, "income": None, "plan": None}
    assert failed["status"] == "error" and failed["error"] == "boom"
    assert failed["prediction"] == {"value": None} and "latency_ms" not in failed
    assert before - timedelta(seconds=5) <= failed["timestamp"] <= datetime.now(UTC)

    labels = list(mongo_db.labels.find({"request_id": {"$eq": rid}}, {"_id": 0}).sort("timestamp", -1))
    assert [lab["label"] for lab in labels] == ["churn", "stay"]
    assert set(labels[0]) == {"request_id", "label", "timestamp"}


@pytest.mark.integration
def test_ids_are_made_at_the_call_not_when_written(mongo_uri, mongo_db):
    # The writer builds the documents later, in its thread; the _id still carries the call's time (the
    # unreadable-timestamps check counts documents created in a window by it), also for a backfilled
    # timestamp, and a batch retried after an outage keeps its ids.
    backfilled = datetime(2020, 5, 6, tzinfo=UTC)
    with PredictionLogger(
        mongo_uri, database=mongo_db.name, model_name="m", model_version="v1", flush_interval=5
    ) as logger:
        before = datetime.now(UTC).replace(microsecond=0)
        ids = [
            logger.log_prediction(FEATURES, "x", timestamp=backfilled if i % 2 else None) for i in range(20)
        ]
        logger.log_label(ids[0], "y")
        after = datetime.now(UTC)
        time.sleep(1.2)  # the writer takes the batch later than the calls were made
        assert logger.flush(timeout=10)
    docs = list(mongo_db.predictions.find({"request_id": {"$in": ids}}))
    assert len(docs) == 20 and len({d["_id"] for d in docs}) == 20
    assert all(before <= d["_id"].generation_time <= after for d in docs)
    assert sum(d["timestamp"] == backfilled for d in docs) == 10
    label = mongo_db.labels.find_one({"request_id": {"$eq": ids[0]}})
    assert before <= label["_id"].generation_time <= after


def test_request_ids_are_unique_random_hex_also_across_fork():
    with PredictionLogger(
        f"mongodb://127.0.0.1:{_closed_port()}/", model_name="m", model_version="v1", server_timeout_ms=100
    ) as logger:
        parent = [logger.log_prediction(FEATURES, "x") for _ in range(300)]  # a pool refilled once
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child must not hand out what is left of the parent's pool
            try:
                ids = [logger.log_prediction(FEATURES, "x") for _ in range(100)]
                os.write(write, "\n".join(ids).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            child = pipe.read().split("\n")
        os.waitpid(pid, 0)
        parent += [logger.log_prediction(FEATURES, "x") for _ in range(100)]
        logger.close(timeout=0.2)
    assert len(child) == 100 and len(parent) == 400
    assert len(set(parent) | set(child)) == 500
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in parent + child)


@pytest.mark.integration
def test_unencodable_documents_are_rejected_and_the_rest_written(mongo_uri, mongo_db):
    with PredictionLogger(mongo_uri, database=mongo_db.name, model_name="m", model_version="v1") as logger:
        logger.log_prediction({"a": 1}, "x")
        logger.log_prediction({"a": {1, 2}}, "x")  # a set: BSON cannot encode it
        logger.log_prediction({"a": 2}, "x")
        assert logger.flush(timeout=10)
        stats = logger.stats
    assert (stats.written, stats.rejected, stats.pending) == (2, 1, 0)
    assert "not BSON-encodable" in stats.last_error
    assert sorted(d["features"]["a"] for d in mongo_db.predictions.find()) == [1, 2]


@pytest.mark.integration
def test_ensure_indexes_is_idempotent(mongo_db):
    first = ensure_indexes(mongo_db)
    assert ensure_indexes(mongo_db) == first
    keys = {tuple(ix["key"]) for ix in mongo_db.predictions.list_indexes()}
    assert {("timestamp",), ("model_name", "timestamp"), ("request_id",)} <= keys
    label_indexes = {tuple(ix["key"]): ix for ix in mongo_db.labels.list_indexes()}
    assert {("request_id", "timestamp"), ("timestamp",)} <= set(label_indexes)
    assert not label_indexes[("request_id", "timestamp")].get("unique")  # corrections are appended


def _nx_exe() -> str | None:
    exe = Path(sys.executable).with_name("nx-27017")
    return str(exe) if exe.exists() else shutil.which("nx-27017")


def _start_nx(data_dir: Path, port: int) -> subprocess.Popen:
    exe = _nx_exe()
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "-p", str(port), "--data-dir", str(data_dir),
         "--pid-file", str(data_dir / "nx.pid"), "--log-file", str(data_dir / "nx.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            assert proc.poll() is None, "nx-27017 exited early"
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"nx-27017 did not listen on port {port}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.mark.integration
@pytest.mark.skipif(_nx_exe() is None, reason="needs the nx-27017 server to stop and restart one")
def test_recovers_when_mongo_comes_back(tmp_path):
    # Its own server on a fixed port, so it can be stopped and started again (the session server is
    # shared); written against nx-27017 whatever MLMON_TEST_MONGO_URI says.
    port = _closed_port()
    uri = f"mongodb://127.0.0.1:{port}/"
    proc = _start_nx(tmp_path, port)
    logger = PredictionLogger(uri, database="rec", model_name="m", model_version="v1", server_timeout_ms=300)
    try:
        for i in range(100):
            logger.log_prediction({"i": i}, "x")
        assert logger.flush(timeout=10)
        _stop(proc)

        for i in range(100, 200):
            logger.log_prediction({"i": i}, "x")
        deadline = time.monotonic() + 10
        while logger.stats.failed_batches == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logger.stats.failed_batches >= 1 and logger.stats.pending == 100

        proc = _start_nx(tmp_path, port)
        assert logger.flush(timeout=20), logger.stats
        stats = logger.stats
        assert (stats.written, stats.dropped, stats.pending) == (200, 0, 0)
    finally:
        logger.close(timeout=1)
        client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
        try:
            values = sorted(d["features"]["i"] for d in client.rec.predictions.find())
        finally:
            client.close()
            _stop(proc)
    assert values == list(range(200))  # every document exactly once


@pytest.mark.integration
@pytest.mark.skipif(_nx_exe() is None, reason="needs the nx-27017 server to stall one")
def test_close_against_a_server_that_stalls_counts_the_unwritten_as_dropped(tmp_path, caplog):
    """A server that handshakes and then stalls (SIGSTOP): close() gives up on the stuck writer, and
    every document it never saw acknowledged is dropped, said in the stats and in a log line."""
    port = _closed_port()
    proc = _start_nx(tmp_path, port)
    logger = PredictionLogger(
        f"mongodb://127.0.0.1:{port}/", database="stall", model_name="m", model_version="v1",
        server_timeout_ms=200,
    )  # fmt: skip
    try:
        logger.log_prediction({"i": -1}, "x")
        assert logger.flush(timeout=10)  # connected and written: the handshake is done
        os.kill(proc.pid, signal.SIGSTOP)
        for i in range(10_000):
            logger.log_prediction({"i": i}, "x")
        with caplog.at_level(logging.INFO, logger="mlmon.logger"):
            t = time.perf_counter()
            logger.close(timeout=0.5)
            closing = time.perf_counter() - t
        stats = logger.stats
        assert closing < 0.5 + 0.2 + 1.5, f"close took {closing:.1f} s"
        assert (stats.written, stats.pending, stats.dropped) == (1, 0, 10_000), stats
        assert _accounted(stats) == 10_001
        closed = [r.getMessage() for r in caplog.records if "logger closed" in r.getMessage()]
        assert closed == ["mlmon logger closed: 1 written, 10000 dropped, 0 rejected (max_buffer=10000)"]
        assert [r.levelno for r in caplog.records if "logger closed" in r.getMessage()] == [logging.WARNING]
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        _stop(proc)
    # the stuck write may land (or time out) once the server resumes; the counts said at close stay
    after = logger.stats
    assert (after.written, after.dropped, after.rejected, after.pending) == (1, 10_000, 0, 0), after
