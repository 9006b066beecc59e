"""Extraction: the contract, quarantine with reasons, exact window bounds, label join, over the wire."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import bson
import numpy as np
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.extract import decode_documents, projection, read_window, window_filter
from mlmon.tasks.window import Window

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(days=1))


def make_cfg(**over: object) -> ModelConfig:
    body: dict[str, object] = {
        "name": "churn",
        "base_dir": ".",
        "features": {"age": {"type": "numerical"}, "plan": {"type": "categorical"}},
        "reference": {"path": "ref.parquet"},
        "task": "binary",
        "classes": ["stay", "churn"],
        "positive_class": "churn",
        "fields": {"probabilities": "prediction.probabilities"},
        "source": {"labels": {"collection": "labels"}},
    }
    body.update(over)
    return ModelConfig.model_validate(body)


def good(i: int, t: datetime | None = None) -> dict[str, object]:
    return {
        "_id": f"g{i}",
        "request_id": f"r{i}",
        "model_name": "churn",
        "model_version": "v1",
        "timestamp": t or T0 + timedelta(minutes=i),
        "features": {"age": 20 + i % 50, "plan": ["basic", "pro"][i % 2]},
        "prediction": {
            "value": "churn" if i % 3 == 0 else "stay",
            "probabilities": {"churn": 0.7, "stay": 0.3},
        },
        "latency_ms": 10.0 + i % 7,
        "status": "ok" if i % 10 else "error",
    }


BAD = [
    ({"features": {"age": "forty", "plan": "pro"}}, "wrong_type", "features.age"),
    ({"features": {"age": True, "plan": "pro"}}, "wrong_type", "features.age"),
    ({"features": {"age": {"$gt": 1}, "plan": "pro"}}, "nested_value", "features.age"),
    ({"features": {"age": 3, "plan": ["a", "b"]}}, "nested_value", "features.plan"),
    ({"features": "not an object"}, "nested_value", "features.age"),
    ({"timestamp": "yesterday-ish"}, "unparseable", "timestamp"),
    ({"timestamp": None}, "missing_field", "timestamp"),
    ({"latency_ms": math.inf}, "non_finite", "latency_ms"),
    ({"features": {"age": 3, "plan": "x" * 5000}}, "string_too_long", "features.plan"),
    ({"prediction": {}, "status": "ok"}, "missing_field", "prediction.value"),
]


def mixed_docs() -> tuple[list[dict[str, object]], int]:
    docs = [good(i) for i in range(200)]
    for k, (patch, _reason, _field) in enumerate(BAD):
        d = good(1000 + k)
        d["_id"] = f"bad{k}"
        d.update(patch)
        docs.insert(7 * k + 3, d)
    return docs, 200


def test_every_good_document_kept_every_bad_one_quarantined_with_its_reason() -> None:
    docs, n_good = mixed_docs()
    batch = decode_documents(docs, make_cfg(), WINDOW)
    assert len(batch.frame) == n_good
    assert sorted(batch.frame[c.ID]) == sorted(f"g{i}" for i in range(200))
    got = {q.doc_id: (q.reason, q.field) for q in batch.quarantine}
    want = {f"bad{k}": (reason, field) for k, (_p, reason, field) in enumerate(BAD)}
    assert got == want
    assert batch.n_read == len(docs)
    assert all(q.document.startswith("{") for q in batch.quarantine)


def test_a_document_of_another_window_is_left_to_it_not_quarantined() -> None:
    docs = [good(1), good(2, T0 - timedelta(seconds=1)), good(3, T0 + timedelta(days=1))]
    batch = decode_documents(docs, make_cfg(), WINDOW)
    assert list(batch.frame[c.ID]) == ["g1"] and not batch.quarantine
    assert (batch.n_read, batch.n_other_window) == (3, 2)


def test_typed_frame_values() -> None:
    batch = decode_documents([good(i) for i in range(30)], make_cfg(), WINDOW)
    f = batch.frame
    assert f["age"].dtype == np.float64 and f["age"].iloc[4] == 24.0
    assert str(f[c.TIMESTAMP].dtype) == "datetime64[ns, UTC]"
    assert f[c.TIMESTAMP].iloc[5] == T0 + timedelta(minutes=5)
    assert list(f["plan"].iloc[:2]) == ["basic", "pro"]
    assert f[c.SCORE].iloc[0] == pytest.approx(0.7)  # p(positive) from the probability object
    assert f[c.IS_ERROR].sum() == 3  # i = 0, 10, 20 have status "error"
    assert f[c.TARGET].isna().all()  # no labels joined yet


def test_missing_optional_feature_is_missing_not_quarantined() -> None:
    docs = [good(i) for i in range(10)]
    del docs[2]["features"]["age"]  # type: ignore[attr-defined]
    docs[3]["features"]["age"] = None  # type: ignore[index]
    docs[4]["features"]["age"] = float("nan")  # type: ignore[index]
    batch = decode_documents(docs, make_cfg(), WINDOW)
    assert len(batch.frame) == 10 and not batch.quarantine
    assert batch.frame["age"].isna().sum() == 3


def test_required_feature_missing_is_quarantined() -> None:
    cfg = make_cfg(features={"age": {"type": "numerical", "required": True}, "plan": {"type": "categorical"}})
    docs = [good(i) for i in range(5)]
    del docs[1]["features"]["age"]  # type: ignore[attr-defined]
    batch = decode_documents(docs, cfg, WINDOW)
    assert [(q.doc_id, q.reason) for q in batch.quarantine] == [("g1", "missing_field")]


def test_every_problem_of_a_document_is_listed() -> None:
    d = good(1)
    d.update({"features": {"age": "x", "plan": {"a": 1}}, "latency_ms": math.inf})
    (q,) = decode_documents([d], make_cfg(), WINDOW).quarantine
    assert "features.age" in q.detail and "features.plan" in q.detail and "latency_ms" in q.detail


def test_hostile_strings_are_kept_as_data() -> None:
    d = good(1)
    d["features"] = {"age": 3, "plan": "<script>alert(1)</script>'; drop table x; --"}
    batch = decode_documents([d], make_cfg(), WINDOW)
    assert batch.frame["plan"].iloc[0] == "<script>alert(1)</script>'; drop table x; --"


def test_empty_window_is_an_empty_frame() -> None:
    batch = decode_documents([], make_cfg(), WINDOW)
    assert len(batch.frame) == 0 and not batch.quarantine
    assert {"age", "plan", c.TIMESTAMP, c.PREDICTION}.issubset(batch.frame.columns)


def test_other_log_shapes_via_the_field_map() -> None:
    cfg = make_cfg(
        fields={
            "timestamp": "meta.ts",
            "timestamp_type": "string",
            "request_id": "meta.id",
            "model_version": None,
            "prediction": "out.label",
            "probabilities": "out.p",
            "latency_ms": "perf.ms",
            "status": "perf.code",
        },
        features={
            "age": {"type": "numerical", "path": "input.user.age"},
            "plan": {"type": "categorical", "path": "input.plan"},
        },
        service={"ok_statuses": [200]},
    )
    docs = [
        {"_id": 1, "meta": {"ts": "2026-03-01T10:00:00Z", "id": "a"}, "input": {"user": {"age": 31}, "plan": 2},
         "out": {"label": "stay", "p": [0.8, 0.2]}, "perf": {"ms": 5, "code": 200}},
        {"_id": 2, "meta": {"ts": "2026-03-01T11:00:00+00:00", "id": "b"}, "input": {"user": {"age": 32}, "plan": "pro"},
         "out": {"p": [0.1, 0.9]}, "perf": {"ms": 7, "code": 500}},
    ]  # fmt: skip
    batch = decode_documents(docs, cfg, WINDOW)
    assert not batch.quarantine
    f = batch.frame
    assert list(f["age"]) == [31.0, 32.0]
    assert list(f["plan"]) == ["2", "pro"]  # integer category codes are read as strings
    assert list(f[c.PREDICTION]) == ["stay", "churn"]  # missing label inferred from the probabilities
    assert list(f[c.SCORE]) == pytest.approx([0.2, 0.9])
    assert list(f[c.IS_ERROR]) == [False, True]
    assert window_filter(cfg, WINDOW)["meta.ts"] == {  # widened by the largest UTC offset, ±14 h
        "$gte": "2026-02-28T10:00:00",
        "$lt": "2026-03-02T14:00:00",
    }
    assert projection(cfg) == {"meta": 1, "out": 1, "perf": 1, "input": 1, "_id": 1}


def test_unexpected_fields_are_counted() -> None:
    docs = [good(i) for i in range(4)]
    docs[0]["features"]["colour"] = "red"  # type: ignore[index]
    docs[1]["features"]["colour"] = "blue"  # type: ignore[index]
    assert decode_documents(docs, make_cfg(), WINDOW).unexpected_fields == {"features.colour": 2}


def test_bson_dates_decode_as_milliseconds() -> None:
    d = good(1)
    d["timestamp"] = bson.DatetimeMS(T0 + timedelta(hours=2))
    f = decode_documents([d], make_cfg(), WINDOW).frame
    assert f[c.TIMESTAMP].iloc[0] == T0 + timedelta(hours=2)


@pytest.mark.integration
def test_read_window_over_the_wire_is_exact_and_joins_labels(mongo_db: object) -> None:
    db = mongo_db
    inside = [good(i) for i in range(50)]
    edges = [good(100, T0 - timedelta(milliseconds=1)), good(101, T0 + timedelta(days=1))]  # just outside
    other_model = good(102)
    other_model["model_name"] = "other"
    other_model["_id"] = "other"
    db.predictions.insert_many([*inside, *edges, other_model])  # type: ignore[attr-defined]
    db.labels.insert_many(  # type: ignore[attr-defined]
        [
            {"request_id": f"r{i}", "label": "churn", "timestamp": T0 + timedelta(days=2)}
            for i in range(0, 50, 2)
        ]
        + [
            {"request_id": "r0", "label": "stay", "timestamp": T0 + timedelta(days=3)}
        ]  # a later correction wins
    )
    cfg = make_cfg(source={"filter": {"model_name": "churn"}, "labels": {"collection": "labels"}})
    batch = read_window(db, cfg, WINDOW)
    assert sorted(batch.frame[c.ID]) == sorted(f"g{i}" for i in range(50))
    assert batch.n_labels_joined == 25
    by_id = dict(zip(batch.frame[c.REQUEST_ID], batch.frame[c.TARGET], strict=True))
    assert by_id["r0"] == "stay" and by_id["r2"] == "churn" and by_id["r1"] is None


@pytest.mark.integration
def test_the_size_estimate_counts_the_window_once_the_collection_could_start_workers(
    mongo_db: object,
) -> None:
    """The whole collection's size stands for the window only while it is below both thresholds the
    estimate feeds; past either, a day's window of a bigger collection is counted, so that it starts no
    decoding workers (source.parallel_decode_rows) and takes no sharded path it does not need."""
    from mlmon.tasks.summary import estimate_rows

    day2 = T0 + timedelta(days=1)
    mongo_db.predictions.insert_many(  # type: ignore[attr-defined]
        [good(i) for i in range(10)] + [good(100 + i, day2 + timedelta(minutes=i)) for i in range(20)]
    )
    coll = mongo_db.predictions  # type: ignore[attr-defined]
    below = make_cfg(source={"parallel_decode_rows": 31}, shards={"max_in_memory_rows": 30})
    assert estimate_rows(coll, below, WINDOW) == 30  # the collection's size, from metadata
    workers = make_cfg(source={"parallel_decode_rows": 30}, shards={"max_in_memory_rows": 30})
    assert estimate_rows(coll, workers, WINDOW) == 10
    # in memory either way: the count stops once it reaches the workers' threshold
    stops = make_cfg(source={"parallel_decode_rows": 4}, shards={"max_in_memory_rows": 30})
    assert estimate_rows(coll, stops, WINDOW) == 4
    always = make_cfg(source={"parallel_decode_rows": 0}, shards={"max_in_memory_rows": 30})
    assert estimate_rows(coll, always, WINDOW) == 30  # nothing to decide: no query (a $limit of 0 fails)
    shards = make_cfg(source={"parallel_decode_rows": 4}, shards={"max_in_memory_rows": 29})
    assert estimate_rows(coll, shards, WINDOW) == 10  # the sharded path's sample rate needs the count


@pytest.mark.integration
def test_read_empty_window(mongo_db: object) -> None:
    batch = read_window(mongo_db, make_cfg(), WINDOW)
    assert len(batch.frame) == 0 and batch.n_read == 0


@pytest.mark.integration
def test_unreachable_mongo_is_a_clear_error_within_seconds() -> None:
    import socket
    import time

    import pymongo

    from mlmon.tasks.errors import SourceUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client: pymongo.MongoClient = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=1500
    )
    t = time.monotonic()
    with pytest.raises(SourceUnavailable, match="MLMON_MONGO_URI"):
        read_window(client.mlmon, make_cfg(), WINDOW)
    assert time.monotonic() - t < 10


def test_failed_request_without_prediction_is_kept_as_an_error() -> None:
    d = good(1)
    d.update({"status": "error", "prediction": {"value": None}})
    batch = decode_documents([d, good(2)], make_cfg(), WINDOW)
    assert not batch.quarantine
    assert list(batch.frame[c.IS_ERROR]) == [True, False]
