"""Model-health families: one registry of methods fitted once on the reference and run on every window.

Outliers, multivariate drift, explanations, fairness, estimated performance and model versions are
each a *family* (its ``category`` in ``mlmon.checks``) of one or more *methods*. A method is one
decorated function that runs on a window (or segment) and returns its checks and metrics, plus an
optional ``fit`` run once on the reference whose result is cached in the profile, so a window is only
scored. Statistic apart from decision: the method's module computes its statistic and its decision in
separate functions; the registry only knows how to fit, run and switch methods on.

Each method reads its settings from one section of the model's config (``config="outliers"`` reads
``cfg.outliers``), which has an ``enabled`` field: a disabled section costs nothing. What the fit
produced is keyed by that section's settings, so changing them refits and nothing stale is scored.

>>> from mlmon.tasks.checks.outcome import Category
>>> sorted(m.name for m in methods() if m.category is Category.OUTLIERS)
['isolation_forest']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Metric, Status

if TYPE_CHECKING:
    import pandas as pd

    from mlmon.tasks.config import ModelConfig
    from mlmon.tasks.profile import Profile

# modules whose decorators register the built-in methods (imported once, on first use)
BUILTIN_MODULES: tuple[str, ...] = (
    "mlmon.tasks.checks.outliers",
    "mlmon.tasks.checks.multivariate",
    "mlmon.tasks.checks.explanations",
    "mlmon.tasks.checks.fairness",
    "mlmon.tasks.checks.balance",
    "mlmon.tasks.checks.estimated",
    "mlmon.tasks.checks.versions",
)


@dataclass(frozen=True)
class FamilyInput:
    """What a method sees for one window or segment.

    ``frame`` holds the features by their configured names and the reserved columns (see
    :mod:`mlmon.tasks.contract`: prediction, score, probabilities, target, request id, model version,
    timestamp); ``fitted`` is what the method's ``fit`` returned on the (whole) reference, None without
    a fit; ``reference`` is the reference frame when the caller has it; ``shadow`` holds the window's
    (segment's) shadow predictions, rows not served (same columns; None when the model recognises none):
    every other check sees only the served ``frame``.
    a fit; ``reference`` is the reference frame when the caller has it; ``drift`` is the window's (or
    segment's) drift table when the caller computed it (None: not given).
    """

    frame: pd.DataFrame
    cfg: ModelConfig
    profile: Profile
    fitted: Any = None
    reference: pd.DataFrame | None = None
    segment: str = ALL
    shadow: pd.DataFrame | None = None
    drift: tuple[FeatureDrift, ...] | None = None


Findings = tuple[list[CheckResult], list[Metric]]
RunFunc = Callable[[FamilyInput], Findings]
FitFunc = Callable[["pd.DataFrame", "ModelConfig"], Any]


@dataclass(frozen=True)
class FamilyMethod:
    """A registered method: its stable name, family, config section and functions.

    ``example`` is the config section (as a dict, merged over its defaults with ``enabled: true``) the
    contract test (tests/checks/test_families.py) runs the method with, on its binary-classifier frame
    (features ``num_a``, ``num_b``, ``flag``, ``cat``; logged field ``group``; versions ``v1``/``v2``).
    """

    name: str
    category: Category
    config: str
    run: RunFunc
    fit: FitFunc | None = None
    example: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    labels: bool = False  # its verdict depends on the ground truth: re-run when late labels arrive

    def section(self, cfg: ModelConfig) -> Any:
        return getattr(cfg, self.config)

    def enabled(self, cfg: ModelConfig) -> bool:
        return bool(getattr(self.section(cfg), "enabled", False))

    def fit_key(self, cfg: ModelConfig) -> str:
        """What the fitted state depends on besides the reference: the section's settings."""
        sec = self.section(cfg)
        return sec.model_dump_json() if hasattr(sec, "model_dump_json") else repr(sec)


METHODS: dict[str, FamilyMethod] = {}


def method(
    name: str,
    *,
    category: Category | str,
    config: str,
    fit: FitFunc | None = None,
    example: Mapping[str, Any] | None = None,
    labels: bool = False,
) -> Callable[[RunFunc], RunFunc]:
    """Register ``run(inp: FamilyInput) -> (checks, metrics)`` as method ``name`` of a family.

    ``labels``: the method's checks depend on the ground truth, so a late-label re-evaluation
    (:mod:`mlmon.tasks.labels`) runs every method of its category again with the labels known then."""
    cat = Category(category)

    def deco(run: RunFunc) -> RunFunc:
        old = METHODS.get(name)
        if old is not None and (old.run.__module__, old.run.__qualname__) != (
            run.__module__,
            run.__qualname__,
        ):
            raise ValueError(f"family method {name!r} is registered twice")
        doc = (run.__doc__ or "").strip().splitlines()
        METHODS[name] = FamilyMethod(
            name, cat, config, run, fit, dict(example or {}), doc[0] if doc else "", labels
        )
        return run

    return deco


_loaded = False


def methods() -> list[FamilyMethod]:
    """Every registered method (the built-in modules imported on first use)."""
    global _loaded
    if not _loaded:
        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True
    return list(METHODS.values())


def enabled_methods(cfg: ModelConfig) -> list[FamilyMethod]:
    return [m for m in methods() if m.enabled(cfg)]


def label_categories(cfg: ModelConfig) -> frozenset[Category]:
    """Categories with an enabled method whose verdict depends on the labels (re-run on late labels)."""
    return frozenset(m.category for m in enabled_methods(cfg) if m.labels)


# --------------------------------------------------------------------------- fit once


def fit_families(profile: Profile, reference: pd.DataFrame, cfg: ModelConfig) -> Profile:
    """The profile with every enabled method fitted on the reference (methods already fitted with the
    same settings are kept: a cached profile is only extended)."""
    fitted = dict(profile.fitted)
    changed = False
    for m in enabled_methods(cfg):
        if m.fit is None:
            continue
        key = m.fit_key(cfg)
        if m.name in fitted and fitted[m.name][0] == key:
            continue
        fitted[m.name] = (key, m.fit(reference, cfg))
        changed = True
    return replace(profile, fitted=fitted) if changed else profile


def needs_fit(profile: Profile, cfg: ModelConfig) -> bool:
    """True when an enabled method has no fitted state for its current settings in ``profile``."""
    return any(
        m.fit is not None and profile.fitted.get(m.name, ("",))[0] != m.fit_key(cfg)
        for m in enabled_methods(cfg)
    )


# --------------------------------------------------------------------------- run on a window


def family_checks(
    cfg: ModelConfig,
    frame: pd.DataFrame,
    profile: Profile,
    *,
    reference: pd.DataFrame | None = None,
    segment: str = ALL,
    shadow: pd.DataFrame | None = None,
    drift: tuple[FeatureDrift, ...] | None = None,
    categories: frozenset[Category] | None = None,
) -> Findings:
    """Every enabled method on one window or segment (``drift``: its drift table, when computed; only
    those of ``categories`` when given). A method that raises gets one ``error`` check naming its
    exception; the other methods and the rest of the window are unaffected."""
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    for m in enabled_methods(cfg):
        if categories is not None and m.category not in categories:
            continue
        state = profile.fitted.get(m.name)
        if m.fit is not None and (state is None or state[0] != m.fit_key(cfg)):
            msg = f"{m.name}: not fitted on the reference with the current settings (refit the profile)"
            checks.append(CheckResult(m.name, m.category, Status.ERROR, None, None, msg, "", segment))
            continue
        inp = FamilyInput(
            frame, cfg, profile, state[1] if state else None, reference, segment, shadow=shadow, drift=drift
        )
        try:
            c, mt = m.run(inp)
        except Exception as e:  # one method's failure is its result, never the window's
            text = f"{type(e).__name__}: {e}"
            checks.append(CheckResult(m.name, m.category, Status.ERROR, None, None, text[:500], "", segment))
            continue
        checks += c
        metrics += mt
    return checks, metrics
