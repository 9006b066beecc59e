"""Fuzz: thousands of malformed and hostile raw BSON documents mixed with good ones, through the real
extraction (raw batches), with a fixed seed.

Every document is accounted for: it is a row (good ones, including those a named check counts), a
quarantined document with a reason code, or left to its own window; and the counts add up to what was
read. Runs in a few seconds.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import bson
import numpy as np
import psutil

from mlmon.tasks import contract as c
from mlmon.tasks.contract import Reason
from mlmon.tasks.evaluate import profile_kinds
from mlmon.tasks.extract import decode_batches, decode_documents
from mlmon.tasks.reference import fit_profile
from tests.test_extract import T0, WINDOW, good, make_cfg

SEED = 20260308
N_DOCS = 6000
BATCH = 250

Doc = dict[str, Any]


def _deep(levels: int) -> Doc:
    out: Doc = {}
    cur = out
    for _ in range(levels):
        cur["a"] = {}
        cur = cur["a"]
    return out


def _features(**over: Any) -> Callable[[Doc], None]:
    def patch(d: Doc) -> None:
        d["features"] = {**d["features"], **over}

    return patch


def _set(**over: Any) -> Callable[[Doc], None]:
    return lambda d: d.update(over)


# (name, patch, expected reason or None = kept as a row)
QUARANTINED: list[tuple[str, Callable[[Doc], None], Reason]] = [
    ("age_string", _features(age="forty"), Reason.WRONG_TYPE),
    ("age_bool", _features(age=True), Reason.WRONG_TYPE),
    ("age_object", _features(age={"$gt": 1}), Reason.NESTED_VALUE),
    ("age_deep", _features(age=_deep(500)), Reason.NESTED_VALUE),
    ("age_regex", _features(age=bson.Regex("^a")), Reason.WRONG_TYPE),
    ("age_timestamp", _features(age=bson.Timestamp(1, 1)), Reason.WRONG_TYPE),
    ("age_snan", _features(age=bson.Decimal128(Decimal("sNaN"))), Reason.NON_FINITE),
    ("age_dec_inf", _features(age=bson.Decimal128("Infinity")), Reason.NON_FINITE),
    ("age_inf", _features(age=-math.inf), Reason.NON_FINITE),
    ("plan_list", _features(plan=["a", "b"]), Reason.NESTED_VALUE),
    ("plan_binary", _features(plan=bson.Binary(b"\x00\x01")), Reason.WRONG_TYPE),
    ("plan_long", _features(plan="x" * 5000), Reason.STRING_TOO_LONG),
    ("features_string", _set(features="not an object"), Reason.NESTED_VALUE),
    ("features_list", _set(features=[["age", 3]]), Reason.NESTED_VALUE),
    ("features_null", _set(features=None), Reason.MISSING_FIELD),
    ("features_empty", _set(features={}), Reason.MISSING_FIELD),
    ("ts_null", _set(timestamp=None), Reason.MISSING_FIELD),
    ("ts_text", _set(timestamp="yesterday"), Reason.UNPARSEABLE),
    ("ts_object", _set(timestamp={"at": 1}), Reason.NESTED_VALUE),
    ("ts_year_9999", _set(timestamp=bson.DatetimeMS(253_402_300_799_000)), Reason.UNPARSEABLE),
    ("latency_negative", _set(latency_ms=-5.0), Reason.INVALID_VALUE),
    ("latency_absurd", _set(latency_ms=1e300), Reason.INVALID_VALUE),
    ("latency_nan_string", _set(latency_ms="NaN"), Reason.WRONG_TYPE),
    ("proba_range", _set(prediction={"value": "churn", "probabilities": {"churn": 1.5, "stay": -0.5}}),
     Reason.INVALID_VALUE),
    ("proba_sum", _set(prediction={"value": "churn", "probabilities": {"churn": 0.9, "stay": 0.9}}),
     Reason.INVALID_VALUE),
    ("proba_class", _set(prediction={"probabilities": {"churn": 0.1, "stay": 0.1, "maybe": 0.8}}),
     Reason.INVALID_VALUE),
    ("proba_text", _set(prediction={"value": "churn", "probabilities": {"churn": "high", "stay": 0.1}}),
     Reason.WRONG_TYPE),
    ("label_unknown", _set(prediction={"value": "maybe", "probabilities": {"churn": 0.5, "stay": 0.5}}),
     Reason.INVALID_VALUE),
    ("no_prediction", _set(prediction={}), Reason.MISSING_FIELD),
]  # fmt: skip

KEPT: list[tuple[str, Callable[[Doc], None]]] = [
    ("plan_nul", _features(plan="pro\x00<script>")),
    ("plan_unicode", _features(plan="😀\u202e")),
    ("age_missing", lambda d: d["features"].pop("age")),
    ("age_decimal", _features(age=bson.Decimal128("41.5"))),
    ("age_int64", _features(age=bson.Int64(2**62))),  # implausible: counted by a check
    ("age_1e308", _features(age=1e308)),  # implausible: counted by a check
    ("extra_field", _features(colour="red")),
    ("failed_request", _set(status="error", prediction=None, features=None)),
    ("weird_id", lambda d: d.update(_id={"nested": [d["_id"], 2]})),
]
IMPLAUSIBLE = {"age_int64", "age_1e308"}


def _bad_utf8(d: Doc) -> bytes:
    d["features"] = {**d["features"], "plan": "QQQQ"}
    return bson.encode(d).replace(b"QQQQ", b"\xff\xfe\xfd\xfc")


def generate(rng: np.random.Generator) -> tuple[list[bytes], dict[str, str]]:
    """Raw batches and, per document id, its expected outcome: "row", "other", a reason code, or
    "dup" (a row whose request id repeats an earlier one)."""
    pieces: list[bytes] = []
    expected: dict[str, str] = {}
    for i in range(N_DOCS):
        d = good(i, T0 + timedelta(seconds=int(rng.integers(0, 86_400))))
        d["status"] = "ok"
        d["_id"] = doc_id = f"d{i}"
        roll = rng.random()
        if roll < 0.45:
            outcome = "row"
        elif roll < 0.80:
            name, patch, reason = QUARANTINED[int(rng.integers(len(QUARANTINED)))]
            patch(d)
            outcome = reason.value
        elif roll < 0.90:
            name, patch = KEPT[int(rng.integers(len(KEPT)))]
            patch(d)
            outcome = "implausible" if name in IMPLAUSIBLE else "row"
            if name == "weird_id":
                doc_id = str(d["_id"])
        elif roll < 0.94:
            d["request_id"] = "r0"  # repeats the first document's id
            outcome = "dup"
        elif roll < 0.97:
            d["timestamp"] = T0 + timedelta(days=1, seconds=int(rng.integers(0, 3600)))
            outcome = "other"
        else:
            pieces.append(_bad_utf8(d))
            expected[doc_id] = Reason.NOT_A_DOCUMENT.value
            continue
        pieces.append(bson.encode(d))
        expected[doc_id] = outcome
    batches = []
    for k in range(0, len(pieces), BATCH):
        batches.append(b"".join(pieces[k : k + BATCH]))
    return batches, expected


def test_fuzz_every_document_is_accounted_for() -> None:
    from mlmon.tasks.checks.quality import duplicate_request_ids, implausible_values

    cfg = make_cfg()
    batches, expected = generate(np.random.default_rng(SEED))
    batch = decode_batches(batches, cfg, WINDOW)

    want = Counter(expected.values())
    rows = want["row"] + want["dup"] + want["implausible"]
    assert len(batch.frame) == rows
    assert batch.n_read == N_DOCS
    assert len(batch.frame) + batch.n_quarantined + batch.n_other_window == batch.n_read
    assert batch.n_other_window == want["other"]

    got = {q.doc_id: q.reason for q in batch.quarantine}
    assert len(got) == batch.n_quarantined  # one record per document
    assert got == {k: v for k, v in expected.items() if v not in ("row", "dup", "implausible", "other")}
    assert set(got.values()) <= {r.value for r in Reason}
    assert all(q.detail and len(q.document) <= 2000 for q in batch.quarantine)
    kept = {k for k, v in expected.items() if v in ("row", "dup", "implausible")}
    assert set(batch.frame[c.ID]) == kept

    # what is kept but breaks a rule is counted by a named check
    holders = want["dup"] + ("d0" in kept)  # kept rows carrying request id r0
    dup = duplicate_request_ids(batch.frame[c.REQUEST_ID])
    assert round(dup.value * len(batch.frame)) == max(holders - 1, 0) and dup.status.value == "warn"
    reference = decode_documents([good(i) for i in range(500)], cfg, WINDOW).frame
    profile = fit_profile(reference, profile_kinds(cfg), "fuzz")
    check = implausible_values(batch.frame, profile, cfg)
    assert check.value == want["implausible"] and check.status.value in ("warn", "fail")


def _decoded_by_workers(cfg: Any, after: int) -> Any:
    """``cfg`` decoding in 2 worker processes past ``after`` documents (``source.parallel_decode_rows``)."""
    update = {"decode_workers": 2, "parallel_decode_rows": after}
    return cfg.model_copy(update={"source": cfg.source.model_copy(update=update)})


def test_fuzz_parallel_decoding_is_the_serial_path(monkeypatch) -> None:
    """Past ``source.parallel_decode_rows`` the batches are decoded by worker processes: the frame, every
    quarantine record and every count are exactly the serial path's, on the same hostile batches."""
    import pandas as pd

    from mlmon.tasks import extract

    cfg = make_cfg()
    batches, _ = generate(np.random.default_rng(SEED))
    serial = decode_batches(batches, extract.in_one_process(cfg), WINDOW)
    par_cfg = _decoded_by_workers(cfg, 1000)
    assert extract.start_workers(2).result(timeout=120)  # up before the read: the path under test is taken
    here = []
    decode = extract.decode_batch
    monkeypatch.setattr(extract, "decode_batch", lambda *a: here.append(1) or decode(*a))
    before = os.nice(0)
    parallel = decode_batches(batches, par_cfg, WINDOW)
    pd.testing.assert_frame_equal(parallel.frame, serial.frame)
    assert parallel.quarantine == serial.quarantine
    assert (parallel.n_read, parallel.n_other_window, parallel.unexpected_fields) == (
        serial.n_read,
        serial.n_other_window,
        serial.unexpected_fields,
    )
    assert 0 < len(here) < len(batches) / 2  # the first batches were decoded here, most by the workers
    # the workers decoded at a lower priority than this process, whose own is unchanged
    assert os.nice(0) == before
    loky = [p for p in psutil.Process().children() if "loky" in " ".join(p.cmdline())]
    niceness = [p.nice() for p in loky]
    assert before + extract.DECODE_NICENESS in niceness, niceness  # each lowers its own as it first decodes
    assert set(niceness) <= {before, before + extract.DECODE_NICENESS}


def test_a_killed_decoding_worker_loses_no_document() -> None:
    """A decoding worker killed (for memory, say) before or during a window: the window is still every
    document's, decoded by new workers or in this process (logged), and so is the next one."""
    import signal

    import pandas as pd

    from mlmon.tasks import extract

    cfg = make_cfg()
    batches, _ = generate(np.random.default_rng(SEED))
    serial = decode_batches(batches, extract.in_one_process(cfg), WINDOW)
    par_cfg = _decoded_by_workers(cfg, 500)
    for _ in range(3):
        assert extract.start_workers(2).result(timeout=120)
        loky = [p for p in psutil.Process().children() if "loky" in " ".join(p.cmdline())]
        os.kill(loky[0].pid, signal.SIGKILL)
        got = decode_batches(batches, par_cfg, WINDOW, expected_rows=serial.n_read)
        pd.testing.assert_frame_equal(got.frame, serial.frame)
        assert got.quarantine == serial.quarantine and got.n_read == serial.n_read


def test_a_window_estimated_big_is_decoded_by_the_workers_from_its_first_batches(monkeypatch) -> None:
    """With the window's size estimate past ``source.parallel_decode_rows`` (a flow knows it before the
    read), the workers take over as soon as they run, not after those rows; same frame and quarantine."""
    import pandas as pd

    from mlmon.tasks import extract

    cfg = make_cfg()
    batches, _ = generate(np.random.default_rng(SEED))
    serial = decode_batches(batches, extract.in_one_process(cfg), WINDOW)
    # the whole window is below the threshold's count of documents read, but its estimate is not
    par_cfg = _decoded_by_workers(cfg, serial.n_read)
    assert extract.start_workers(2).result(timeout=120)  # up before the read: the path under test is taken
    here = []
    decode = extract.decode_batch
    monkeypatch.setattr(extract, "decode_batch", lambda *a: here.append(1) or decode(*a))
    without = decode_batches(batches, par_cfg, WINDOW)
    assert len(here) == len(batches)  # no estimate: every batch decoded here
    here.clear()
    estimated = decode_batches(batches, par_cfg, WINDOW, expected_rows=serial.n_read)
    assert 0 < len(here) < len(batches) / 2  # the first batches (while the workers answer), then them
    for got in (without, estimated):
        pd.testing.assert_frame_equal(got.frame, serial.frame)
        assert got.quarantine == serial.quarantine and got.n_read == serial.n_read


def test_a_broken_batch_raises_from_a_worker_as_in_this_process() -> None:
    """A reply whose length prefixes do not add up is a broken read, whichever process decodes it."""
    import pytest

    from mlmon.tasks.errors import SourceUnavailable

    cfg = make_cfg()
    batches, _ = generate(np.random.default_rng(SEED))
    with pytest.raises(SourceUnavailable, match="broken batch"):
        decode_batches([*batches, batches[-1][:-3]], _decoded_by_workers(cfg, 500), WINDOW)
