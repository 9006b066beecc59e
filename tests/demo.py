"""The demo model's config for the integration tests: deployments/models.yaml pointed at a test's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MODELS = Path(__file__).resolve().parents[1] / "deployments" / "models.yaml"


def demo_config(
    folder: Path,
    database: str,
    reference: str,
    *,
    expected_volume: dict[str, int],
    alone: bool = False,
    **sections: Any,
) -> Path:
    """Write ``folder/models.yaml``: the shipped config (only its demo model when ``alone``), the demo
    model reading ``database``, its reference at ``folder/reference``, ``quality.expected_volume`` as
    given, Evidently off, and each of ``sections`` replacing that section; returns the file's path."""
    raw = yaml.safe_load(MODELS.read_text())
    if alone:
        raw["models"] = {"demo_classifier": raw["models"]["demo_classifier"]}
    model = raw["models"]["demo_classifier"]
    model["source"]["database"] = database
    model["reference"]["path"] = str(folder / reference)
    model["quality"]["expected_volume"] = expected_volume
    model["evidently"] = {"enabled": False}
    model.update(sections)
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
