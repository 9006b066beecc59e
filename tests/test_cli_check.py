"""``mlmon check``: a CI/CD gate on two files, exit 0/1/2/3, text / JSON / JUnit output, no Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mlmon.cli import main
from tests.test_compare import frames


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("check")
    ref, cur = frames()
    _, shifted = frames(shift=0.3)
    ref.to_parquet(d / "ref.parquet")
    cur.to_parquet(d / "null.parquet")
    shifted.to_csv(d / "shifted.csv", index=False)
    return {"ref": d / "ref.parquet", "null": d / "null.parquet", "shifted": d / "shifted.csv", "dir": d}


def check(files: dict[str, Path], current: str, *extra: str) -> list[str]:
    return ["check", "--reference", str(files["ref"]), "--current", str(files[current]), *extra]


def test_a_null_pair_exits_0_and_runs_without_prefect(files: dict[str, Path]) -> None:
    code = (
        "import sys\nfrom mlmon.cli import main\n"
        f"rc = main({check(files, 'null')!r})\n"
        "assert 'prefect' not in sys.modules and 'evidently' not in sys.modules, 'heavy import'\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=files["dir"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mlmon check: PASS") and "drifted columns: none" in out.stdout


def test_a_shifted_pair_exits_1_naming_the_shifted_columns(files: dict[str, Path], capsys) -> None:
    assert main(check(files, "shifted")) == 1
    out = capsys.readouterr().out
    assert "mlmon check: FAIL" in out and "drifted columns: age, prediction, score" in out
    assert "feature_drift" in out and "income" not in out.split("drifted columns:")[1].splitlines()[0]


def test_json_output(files: dict[str, Path], capsys) -> None:
    assert main(check(files, "shifted", "--format", "json")) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "fail" and body["exit_code"] == 1 and body["fail_on"] == "fail"
    drifted = {d["feature"] for d in body["drift"] if d["drifted"]}
    assert drifted == {"age", "prediction", "score"}


def test_junit_output_has_one_testcase_per_check(files: dict[str, Path], capsys) -> None:
    assert main(check(files, "shifted", "--format", "junit")) == 1
    root = ET.fromstring(capsys.readouterr().out)
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) > 10
    assert int(suite.get("failures")) == len(failed) and "feature_drift[age]" in failed
    assert all(c.get("classname").startswith("mlmon.model.") for c in cases)


def test_fail_on_warn_and_the_html_report(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "models.yaml"  # maps only `age`: the other columns are unexpected, a warning
    cfg.write_text(yaml.safe_dump({"models": {"churn": {"features": {"age": {"type": "numerical"}},
                                                        "reference": {"path": "ref.parquet"}}}}))  # fmt: skip
    assert main(check(files, "null", "--config", str(cfg))) == 0
    assert main(check(files, "null", "--config", str(cfg), "--fail-on", "warn",
                      "--report", str(tmp_path / "r.html"))) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "unexpected_fields" in out and f"report: {tmp_path / 'r.html'}" in out
    assert "unexpected_fields" in (tmp_path / "r.html").read_text()


def test_a_typo_in_the_config_exits_2_naming_the_file_model_and_key(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    cfg = tmp_path / "models.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"churn": {"features": {"age": {"type": "numerical"}},
                                                        "reference": {"path": "ref.parquet"},
                                                        "drift": {"alpah": 0.05}}}}))  # fmt: skip
    assert main(check(files, "null", "--config", str(cfg))) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "model 'churn'" in err and "key drift.alpah: unknown key" in err


def test_a_missing_file_exits_2_and_a_run_that_cannot_finish_exits_3(files: dict[str, Path], capsys) -> None:
    assert main(["check", "--reference", str(files["ref"]), "--current", "nope.parquet"]) == 2
    assert "current file nope.parquet not found" in capsys.readouterr().err
    blocker = files["dir"] / "a-file"
    blocker.write_text("")
    assert main(check(files, "null", "--report", str(blocker / "r.html"))) == 3
    assert "cannot write the report" in capsys.readouterr().err


def test_the_demo_models_config_and_its_reference_parquet_are_the_default_reference(capsys) -> None:
    """``--config`` alone: the model's own reference.path (the pipeline's Parquet format, whose failed
    requests carry only the error flag: counted as errors, not quarantined)."""
    root = Path(__file__).resolve().parents[1]
    ref = root / "reference_data" / "demo_classifier.parquet"
    cfg = root / "deployments" / "models.yaml"
    assert main(["check", "--current", str(ref), "--config", str(cfg), "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["model"] == "demo_classifier" and body["status"] == "pass" and body["quarantined"] == 0
    import pandas as pd

    expected = pd.read_parquet(ref)["__is_error"].mean()
    (rate,) = [m["value"] for m in body["metrics"] if m["metric"] == "error_rate" and m["segment"] == "all"]
    assert rate == pytest.approx(expected) and rate > 0
    assert main(["check", "--current", str(ref)]) == 2
    assert "--reference is needed" in capsys.readouterr().err
