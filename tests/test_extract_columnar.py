"""The columnar decoder against the exact path: the same frame, quarantine and counts, row for row.

Batches of the canonical document with every id type, plus documents the columnar decoder must hand
back (another key order, a missing optional field, NaN, an int category, non-ASCII text, a bad value,
other windows): ``decode_batch`` (columnar + exact for the rest) equals ``decode_exact`` (the exact path
alone, as before the speed-up) on the same bytes.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import bson
import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import columnar
from mlmon.tasks.extract import CODEC, columns_for, decode_batch, decode_exact
from tests.test_extract import T0, WINDOW, good, make_cfg


def _raw(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(bson.encode(d, codec_options=CODEC) for d in docs)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


ODD: list[Any] = [
    lambda d: d.update(features={"plan": d["features"]["plan"], "age": d["features"]["age"]}),  # key order
    lambda d: d.pop("latency_ms"),  # an optional field absent
    lambda d: d["features"].update(age=math.nan),  # missing value
    lambda d: d["features"].update(plan=7),  # an int category (kept as "7")
    lambda d: d["features"].update(plan="größer"),  # non-ASCII text
    lambda d: d["features"].update(age="forty"),  # quarantined: wrong type
    lambda d: d.update(latency_ms=-1.0),  # quarantined: outside the contract's bounds
    lambda d: d["prediction"].update(probabilities={"churn": 0.9, "stay": 0.9}),  # quarantined: sum
    lambda d: d["prediction"].update(value="maybe"),  # quarantined: not one of classes
    lambda d: d.update(timestamp=T0 - timedelta(hours=1)),  # another window's
    lambda d: d.update(extra={"nested": [1, 2]}),  # an unmapped array
    lambda d: d["features"].update(new_field=1.0),  # an unexpected field
]


@pytest.mark.parametrize("ids", ["str", "int", "objectid"])
def test_canonical_batches_are_decoded_columnar_and_equal_the_exact_path(ids: str) -> None:
    docs = [good(i) for i in range(300)]
    for i, d in enumerate(docs):
        d["_id"] = {"str": f"g{i}", "int": i * 1_000_003, "objectid": bson.ObjectId()}[ids]
    raw = _raw(docs)
    cfg = make_cfg()
    lo, hi = (int(t.timestamp() * 1000) for t in (WINDOW.start, WINDOW.end))
    cols = columnar.decode(raw, cfg, columns_for(cfg), lo, hi, (-(2**62), 2**62))
    assert cols is not None and cols.rest.size == 0  # every document decoded columnar
    fast, exact = decode_batch(raw, cfg, WINDOW), decode_exact(raw, cfg, WINDOW)
    _same(fast.frame, exact.frame)
    assert (fast.n_read, fast.n_other_window, fast.unexpected_fields) == (300, 0, exact.unexpected_fields)


@pytest.mark.parametrize("seed", range(6))
def test_odd_documents_take_the_exact_path_and_the_batch_equals_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    docs = [good(i) for i in range(400)]
    for k in rng.choice(400, 60, replace=False):
        ODD[int(rng.integers(len(ODD)))](docs[int(k)])
    raw = _raw(docs)
    cols = columnar.decode(raw, make_cfg(), columns_for(make_cfg()), None, None, (-(2**62), 2**62))
    assert cols is not None and 0 < cols.rest.size <= 60  # only the odd ones take the exact path
    fast, exact = decode_batch(raw, make_cfg(), WINDOW), decode_exact(raw, make_cfg(), WINDOW)
    _same(fast.frame, exact.frame)
    assert fast.quarantine == exact.quarantine
    assert (fast.n_read, fast.n_other_window) == (exact.n_read, exact.n_other_window)
    assert fast.unexpected_fields == exact.unexpected_fields
    assert fast.rows is not None and list(fast.rows) == list(exact.rows)  # same rows, same order


def test_a_batch_outside_the_decoders_scope_is_the_exact_path() -> None:
    docs = [good(i) for i in range(50)]
    docs[0]["features"]["plan"] = ["a", "b"]  # the template itself has an array
    raw = _raw(docs)
    cfg = make_cfg()
    assert columnar.decode(raw, cfg, columns_for(cfg), None, None, (-(2**62), 2**62)) is None
    fast, exact = decode_batch(raw, cfg, WINDOW), decode_exact(raw, cfg, WINDOW)
    _same(fast.frame, exact.frame)
    assert fast.quarantine == exact.quarantine


def test_every_string_length_and_odd_byte_position_is_read_as_the_exact_path_reads_it() -> None:
    """The decoder reads 8 bytes at a time: strings of every length around those words, a NUL or a
    non-ASCII byte at each position, a key that differs past its first word, and integers at the limits
    of int32 and int64. The clean documents are decoded columnar; exactly the others are handed back."""
    rng = np.random.default_rng(7)
    docs, odd = [], set()
    for length in range(0, 21):
        for p in range(-1, length):  # -1: a clean string of this length
            for bad in ("\x00", "é") if p >= 0 else ("",):
                text = "".join(chr(c) for c in rng.integers(0x20, 0x7F, length))
                if bad:
                    text = text[:p] + bad + text[p + 1 :]
                    odd.add(len(docs))
                d = good(len(docs))
                d["features"]["plan"] = text
                docs.append(d)
    for age in (-(2**31), -1, 2**31 - 1, 2**40, -(2**40), 0):
        d = good(len(docs))
        d["features"]["age"] = age
        docs.append(d)
    d = good(len(docs))
    d["request_iD"] = d.pop("request_id")  # differs in the key's 10th byte, past the first word
    odd.add(len(docs))
    docs.append(d)
    raw = _raw(docs)
    cfg = make_cfg()
    cols = columnar.decode(raw, cfg, columns_for(cfg), None, None, (-(2**62), 2**62))
    assert cols is not None and set(cols.rest.tolist()) == odd
    fast, exact = decode_batch(raw, cfg, WINDOW), decode_exact(raw, cfg, WINDOW)
    _same(fast.frame, exact.frame)
    assert fast.quarantine == exact.quarantine
    assert fast.rows is not None and list(fast.rows) == list(exact.rows)


def test_a_batch_without_rows_changes_nothing_in_the_window() -> None:
    """A batch whose every document is quarantined decodes to a frame without rows; joined with the
    others it changes no row and no dtype of the window, and the join is ``pd.concat``'s."""
    import pandas as pd

    from mlmon.tasks.extract import _concat, decode_batches

    cfg = make_cfg()
    good_batch = b"".join(bson.encode(good(i)) for i in range(20))
    bad_batch = b"".join(bson.encode({**good(i), "timestamp": "not a date"}) for i in range(5))
    assert len(decode_batch(bad_batch, cfg, WINDOW).frame) == 0
    got = decode_batches([good_batch, bad_batch, good_batch], cfg, WINDOW)
    want = decode_batches([good_batch, good_batch], cfg, WINDOW)
    pd.testing.assert_frame_equal(got.frame, want.frame)
    assert got.n_quarantined == 5 and got.n_read == 45
    only_bad = decode_batches([bad_batch, bad_batch], cfg, WINDOW)
    assert len(only_bad.frame) == 0 and only_bad.n_quarantined == 10
    frames = [decode_batch(good_batch, cfg, WINDOW).frame for _ in range(3)]
    pd.testing.assert_frame_equal(_concat(frames), pd.concat(frames, ignore_index=True))
