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
    assert m.drift.correction == "bonferroni" and m.drift.alpha == 0.01
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


# ------------------------------------------------------------------ every name resolved at load (issue 14)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ("    drift: {numerical_test: kss}\n", ["key drift.numerical_test", "unknown drift method 'kss'", "ks"]),
        ("    drift: {categorical_test: wasserstein}\n", ["key drift.categorical_test", "categorical"]),
        ("    drift: {numerical_effect: psy}\n", ["key drift.numerical_effect", "'psy'", "psi"]),
        ("    drift: {extra_methods: [psi, klx]}\n", ["key drift.extra_methods", "'klx'", "known methods"]),
        ("    performance: {thresholds: {rocauc: 0.8}}\n", ["key performance.thresholds", "'rocauc'", "roc_auc"]),
        ("    task: regression\n    performance: {thresholds: {roc_auc: 0.8}}\n",
         ["performance.thresholds", "not a regression metric", "mae"]),
        ("    schedule: {cron: '61 0 * * *'}\n", ["key schedule.cron", "minute 61 is outside 0-59"]),
        ("    schedule: {cron: 'every day'}\n", ["key schedule.cron", "expected 5 fields"]),
        ("    schedule: {timezone: Europe/Berln}\n", ["key schedule.timezone", "Europe/Berlin"]),
        ("    window_origin: someday\n", ["window_origin 'someday'", "monday", "ISO instant"]),
    ],
)  # fmt: skip
def test_names_are_resolved_at_load(tmp_path: Path, patch: str, expected: list[str]) -> None:
    path = write(tmp_path, MINIMAL + patch)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg and "model 'churn'" in msg
    for part in expected:
        assert part in msg, msg


def test_feature_drift_overrides_are_resolved_for_the_features_kind(tmp_path: Path) -> None:
    bad = MINIMAL.replace("{type: numerical}", "{type: numerical, drift_test: chisquare}")
    with pytest.raises(
        ConfigError, match=r"key features\.age\.drift_test: drift method 'chisquare' does not"
    ):
        load_config(write(tmp_path, bad))
    ok = MINIMAL.replace("{type: numerical}", "{type: numerical, drift_test: ks, drift_effect: psi}")
    assert load_config(write(tmp_path, ok)).model("churn").features["age"].drift_test == "ks"


def test_retention_cron_and_timezone_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key retention\.timezone: unknown timezone 'Mars/Base'"):
        load_config(write(tmp_path, MINIMAL + "retention: {keep: 90d, timezone: Mars/Base}\n"))


@pytest.mark.parametrize(
    "cron",
    ["15 0 * * *", "*/5 * * * *", "0 9-17 * * mon-fri", "5-59/15 * * * *", "0 0 1 jan,jul *", "0 0 * * 7",
     "@daily", "@hourly", "61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
     "every day", "* * * *", "1,2,x * * * *", "0 0 * * fri-mon"],
)  # fmt: skip
def test_cron_check_agrees_with_prefects_cron_parser(cron: str) -> None:
    """What config check accepts is what Prefect's CronSchedule accepts (its vendored croniter)."""
    from prefect._internal.schemas.validators import validate_cron_string

    from mlmon.tasks.config import check_cron

    try:
        validate_cron_string(cron)
        prefect_ok = True
    except ValueError:
        prefect_ok = False
    try:
        check_cron(cron)
        ours = True
    except ValueError:
        ours = False
    assert ours == prefect_ok


def test_config_doctests() -> None:
    import mlmon.tasks.config

    assert doctest.testmod(mlmon.tasks.config).failed == 0


# ------------------------------------------------------------------------------- window origin (issue 14)


def test_weekly_windows_start_on_the_configured_weekday(tmp_path: Path) -> None:
    epoch = load_config(write(tmp_path, MINIMAL + "    window: 7d\n")).model("churn")
    w = Window.containing(datetime(2026, 2, 3, tzinfo=UTC), epoch.window_length, epoch.window_anchor)
    assert w.start == datetime(2026, 1, 29, tzinfo=UTC) and w.start.strftime("%A") == "Thursday"
    monday = load_config(write(tmp_path, MINIMAL + "    window: 7d\n    window_origin: monday\n")).model(
        "churn"
    )
    w = Window.containing(datetime(2026, 2, 3, tzinfo=UTC), monday.window_length, monday.window_anchor)
    assert w.start == datetime(2026, 2, 2, tzinfo=UTC)
    berlin = load_config(
        write(
            tmp_path,
            MINIMAL + "    window: 7d\n    window_origin: monday\n    schedule: {timezone: Europe/Berlin}\n",
        )
    ).model("churn")
    assert berlin.window_anchor == datetime(2023, 12, 31, 23, tzinfo=UTC)  # Monday 00:00 CET
    instant = load_config(
        write(tmp_path, MINIMAL + "    window: 1d\n    window_origin: '2026-01-01T06:00Z'\n")
    )
    m = instant.model("churn")
    assert Window.containing(datetime(2026, 3, 1, 5, tzinfo=UTC), m.window_length, m.window_anchor).start == (
        datetime(2026, 2, 28, 6, tzinfo=UTC)
    )
    ws = list(Window.range(datetime(2026, 2, 2, tzinfo=UTC), datetime(2026, 2, 16, tzinfo=UTC),
                           monday.window_length, monday.window_anchor))  # fmt: skip
    assert [x.start.day for x in ws] == [2, 9]


def test_unaligned_bound_names_the_nearest_boundaries() -> None:
    from mlmon.tasks.window import EPOCH, unaligned

    msg = unaligned(datetime(2026, 2, 2, tzinfo=UTC), timedelta(days=7), EPOCH)
    assert msg is not None and "2026-01-29T00:00Z (Thursday)" in msg and "2026-02-05T00:00Z" in msg
    assert (
        unaligned(datetime(2026, 2, 2, tzinfo=UTC), timedelta(days=7), datetime(2024, 1, 1, tzinfo=UTC))
        is None
    )
