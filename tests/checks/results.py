"""Reading check results in the check tests: checks by name (each name once), metric values by name."""

from __future__ import annotations

from typing import Any


def by_name(checks) -> dict[str, Any]:
    names = [x.check for x in checks]
    assert len(names) == len(set(names)), names
    return {x.check: x for x in checks}


def metrics_of(metrics) -> dict[str, float]:
    return {m.metric: m.value for m in metrics}
