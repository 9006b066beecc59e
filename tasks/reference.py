"""Reference datasets: load, hash, fit the profile once, and build one from a past window in MongoDB."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tasks import contract as c
from tasks.config import Kind, ModelConfig
from tasks.errors import ReferenceDataError
from tasks.profile import PROFILE_VERSION, CategoricalProfile, NumericalProfile, Profile

N_BINS = 20
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def content_hash(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of the file's bytes: which reference a run used."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def fit_numerical(values: np.ndarray | pd.Series, n_bins: int = N_BINS) -> NumericalProfile:
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
    finite = np.sort(arr[np.isfinite(arr)])
    n_missing = int(arr.size - finite.size)
    if finite.size == 0:
        empty = np.array([], dtype=np.float64)
        return NumericalProfile(empty, n_missing, 0.0, 0.0, 0.0, 0.0, {}, empty, np.zeros(1, dtype=np.int64))
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    return NumericalProfile(
        sorted_values=finite,
        n_missing=n_missing,
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite[0]),
        max=float(finite[-1]),
        quantiles={q: float(np.quantile(finite, q)) for q in QUANTILES},
        bin_edges=edges,
        bin_counts=counts.astype(np.int64),
    )


def fit_categorical(values: np.ndarray | pd.Series) -> CategoricalProfile:
    s = pd.Series(values, dtype=object)
    present = s[s.notna()].astype(str)
    vc = present.value_counts().sort_index()
    return CategoricalProfile(
        categories=tuple(vc.index), counts=vc.to_numpy(dtype=np.int64), n_missing=int(s.size - present.size)
    )


def fit_profile(df: pd.DataFrame, kinds: dict[str, Kind], reference_hash: str) -> Profile:
    """Fit every column present in ``df`` (absent ones are skipped)."""
    cols = {
        name: fit_numerical(df[name]) if kind is Kind.NUMERICAL else fit_categorical(df[name])
        for name, kind in kinds.items()
        if name in df.columns
    }
    return Profile(reference_hash=reference_hash, n_rows=len(df), columns=cols)


def save_profile(profile: Profile, path: Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)


def load_profile(path: Path) -> Profile | None:
    """A cached profile, or None when absent, unreadable or fitted by another profile version."""
    try:
        profile = pickle.loads(Path(path).read_bytes())  # our own cache file under MLMON_HOME
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    if not isinstance(profile, Profile) or profile.version != PROFILE_VERSION:
        return None
    return profile


# --------------------------------------------------------------------------- the model's baseline


@dataclass(frozen=True)
class Baseline:
    """A model's reference frame and its fitted profile (fitted once per reference content hash)."""

    frame: pd.DataFrame
    profile: Profile


REFERENCE_COLUMNS_DROPPED = (c.ID, c.REQUEST_ID, c.TIMESTAMP, c.STATUS)  # per-request, not distributional


def load_reference(cfg: ModelConfig) -> pd.DataFrame:
    """The model's reference Parquet; a clear error if it is missing or lacks configured features."""
    path = cfg.reference_path
    if not path.exists():
        raise ReferenceDataError(
            f"model {cfg.name!r}: reference {path} not found; build it with "
            f"`mlmon reference build {cfg.name} --start <ISO> --end <ISO>`"
        )
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise ReferenceDataError(f"model {cfg.name!r}: cannot read reference {path}: {e}") from e
    missing = [f for f in cfg.features if f not in frame.columns]
    if missing:
        raise ReferenceDataError(
            f"model {cfg.name!r}: reference {path} lacks configured features {missing}; rebuild it"
        )
    return frame


def baseline(cfg: ModelConfig, profiles_dir: Path) -> Baseline:
    """Load the reference and its profile, fitting (and caching) the profile only when the file changed."""
    from tasks.checks.performance import reference_performance
    from tasks.evaluate import profile_kinds

    frame = load_reference(cfg)
    ref_hash = content_hash(cfg.reference_path)
    kinds = profile_kinds(cfg)
    key = hashlib.sha256(
        repr((ref_hash, sorted((k, v.value) for k, v in kinds.items()))).encode()
    ).hexdigest()[:16]
    cache = Path(profiles_dir) / f"{cfg.name.replace('/', '_')}-{key}.pkl"
    profile = load_profile(cache)
    if profile is None or profile.reference_hash != ref_hash:
        profile = fit_profile(frame, kinds, ref_hash)
        profile = replace(profile, performance=reference_performance(frame, cfg))
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_profile(profile, cache)
    return Baseline(frame=frame, profile=profile)


def build_from_mongo(
    uri: str, cfg: ModelConfig, start: datetime, end: datetime, out: Path
) -> dict[str, object]:
    """Extract ``[start, end)`` of the model's logs (same contract, labels joined) into a reference Parquet."""
    import pymongo

    from tasks.extract import read_window
    from tasks.window import Window

    window = Window(start, end)
    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    try:
        batch = read_window(client[cfg.source.database], cfg, window)
    finally:
        client.close()
    frame = batch.frame.drop(columns=[x for x in REFERENCE_COLUMNS_DROPPED if x in batch.frame.columns])
    if frame.empty:
        raise ReferenceDataError(
            f"model {cfg.name!r}: no valid documents in {window} to build a reference from "
            f"({batch.n_quarantined} quarantined); pick a window with traffic"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    frame.reset_index(drop=True).to_parquet(tmp, index=False)
    tmp.replace(out)  # atomic: a reader never sees a half-written reference
    return {
        "rows": len(frame),
        "quarantined": batch.n_quarantined,
        "labelled": int(frame[c.TARGET].notna().sum()) if c.TARGET in frame else 0,
        "hash": content_hash(out),
        "path": str(out),
    }
