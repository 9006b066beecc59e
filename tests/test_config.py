"""Config validation: errors name the file, the model and the key, and list what is allowed."""

from __future__ import annotations

import doctest
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mlmon.tasks.window
from mlmon.tasks.config import load_config
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.window import Window, parse_duration

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
models:
  churn:
    features:
      age: {type: numerical}
    reference: {path: ref.parquet}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "models.yaml"
    p.write_text(text)
    return p


def test_shipped_config_is_valid() -> None:
    cfg = load_config(REPO / "deployments" / "models.yaml")
    assert "demo_classifier" in cfg.models


def test_minimal_config_gets_sane_defaults(tmp_path: Path) -> None:
    m = load_config(write(tmp_path, MINIMAL)).model("churn")
    assert m.window_length == timedelta(days=1)
    assert m.drift.correction == "holm" and m.drift.alpha == 0.01
    assert m.feature_path("age") == "features.age"
    assert m.reference_path == (tmp_path / "ref.parquet").resolve()


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ("    drift: {alpah: 0.1}\n", ["model 'churn'", "key drift.alpah", "unknown key", "allowed: alpha"]),
        ("    features2: {}\n", ["model 'churn'", "key features2", "unknown key", "allowed:", "segments"]),
        ("    window: 1 fortnight\n", ["key window", "invalid duration"]),
        ("    task: clustering\n", ["key task", "regression", "binary"]),
        ("    segments: [colour]\n", ["segments", "colour"]),
    ],
)
def test_errors_name_file_model_key_and_what_is_allowed(
    tmp_path: Path, patch: str, expected: list[str]
) -> None:
    path = write(tmp_path, MINIMAL + patch)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg


def test_feature_level_typo(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"features\.age\.colour: unknown key; allowed: allowed, drift_effect"
    ):
        load_config(write(tmp_path, MINIMAL.replace("{type: numerical}", "{type: numerical, colour: red}")))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "models: [unclosed"))
    with pytest.raises(ConfigError, match="models"):
        load_config(write(tmp_path, "version: 1\n"))


def test_unknown_model_lists_the_configured_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no model 'x'.*\['churn'\]"):
        load_config(write(tmp_path, MINIMAL)).model("x")


def test_window_doctests() -> None:
    assert doctest.testmod(mlmon.tasks.window).failed == 0


def test_windows_are_utc_and_aligned() -> None:
    w = Window.containing(datetime(2026, 3, 29, 2, 30, tzinfo=UTC), parse_duration("1h"))
    assert (w.start.hour, w.end.hour) == (2, 3)
    ws = list(
        Window.range(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC), parse_duration("1d"))
    )
    assert len(ws) == 7 and all(a.end == b.start for a, b in itertools.pairwise(ws))
    with pytest.raises(ValueError, match="after its start"):
        Window(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
