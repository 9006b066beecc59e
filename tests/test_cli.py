"""The command line: every subcommand has a useful --help; errors are one clear line, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert main(["alerts", "install"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never contacted: it stops earlier
    assert main(["alerts", "install"]) == 2
    assert "pass --webhook-url URL (or set MLMON_ALERT_WEBHOOK_URL)" in capsys.readouterr().err
    assert main(["alerts", "install", "--block", "slack-webhook"]) == 2
    assert "write <block-type>/<name>" in capsys.readouterr().err


# --------------------------------------------------------------------- issue 14: config check, exit codes

GOOD = """
models:
  churn:
    fields: {prediction: out.label, probabilities: out.p}
    task: binary
    classes: [stay, churn]
    features:
      age: {type: numerical}
    reference: {path: ref.parquet, columns: {prediction: prediction, score: proba, target: target}}
"""


def config_dir(tmp_path: Path, text: str = GOOD) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    p = rng.random(100)
    pd.DataFrame({"age": rng.normal(size=100), "prediction": np.where(p > 0.5, "churn", "stay"), "proba": p,
                  "target": ["stay"] * 100}).to_parquet(tmp_path / "ref.parquet")  # fmt: skip
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_config_check_passes_a_good_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(config_dir(tmp_path))]) == 0
    assert "churn: 1 features, task binary, window 1d, reference ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("task: binary", "task: binary\n    drift: {numerical_test: kss}", "unknown drift method 'kss'"),
        ("task: binary", "task: binary\n    performance: {thresholds: {rocauc: 0.7}}", "unknown metric 'rocauc'"),
        ("task: binary", "task: binary\n    schedule: {cron: '0 25 * * *'}", "key schedule.cron"),
        ("task: binary", "task: binary\n    schedule: {timezone: Europe/Pariss}", "unknown timezone"),
        ("path: ref.parquet", "path: gone.parquet", "gone.parquet not found"),
        ("columns: {prediction: prediction, score: proba, target: target}", "columns: {score: proba}",
         "has a column 'prediction' but no mapping"),
        ("age: {type: numerical}", "income: {type: numerical}", "lacks configured features ['income']"),
    ],
)  # fmt: skip
def test_config_check_exits_2_naming_each_defect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    path = config_dir(tmp_path, GOOD.replace(old, new))
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlmon: error: ") and str(path) in err and "'churn'" in err and expected in err, err
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"mlmon {version('mlmon')}"


def test_debug_shows_the_traceback_anywhere_on_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir(tmp_path, GOOD.replace("task: binary", "task: binary\n    windo: 1h"))
    assert main(["config", "check", "--config", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["config", "check", "--config", str(path), "--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlmon: error: ") and "Traceback (most recent call last)" in err


def test_exit_codes_by_error_type() -> None:
    from mlmon.cli import Exit, exit_code
    from mlmon.tasks.errors import ConfigError, ReferenceDataError, SourceUnavailable, StoreError

    assert exit_code(ConfigError("x")) == exit_code(ReferenceDataError("x")) == Exit.USAGE == 2
    assert exit_code(StoreError("x")) == exit_code(SourceUnavailable("x")) == Exit.RUNTIME == 3


def test_judged_windows_exit_codes() -> None:
    from mlmon.cli import _judged

    assert _judged(["pass", "warn"]) == 0
    assert _judged(["pass", "fail", "warn"]) == 1
    assert _judged(["fail", "error"]) == 3


def test_unexpected_error_is_one_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "home").write_text("a file where the state folder belongs")
    monkeypatch.setenv("MLMON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["reports"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("mlmon: error: ") and "--debug" in err and "Traceback" not in err


def no_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state folder and no server configured (no Prefect API, no database URIs); returns the
    folder, where any server the command started would leave its files."""
    home = tmp_path / "home"
    monkeypatch.setenv("MLMON_HOME", str(home))
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for k in ("MLMON_MONGO_URI", "MLMON_POSTGRES_URI"):
        monkeypatch.delenv(k, raising=False)
    return home


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (
            ["run", "churn", "--start", "2026-02-02T05:00"],
            "--start 2026-02-02T05:00Z is not a window boundary",
        ),
        (
            ["backfill", "churn", "--start", "2026-02-02", "--end", "2026-02-03T12:00"],
            "--end 2026-02-03T12:00Z",
        ),
    ],
)
def test_unaligned_bounds_are_refused_before_any_server_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cmd: list[str],
    expected: str,
) -> None:
    path = config_dir(tmp_path)
    home = no_servers(tmp_path, monkeypatch)
    assert main([*cmd, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "nearest boundaries" in err and "window_origin" in err
    assert not (home / "postgres").exists() and not (home / "mongo").exists()  # nothing was started
    assert not (home / "prefect" / "server.json").exists()


def test_missing_reference_is_refused_before_any_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir(tmp_path, GOOD.replace("path: ref.parquet", "path: gone.parquet"))
    home = no_servers(tmp_path, monkeypatch)
    assert main(["run", "churn", "--start", "2026-02-02", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "gone.parquet not found" in err and "mlmon reference build churn" in err
    assert not (home / "postgres").exists() and not (home / "mongo").exists()


def test_weekly_start_on_the_configured_weekday_is_aligned(tmp_path: Path) -> None:
    from mlmon.cli import _check_bounds
    from mlmon.tasks.config import load_config
    from mlmon.tasks.errors import ConfigError
    from mlmon.tasks.window import as_utc

    epoch = load_config(config_dir(tmp_path, GOOD + "    window: 7d\n")).model("churn")
    with pytest.raises(ConfigError, match="nearest boundaries are 2026-01-29T00:00Z"):
        _check_bounds(epoch, as_utc("2026-02-02"), None)
    monday = load_config(config_dir(tmp_path, GOOD + "    window: 7d\n    window_origin: monday\n")).model(
        "churn"
    )
    _check_bounds(monday, as_utc("2026-02-02"), as_utc("2026-02-16"))  # no error


def test_a_recorded_healthy_prefect_server_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state-file logic of point 7: a server recorded by `mlmon up` that answers /health is used;
    a dead one is not (and is not stopped: its pid may belong to another program by now)."""
    import json
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mlmon import embedded

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api"
        prefect_home = tmp_path / "prefect"
        prefect_home.mkdir()
        (prefect_home / "server.json").write_text(json.dumps({"pid": os.getpid(), "api_url": url}))
        assert embedded.running_prefect_server(prefect_home) == url
        (prefect_home / "server.json").write_text(json.dumps({"pid": 2**22 + 12345, "api_url": url}))
        assert embedded.running_prefect_server(prefect_home) is None
        assert embedded.stop_prefect_server(prefect_home) is False
    finally:
        httpd.shutdown()


def test_demo_says_which_servers_it_leaves_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmon.demo import background_services
    from mlmon.settings import Settings

    monkeypatch.setenv("MLMON_HOME", str(tmp_path))
    for k in ("MLMON_MONGO_URI", "MLMON_POSTGRES_URI"):
        monkeypatch.delenv(k, raising=False)
    assert background_services(Settings.from_env()) == ["the embedded MongoDB", "the embedded PostgreSQL"]
    monkeypatch.setenv("MLMON_MONGO_URI", "mongodb://db:27017/")
    monkeypatch.setenv("MLMON_POSTGRES_URI", "postgresql://db/mlmon")
    assert background_services(Settings.from_env()) == []


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
