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


def _parts() -> list[pd.DataFrame]:
    """Decoded parts as a window's batches give them: a tz-aware timestamp, floats, objects, bools; one
    part without rows whose columns are all-missing objects, one whose dtypes differ (a float column
    that came back as objects)."""
    rng = np.random.default_rng(3)

    def part(n: int, start: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ts": pd.to_datetime(np.arange(start, start + n) * 1000, unit="ms", utc=True),
                "x": rng.normal(size=n),
                "c": rng.choice(["a", "b", None], size=n).astype(object),
                "ok": rng.random(n) < 0.5,
            }
        )

    odd = part(4, 70).astype({"x": object})
    empty = pd.DataFrame({k: pd.Series([], dtype=object) for k in ("ts", "x", "c", "ok")})
    return [part(10, 0), part(7, 10), empty, part(30, 17), part(0, 47), odd, part(5, 74), part(3, 79)]


@pytest.mark.parametrize("expected", [None, 1, 40, 59, 1000])
def test_parts_joined_as_they_arrive_are_their_concat(expected: int | None) -> None:
    """Whatever the size estimate (none, low: the arrays grow, exact, high: trimmed), the joined frame is
    ``pd.concat`` of the parts with rows, dtypes included; a part without rows changes no dtype."""
    from mlmon.tasks.extract import _Joined

    parts = _parts()
    joined = _Joined(expected)
    for p in parts:
        joined.add(p)
    want = pd.concat([p for p in parts if len(p)], ignore_index=True)
    got = joined.frame()
    pd.testing.assert_frame_equal(got, want)
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]"
    # without the odd part no column falls back to objects
    joined = _Joined(expected)
    for p in parts[:5] + parts[6:]:
        joined.add(p)
    got = joined.frame()
    assert got["x"].dtype == np.float64 and got["ok"].dtype == bool
    pd.testing.assert_frame_equal(got, pd.concat([p for p in parts[:5] + parts[6:] if len(p)], ignore_index=True))


def test_one_part_is_returned_as_it_is_and_none_with_rows_gives_the_first() -> None:
    from mlmon.tasks.extract import _Joined

    parts = _parts()
    joined = _Joined(100)
    joined.add(parts[2])
    joined.add(parts[0])
    assert joined.frame() is parts[0]
    joined = _Joined(None)
    joined.add(parts[2])
    joined.add(parts[4])
    assert joined.frame() is parts[2]
