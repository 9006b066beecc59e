"""Reference strategies: the fixed reference file, or a rolling reference built from the model's own logs.

A fixed reference answers "is production still like training?"; a model that lives through seasons
also needs "is this window unlike the last few?". ``reference.strategy`` (and ``reference.families``
per check family: ``drift`` and the model-health sections fitted on the reference, e.g. ``outliers``)
chooses. A rolling reference is the model's valid logged rows of the last ``rolling.windows`` windows
before the monitored one, or of the same window one ``rolling.period`` earlier; it is read and fitted
once per monitored window (cached under the profiles folder by its content) and recorded on the run
(``mlmon.runs.reference_hash`` names both references). With fewer than ``rolling.min_rows`` rows the
families fall back to the fixed reference and the result says so (a ``reference`` check that warns:
insufficient data). Quality, performance and service health always use the fixed reference.

>>> from datetime import UTC, datetime
>>> from mlmon.tasks.config import model_from_dict
>>> cfg = model_from_dict({"features": {"x": {"type": "numerical"}},
...                        "reference": {"path": "r.parquet", "strategy": "rolling", "rolling": {"windows": 3}}})
>>> w = Window(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
>>> span = rolling_span(cfg, w)
>>> span.start.day, span.end.day, {"drift", "outliers"} <= rolling_families(cfg)
(7, 10, True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Status, WindowResult
from mlmon.tasks.window import Window, parse_duration

if TYPE_CHECKING:
    from mlmon.tasks.config import ModelConfig
    from mlmon.tasks.extract import Batch
    from mlmon.tasks.profile import Profile
    from mlmon.tasks.reference import Baseline

DRIFT = "drift"


def rolling_capable() -> set[str]:
    """Families that can choose their reference: drift and every registered family section with a fit."""
    from mlmon.tasks.checks.families import methods

    return {DRIFT} | {m.config for m in methods() if m.fit is not None}


def rolling_families(cfg: ModelConfig) -> set[str]:
    """The families of ``cfg`` that use the rolling reference (``families`` overrides ``strategy``)."""
    ref = cfg.reference
    return {f for f in rolling_capable() if ref.families.get(f, ref.strategy) == "rolling"}


def rolling_span(cfg: ModelConfig, window: Window) -> Window:
    """The logs a rolling reference of ``window`` is built from (always before ``window`` starts when
    ``windows`` is set; one period earlier, same length, when ``period`` is)."""
    roll = cfg.reference.rolling
    if roll.period is not None:
        shift = parse_duration(roll.period)
        return Window(window.start - shift, window.end - shift)
    return Window(window.start - (roll.windows or 1) * window.length, window.start)


@dataclass(frozen=True)
class References:
    """What a window is checked against: the profile the families read (the fixed one, with the rolling
    families' fitted state swapped in), the drift profile, and what the run records."""

    profile: Profile
    drift_profile: Profile | None  # None: drift uses ``profile`` (fixed)
    reference_hash: str
    notes: tuple[str, ...] = ()
    checks: tuple[CheckResult, ...] = ()


def fixed_only(base: Baseline) -> References:
    return References(base.profile, None, base.profile.reference_hash)


def frame_hash(frame: pd.DataFrame) -> str:
    """16 hex digits naming a rolling reference by its content (rows and columns, in order)."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def fit_rolling(
    frame: pd.DataFrame, cfg: ModelConfig, families: set[str], profiles_dir: str | Path
) -> Profile:
    """The rolling reference's profile (columns for drift, and the fitted state of its families), fitted
    once per content and cached like the fixed reference's."""
    from mlmon.tasks.checks.families import enabled_methods
    from mlmon.tasks.evaluate import profile_kinds
    from mlmon.tasks.reference import fit_profile, load_profile, profile_cache_path, save_profile

    key = "rolling-" + frame_hash(frame)
    kinds = profile_kinds(cfg)
    wanted = [m for m in enabled_methods(cfg) if m.fit is not None and m.config in families]
    cache = profile_cache_path(profiles_dir, cfg.name, key, kinds)
    profile = load_profile(cache)
    if profile is None or profile.reference_hash != key:
        profile = fit_profile(frame, kinds, key)
    fitted = dict(profile.fitted)
    stale = [m for m in wanted if fitted.get(m.name, ("",))[0] != m.fit_key(cfg)]
    for m in stale:
        fitted[m.name] = (m.fit_key(cfg), m.fit(frame, cfg))  # type: ignore[misc]
    if stale or not cache.exists():
        profile = replace(profile, fitted=fitted)
        save_profile(profile, cache)
    return profile


def references(
    cfg: ModelConfig,
    base: Baseline,
    window: Window,
    rolling: Batch | None,
    profiles_dir: str | Path,
) -> References:
    """Choose per family between the fixed reference and the rolling one read from ``rolling`` (the
    batch of :func:`rolling_span`; None when no family rolls)."""
    families = rolling_families(cfg)
    if not families or rolling is None:
        return fixed_only(base)
    span = rolling_span(cfg, window)
    names = ", ".join(sorted(families))
    frame = rolling.frame
    if len(frame) < cfg.reference.rolling.min_rows:
        msg = (
            f"insufficient data for the rolling reference ({span}): {len(frame):,} valid rows < "
            f"reference.rolling.min_rows {cfg.reference.rolling.min_rows:,}; {names} used the fixed "
            f"reference {base.profile.reference_hash}"
        )
        check = CheckResult("reference", _category(families), Status.WARN, float(len(frame)),
                            float(cfg.reference.rolling.min_rows), msg, "", ALL)  # fmt: skip
        return replace(fixed_only(base), notes=(msg,), checks=(check,))
    rolled = fit_rolling(frame, cfg, families, profiles_dir)
    from mlmon.tasks.checks.families import enabled_methods

    fitted = dict(base.profile.fitted)
    for m in enabled_methods(cfg):
        if m.config in families and m.name in rolled.fitted:
            fitted[m.name] = rolled.fitted[m.name]
    note = (
        f"rolling reference {rolled.reference_hash} for {names}: {len(frame):,} rows logged in {span}"
        + (f" ({rolling.n_quarantined:,} quarantined documents left out)" if rolling.n_quarantined else "")
        + f"; other checks used the fixed reference {base.profile.reference_hash}"
    )
    return References(
        profile=replace(base.profile, fitted=fitted),
        drift_profile=rolled if DRIFT in families else None,
        reference_hash=f"{base.profile.reference_hash} rolling:{rolled.reference_hash} ({names})",
        notes=(note,),
    )


def _category(families: set[str]) -> Category:
    if DRIFT in families:
        return Category.DRIFT
    from mlmon.tasks.checks.families import methods

    return next(m.category for m in methods() if m.config in families)


def evaluate_with(
    cfg: ModelConfig,
    refs: References,
    batch: Batch,
    window: Window,
    **kwargs: Any,
) -> WindowResult:
    """:func:`~mlmon.tasks.evaluate.evaluate` against ``refs``: the run records the reference(s) used,
    the notes say which, and a fallback to the fixed reference is a ``reference`` check that warns."""
    from mlmon.tasks.evaluate import evaluate

    result = evaluate(cfg, refs.profile, batch, window, drift_profile=refs.drift_profile, **kwargs)
    return replace(
        result,
        reference_hash=refs.reference_hash,
        notes=(*result.notes, *refs.notes),
        checks=(*result.checks, *refs.checks),
    )


def read_rolling(db: Any, cfg: ModelConfig, window: Window) -> Batch | None:
    """The logs of the rolling reference of ``window`` (through the same contract and quarantine as a
    window's), or None when no family of ``cfg`` rolls."""
    if not rolling_families(cfg):
        return None
    from mlmon.tasks.extract import read_window

    return read_window(db, cfg, rolling_span(cfg, window))
