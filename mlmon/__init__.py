"""mlmon: batch monitoring for ML models — and the same checks in one call from a notebook or a CI job.

>>> import mlmon
>>> sorted(mlmon.__all__)
['Comparison', 'Fitted', 'compare', 'fit', 'load', 'register_check']

The attributes load on first use (a module-level ``__getattr__``), so ``import mlmon`` stays light:
the serving app's ``import mlmon.logger`` pulls in pymongo only, never pandas or Prefect.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "compare": ("mlmon.tasks.compare", "compare"),
    "fit": ("mlmon.tasks.compare", "fit"),
    "load": ("mlmon.tasks.compare", "load"),
    "Comparison": ("mlmon.tasks.compare", "Comparison"),
    "Fitted": ("mlmon.tasks.compare", "Fitted"),
    "register_check": ("mlmon.tasks.checks.registry", "register"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mlmon' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
