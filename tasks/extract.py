"""Extract one window of prediction logs from MongoDB into a typed frame, quarantining what does not fit.

The read is ``find`` on ``[start, end)`` of the (indexed) timestamp plus the model's extra filter,
projecting only the mapped fields, fetched as raw BSON batches. Decoding is columnar: each batch is
decoded with ``bson.decode_all``, each mapped field becomes one Python list, and each list is validated
and converted with vectorised NumPy/pandas code. Documents that break the contract are removed from the
frame and returned as :class:`~mlmon.tasks.checks.outcome.QuarantinedDoc` with a reason code — the rest of the
window is processed. Labels that have arrived are joined by request id.

:func:`decode_documents` is the pure core (no I/O) and is what the tests and the benchmark drive.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import bson
import numpy as np
import pandas as pd
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion

from mlmon.tasks import columnar
from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import QuarantinedDoc
from mlmon.tasks.config import Kind, ModelConfig, TaskType
from mlmon.tasks.contract import Reason
from mlmon.tasks.errors import SourceUnavailable
from mlmon.tasks.window import Window

log = logging.getLogger(__name__)

# Dates come back as DatetimeMS (an int of milliseconds): far cheaper to decode and to vectorise than
# datetime objects, and it also survives dates outside datetime's range.
CODEC = CodecOptions(tz_aware=True, tzinfo=UTC, datetime_conversion=DatetimeConversion.DATETIME_MS)
MAX_DOC_JSON = 2000  # characters of a quarantined document kept for inspection

_NUMBER_TYPES = (int, float)
_SCALAR_OK_FOR_CATEGORY = (str, int)


@dataclass(frozen=True)
class Column:
    """One logical field of the frame and where it lives in a document."""

    name: str  # frame column
    path: tuple[str, ...]  # dotted path split
    kind: str  # "number" | "category" | "timestamp" | "text" | "probabilities" | "label"
    required: bool = False
    bounds: tuple[float, float] | None = (
        None  # numbers the contract allows (inclusive); others: invalid_value
    )


@dataclass
class Batch:
    """What extraction produced for a window.

    ``frame`` holds the served predictions, the only rows every check except the versions family sees;
    ``shadow`` the predictions whose answer was not served (see :func:`split_shadow`), None when the
    model configures no way to recognise them."""

    frame: pd.DataFrame
    quarantine: list[QuarantinedDoc] = field(default_factory=list)
    unexpected_fields: dict[str, int] = field(default_factory=dict)
    n_read: int = 0  # documents read: rows + quarantined + n_other_window
    n_other_window: int = 0  # read (a string range is read wide) but placed in another window: left to it
    n_unreadable_timestamps: int | None = None  # documents no window can select (None = not counted)
    n_labels_joined: int = 0
    seconds: float = 0.0
    rows: np.ndarray | None = None  # position of each frame row among the documents decoded (when known)
    shadow: pd.DataFrame | None = None

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)


def columns_for(cfg: ModelConfig) -> list[Column]:
    """The columns to extract for a model, from its field mapping."""
    f = cfg.fields
    cols = [Column(c.TIMESTAMP, _split(f.timestamp), "timestamp", required=True)]
    if f.request_id:
        cols.append(Column(c.REQUEST_ID, _split(f.request_id), "text"))
    if f.model_version:
        cols.append(Column(c.VERSION, _split(f.model_version), "text"))
    pred_kind = "number" if cfg.task is TaskType.REGRESSION else "label"
    if f.prediction:
        cols.append(Column(c.PREDICTION, _split(f.prediction), pred_kind))
    if f.probabilities and cfg.task in (TaskType.BINARY, TaskType.MULTICLASS):
        cols.append(Column("__probabilities", _split(f.probabilities), "probabilities"))
    if f.target:
        cols.append(Column(c.TARGET, _split(f.target), pred_kind))
    if f.latency_ms:
        cols.append(Column(c.LATENCY, _split(f.latency_ms), "number", bounds=(0.0, c.MAX_LATENCY_MS)))
    if f.status:
        cols.append(Column(c.STATUS, _split(f.status), "text"))
    for name, spec in cfg.features.items():
        kind = "number" if spec.type is Kind.NUMERICAL else "category"
        cols.append(Column(name, _split(cfg.feature_path(name)), kind, required=spec.required))
    for name, biz in cfg.business_fields.items():  # for window checks (KPIs); never required
        kind = {"numerical": "number", "categorical": "category", "boolean": "boolean"}[biz.type]
        cols.append(Column(name, _split(biz.path), kind))
    if cfg.versions.served_field:  # shadow predictions: split off the served frame (split_shadow)
        cols.append(Column(c.SERVED, _split(cfg.versions.served_field), "boolean"))
    return cols


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def projection(cfg: ModelConfig) -> dict[str, int]:
    """Top-level fields to fetch: the first segment of every mapped path (whole feature objects are fetched
    so that unexpected fields can be reported)."""
    return {col.path[0]: 1 for col in columns_for(cfg)} | {"_id": 1}


# --------------------------------------------------------------------------- pure decoding


class _Problems:
    """Collects every problem of every document (not only the first), by row position."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[tuple[Reason, str, str]]] = {}

    def add(self, row: int, reason: Reason, field: str, detail: str) -> None:
        self.by_row.setdefault(row, []).append((reason, field, detail))

    def add_many(self, rows: Iterable[int], reason: Reason, field: str, detail: Callable[[int], str]) -> None:
        for r in rows:
            self.add(r, reason, field, detail(r))


def _get(values: list[Any], key: str) -> list[Any]:
    """``[v[key] for v in values]`` where v is a dict, else a marker for 'parent is not an object'."""
    try:  # fast path, a C-level loop: every parent is an object (the normal case)
        return list(map(dict.get, values, repeat(key)))
    except TypeError:
        return [
            v.get(key) if v.__class__ is dict else (_NOT_OBJECT if v is not None else None) for v in values
        ]


class _NotObject:
    def __repr__(self) -> str:
        return "<parent is not an object>"


_NOT_OBJECT = _NotObject()


def _resolve(
    docs: list[dict[str, Any]], columns: list[Column]
) -> tuple[dict[str, list[Any]], dict[tuple[str, ...], list[Any]]]:
    """Raw values per column, resolving each distinct parent path once per document (columnar); also
    the values of every path resolved on the way (the parent objects), by path."""
    cache: dict[tuple[str, ...], list[Any]] = {(): docs}

    def parent(path: tuple[str, ...]) -> list[Any]:
        if path not in cache:
            cache[path] = _get(parent(path[:-1]), path[-1])
        return cache[path]

    return {col.name: parent(col.path) for col in columns}, cache


def _describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _numbers(
    name: str,
    path: str,
    raw: list[Any],
    required: bool,
    probs: _Problems,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """float64 array; None/absent/NaN -> NaN (missing); bad values reported to ``probs``."""
    types = set(map(type, raw))
    if types <= {float, int, type(None)}:
        arr = np.array(raw, dtype=np.float64)  # None -> NaN
    else:
        arr = np.full(len(raw), np.nan)
        for i, v in enumerate(raw):
            t = type(v)
            if t is float or t is int:
                arr[i] = v
            elif v is None:
                continue
            elif t is bool:
                probs.add(i, Reason.WRONG_TYPE, path, f"boolean {v!r} where a number belongs")
            elif v is _NOT_OBJECT:
                probs.add(i, Reason.NESTED_VALUE, path, "a parent of this path is not an object")
            elif isinstance(v, (dict, list)):
                probs.add(i, Reason.NESTED_VALUE, path, f"{type(v).__name__} where a number belongs")
            elif isinstance(v, bson.Decimal128):
                d = v.to_decimal()  # float(Decimal("sNaN")) raises: test first
                if d.is_nan():
                    probs.add(i, Reason.NON_FINITE, path, f"Decimal128 {d} is not a number")
                else:
                    arr[i] = float(d)
            elif isinstance(v, bson.Int64):
                arr[i] = float(v)
            elif isinstance(v, str):
                probs.add(i, Reason.WRONG_TYPE, path, f"string {_describe(v)} where a number belongs")
            else:
                probs.add(i, Reason.WRONG_TYPE, path, f"{type(v).__name__} where a number belongs")
    inf = np.flatnonzero(np.isinf(arr))
    if inf.size:
        probs.add_many(inf.tolist(), Reason.NON_FINITE, path, lambda i: f"{arr[i]} is not finite")
    if bounds is not None:
        lo, hi = bounds
        outside = np.flatnonzero(np.isfinite(arr) & ((arr < lo) | (arr > hi)))
        probs.add_many(
            outside.tolist(), Reason.INVALID_VALUE, path, lambda i: f"{arr[i]:g} outside [{lo:g}, {hi:g}]"
        )
    if required:
        missing = np.flatnonzero(np.isnan(arr))
        probs.add_many(
            missing.tolist(), Reason.MISSING_FIELD, path, lambda i: f"required field {path} is missing"
        )
    return arr


def _booleans(path: str, raw: list[Any], probs: _Problems) -> np.ndarray:
    """float64 1/0 from true/false or 0/1 (a business flag such as ``converted``); None -> NaN."""
    out = np.full(len(raw), np.nan)
    for i, v in enumerate(raw):
        if v is None:
            continue
        if type(v) is bool or (type(v) in (int, float) and v in (0, 1)):
            out[i] = float(v)
        else:
            probs.add(i, Reason.WRONG_TYPE, path, f"{_describe(v)} where true/false belongs")
    return out


def _strings(
    name: str, path: str, raw: list[Any], required: bool, max_len: int, probs: _Problems
) -> np.ndarray:
    """object array of str or None; ints are accepted as codes (str(v)); NaN -> None."""
    types = set(map(type, raw))
    out = np.empty(len(raw), dtype=object)
    if types <= {str, type(None)}:
        out[:] = raw
    else:
        for i, v in enumerate(raw):
            t = type(v)
            if t is str or v is None:
                out[i] = v
            elif t is float and math.isnan(v):
                out[i] = None
            elif t is int or t is bool or t is float or isinstance(v, bson.Int64):
                out[i] = str(v).lower() if t is bool else (str(int(v)) if float(v).is_integer() else str(v))
            elif v is _NOT_OBJECT:
                probs.add(i, Reason.NESTED_VALUE, path, "a parent of this path is not an object")
            elif isinstance(v, (dict, list)):
                probs.add(i, Reason.NESTED_VALUE, path, f"{type(v).__name__} where a scalar belongs")
            else:
                probs.add(i, Reason.WRONG_TYPE, path, f"{type(v).__name__} where a string belongs")
    too_long = np.array([], dtype=np.int64)
    if max(map(len, filter(None, out)), default=0) > max_len:  # C-level scan; per-row work only when needed
        lengths = np.fromiter((len(v) if v else 0 for v in out), dtype=np.int64, count=len(out))
        too_long = np.flatnonzero(lengths > max_len)
    if too_long.size:
        probs.add_many(
            too_long.tolist(),
            Reason.STRING_TOO_LONG,
            path,
            lambda i: f"{int(lengths[i])} characters > {max_len}",
        )
        out[too_long] = None
    if required:
        missing = [i for i, v in enumerate(out) if v is None]
        probs.add_many(missing, Reason.MISSING_FIELD, path, lambda i: f"required field {path} is missing")
    return out


def _timestamps(path: str, raw: list[Any], how: str, probs: _Problems) -> np.ndarray:
    """int64 milliseconds since the epoch (UTC); unparseable -> reported, value 0."""
    ms = np.zeros(len(raw), dtype=np.int64)
    for i, v in enumerate(raw):
        try:
            if isinstance(v, bson.DatetimeMS):
                ms[i] = int(v)
            elif v is None:
                probs.add(i, Reason.MISSING_FIELD, path, "timestamp is missing")
            elif isinstance(v, datetime):
                ms[i] = (
                    int(v.timestamp() * 1000) if v.tzinfo else int(v.replace(tzinfo=UTC).timestamp() * 1000)
                )
            elif isinstance(v, str):
                text = v.strip()
                ts = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
                ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
                offset = ts.utcoffset()
                if offset is not None and abs(offset) > _MAX_OFFSET:
                    probs.add(i, Reason.UNPARSEABLE, path, f"UTC offset of {_describe(v)} is beyond ±14:00")
                    continue
                ms[i] = int(ts.timestamp() * 1000)
            elif type(v) in (int, float) and math.isfinite(v):
                ms[i] = int(v * 1000) if how in ("epoch_s", "date", "string") and v < 1e11 else int(v)
            elif isinstance(v, (dict, list)) or v is _NOT_OBJECT:
                probs.add(i, Reason.NESTED_VALUE, path, f"{type(v).__name__} where a timestamp belongs")
            else:
                probs.add(i, Reason.UNPARSEABLE, path, f"cannot read {_describe(v)} as a timestamp")
        except (ValueError, OverflowError, OSError):
            probs.add(i, Reason.UNPARSEABLE, path, f"cannot read {_describe(v)} as a timestamp")
    beyond = np.flatnonzero((ms < _MIN_MS) | (ms > _MAX_MS))  # e.g. year 9999: a valid BSON date
    probs.add_many(
        beyond.tolist(), Reason.UNPARSEABLE, path, lambda i: f"{ms[i]} ms is beyond years 1678–2261"
    )
    ms[beyond] = 0
    return ms


# the instants a frame can hold (datetime64[ns])
_MIN_MS, _MAX_MS = pd.Timestamp.min.value // 1_000_000 + 1, pd.Timestamp.max.value // 1_000_000 - 1


_MAX_OFFSET = timedelta(hours=c.MAX_UTC_OFFSET_HOURS)


def _probabilities(
    path: str, raw: list[Any], cfg: ModelConfig, probs: _Problems
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Per-class probability columns and the inferred label per row (argmax) from dicts, lists or p(positive)."""
    classes = list(cfg.classes or [])
    n = len(raw)
    seen: dict[str, np.ndarray] = {}

    def col(k: str) -> np.ndarray:
        if k not in seen:
            seen[k] = np.full(n, np.nan)
        return seen[k]

    fast = _probability_dicts(raw)
    if fast is not None:
        seen = fast
        raw = []  # every row handled by the fast path
    for i, v in enumerate(raw):
        if v is None:
            continue
        if type(v) is dict:
            for k, p in v.items():
                if type(p) not in _NUMBER_TYPES or not math.isfinite(p):
                    probs.add(i, Reason.WRONG_TYPE, path, f"probability of {_describe(k)} is {_describe(p)}")
                    break
                col(str(k))[i] = p
        elif type(v) is list:
            if not classes or len(v) != len(classes):
                probs.add(i, Reason.WRONG_TYPE, path, f"list of {len(v)} probabilities; configure `classes`")
                continue
            if not all(type(p) in _NUMBER_TYPES and math.isfinite(p) for p in v):
                probs.add(i, Reason.WRONG_TYPE, path, "non-numeric or non-finite probability in list")
                continue
            for k, p in zip(classes, v, strict=True):
                col(k)[i] = p
        elif type(v) in _NUMBER_TYPES and cfg.task is TaskType.BINARY:
            if not math.isfinite(v):
                probs.add(i, Reason.NON_FINITE, path, f"{v} is not finite")
                continue
            pos = _positive(cfg)
            if pos is None or not classes:
                probs.add(
                    i, Reason.WRONG_TYPE, path, "a bare probability needs `classes` and `positive_class`"
                )
                continue
            neg = next(k for k in classes if k != pos)
            col(pos)[i], col(neg)[i] = v, 1.0 - v
        else:
            reason = Reason.NESTED_VALUE if isinstance(v, list) else Reason.WRONG_TYPE
            probs.add(i, reason, path, f"{type(v).__name__} where probabilities belong")
    if not seen:
        return {}, None
    names = sorted(seen)
    mat = np.column_stack([seen[k] for k in names])
    _check_probabilities(path, names, mat, classes, probs)
    has = ~np.all(np.isnan(mat), axis=1)
    label = np.full(n, None, dtype=object)
    if has.any():
        arg = np.nanargmax(np.where(np.isnan(mat[has]), -np.inf, mat[has]), axis=1)
        label[has] = np.asarray(names, dtype=object)[arg]
    return seen, label


def _check_probabilities(
    path: str, names: list[str], mat: np.ndarray, classes: list[str], probs: _Problems
) -> None:
    """The contract on probabilities (vectorised): each in [0, 1], two or more summing to 1 (within
    ``PROBABILITY_SUM_TOLERANCE``), and every class one of ``classes`` when they are configured."""
    present = ~np.isnan(mat)
    with np.errstate(invalid="ignore"):
        outside = np.any(present & ((mat < 0) | (mat > 1)), axis=1)
    sums = np.nansum(mat, axis=1)
    off = (present.sum(axis=1) >= 2) & (np.abs(sums - 1.0) > c.PROBABILITY_SUM_TOLERANCE)
    probs.add_many(
        np.flatnonzero(outside).tolist(), Reason.INVALID_VALUE, path, lambda i: "a probability outside [0, 1]"
    )
    probs.add_many(
        np.flatnonzero(off & ~outside).tolist(), Reason.INVALID_VALUE, path,
        lambda i: f"probabilities sum to {sums[i]:.4g}, not 1",
    )  # fmt: skip
    if classes:
        unknown = [k for k in names if k not in set(classes)]
        if unknown:
            idx = [names.index(k) for k in unknown]
            rows = np.flatnonzero(present[:, idx].any(axis=1))
            probs.add_many(
                rows.tolist(), Reason.INVALID_VALUE, path,
                lambda i: f"probability for a class not in classes {classes}",
            )  # fmt: skip


def _probability_dicts(raw: list[Any]) -> dict[str, np.ndarray] | None:
    """Columnar fast path for the common shape (every row a ``{class: number}`` object); None otherwise."""
    if set(map(type, raw)) != {dict}:
        return None
    keys: set[str] = set()
    for shape in set(map(tuple, raw)):
        keys.update(shape)
    out: dict[str, np.ndarray] = {}
    for k in keys:
        values = list(map(dict.get, raw, repeat(k)))
        if not set(map(type, values)) <= {float, int, type(None)}:
            return None  # a bad value somewhere: the slow path reports it row by row
        arr = np.array(values, dtype=np.float64)
        if not np.isfinite(arr[~np.isnan(arr)]).all():
            return None
        out[str(k)] = arr
    return out


def _positive(cfg: ModelConfig) -> str | None:
    if cfg.positive_class is not None:
        return cfg.positive_class
    if cfg.classes and len(cfg.classes) == 2:
        return cfg.classes[1]
    return None


MAX_DOC_DEPTH = 20  # levels of a quarantined document kept; deeper values are replaced by a marker
MAX_DOC_ITEMS = 200  # keys/items per object or array kept


def _bounded(value: Any, depth: int = 0) -> Any:
    """The document cut to ``MAX_DOC_DEPTH`` levels and ``MAX_DOC_ITEMS`` items per level, so that
    serialising it for inspection is bounded whatever the document does (500 levels deep, 1M keys)."""
    if value.__class__ is dict:
        if depth >= MAX_DOC_DEPTH:
            return f"… (object nested deeper than {MAX_DOC_DEPTH} levels)"
        items = list(value.items())
        out = {str(k): _bounded(v, depth + 1) for k, v in items[:MAX_DOC_ITEMS]}
        if len(items) > MAX_DOC_ITEMS:
            out["…"] = f"{len(items) - MAX_DOC_ITEMS} more keys"
        return out
    if value.__class__ is list:
        if depth >= MAX_DOC_DEPTH:
            return f"… (array nested deeper than {MAX_DOC_DEPTH} levels)"
        return [_bounded(v, depth + 1) for v in value[:MAX_DOC_ITEMS]] + (
            [f"… {len(value) - MAX_DOC_ITEMS} more items"] if len(value) > MAX_DOC_ITEMS else []
        )
    return value


def _doc_json(doc: Any) -> str:
    """Truncated relaxed Extended JSON of a document, for inspection (bounded in depth and size)."""
    bounded = _bounded(doc)
    try:
        text = json_util.dumps(bounded, json_options=json_util.RELAXED_JSON_OPTIONS, default=str)
    except (TypeError, ValueError, OverflowError):
        text = repr(bounded)
    return text if len(text) <= MAX_DOC_JSON else text[: MAX_DOC_JSON - 1] + "…"


def decode_documents(
    docs: list[dict[str, Any]], cfg: ModelConfig, window: Window | None = None, *, split: bool = True
) -> Batch:
    """Validate and convert decoded documents into the typed window frame (pure, no I/O).

    Every document becomes one row of ``Batch.frame``, one ``QuarantinedDoc`` (with the first reason as
    its code and every problem in its detail), or, when ``window`` is given and its timestamp places it
    in another window, is left to that window (counted in ``n_other_window``, never quarantined here).
    """
    t0 = time.perf_counter()
    n = len(docs)
    probs = _Problems()
    cols = columns_for(cfg)
    raw, resolved = _resolve(docs, cols)
    max_len = cfg.quality.max_string_length
    data: dict[str, Any] = {}
    label_from_probs = None
    for col in cols:
        path = ".".join(col.path)
        values = raw[col.name]
        if col.kind == "timestamp":
            data[col.name] = _timestamps(path, values, cfg.fields.timestamp_type, probs)
        elif col.kind == "number":
            data[col.name] = _numbers(col.name, path, values, col.required, probs, col.bounds)
        elif col.kind == "boolean":
            data[col.name] = _booleans(path, values, probs)
        elif col.kind == "probabilities":
            per_class, label_from_probs = _probabilities(path, values, cfg, probs)
            _add_probability_columns(data, per_class, cfg)
        else:  # category, label, text
            data[col.name] = _strings(col.name, path, values, col.required, max_len, probs)
    if label_from_probs is not None:
        pred = data.get(c.PREDICTION)
        if pred is None:
            data[c.PREDICTION] = label_from_probs
        else:
            gaps = np.array([v is None for v in pred], dtype=bool)
            pred[gaps] = label_from_probs[gaps]
    failed = _failed_requests(data, cfg)
    if cfg.task is not TaskType.NONE and c.PREDICTION in data:
        # a prediction is required: from its own field, or inferred from the probabilities
        missing = np.flatnonzero(pd.isna(data[c.PREDICTION]) & ~failed)
        where = cfg.fields.prediction or cfg.fields.probabilities or "prediction"
        flagged = {
            r
            for r, ps in probs.by_row.items()
            if any(p[1] in (cfg.fields.prediction, cfg.fields.probabilities) for p in ps)
        }
        probs.add_many(
            [int(i) for i in missing if int(i) not in flagged], Reason.MISSING_FIELD, where,
            lambda i: "no prediction (neither a value nor probabilities)",
        )  # fmt: skip
    _check_labels(data, cfg, probs)
    _check_inputs(resolved, cols, failed, probs)
    elsewhere = _place(data[c.TIMESTAMP], raw[c.TIMESTAMP], cfg, window, probs) if window and n else []
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    if n:
        frame[c.TIMESTAMP] = pd.to_datetime(frame[c.TIMESTAMP], unit="ms", utc=True)
    else:
        frame[c.TIMESTAMP] = pd.Series([], dtype="datetime64[ns, UTC]")
    frame.insert(0, c.ID, [str(d.get("_id", "")) if d.__class__ is dict else "" for d in docs])
    _finish_frame(frame, cfg)
    quarantine = []
    for r in sorted(probs.by_row):
        problems = probs.by_row[r]
        reason, fld, _ = problems[0]
        detail = "; ".join(f"{f}: {d}" for _, f, d in problems)
        doc = docs[r]
        doc_id = str(doc.get("_id", f"row {r}")) if doc.__class__ is dict else f"row {r}"
        quarantine.append(QuarantinedDoc(doc_id, reason.value, fld, detail, _doc_json(doc)))
    drop = sorted({*probs.by_row, *elsewhere})
    if drop:
        frame = frame.drop(index=drop).reset_index(drop=True)
    left = set(elsewhere)
    kept = docs if not left else [d for i, d in enumerate(docs) if i not in left]
    # shadow rows leave the frame last (``split=False``: the batch path splits once, after joining)
    frame, shadow = split_shadow(frame, cfg) if split else (frame, None)
    return Batch(
        frame=frame,
        shadow=shadow,
        quarantine=quarantine,
        unexpected_fields=_unexpected(kept, cfg),
        n_read=n,
        n_other_window=len(elsewhere),
        seconds=time.perf_counter() - t0,
        rows=np.delete(np.arange(n, dtype=np.int64), drop) if shadow is None else None,
    )


def split_shadow(frame: pd.DataFrame, cfg: ModelConfig) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(served rows, shadow rows) of a decoded frame; shadow is None when the model configures no way to
    recognise shadow predictions (``versions.served_field`` / ``versions.shadow_versions``).

    A shadow row is a prediction whose answer was not served: its ``served_field`` is false, or its
    version is a configured shadow version. A missing served flag counts as served (older loggers)."""
    v = cfg.versions
    if not v.served_field and not v.shadow_versions:
        return frame, None
    hidden = np.zeros(len(frame), dtype=bool)
    if c.SERVED in frame:
        hidden |= frame[c.SERVED].to_numpy(dtype=np.float64, na_value=np.nan) == 0.0
    if v.shadow_versions and c.VERSION in frame:
        hidden |= frame[c.VERSION].isin(v.shadow_versions).to_numpy()
    if not hidden.any():
        return frame, frame.iloc[:0].reset_index(drop=True)
    return frame[~hidden].reset_index(drop=True), frame[hidden].reset_index(drop=True)


def _failed_requests(data: dict[str, Any], cfg: ModelConfig) -> np.ndarray:
    """Rows whose status is not ok: a failed request may carry no prediction and no inputs."""
    n = len(data[c.TIMESTAMP])
    if c.STATUS not in data:
        return np.zeros(n, dtype=bool)
    ok = {str(x) for x in cfg.service.ok_statuses}
    status = pd.Series(data[c.STATUS], dtype=object)
    return (status.notna() & ~status.astype(str).isin(ok)).to_numpy()


def _check_labels(data: dict[str, Any], cfg: ModelConfig, probs: _Problems) -> None:
    """A predicted (or logged) label must be one of ``classes`` when they are configured."""
    if not cfg.classes or cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS):
        return
    classes = list(cfg.classes)
    for name, path in (
        (c.PREDICTION, cfg.fields.prediction or cfg.fields.probabilities),
        (c.TARGET, cfg.fields.target),
    ):
        if name not in data or path is None or set(data[name]) <= {*classes, None}:  # one C-level pass
            continue
        values = pd.Series(data[name], dtype=object)
        bad = np.flatnonzero((values.notna() & ~values.isin(classes)).to_numpy())
        probs.add_many(
            bad.tolist(), Reason.INVALID_VALUE, path,
            lambda i, v=values: f"label {_describe(v.iloc[i])} is not one of classes {classes}",
        )  # fmt: skip


def _check_inputs(
    resolved: dict[tuple[str, ...], list[Any]], cols: list[Column], failed: np.ndarray, probs: _Problems
) -> None:
    """A document of a served request must carry its inputs: when the object(s) holding the features
    are absent, null or empty (``features: null`` / ``{}``), it is quarantined as ``missing_field``."""
    features = [col for col in cols if col.kind in ("number", "category") and col.name not in c.RESERVED]
    parents = sorted({col.path[:-1] for col in features} - {()})
    if not parents:
        return
    empty = ~failed
    for p in parents:
        empty &= ~np.fromiter(map(bool, resolved[p]), dtype=bool, count=len(failed))
    where = ".".join(parents[0])
    probs.add_many(
        np.flatnonzero(empty).tolist(), Reason.MISSING_FIELD, where,
        lambda i: "no input: the feature object is absent, null or empty",
    )  # fmt: skip


def _place(
    ms: np.ndarray, raw_ts: list[Any], cfg: ModelConfig, window: Window, probs: _Problems
) -> list[int]:
    """Rows that belong to another window (their problems, if any, are that window's): by parsed instant,
    or, for a timestamp that cannot be parsed, by where its text sorts (string timestamps are read with a
    wide text range, so such a document must be quarantined by one window only)."""
    lo, hi = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    ts_path = cfg.fields.timestamp
    bad_ts = {r for r, ps in probs.by_row.items() if any(p[1] == ts_path for p in ps)}
    outside = [int(i) for i in np.flatnonzero((ms < lo) | (ms >= hi)) if int(i) not in bad_ts]
    if cfg.fields.timestamp_type == "string":
        t_lo, t_hi = _text(window.start), _text(window.end)
        outside += [r for r in bad_ts if raw_ts[r].__class__ is str and not t_lo <= raw_ts[r] < t_hi]
    for r in outside:
        probs.by_row.pop(r, None)
    return sorted(outside)


def _text(t: datetime) -> str:
    """A UTC instant as the ISO text string timestamps are compared with."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _add_probability_columns(
    data: dict[str, Any], per_class: dict[str, np.ndarray], cfg: ModelConfig
) -> None:
    if not per_class:
        return
    if cfg.task is TaskType.BINARY:
        pos = _positive(cfg)
        if pos is None:
            pos = sorted(per_class)[-1]
        data[c.SCORE] = per_class.get(pos, np.full(len(next(iter(per_class.values()))), np.nan))
    else:
        for k, arr in per_class.items():
            data[c.PROBA_PREFIX + k] = arr
        mat = np.column_stack(list(per_class.values()))
        with np.errstate(all="ignore"):
            conf = np.where(
                np.all(np.isnan(mat), axis=1), np.nan, np.nanmax(np.nan_to_num(mat, nan=-1.0), axis=1)
            )
        data[c.SCORE] = conf


def _finish_frame(frame: pd.DataFrame, cfg: ModelConfig) -> None:
    """Derived columns: error flag from status, and the columns every later stage may rely on."""
    if c.STATUS in frame:
        ok = {str(s) for s in cfg.service.ok_statuses}
        status = frame[c.STATUS]
        frame[c.IS_ERROR] = status.notna() & ~status.astype(str).isin(ok)
    else:
        frame[c.IS_ERROR] = False
    if c.TARGET not in frame:
        frame[c.TARGET] = np.nan if cfg.task is TaskType.REGRESSION else None


def _unexpected(docs: list[Any], cfg: ModelConfig) -> dict[str, int]:
    """Fields present in the feature objects that the config does not map (counted per field)."""
    parents = {cfg.feature_path(n).rsplit(".", 1)[0] for n in cfg.features if "." in cfg.feature_path(n)}
    mapped = {cfg.feature_path(n) for n in cfg.features} | {b.path for b in cfg.business_fields.values()}
    out: Counter[str] = Counter()
    for parent in parents:
        values: list[Any] = docs
        for part in parent.split("."):
            values = _get(values, part)
        shapes = Counter(tuple(v) for v in values if v.__class__ is dict)
        for keys, count in shapes.items():
            for k in keys:
                full = f"{parent}.{k}"
                if full not in mapped:
                    out[full] += count
    return dict(out)


# --------------------------------------------------------------------------- MongoDB


def window_filter(cfg: ModelConfig, window: Window) -> dict[str, Any]:
    """The MongoDB filter for ``[start, end)`` in the timestamp's stored type, plus the model's extra filter
    (string timestamps: a text range widened by ±14 h, see below)."""
    how = cfg.fields.timestamp_type
    lo: Any
    hi: Any
    if how == "date":
        lo, hi = window.start, window.end
    elif how == "string":
        # MongoDB compares strings character by character: "2026-03-05T19:40:00-05:00" is 00:40 UTC the
        # next day. The text range is widened by the largest UTC offset so every document of the window
        # is read; each one is then placed by its parsed instant (:func:`_place`).
        lo, hi = _text(window.start - _MAX_OFFSET), _text(window.end + _MAX_OFFSET)
    elif how == "epoch_s":
        lo, hi = window.start.timestamp(), window.end.timestamp()
    else:
        lo, hi = window.start.timestamp() * 1000, window.end.timestamp() * 1000
    return {**cfg.source.filter, cfg.fields.timestamp: {"$gte": lo, "$lt": hi}}


# BSON types that no window's selection can match, per configured timestamp type ("null" and a missing
# field are added to every one). Listed positively, so the query needs no $not.
_NEVER_SELECTED = {
    "date": ("double", "string", "object", "array", "binData", "objectId", "bool", "regex", "int",
             "timestamp", "long", "decimal"),
    "string": ("double", "object", "array", "binData", "objectId", "bool", "date", "regex", "int",
               "timestamp", "long", "decimal"),
    "epoch_s": ("string", "object", "array", "binData", "objectId", "bool", "date", "regex", "timestamp"),
    "epoch_ms": ("string", "object", "array", "binData", "objectId", "bool", "date", "regex", "timestamp"),
}  # fmt: skip
MAX_UNREADABLE_COUNTED = 10_000  # the count stops here (the check then says "at least")


def unreadable_filter(cfg: ModelConfig, window: Window) -> dict[str, Any]:
    """Documents of the model created in ``[start, end)`` by their ObjectId whose timestamp no window can
    ever select: missing, null, of another BSON type, or (string timestamps) text that sorts outside
    every date ("yesterday"). Uses the ``_id`` index; only the bad documents match."""
    ts = cfg.fields.timestamp
    never: list[dict[str, Any]] = [{ts: {"$type": "null"}}, {ts: {"$exists": False}}]
    never += [{ts: {"$type": t}} for t in _NEVER_SELECTED[cfg.fields.timestamp_type]]
    if cfg.fields.timestamp_type == "string":
        never += [{ts: {"$lt": "0"}}, {ts: {"$gte": ":"}}]  # dates start with a digit
    span = {"$gte": bson.ObjectId.from_datetime(window.start), "$lt": bson.ObjectId.from_datetime(window.end)}
    own = {"_id": span, "$or": never}
    flt = cfg.source.filter
    return {**flt, **own} if not set(flt) & set(own) else {"$and": [flt, own]}


def count_unreadable_timestamps(coll: Any, cfg: ModelConfig, window: Window) -> int | None:
    """How many documents :func:`unreadable_filter` matches (up to ``MAX_UNREADABLE_COUNTED``); None when
    the server refuses the query (the check is then not reported, the window still is)."""
    from pymongo.errors import OperationFailure

    try:
        cursor = coll.find(unreadable_filter(cfg, window), {"_id": 1}).limit(MAX_UNREADABLE_COUNTED)
        return sum(1 for _ in cursor)
    except OperationFailure:
        return None


def iter_raw_batches(
    collection: Any, flt: dict[str, Any], proj: dict[str, int], batch_size: int
) -> Iterator[bytes]:
    """Raw BSON batches straight off the wire (no per-document decoding by pymongo)."""
    yield from collection.find_raw_batches(flt, proj, batch_size=batch_size)


def decode_batches(
    batches: Iterable[bytes],
    cfg: ModelConfig,
    window: Window | None = None,
    progress: Callable[[int], None] | None = None,
    expected_rows: int | None = None,
) -> Batch:
    """Decode raw BSON batches one at a time into typed pieces, then join them.

    ``expected_rows``: about how many documents are coming (MongoDB's estimate); when they pass
    ``source.parallel_decode_rows``, the decoding workers start with the first batch instead of after
    the first rows (a flow run is a new process: the workers' start-up is on the first window's path).

    Only one batch of Python dicts is alive at a time, so peak memory is the typed frame plus one batch,
    not the whole window as dicts (about 10× larger). One document never blocks its batch: when the batch
    cannot be decoded (invalid UTF-8, nesting too deep) or converted, its documents are taken one by one
    (:func:`decode_batch`). A batch whose length prefixes do not add up is a broken reply and raises.
    """
    t0 = time.perf_counter()
    parts: list[Batch] = []
    n = 0
    for part in _decoded(batches, cfg, window, expected_rows):
        n += part.n_read
        parts.append(part)
        if progress:
            progress(n)
    if not parts:
        return decode_documents([], cfg, window)
    unexpected: Counter[str] = Counter()
    for p in parts:
        unexpected.update(p.unexpected_fields)
    frame = parts[0].frame if len(parts) == 1 else _concat([p.frame for p in parts])
    frame, shadow = split_shadow(frame, cfg)  # once, on the joined frame (batches decode unsplit)
    return Batch(
        frame=frame,
        shadow=shadow,
        quarantine=[q for p in parts for q in p.quarantine],
        unexpected_fields=dict(unexpected),
        n_read=n,
        n_other_window=sum(p.n_other_window for p in parts),
        seconds=time.perf_counter() - t0,
    )


def _decoded(
    batches: Iterable[bytes], cfg: ModelConfig, window: Window | None, expected_rows: int | None = None
) -> Iterator[Batch]:
    """Each raw batch decoded (:func:`decode_batch`), in order.

    The first ``source.parallel_decode_rows`` documents are decoded here; past them, the batches still
    to come go to worker processes (``source.decode_workers``; joblib's loky executor, which never
    re-runs the caller's script and is reused across windows), at most two per worker in flight, so
    memory stays bounded and the results come back in the order read. Decoding is CPU-bound Python that
    holds the GIL: processes, not threads, are what use a second core. The workers run the same
    function, so the frame and every quarantine are the serial path's. The workers start in the
    background while this process decodes the first rows; when they cannot start, or one dies, the rest
    is decoded here and that is logged. When ``expected_rows`` says the window passes
    ``source.parallel_decode_rows``, they start at once and take over as soon as they run.
    """
    it = iter(batches)
    workers = decode_workers(cfg)
    n, after = 0, cfg.source.parallel_decode_rows
    big = workers > 1 and expected_rows is not None and expected_rows >= after
    starting = start_workers(workers) if big else None
    for raw in it:
        part = decode_batch(raw, cfg, window)
        yield part
        n += part.n_read
        if workers > 1 and (big or n >= after // 2):
            starting = starting or start_workers(workers)  # they start while this process decodes on
            if (big or n >= after) and starting.done():
                break
    else:
        return
    assert starting is not None
    if not starting.result():
        yield from (decode_batch(raw, cfg, window) for raw in it)
        return
    yield from _in_workers(it, cfg, window, workers)


def _in_workers(
    it: Iterator[bytes], cfg: ModelConfig, window: Window | None, workers: int
) -> Iterator[Batch]:
    from joblib import Parallel, delayed
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    waiting: dict[int, bytes] = {}  # submitted, not yet given back: decoded here again if a worker dies
    caller = os.getpid()

    def tasks() -> Iterator[Any]:
        for k, raw in enumerate(it):
            waiting[k] = raw
            yield delayed(_decode_in_worker)(raw, cfg, window, caller)

    run = Parallel(
        n_jobs=workers, backend="loky", return_as="generator", pre_dispatch=2 * workers, batch_size=1
    )
    done = 0
    try:
        for part in run(tasks()):
            waiting.pop(done, None)
            done += 1
            yield part
    except TerminatedWorkerError as e:  # killed for memory, say: nothing read is lost
        log.warning("mlmon: a decoding worker died (%s); decoding the rest of the window in this process", e)
        for k in sorted(waiting):
            yield decode_batch(waiting.pop(k), cfg, window)
        yield from (decode_batch(raw, cfg, window) for raw in it)


# How much lower the decoding workers' CPU priority is than the rest of the run's (nice +5: a weight
# about a third of a normal process's). They are the run's only background work with slack: in a
# flow run's first window, Evidently's process imports Evidently (5-9 s of a core here) while they
# decode, and Evidently's parts wait for both; at equal priority the import got half a core and ended
# 3 s after the extraction (1M rows, 2 cores), at this one it ends first and the extraction takes as
# long as before (README, target 4). They also yield to the serving app when it shares the machine.
# The workers are joblib's loky workers of this process: other joblib work of the same process (none
# of mlmon's) would run at this priority too.
DECODE_NICENESS = 5


def _decode_in_worker(raw: bytes, cfg: ModelConfig, window: Window | None, caller: int) -> Batch:
    """:func:`decode_batch` in a decoding worker, whose decoding thread first lowers its priority, once
    (``DECODE_NICENESS``; never in the calling process, should joblib run the task there). Only that
    thread (on Linux ``nice`` is per thread): lowered as the worker started, the threads it starts for
    its pipes would inherit it, and 1M rows' decoding then took 15-20 % more CPU here."""
    if os.getpid() != caller and not _LOWERED:
        _LOWERED.append(True)
        with contextlib.suppress(OSError, AttributeError):  # no os.nice (Windows): as it is
            os.nice(DECODE_NICENESS)
    return decode_batch(raw, cfg, window)


_LOWERED: list[bool] = []


def decode_workers(cfg: ModelConfig) -> int:
    """How many processes decode a big window's batches (``source.decode_workers``, 0 = per CPU, ≤ 4)."""
    return worker_count(cfg.source.decode_workers)


def worker_count(setting: int) -> int:
    """Worker processes for a ``*.workers`` setting: itself, or for 0 one per CPU this process may use,
    at most 4."""
    if setting:
        return setting
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


def in_one_process(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` decoding in the calling process only: for a shard task, where the shards running side by
    side on the cluster's workers are the parallelism (and a worker may not start processes)."""
    return cfg.model_copy(update={"source": cfg.source.model_copy(update={"decode_workers": 1})})


def start_workers(workers: int) -> Future[bool]:
    """Start ``workers`` decoding processes in the background (each imports this module once); the
    future says whether they run. Loky's executor is the process's one, reused by the next window."""
    started: Future[bool] = Future()

    def start() -> None:
        from joblib import Parallel, delayed

        try:
            Parallel(n_jobs=workers, backend="loky")(delayed(_ready)() for _ in range(workers))
        except Exception as e:  # no processes here (a sandbox, no /dev/shm)
            log.warning("mlmon: decoding in one process: worker processes cannot start here (%s)", e)
            started.set_result(False)
        else:
            started.set_result(True)

    threading.Thread(target=start, name="mlmon-workers", daemon=True).start()
    return started


def _ready() -> None:
    """Nothing: run once by each decoding worker as it starts, so that it has imported this module."""


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)``; column by column with NumPy when every frame has the same
    columns and dtypes (pandas' concat checks each value of an all-missing object column, per row)."""
    first = frames[0]
    if any(not f.dtypes.equals(first.dtypes) for f in frames[1:]):
        return pd.concat(frames, ignore_index=True)
    columns: dict[str, list[Any]] = {str(name): [] for name in first.columns}
    for f in frames:
        for name, values in f.items():  # (``f[name]`` per frame and column: 0.3 s of 1M rows' join)
            columns[str(name)].append(values)
    data: dict[str, Any] = {}
    for (name, dtype), parts in zip(first.dtypes.items(), columns.values(), strict=True):
        if isinstance(dtype, np.dtype):
            data[str(name)] = np.concatenate([p.to_numpy() for p in parts])
        else:  # tz-aware timestamps, categories: pandas' own concat of the one column
            data[str(name)] = pd.concat(parts, ignore_index=True)
    # copy=False: the arrays are this function's own; pandas would otherwise copy every column into
    # consolidated 2-D blocks (0.5 s of 1M rows' extraction, for nothing)
    return pd.DataFrame(data, index=pd.RangeIndex(sum(len(f) for f in frames)), copy=False)


# What a hostile document can make the decoder or the conversion raise (bad UTF-8 is a ValueError).
_DOCUMENT_ERRORS = (
    bson.errors.InvalidBSON,
    RecursionError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
)
_LENIENT = CODEC.with_options(unicode_decode_error_handler="backslashreplace")


def decode_batch(raw: bytes, cfg: ModelConfig, window: Window | None = None) -> Batch:
    """One raw batch: the documents of the batch's common layout decoded columnar (no dict per document,
    :mod:`mlmon.tasks.columnar`), every other document by the exact path (:func:`decode_exact`), rows
    in the order of the batch. The exact path alone decides what is quarantined."""
    lo = hi = None
    if window is not None:
        lo, hi = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    cols = columnar.decode(raw, cfg, columns_for(cfg), lo, hi, (_MIN_MS, _MAX_MS))
    if cols is None:
        return decode_exact(raw, cfg, window)
    frame = columnar.frame(cols)
    _finish_frame(frame, cfg)
    n = cols.rows.size + cols.rest.size + cols.n_other_window
    fast = Batch(frame=frame, unexpected_fields=cols.unexpected_fields, n_read=n,
                 n_other_window=cols.n_other_window, rows=cols.rows)  # fmt: skip
    if cols.rest.size == 0:
        return fast
    starts, ends = columnar.document_bounds(raw)  # type: ignore[misc]  # decode() read them already
    rest = b"".join(raw[s : e + 1] for s, e in zip(starts[cols.rest], ends[cols.rest], strict=True))
    exact = decode_exact(rest, cfg, window)
    assert exact.rows is not None
    positions = np.concatenate([cols.rows, cols.rest[exact.rows]])
    order = np.argsort(positions, kind="stable")
    both = pd.concat([frame, exact.frame], ignore_index=True) if len(exact.frame) else frame
    unexpected = Counter(cols.unexpected_fields)
    unexpected.update(exact.unexpected_fields)
    return Batch(
        frame=both.take(order).reset_index(drop=True) if len(exact.frame) else both,
        quarantine=exact.quarantine,
        unexpected_fields=dict(unexpected),
        n_read=n,
        n_other_window=cols.n_other_window + exact.n_other_window,
        rows=positions[order],
    )


def decode_exact(raw: bytes, cfg: ModelConfig, window: Window | None = None) -> Batch:
    """One raw batch through ``bson.decode_all`` and :func:`decode_documents` (the exact path); on failure
    document by document, each document that still fails quarantined as ``not_a_document`` with the
    error. ``rows``: each frame row's position in the batch."""
    try:
        return decode_documents(bson.decode_all(raw, CODEC), cfg, window, split=False)
    except _DOCUMENT_ERRORS:
        pass  # one bad document: find it below, keep the others
    docs: list[dict[str, Any]] = []
    where: list[int] = []  # position in the batch of each decoded document
    rejected: list[QuarantinedDoc] = []
    for k, piece in enumerate(split_raw(raw)):
        try:
            docs.append(bson.decode(piece, CODEC))
            where.append(k)
        except _DOCUMENT_ERRORS as e:
            rejected.append(_rejected(k, e, piece=piece))
    try:
        part = decode_documents(docs, cfg, window, split=False)
    except _DOCUMENT_ERRORS:  # a document that decodes but breaks the conversion: find it
        kept, kept_where = [], []
        for k, doc in enumerate(docs):
            try:
                decode_documents([doc], cfg, window, split=False)
                kept.append(doc)
                kept_where.append(where[k])
            except _DOCUMENT_ERRORS as e:
                rejected.append(_rejected(k, e, doc=doc))
        docs, where = kept, kept_where
        part = decode_documents(kept, cfg, window, split=False)  # raises only if our own code is at fault
    part.quarantine[:0] = rejected
    part.n_read += len(rejected)
    if part.rows is not None:
        part.rows = np.asarray(where, dtype=np.int64)[part.rows]
    return part


def split_raw(raw: bytes) -> Iterator[bytes]:
    """The documents of a raw BSON batch, by their int32 length prefixes (no decoding)."""
    pos, end = 0, len(raw)
    while pos < end:
        size = int.from_bytes(raw[pos : pos + 4], "little", signed=True) if pos + 4 <= end else 0
        if size < 5 or pos + size > end:
            raise SourceUnavailable(
                f"MongoDB returned a broken batch: a document length of {size} at byte {pos} of {end}; "
                "the reply is corrupt (check the server and the driver)"
            )
        yield raw[pos : pos + size]
        pos += size


def _rejected(k: int, error: BaseException, *, piece: bytes = b"", doc: Any = None) -> QuarantinedDoc:
    """A document that cannot be decoded or converted, kept as (leniently decoded) JSON, or as hex when
    even that fails, with its error."""
    doc_id, text = f"document {k} of its batch", piece[: MAX_DOC_JSON // 2].hex()
    try:
        doc = bson.decode(piece, _LENIENT) if doc is None else doc
        doc_id = str(doc.get("_id", doc_id)) if doc.__class__ is dict else doc_id
        text = _doc_json(doc)
    except _DOCUMENT_ERRORS:
        pass  # not even leniently decodable: the hex of its first bytes is what there is to inspect
    detail = f"{type(error).__name__}: {_describe(str(error))}"
    return QuarantinedDoc(doc_id, Reason.NOT_A_DOCUMENT.value, "(document)", detail, text)


def read_window(
    db: Any,
    cfg: ModelConfig,
    window: Window,
    progress: Callable[[int], None] | None = None,
    expected_rows: int | None = None,
) -> Batch:
    """Read, validate and type one window, then join the labels that have arrived (``expected_rows``:
    the window's estimated size, see :func:`decode_batches`)."""
    from pymongo.errors import PyMongoError

    t0 = time.perf_counter()
    coll = db[cfg.source.collection]
    try:
        raw = iter_raw_batches(coll, window_filter(cfg, window), projection(cfg), cfg.source.batch_size)
        batch = decode_batches(raw, cfg, window, progress, expected_rows)
        batch.n_unreadable_timestamps = count_unreadable_timestamps(coll, cfg, window)
        if cfg.source.labels and not cfg.fields.target and len(batch.frame):
            batch.n_labels_joined = join_labels(db, cfg, batch.frame, shadow=batch.shadow)
    except PyMongoError as e:
        raise SourceUnavailable(
            f"MongoDB read of {cfg.source.database}.{cfg.source.collection} for model {cfg.name!r} window {window} "
            f"failed: {e}. Check MLMON_MONGO_URI and that the server is running."
        ) from e
    batch.seconds = time.perf_counter() - t0
    return batch


def join_labels(
    db: Any, cfg: ModelConfig, frame: pd.DataFrame, chunk: int = 5000, *, shadow: pd.DataFrame | None = None
) -> int:
    """Fill ``__target`` from the labels collection (latest label per request id); returns rows labelled.

    ``shadow`` (the window's shadow predictions) gets the same labels in the same pass: a request's
    served and shadow predictions share its request id, so both are labelled by one lookup."""
    src = cfg.source.labels
    assert src is not None
    if c.REQUEST_ID not in frame:
        return 0
    ids = [i for i in pd.unique(frame[c.REQUEST_ID].dropna()) if i]
    if shadow is not None and len(shadow) and c.REQUEST_ID in shadow:
        known = set(ids)
        ids += [i for i in pd.unique(shadow[c.REQUEST_ID].dropna()) if i and i not in known]
    if not ids:
        return 0
    coll = db[src.collection]
    proj = {src.request_id.split(".")[0]: 1, src.label.split(".")[0]: 1}
    if src.timestamp:
        proj[src.timestamp.split(".")[0]] = 1
    rid_path, label_path = _split(src.request_id), _split(src.label)
    ts_path = _split(src.timestamp) if src.timestamp else None
    latest: dict[str, tuple[int, Any]] = {}
    for k in range(0, len(ids), chunk):
        part = ids[k : k + chunk]
        for raw in coll.find_raw_batches({src.request_id: {"$in": part}}, proj, batch_size=10_000):
            for doc in bson.decode_all(raw, CODEC):
                rid = _dig(doc, rid_path)
                label = _dig(doc, label_path)
                if rid is None or label is None or isinstance(label, (dict, list)):
                    continue
                when = _dig(doc, ts_path) if ts_path else None
                order = int(when) if isinstance(when, bson.DatetimeMS) else 0
                key = str(rid)
                if key not in latest or order >= latest[key][0]:
                    latest[key] = (order, label)
    if not latest:
        return 0
    labels = {k: v for k, (_, v) in latest.items()}
    if shadow is not None and len(shadow) and c.REQUEST_ID in shadow:
        _fill_target(shadow, labels, cfg)
    return _fill_target(frame, labels, cfg)


def _fill_target(frame: pd.DataFrame, labels: dict[str, Any], cfg: ModelConfig) -> int:
    mapped = frame[c.REQUEST_ID].map(labels)
    if cfg.task is TaskType.REGRESSION:
        target = pd.to_numeric(mapped, errors="coerce")
    else:
        target = mapped.map(
            lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else _label(v)
        )
    frame[c.TARGET] = target.astype(object) if cfg.task is not TaskType.REGRESSION else target
    return int(target.notna().sum())


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _dig(doc: Any, path: tuple[str, ...] | None) -> Any:
    if path is None:
        return None
    for p in path:
        if doc.__class__ is not dict:
            return None
        doc = doc.get(p)
    return doc
