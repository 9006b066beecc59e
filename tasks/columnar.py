"""Columnar BSON decoding: a raw batch of same-shaped documents straight into typed columns.

``bson.decode_all`` builds a Python dict per document and a Python object per value; at 1M documents
that is most of an extraction's time. Documents logged by one serving app share one layout: the same
keys in the same order with the same value types, only the values (and string lengths) differ. This
decoder takes the layout of the batch's first document as a template and walks every document of the
batch through it at once with NumPy (one gather per 8 bytes of an element, for all documents), checking each key and
type byte; each mapped field becomes an array without any per-document Python object (categories are
decoded once per distinct value).

Only what it can prove clean is decoded here: a document that differs from the template in any way
(another key or order, another type, a missing or extra field), or whose values the contract could
object to (non-finite or out-of-bounds numbers, non-ASCII or over-long strings, probabilities off,
labels outside ``classes``, a timestamp outside the frame's range), is handed back to the exact path
(:func:`mlmon.tasks.extract.decode_documents`) with its position; so is a whole batch whose template is
outside this decoder's scope (arrays, string timestamps, business flags, …). The exact path therefore
still decides every quarantine, and the frame is the exact path's (tests/test_extract_columnar.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.config import ModelConfig, TaskType

# BSON element types this decoder reads, by class: any number is a number, as for the exact path
_NUMBER, _STRING, _DOCUMENT, _BOOL, _NULL, _OBJECT_ID, _DATE = (
    "num",
    "str",
    "doc",
    "bool",
    "null",
    "oid",
    "date",
)
_CLASS = {0x01: _NUMBER, 0x10: _NUMBER, 0x12: _NUMBER, 0x02: _STRING, 0x03: _DOCUMENT, 0x08: _BOOL,
          0x0A: _NULL, 0x07: _OBJECT_ID, 0x09: _DATE}  # fmt: skip
_TYPES = {
    k: np.array([t for t, cl in _CLASS.items() if cl == k], dtype=np.uint8) for k in set(_CLASS.values())
}
_FIXED = {0x01: 8, 0x10: 4, 0x12: 8, 0x08: 1, 0x0A: 0, 0x07: 12, 0x09: 8}
MAX_STRING = 4096
"""Longer strings (in any field) take the exact path: a string is read 8 bytes at a time for all documents."""
MAX_ID = 128


@dataclass
class _Element:
    """One element of the template: its key (as bytes, NUL included), type class and children."""

    key: bytes
    cls: str
    children: list[_Element] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.key[:-1].decode()


class _Shape(Exception):
    """The template (first document) is outside this decoder's scope: the batch takes the exact path."""


def _template(raw: bytes, start: int) -> list[_Element]:
    size = struct.unpack_from("<i", raw, start)[0]
    elements, end = _parse(raw, start + 4, start + size - 1)
    if end != start + size - 1 or raw[end] != 0:
        raise _Shape("document length")
    return elements


def _parse(raw: bytes, pos: int, stop: int) -> tuple[list[_Element], int]:
    out: list[_Element] = []
    seen: set[bytes] = set()
    while pos < stop:
        t = raw[pos]
        nul = raw.index(b"\x00", pos + 1)
        key = raw[pos + 1 : nul + 1]
        if key in seen or t not in _CLASS:
            raise _Shape("duplicate key or unsupported type")
        seen.add(key)
        key[:-1].decode()  # a key that is not UTF-8: the decoder rejects it, so does the exact path
        pos = nul + 1
        cls = _CLASS[t]
        if cls == _STRING:
            pos += 4 + struct.unpack_from("<i", raw, pos)[0]
            out.append(_Element(key, cls))
        elif cls == _DOCUMENT:
            size = struct.unpack_from("<i", raw, pos)[0]
            children, end = _parse(raw, pos + 4, pos + size - 1)
            if end != pos + size - 1:
                raise _Shape("embedded document length")
            out.append(_Element(key, cls, children))
            pos += size
        else:
            pos += _FIXED[t]
            out.append(_Element(key, cls))
    return out, pos


class _Walk:
    """Every document of a batch walked through the template at once: values by path, and ``ok``.

    Reads are 8-byte little-endian words at any byte position (an unaligned ``uint64`` view of the
    buffer, one 1-D gather per read for all documents): a key, a number, a length or up to 8 bytes of a
    string are one or two reads, never a documents × bytes matrix."""

    def __init__(self, raw: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        # padded so that a string of up to MAX_STRING bytes can start at any position of the batch
        self.buf = np.concatenate([np.frombuffer(raw, dtype=np.uint8), np.zeros(MAX_STRING + 16, np.uint8)])
        self._words = np.ndarray((self.buf.size - 7,), dtype="<u8", buffer=self.buf, strides=(1,))
        self.last = len(raw) - 1
        self.ends = ends  # position of each document's terminating NUL
        self.ok = np.ones(starts.size, dtype=bool)
        self.values: dict[
            tuple[str, ...], tuple[str, np.ndarray, np.ndarray]
        ] = {}  # path -> (cls, types, pos)
        self.keys: dict[tuple[str, ...], list[str]] = {}  # path of a document -> its keys
        self.starts = starts

    def word(self, pos: np.ndarray) -> np.ndarray:
        """The 8 bytes from each position as one little-endian ``uint64`` (positions of broken documents
        are clipped into the buffer, they are not ok anyway)."""
        return self._words[np.clip(pos, 0, self.last)]

    def byte(self, pos: np.ndarray) -> np.ndarray:
        return self.buf[np.clip(pos, 0, self.last)]

    def int32(self, pos: np.ndarray) -> np.ndarray:
        return (self.word(pos) & _LOW[4]).astype(np.uint32).view(np.int32).astype(np.int64)

    def head(self, pos: np.ndarray, key: bytes) -> tuple[np.ndarray, np.ndarray]:
        """An element's type byte at each position, and whether its key (NUL included) follows."""
        first = self.word(pos)
        t = (first & _LOW[1]).astype(np.uint8)
        data = key[:7]
        same = (first >> np.uint64(8)) & _LOW[len(data)] == np.uint64(int.from_bytes(data, "little"))
        for i in range(7, len(key), 8):
            chunk = key[i : i + 8]
            same &= self.word(pos + 1 + i) & _LOW[len(chunk)] == np.uint64(int.from_bytes(chunk, "little"))
        return t, same

    def chunks(self, start: np.ndarray, length: np.ndarray, width: int) -> Iterator[np.ndarray]:
        """The first ``width`` bytes from each start, 8 at a time, bytes past each ``length`` zeroed."""
        for i in range(0, width, 8):
            yield self.word(start + i) & _LOW[np.clip(length - i, 0, 8)]

    def document(
        self, elements: list[_Element], pos: np.ndarray, end: np.ndarray, path: tuple[str, ...]
    ) -> None:
        """Walk the elements of one (embedded) document starting at ``pos``; its NUL must be at ``end``."""
        self.keys[path] = [e.name for e in elements]
        for e in elements:
            t, same = self.head(pos, e.key)
            allowed = _TYPES[e.cls]
            self.ok &= same & (t == allowed[0] if allowed.size == 1 else np.isin(t, allowed))
            width = len(e.key)
            vpos = pos + 1 + width
            sub = (*path, e.name)
            if e.cls == _STRING:
                length = self.int32(vpos)
                self.ok &= (length >= 1) & (length <= MAX_STRING + 1)
                self.ok &= self.byte(vpos + 3 + length) == 0  # the string's terminating NUL
                self._text(vpos + 4, length - 1)
                size = 4 + length
            elif e.cls == _BOOL:
                self.ok &= self.byte(vpos) <= 1
                size = np.ones(pos.size, dtype=np.int64)
            elif e.cls == _DOCUMENT:
                size = self.int32(vpos)
                self.ok &= size >= 5
                self.document(e.children, vpos + 4, vpos + size - 1, sub)
            else:
                size = np.zeros(pos.size, dtype=np.int64)
                for typ, w in _FIXED.items():
                    if _CLASS[typ] == e.cls:
                        size[t == typ] = w
            self.values[sub] = (e.cls, t, vpos)
            pos = vpos + size
            self.ok &= pos <= end
        self.ok &= pos == end
        self.ok &= self.byte(end) == 0

    def _text(self, start: np.ndarray, length: np.ndarray) -> None:
        """Every string must be ASCII without NUL to be decoded here (the decoder would reject bad
        UTF-8; anything else non-ASCII is left to the exact path)."""
        width = int(min(length[self.ok].max(initial=0), MAX_STRING))
        bad = np.zeros(length.size, dtype=bool)
        for i in range(0, width, 8):
            inside = _LOW[np.clip(length - i, 0, 8)]
            v = self.word(start + i) & inside
            marked = v | ~inside  # bytes past the string set to 0xFF: not a NUL
            bad |= (v & _HIGH) != 0  # a byte ≥ 0x80
            bad |= ((marked - _ONES) & ~marked & _HIGH) != 0  # a NUL byte
        self.ok &= ~bad

    # ------------------------------------------------------------------ typed values

    def numbers(self, path: tuple[str, ...]) -> np.ndarray:
        _, t, vpos = self.values[path]
        w = self.word(vpos)
        out = w.view("<f8")
        for typ, low in ((0x10, 4), (0x12, 8)):
            rows = t == typ
            if rows.any():
                x = w[rows] & _LOW[low]
                out[rows] = x.astype(np.uint32).view(np.int32) if low == 4 else x.view(np.int64)
        return out

    def int64(self, path: tuple[str, ...]) -> np.ndarray:
        _, _, vpos = self.values[path]
        return self.word(vpos).view("<i8")

    def strings(self, path: tuple[str, ...], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-document codes into distinct values (an object array of ``str``); non-ASCII, NUL inside,
        or longer than ``max_len``: not ok (the exact path decides)."""
        _, _, vpos = self.values[path]
        length = self.int32(vpos) - 1
        self.ok &= (length <= max_len) & (length >= 0)
        width = int(max(min(length[self.ok].max(initial=0), max_len), 1))
        words = list(self.chunks(vpos + 4, length, width))
        if len(words) == 1:  # up to 8 bytes: the word itself is the key (no string sort)
            uniques, codes = np.unique(words[0], return_inverse=True)
            fixed = uniques.view("S8")
        else:  # little-endian words side by side are the bytes in order, NUL-padded
            fixed = np.ascontiguousarray(np.column_stack(words)).view(f"S{8 * len(words)}").ravel()
            fixed, codes = np.unique(fixed, return_inverse=True)
        return np.array([u.decode("ascii", "replace") for u in fixed.tolist()], dtype=object), codes


_LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the k low bytes of a word
_ONES, _HIGH = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)


@dataclass
class Columns:
    """What the columnar decoder made of a batch: the typed data of the documents it decoded, in the
    exact path's column order, their positions, and the positions it hands back to the exact path."""

    data: dict[str, np.ndarray]
    rows: np.ndarray  # positions (in the batch) of the documents decoded here, ascending
    rest: np.ndarray  # positions of the documents for the exact path, ascending
    n_other_window: int
    unexpected_fields: dict[str, int]


def document_bounds(raw: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end (terminating NUL) of each document, or None when the length prefixes do not add up."""
    starts: list[int] = []
    pos, end = 0, len(raw)
    unpack = struct.Struct("<i").unpack_from
    while pos < end:
        if pos + 4 > end:
            return None
        size = unpack(raw, pos)[0]
        if size < 5 or pos + size > end:
            return None
        starts.append(pos)
        pos += size
    s = np.array(starts, dtype=np.int64)
    e = np.append(s[1:], end) - 1
    return s, e


def decode(raw: bytes, cfg: ModelConfig, columns: list, lo_ms: int | None, hi_ms: int | None,
           limits: tuple[int, int]) -> Columns | None:  # fmt: skip
    """Decode the documents of ``raw`` that match its first document's layout; None: all to the exact path.

    ``columns``: the exact path's :class:`~mlmon.tasks.extract.Column` list; ``lo_ms``/``hi_ms``: the
    window (documents outside are another window's); ``limits``: the instants a frame can hold.
    """
    if cfg.fields.timestamp_type != "date":
        return None
    bounds = document_bounds(raw)
    if bounds is None or bounds[0].size == 0:
        return None
    starts, ends = bounds
    try:
        template = _template(raw, int(starts[0]))
    except (_Shape, ValueError, struct.error, IndexError, RecursionError):
        return None
    walk = _Walk(raw, starts, ends)
    walk.document(template, starts + 4, ends, ())
    try:
        data = _typed(walk, cfg, columns, limits)
    except _Shape:
        return None
    n_other = 0
    ok = walk.ok
    if lo_ms is not None and hi_ms is not None:
        ts = data[c.TIMESTAMP]
        elsewhere = ok & ((ts < lo_ms) | (ts >= hi_ms))
        n_other = int(elsewhere.sum())
        keep = ok & ~elsewhere
    else:
        keep = ok
    rows = np.flatnonzero(keep)
    out = data if rows.size == keep.size else {k: v[rows] for k, v in data.items()}
    return Columns(out, rows, np.flatnonzero(~ok), n_other, _unexpected(walk, cfg, rows.size))


def _element(walk: _Walk, path: tuple[str, ...], cls: str) -> bool:
    """Is ``path`` in the template with this class? A mapped path that is absent or of another class
    takes the batch to the exact path (it decides missing and wrong-typed values)."""
    got = walk.values.get(path)
    if got is None or got[0] != cls:
        raise _Shape(f"{'.'.join(path)} is not a {cls}")
    return True


def _typed(walk: _Walk, cfg: ModelConfig, columns: list, limits: tuple[int, int]) -> dict[str, np.ndarray]:
    max_len = cfg.quality.max_string_length
    data: dict[str, np.ndarray] = {}
    classes = set(cfg.classes or [])
    id_ = walk.values.get(("_id",))
    n = walk.ok.size
    for col in columns:
        path = col.path
        if col.kind == "timestamp":
            _element(walk, path, _DATE)
            ms = walk.int64(path)
            walk.ok &= (ms >= limits[0]) & (ms <= limits[1])
            data[col.name] = ms
        elif col.kind == "number":
            _element(walk, path, _NUMBER)
            x = walk.numbers(path)
            good = np.isfinite(x)
            if col.bounds is not None:
                with np.errstate(invalid="ignore"):
                    good &= (x >= col.bounds[0]) & (x <= col.bounds[1])
            walk.ok &= good
            data[col.name] = x
        elif col.kind in ("category", "text", "label"):
            _element(walk, path, _STRING)
            uniques, codes = walk.strings(path, max_len)
            if col.kind == "label" and classes:
                walk.ok &= np.isin(codes, [i for i, u in enumerate(uniques) if u in classes])
            data[col.name] = uniques[codes]
        elif col.kind == "probabilities":
            if cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS):
                continue
            _element(walk, path, _DOCUMENT)
            names = sorted(walk.keys[path])
            if not names or (classes and not set(names) <= classes):
                raise _Shape("probabilities of classes not configured")
            per_class = {}
            for k in names:
                _element(walk, (*path, k), _NUMBER)
                per_class[k] = walk.numbers((*path, k))
            mat = np.column_stack([per_class[k] for k in names])
            with np.errstate(invalid="ignore"):
                fine = np.isfinite(mat).all(axis=1) & ((mat >= 0) & (mat <= 1)).all(axis=1)
                if len(names) >= 2:
                    fine &= np.abs(mat.sum(axis=1) - 1.0) <= c.PROBABILITY_SUM_TOLERANCE
            walk.ok &= fine
            _scores(data, per_class, cfg)
        else:
            raise _Shape(f"{col.kind} fields take the exact path")
    if c.PREDICTION not in data and cfg.task is not TaskType.NONE and cfg.fields.prediction:
        raise _Shape("no prediction")
    if id_ is None:
        ids = np.full(n, "", dtype=object)
    elif id_[0] == _OBJECT_ID:
        pos = id_[2]
        two = np.column_stack([walk.word(pos), walk.word(pos + 8) & _LOW[4]])
        raw12 = two.view(np.uint8).reshape(-1, 16)[:, :12]
        hexed = np.ascontiguousarray(_HEX[raw12].reshape(-1, 24)).view("S24").ravel()
        ids = hexed.astype("U24").astype(object)
    elif id_[0] == _STRING:
        uniques, codes = walk.strings(("_id",), MAX_ID)
        ids = uniques[codes]
    elif id_[0] == _NUMBER and set(np.unique(id_[1]).tolist()) <= {0x10, 0x12}:
        ids = walk.numbers(("_id",)).astype(np.int64).astype(str).astype(object)
    else:
        raise _Shape("_id of another type")
    return {c.ID: ids, **data}


_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8).reshape(256, 2)


def _scores(data: dict[str, np.ndarray], per_class: dict[str, np.ndarray], cfg: ModelConfig) -> None:
    """The score (and, multiclass, per-class) columns, as the exact path derives them."""
    if cfg.task is TaskType.BINARY:
        pos = cfg.positive_class or (cfg.classes[1] if cfg.classes and len(cfg.classes) == 2 else None)
        if pos is None:
            pos = sorted(per_class)[-1]
        data[c.SCORE] = per_class.get(pos, np.full(len(next(iter(per_class.values()))), np.nan))
    else:
        for k, arr in per_class.items():
            data[c.PROBA_PREFIX + k] = arr
        data[c.SCORE] = np.column_stack(list(per_class.values())).max(axis=1)


def _unexpected(walk: _Walk, cfg: ModelConfig, n: int) -> dict[str, int]:
    """Fields of the feature objects the config does not map: the template's, once per decoded document."""
    if n == 0:
        return {}
    parents = {cfg.feature_path(f).rsplit(".", 1)[0] for f in cfg.features if "." in cfg.feature_path(f)}
    mapped = {cfg.feature_path(f) for f in cfg.features} | {b.path for b in cfg.business_fields.values()}
    out: dict[str, int] = {}
    for parent in parents:
        for k in walk.keys.get(tuple(parent.split(".")), []):
            if f"{parent}.{k}" not in mapped:
                out[f"{parent}.{k}"] = n
    return out


def frame(cols: Columns) -> pd.DataFrame:
    """The decoded columns as a frame in the exact path's dtypes (timestamp as datetime64[ns, UTC])."""
    data = dict(cols.data)
    out = pd.DataFrame(data, index=pd.RangeIndex(cols.rows.size), copy=False)  # fresh arrays: no copy
    out[c.TIMESTAMP] = pd.to_datetime(out[c.TIMESTAMP], unit="ms", utc=True)
    return out
