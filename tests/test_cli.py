"""The command line: every subcommand has a useful --help; errors are one clear line, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlmon.cli import build_parser, main

COMMANDS = [
    ["run"], ["backfill"], ["demo"], ["reference", "build"], ["reports"], ["config", "check"],
    ["config", "draft"], ["simulate"], ["sql"], ["services"], ["serve"], ["up"], ["status"], ["retention"],
    ["labels", "recheck"], ["alerts", "install"],
]  # fmt: skip


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: mlmon " + " ".join(cmd) in out
    assert len(out.splitlines()) > 5


def test_top_level_help_lists_commands_and_environment() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlmon.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for word in ("run", "backfill", "demo", "reference", "reports", "MLMON_MONGO_URI", "MLMON_POSTGRES_URI"):
        assert word in out


def test_config_error_is_one_clear_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "m.yaml"
    bad.write_text(
        "models:\n  m:\n    features: {a: {type: numerical}}\n    reference: {path: r.parquet}\n    windo: 1h\n"
    )
    assert main(["config", "check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlmon: error: ") and "key windo: unknown key" in err


def test_bad_date_is_rejected_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["backfill", "m", "--start", "last tuesday", "--end", "2026-01-02"])
    assert e.value.code == 2
    assert "not an ISO date/time" in capsys.readouterr().err


def test_alerts_install_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("MLMON_ALERT_WEBHOOK_URL", raising=False)
    with pytest.raises(SystemExit, match="PREFECT_API_URL is not set"):
        main(["alerts", "install"])
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never contacted: it stops earlier
    assert main(["alerts", "install"]) == 2
    assert "pass --webhook-url URL (or set MLMON_ALERT_WEBHOOK_URL)" in capsys.readouterr().err
    assert main(["alerts", "install", "--block", "slack-webhook"]) == 2
    assert "write <block-type>/<name>" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "demo_classifier", "--start", "2026-02-03", "--end", "2026-02-02"], "is not before --end"),
        (["run", "demo_classifier", "--start", "2026-02-03", "--end", "2026-02-03"], "empty or reversed"),
        (["backfill", "demo_classifier", "--start", "2026-02-09", "--end", "2026-02-02"], "is not before"),
        (["run", "demo_classifier", "--start", "2999-01-01"], "ends in the future"),
        (
            ["backfill", "demo_classifier", "--start", "2026-02-02", "--end", "2999-01-01"],
            "ends in the future",
        ),
    ],
)
def test_a_reversed_or_future_range_is_refused_before_anything_starts(
    argv: list[str], said: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import time

    monkeypatch.setenv("MLMON_HOME", str(tmp_path / "home"))
    for var in ("MLMON_POSTGRES_URI", "MLMON_MONGO_URI", "MLMON_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    t0 = time.monotonic()
    assert main([*argv, "--config", "deployments/models.yaml"]) != 0
    assert time.monotonic() - t0 < 5
    err = capsys.readouterr().err
    assert err.startswith("mlmon: error: the ") and said in err
    home = tmp_path / "home"
    assert not (home / "postgres").exists() and not (home / "mongo").exists()  # no server was started
