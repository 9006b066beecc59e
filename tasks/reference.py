"""Reference datasets: hash the file, fit its profile once, cache it, and build one from past logs.

Fit once, score many: everything a drift method or a quality check needs from the reference (sorted
finite values, quantile bins and their counts, category counts, ranges, missing shares, the reference's
own model quality) is computed here once per reference *content hash* and pickled under
``MLMON_HOME/profiles``; every window reuses it.

>>> p = fit_numerical(np.array([3.0, 1.0, np.nan, 2.0, 2.0]), n_bins=4)
>>> p.sorted_values.tolist(), p.n_missing, p.bin_edges.tolist(), p.bin_counts.tolist()
([1.0, 2.0, 2.0, 3.0], 1, [1.0, 2.0], [1, 2, 1])
>>> c = fit_categorical(["b", None, "a", "b"])
>>> c.categories, c.counts.tolist(), c.n_missing
(('a', 'b'), [1, 2], 1)
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.config import Kind, ModelConfig, TaskType
from mlmon.tasks.errors import ReferenceDataError
from mlmon.tasks.profile import PROFILE_VERSION, CategoricalProfile, NumericalProfile, Profile

N_BINS = 20
"""Default number of quantile bins for the binned methods (PSI, Jensen–Shannon, KL) on numerical columns."""

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def content_hash(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of the file's bytes: which reference a run used."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- fitting


def fit_numerical(values: np.ndarray | pd.Series, n_bins: int = N_BINS) -> NumericalProfile:
    """Profile of one numerical column. NaN, None, ±inf and non-numbers count as missing.

    Bins are right-closed, ``(e[i-1], e[i]]``, with interior edges at the reference's ``k/n_bins``
    quantiles taken as observed values (``inverted_cdf``) and de-duplicated: on integer-valued data
    each frequent value gets its own bin instead of edges interpolated between integers.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    arr = _as_float(values)
    finite = np.sort(arr[np.isfinite(arr)])
    n_missing = int(arr.size - finite.size)
    if finite.size == 0:
        nan = float("nan")
        empty = np.array([], dtype=np.float64)
        return NumericalProfile(empty, n_missing, nan, nan, nan, nan, {}, empty, np.zeros(1, dtype=np.int64))
    levels = np.arange(1, n_bins) / n_bins
    edges = np.unique(np.quantile(finite, levels, method="inverted_cdf")) if n_bins > 1 else finite[:0]
    # counts per right-closed bin from the sorted values: #(x <= e[i]) is a binary search per edge
    below = np.searchsorted(finite, edges, side="right")
    counts = np.diff(np.concatenate(([0], below, [finite.size])))
    return NumericalProfile(
        sorted_values=finite,
        n_missing=n_missing,
        mean=float(finite.mean()),
        std=float(finite.std()),  # population (ddof=0), as Evidently norms its Wasserstein distance
        min=float(finite[0]),
        max=float(finite[-1]),
        quantiles={q: float(np.quantile(finite, q)) for q in QUANTILES},
        bin_edges=edges.astype(np.float64),
        bin_counts=counts.astype(np.int64),
        n_distinct=int(np.count_nonzero(finite[1:] != finite[:-1]) + 1),
    )


def fit_categorical(values: np.ndarray | pd.Series | list[str | None]) -> CategoricalProfile:
    """Profile of one categorical column: sorted categories and their counts. None/NaN count as missing.

    Non-string values (e.g. integers from a hand-made Parquet file) are compared as their ``str``.
    """
    s = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    vc = s.value_counts(dropna=True)
    n_missing = int(s.size - vc.sum())
    if len(vc) and not all(isinstance(k, str) for k in vc.index):
        vc = vc.groupby(vc.index.map(str)).sum()  # only the distinct values are converted
    vc = vc.sort_index()
    return CategoricalProfile(
        categories=tuple(str(k) for k in vc.index), counts=vc.to_numpy(dtype=np.int64), n_missing=n_missing
    )


def fit_profile(df: pd.DataFrame, kinds: dict[str, Kind], reference_hash: str) -> Profile:
    """Fit every column of ``kinds`` present in ``df``; columns absent from ``df`` are skipped."""
    columns = {
        name: fit_numerical(df[name]) if kind is Kind.NUMERICAL else fit_categorical(df[name])
        for name, kind in kinds.items()
        if name in df.columns
    }
    return Profile(reference_hash=reference_hash, n_rows=len(df), columns=columns)


def _as_float(values: np.ndarray | pd.Series) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    return pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


# --------------------------------------------------------------------------- the profile cache


def save_profile(profile: Profile, path: str | Path) -> None:
    """Pickle the profile atomically (a concurrent reader sees the old file or the new one, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)


def load_profile(path: str | Path) -> Profile | None:
    """A cached profile, or None when absent, unreadable or fitted by another ``PROFILE_VERSION``.

    Only ever reads mlmon's own cache under ``MLMON_HOME`` (pickle executes code: never point it at
    files from elsewhere).
    """
    try:
        profile = pickle.loads(Path(path).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    if not isinstance(profile, Profile) or getattr(profile, "version", None) != PROFILE_VERSION:
        return None
    return profile


# --------------------------------------------------------------------------- the model's baseline


@dataclass(frozen=True)
class Baseline:
    """A model's reference frame and its fitted profile (fitted once per reference content hash)."""

    frame: pd.DataFrame
    profile: Profile


REFERENCE_COLUMNS_DROPPED = (c.ID, c.REQUEST_ID, c.TIMESTAMP, c.STATUS)  # per-request, not distributional


_ROLE_NAMES = {  # ordinary names a reference made outside mlmon uses for the model's outputs
    "prediction": ("prediction", "predicted", "predicted_label", "pred", "y_pred", "yhat"),
    "score": ("score", "y_score", "proba", "probability", "prob", "p", "confidence"),
    "target": ("target", "label", "y", "y_true", "ground_truth", "actual", "truth"),
}
_INTERNAL = {"prediction": c.PREDICTION, "score": c.SCORE, "target": c.TARGET}


@dataclass(frozen=True)
class ReferenceCheck:
    """What a reference file lacks for its config: ``problems`` make it unusable, ``notes`` are
    checks that will be skipped (said, not silent)."""

    problems: tuple[str, ...]
    notes: tuple[str, ...]


def reference_columns(cfg: ModelConfig) -> dict[str, str]:
    """File column -> frame column for the reference's prediction, score and target."""
    mapped = cfg.reference.columns
    out = {}
    for role, internal in _INTERNAL.items():
        name = getattr(mapped, role)
        out[name or internal] = internal
    return out


def check_columns(cfg: ModelConfig, columns: list[str]) -> ReferenceCheck:
    """Whether a reference with these columns has what the config needs (features, and the prediction /
    score / target columns the model's checks compare against)."""
    where = f"model {cfg.name!r}: reference {cfg.reference_path}"
    have = set(columns)
    problems: list[str] = []
    notes: list[str] = []
    missing = [f for f in cfg.features if f not in have]
    if missing:
        problems.append(f"{where} lacks configured features {missing} (it has {sorted(have)[:20]})")
    mapped = cfg.reference.columns
    needed = {
        "prediction": cfg.task is not TaskType.NONE,
        "score": cfg.task in (TaskType.BINARY, TaskType.MULTICLASS) and cfg.fields.probabilities is not None,
        "target": cfg.task is not TaskType.NONE and bool(cfg.fields.target or cfg.source.labels),
    }
    for role, internal in _INTERNAL.items():
        name = getattr(mapped, role)
        if name is not None:
            if name not in have:
                problems.append(
                    f"{where}: reference.columns.{role} is {name!r}, which the file does not have "
                    f"(it has {sorted(have)[:20]})"
                )
            continue
        if internal in have or not needed[role]:
            continue
        look_alike = [n for n in _ROLE_NAMES[role] if n in have and n not in cfg.features]
        if look_alike:
            problems.append(
                f"{where} has a column {look_alike[0]!r} but no mapping for the {role}: set "
                f"reference.columns.{role}: {look_alike[0]} (or the column holding it)"
            )
        elif role == "target":
            notes.append(
                f"{where} has no target column (reference.columns.target): model quality is checked "
                "against performance.thresholds only, not against the reference's own quality"
            )
        else:
            what = "prediction drift" if role == "prediction" else "score drift"
            problems.append(
                f"{where} has no {role} column: set reference.columns.{role} to the column holding it "
                f"(needed for {what} and the quality-vs-reference checks), or set task: none"
            )
    return ReferenceCheck(tuple(problems), tuple(notes))


def check_reference(cfg: ModelConfig) -> ReferenceCheck:
    """:func:`check_columns` on the reference file's schema (read without loading the data)."""
    import pyarrow.parquet as pq

    path = cfg.reference_path
    if not path.exists():
        return ReferenceCheck(
            (
                f"model {cfg.name!r}: reference {path} not found (key reference.path); build it with "
                f"`mlmon reference build {cfg.name} --start <ISO> --end <ISO>`",
            ),
            (),
        )
    try:
        names = list(pq.read_schema(path).names)
    except (OSError, ValueError) as e:
        return ReferenceCheck((f"model {cfg.name!r}: cannot read reference {path} as Parquet: {e}",), ())
    return check_columns(cfg, names)


def load_reference(cfg: ModelConfig) -> pd.DataFrame:
    """The model's reference Parquet, its prediction / score / target columns renamed to mlmon's; a
    clear error if it is missing or lacks what the config needs."""
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
    check = check_columns(cfg, [str(x) for x in frame.columns])
    if check.problems:
        raise ReferenceDataError("; ".join(check.problems))
    rename = {k: v for k, v in reference_columns(cfg).items() if k != v and k in frame.columns}
    if rename:
        frame = frame.drop(columns=[v for v in rename.values() if v in frame.columns]).rename(columns=rename)
    return frame


def profile_cache_path(
    profiles_dir: str | Path, model: str, reference_hash: str, kinds: dict[str, Kind]
) -> Path:
    """Cache file of a profile: keyed by the reference content and by what is fitted (columns, kinds)."""
    key = hashlib.sha256(repr((reference_hash, sorted((k, v.value) for k, v in kinds.items()))).encode())
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model)
    return Path(profiles_dir) / f"{safe}-{key.hexdigest()[:16]}.pkl"


def baseline(cfg: ModelConfig, profiles_dir: str | Path) -> Baseline:
    """Load the reference and its profile, fitting (and caching) the profile only when the file changed."""
    from mlmon.tasks.checks.families import fit_families, needs_fit
    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.evaluate import profile_kinds

    frame = load_reference(cfg)
    ref_hash = content_hash(cfg.reference_path)
    kinds = profile_kinds(cfg)
    cache = profile_cache_path(profiles_dir, cfg.name, ref_hash, kinds)
    profile = load_profile(cache)
    if profile is None or profile.reference_hash != ref_hash:
        profile = fit_profile(frame, kinds, ref_hash)
        profile = replace(profile, performance=reference_performance(frame, cfg))
        profile = fit_families(profile, frame, cfg)
        save_profile(profile, cache)
    elif needs_fit(profile, cfg):  # a method enabled or re-configured since the profile was cached
        profile = fit_families(profile, frame, cfg)
        save_profile(profile, cache)
    return Baseline(frame=frame, profile=profile)


def build_from_mongo(
    uri: str, cfg: ModelConfig, start: datetime, end: datetime, out: Path
) -> dict[str, object]:
    """Extract ``[start, end)`` of the model's logs (same contract, labels joined) into a reference
    Parquet; returns its rows, quarantined and labelled counts, content hash and path."""
    from mlmon.tasks.connect import mongo_client
    from mlmon.tasks.extract import read_window
    from mlmon.tasks.window import Window

    window = Window(start, end)
    client = mongo_client(uri)
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
    tmp = out.with_name(out.name + ".tmp")
    frame.reset_index(drop=True).to_parquet(tmp, index=False)
    tmp.replace(out)  # atomic: a reader never sees a half-written reference
    return {
        "rows": len(frame),
        "quarantined": batch.n_quarantined,
        "labelled": int(frame[c.TARGET].notna().sum()) if c.TARGET in frame else 0,
        "hash": content_hash(out),
        "path": str(out),
    }
