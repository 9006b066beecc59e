"""One document never blocks a window; every document is accounted for; string timestamps with offsets.

Raw BSON is built here for what the stand-in server refuses on insert (a real MongoDB stores it): the
extraction is driven through :func:`decode_batches`, the same path as a read off the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import bson
import numpy as np
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.extract import (
    decode_batches,
    decode_documents,
    read_window,
    window_filter,
)
from mlmon.tasks.window import Window
from tests.test_extract import WINDOW, good, make_cfg


def raw_batch(docs: list[dict[str, object]]) -> bytes:
    return b"".join(bson.encode(d) for d in docs)


def deep(levels: int) -> dict[str, object]:
    out: dict[str, object] = {}
    cur = out
    for _ in range(levels):
        cur["a"] = {}
        cur = cur["a"]  # type: ignore[assignment]
    return out


def with_bad_utf8(doc: dict[str, object]) -> bytes:
    """The document's BSON with its ``features.plan`` string made invalid UTF-8 (same length)."""
    doc = {**doc, "features": {**doc["features"], "plan": "QQQQ"}}  # type: ignore[dict-item]
    return bson.encode(doc).replace(b"QQQQ", b"\xff\xfe\xfd\xfc")


# --------------------------------------------------------------------------- point 3


def test_a_document_500_levels_deep_is_quarantined_and_its_batch_processed() -> None:
    bad = good(999)
    bad["_id"] = "deep"
    bad["features"] = {"age": deep(500), "plan": "pro"}
    raw = raw_batch([good(i) for i in range(20)] + [bad] + [good(i) for i in range(20, 40)])
    batch = decode_batches([raw], make_cfg(), WINDOW)
    assert len(batch.frame) == 40
    (q,) = batch.quarantine
    assert (q.doc_id, q.reason, q.field) == ("deep", "nested_value", "features.age")
    assert "nested deeper than 20 levels" in q.document and len(q.document) <= 2000


def test_invalid_utf8_in_one_document_of_a_raw_batch() -> None:
    bad = good(999)
    bad["_id"] = "utf8"
    raw = raw_batch([good(i) for i in range(10)]) + with_bad_utf8(bad) + raw_batch([good(10)])
    batch = decode_batches([raw], make_cfg(), WINDOW)
    assert len(batch.frame) == 11 and batch.n_read == 12
    (q,) = batch.quarantine
    assert (q.doc_id, q.reason) == ("utf8", "not_a_document")
    assert "utf-8" in q.detail.lower() and "\\xff" in q.document  # kept, leniently decoded, to inspect


def test_decimal128_snan_is_quarantined_not_raised() -> None:
    bad = good(999)
    bad["_id"] = "snan"
    bad["features"] = {"age": bson.Decimal128(Decimal("sNaN")), "plan": "pro"}
    ok = good(1)
    ok["features"] = {"age": bson.Decimal128("41.5"), "plan": "pro"}
    batch = decode_batches([raw_batch([ok, bad, good(2)])], make_cfg(), WINDOW)
    assert list(batch.frame["age"]) == [41.5, 22.0]
    (q,) = batch.quarantine
    assert (q.doc_id, q.reason, q.field) == ("snan", "non_finite", "features.age")


def test_a_broken_batch_framing_is_a_clear_error() -> None:
    from mlmon.tasks.errors import SourceUnavailable
    from mlmon.tasks.extract import split_raw

    raw = raw_batch([good(1), good(2)])
    assert len(list(split_raw(raw))) == 2
    with pytest.raises(SourceUnavailable, match="broken batch"):
        list(split_raw(raw[:-3]))


# --------------------------------------------------------------------------- point 4

CONTRACT = [
    ({"features": None}, "missing_field", "features"),
    ({"features": {}}, "missing_field", "features"),
    ({"latency_ms": -3.0}, "invalid_value", "latency_ms"),
    ({"latency_ms": 1e300}, "invalid_value", "latency_ms"),
    ({"prediction": {"value": "churn", "probabilities": {"churn": 1.4, "stay": -0.4}}}, "invalid_value",
     "prediction.probabilities"),
    ({"prediction": {"value": "churn", "probabilities": {"churn": 0.7, "stay": 0.7}}}, "invalid_value",
     "prediction.probabilities"),
    ({"prediction": {"value": "maybe", "probabilities": {"churn": 0.7, "stay": 0.3}}}, "invalid_value",
     "prediction.value"),
    ({"prediction": {"probabilities": {"churn": 0.2, "stay": 0.3, "maybe": 0.5}}}, "invalid_value",
     "prediction.probabilities"),
]  # fmt: skip


@pytest.mark.parametrize(("patch", "reason", "field"), CONTRACT)
def test_documents_breaking_the_contract_are_quarantined_with_their_reason(
    patch: dict[str, object], reason: str, field: str
) -> None:
    bad = {**good(501), "_id": "bad", **patch}
    batch = decode_documents([good(1), bad, good(2)], make_cfg(), WINDOW)
    assert [(q.doc_id, q.reason, q.field) for q in batch.quarantine] == [("bad", reason, field)]
    assert list(batch.frame[c.ID]) == ["g1", "g2"]


def test_what_the_contract_allows_is_kept() -> None:
    docs = [good(i) for i in range(5)]
    docs[0]["prediction"] = {"value": "stay", "probabilities": {"churn": 0.335, "stay": 0.67}}  # rounded
    docs[1]["latency_ms"] = 0.0
    docs[2].update({"status": "error", "features": None, "prediction": None})  # a failed request
    docs[3]["features"] = {"plan": "pro"}  # one feature absent is a missing value, not a broken document
    batch = decode_documents(docs, make_cfg(), WINDOW)
    assert not batch.quarantine and len(batch.frame) == 5


def test_a_feature_value_of_1e308_never_reaches_the_statistics() -> None:
    from mlmon.tasks.evaluate import evaluate, profile_kinds
    from mlmon.tasks.extract import Batch
    from mlmon.tasks.reference import fit_profile
    from tests import factories as fx

    cfg = fx.config()
    ref, cur = fx.frame(2000, seed=1), fx.frame(1000, seed=2)
    cur.loc[cur.index[:2], "income"] = 1e308
    profile = fit_profile(ref, profile_kinds(cfg), "h")
    result = evaluate(cfg, profile, Batch(frame=cur), fx.window())
    (income,) = [d for d in result.drift if d.feature == "income" and d.segment == "all"]
    assert income.effect is not None and income.effect < 0.5  # was 2e305 σ
    assert not income.drifted
    metrics = {(m.metric, m.feature): m.value for m in result.metrics if m.segment == "all"}
    assert abs(metrics[("mean", "income")]) < 1e6 and np.isfinite(metrics[("std", "income")])
    check = next(ch for ch in result.checks if ch.check == "implausible_values")
    assert check.status.value == "warn" and check.value == 2 and "income" in check.message
    oor = next(ch for ch in result.checks if ch.check == "out_of_range" and ch.feature == "income")
    assert oor.value == pytest.approx(2 / 1000)  # still counted as data quality


def test_duplicate_request_ids_are_counted_by_a_check() -> None:
    from mlmon.tasks.checks.quality import duplicate_request_ids
    from mlmon.tasks.extract import decode_batches as db

    docs = [good(i) for i in range(10)]
    for k in (3, 4):
        docs[k]["request_id"] = "r1"
    batch = db([raw_batch(docs[:5]), raw_batch(docs[5:])], make_cfg(), WINDOW)
    check = duplicate_request_ids(batch.frame[c.REQUEST_ID])
    assert (check.status.value, check.value) == ("warn", pytest.approx(0.2))
    assert "2 rows repeat" in check.message and "1 ids" in check.message


# --------------------------------------------------------------------------- point 7

OFFSETS = ["Z", "+00:00", "-05:00", "+05:30", "-12:00", "+14:00", "+09:45"]


def offset_docs(start: datetime, hours: int) -> tuple[list[dict[str, object]], dict[str, datetime]]:
    """Documents every 7 minutes over ``hours``, each written in one of several UTC offsets."""
    docs, instants = [], {}
    for i in range(hours * 60 // 7):
        t = start + timedelta(minutes=7 * i, seconds=13)
        off = OFFSETS[i % len(OFFSETS)]
        if off == "Z":
            text = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            sign = 1 if off[0] == "+" else -1
            delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6])) * sign
            text = (t + delta).strftime("%Y-%m-%dT%H:%M:%S") + off
        d = good(i)
        d.update({"_id": f"s{i}", "timestamp": text})
        docs.append(d)
        instants[f"s{i}"] = t
    return docs, instants


def string_cfg() -> object:
    return make_cfg(fields={"timestamp_type": "string", "probabilities": "prediction.probabilities"})


def mongod_select(docs: list[dict[str, object]], flt: dict[str, object]) -> list[dict[str, object]]:
    """What mongod returns for ``{timestamp: {$gte: lo, $lt: hi}}`` on strings: binary string order."""
    rng = flt["timestamp"]
    assert isinstance(rng, dict) and set(rng) == {"$gte", "$lt"}
    return [d for d in docs if isinstance(d["timestamp"], str) and rng["$gte"] <= d["timestamp"] < rng["$lt"]]


def test_string_timestamps_with_offsets_land_in_their_own_window_under_string_order() -> None:
    cfg = string_cfg()
    start = datetime(2026, 3, 5, tzinfo=UTC)
    docs, instants = offset_docs(start - timedelta(days=1), 72)
    seen: dict[str, Window] = {}
    for k in range(24):
        w = Window(start + timedelta(hours=k), start + timedelta(hours=k + 1))
        batch = decode_batches([raw_batch(mongod_select(docs, window_filter(cfg, w)))], cfg, w)  # type: ignore[arg-type]
        assert not batch.quarantine, batch.quarantine[:2]
        assert batch.n_read == len(batch.frame) + batch.n_other_window
        for doc_id in batch.frame[c.ID]:
            assert doc_id not in seen
            seen[doc_id] = w
    inside = {k for k, t in instants.items() if start <= t < start + timedelta(days=1)}
    assert set(seen) == inside
    assert all(seen[k].start <= instants[k] < seen[k].end for k in seen)


def test_an_unparseable_string_timestamp_is_quarantined_by_one_window_only() -> None:
    cfg = string_cfg()
    bad = {**good(1), "_id": "bad", "timestamp": "2026-03-05T10:61:00"}
    hits = 0
    for k in range(24):
        w = Window(
            datetime(2026, 3, 5, k, tzinfo=UTC), datetime(2026, 3, 5, k, tzinfo=UTC) + timedelta(hours=1)
        )
        selected = mongod_select([bad], window_filter(cfg, w))  # type: ignore[arg-type]
        batch = decode_documents(selected, cfg, w)  # type: ignore[arg-type]
        hits += len(batch.quarantine)
        if batch.quarantine:
            assert w.start.hour == 10 and batch.quarantine[0].reason == "unparseable"
    assert hits == 1


@pytest.mark.integration
def test_string_offsets_over_the_wire_with_the_servers_string_comparison(mongo_db: object) -> None:
    cfg = string_cfg()
    start = datetime(2026, 3, 5, tzinfo=UTC)
    docs, instants = offset_docs(start - timedelta(hours=20), 64)
    mongo_db.predictions.insert_many(docs)  # type: ignore[attr-defined]
    w = Window(start, start + timedelta(days=1))
    flt = window_filter(cfg, w)  # type: ignore[arg-type]
    inside = {k for k, t in instants.items() if w.start <= t < w.end}
    # count_documents compares strings character by character, as mongod does: the range still holds
    # every document of the window
    assert mongo_db.predictions.count_documents(flt) == len(mongod_select(docs, flt))  # type: ignore[attr-defined]
    assert inside <= {d["_id"] for d in mongod_select(docs, flt)}
    batch = read_window(mongo_db, cfg, w)  # type: ignore[arg-type]
    assert set(batch.frame[c.ID]) == inside and not batch.quarantine


# --------------------------------------------------------------------------- point 5


@pytest.mark.integration
def test_documents_no_window_can_read_are_counted(mongo_db: object) -> None:
    from mlmon.tasks.checks.quality import unreadable_timestamps

    now = datetime.now(UTC).replace(microsecond=0)
    w = Window(now - timedelta(hours=1), now + timedelta(hours=1))
    cfg = make_cfg(source={"filter": {"model_name": "churn"}})
    docs = []
    for i, ts in enumerate([now, now, None, "yesterday", 5, {"at": 1}, "missing"]):
        d = good(i, now)
        d.pop("_id")
        if ts == "missing":
            del d["timestamp"]
        else:
            d["timestamp"] = ts
        docs.append(d)
    other = good(50, now)
    other.pop("_id")
    other.update({"model_name": "other", "timestamp": "yesterday"})
    mongo_db.predictions.insert_many([*docs, other])  # type: ignore[attr-defined]
    batch = read_window(mongo_db, cfg, w)  # type: ignore[arg-type]
    assert len(batch.frame) == 2
    assert batch.n_unreadable_timestamps == 5  # null, "yesterday", 5, an object, missing
    check = unreadable_timestamps(5, 2, cfg)  # type: ignore[arg-type]
    assert check.status.value == "fail" and "5 documents" in check.message


def test_unreadable_filter_names_every_type_no_window_selects() -> None:
    from mlmon.tasks.extract import unreadable_filter

    string = make_cfg(source={"filter": {"model_name": "churn"}}, fields={"timestamp_type": "string"})
    flt = unreadable_filter(string, WINDOW)  # type: ignore[arg-type]
    assert flt["model_name"] == "churn" and set(flt["_id"]) == {"$gte", "$lt"}
    branches = flt["$or"]
    assert {"timestamp": {"$type": "date"}} in branches and {"timestamp": {"$gte": ":"}} in branches
    assert {"timestamp": {"$type": "string"}} not in branches
    clash = make_cfg(source={"filter": {"$or": [{"model_name": "a"}, {"model_name": "b"}]}})
    assert set(unreadable_filter(clash, WINDOW)) == {"$and"}  # type: ignore[arg-type]


def test_feature_names_with_a_dot_need_a_path() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"'user\.age' contains '\.'.*set its `path`"):
        make_cfg(features={"user.age": {"type": "numerical"}})
    cfg = make_cfg(features={"user.age": {"type": "numerical", "path": "features.user.age"}})
    assert cfg.feature_path("user.age") == "features.user.age"
    doc = {**good(1), "features": {"user": {"age": 33}}}
    assert list(decode_documents([doc], cfg, WINDOW).frame["user.age"]) == [33.0]  # type: ignore[arg-type]
