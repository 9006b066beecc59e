"""The Python API: ``mlmon.compare`` / ``mlmon.fit`` run the pipeline's engine in process, no servers."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlmon
from mlmon.tasks import compare as api
from mlmon.tasks.checks.outcome import WindowResult
from mlmon.tasks.errors import ConfigError, InputDataError

ROOT = Path(__file__).resolve().parents[1]


def frames(
    n: int = 3000, seed: int = 0, shift: float = 0.0, cur_seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A binary model's reference and current data: two numerical and one categorical feature,
    prediction, score and label columns under everyday names."""

    def one(rng: np.random.Generator, shift: float) -> pd.DataFrame:
        age = rng.normal(40, 10, n) + shift * 10
        income = rng.lognormal(10, 0.5, n)
        plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
        score = 1 / (1 + np.exp(-(age - 40) / 10))
        return pd.DataFrame(
            {"age": age, "income": income, "plan": plan, "score": score,
             "prediction": np.where(score > 0.5, "churn", "stay"),
             "label": np.where(rng.uniform(size=n) < score, "churn", "stay")}
        )  # fmt: skip

    return one(np.random.default_rng(seed), 0.0), one(np.random.default_rng(cur_seed), shift)


def test_a_null_pair_passes_and_a_shift_fails_naming_the_column() -> None:
    ref, cur = frames()
    null = mlmon.compare(ref, cur)
    assert null.status == "pass", null.failed
    assert not null.drift["drifted"].any()
    _, shifted = frames(shift=0.3)
    r = mlmon.compare(ref, shifted)
    assert r.status == "fail"
    drifted = set(r.drift.query("drifted and segment == 'all'")["feature"])
    assert {"age", "score", "prediction"} <= drifted and "income" not in drifted and "plan" not in drifted
    assert isinstance(r.result, WindowResult)  # the pipeline's own result type


def test_the_inference_is_reported() -> None:
    ref, cur = frames()
    r = mlmon.compare(ref, cur)
    assert r.inferred["features"] == {"age": "numerical", "income": "numerical", "plan": "categorical"}
    assert r.inferred["columns"] == {"prediction": "prediction", "target": "label", "score": "score"}
    assert r.inferred["task"] == "binary" and r.inferred["classes"] == ["churn", "stay"]
    assert r.inferred["positive_class"] == "churn"  # the class whose rows have the higher score
    assert {"accuracy", "roc_auc"} <= set(r.metrics["metric"])  # labels were used


def test_a_regression_prediction_is_inferred_from_a_continuous_column() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=1000), "y_pred": rng.normal(size=1000)})
    r = mlmon.compare(ref, ref.copy())
    assert r.inferred["task"] == "regression" and r.inferred["columns"] == {"prediction": "y_pred"}


def test_values_are_the_engines_and_equal_scipy() -> None:
    ref, cur = frames(shift=0.05)
    r = mlmon.compare(ref, cur)
    row = r.drift.set_index(["feature", "segment"]).loc[("income", "all")]
    res = stats.ks_2samp(ref["income"].to_numpy(), cur["income"].to_numpy())  # the default test: KS
    assert row["statistic"] == pytest.approx(res.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-9)
    assert 0 <= row["p_value"] <= 1


def test_dataframe_views_and_json_safe_dict() -> None:
    ref, cur = frames()
    cur.loc[:99, "age"] = np.nan  # NaN in the input never reaches the JSON
    r = mlmon.compare(ref, cur)
    assert list(r.checks.columns) == [
        "check",
        "category",
        "feature",
        "segment",
        "status",
        "value",
        "threshold",
        "message",
    ]
    assert {"metric", "feature", "segment", "value"} == set(r.metrics.columns)
    assert "__prediction" not in set(r.drift["feature"]) and "prediction" in set(r.drift["feature"])
    text = json.dumps(r.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["status"] == r.status and len(back["checks"]) == len(r.checks)
    assert back["rows"] == 3000 and back["inferred"]["task"] == "binary"


def test_bad_rows_of_the_current_data_are_quarantined_with_a_reason_and_the_rest_is_checked() -> None:
    ref, cur = frames()
    cur = cur.astype({"age": object})
    cur.loc[5, "age"] = "forty"
    r = mlmon.compare(ref, cur)
    (q,) = r.to_dict()["quarantine"]
    assert q["reason"] == "wrong_type" and q["field"] == "age" and q["row"] == "5"
    assert r.result.n_rows == 2999


def test_fit_once_compare_many_and_save_load(tmp_path: Path) -> None:
    ref, cur = frames()
    fitted = mlmon.fit(ref)
    a = fitted.compare(cur)
    path = fitted.save(tmp_path / "ref.mlmon")
    loaded = mlmon.load(path)
    b = loaded.compare(cur)
    assert a.checks.drop(columns="message").equals(b.checks.drop(columns="message"))
    assert a.result.reference_hash == b.result.reference_hash


def test_paths_to_parquet_and_csv(tmp_path: Path) -> None:
    ref, cur = frames()
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    r = mlmon.compare(tmp_path / "ref.parquet", str(tmp_path / "cur.csv"))
    assert r.status == mlmon.compare(ref, cur).status
    with pytest.raises(InputDataError, match=r"current file .*nope\.csv not found"):
        mlmon.compare(ref, tmp_path / "nope.csv")


def test_a_config_dict_is_validated_like_the_file_and_can_add_checks() -> None:
    ref, cur = frames()
    cfg = {
        "features": {"age": {"type": "numerical"}, "plan": {"type": "categorical"}},
        "task": "binary", "classes": ["churn", "stay"], "positive_class": "churn",
        "checks": {"basic_share": {"function": "rate", "params": {"column": "plan", "value": "basic"},
                                   "min": 0.45, "max": 0.55}},
    }  # fmt: skip
    r = mlmon.compare(ref, cur, cfg)
    assert set(r.drift["feature"]) == {"age", "plan", "prediction", "score"}
    (row,) = r.checks.query("check == 'basic_share'").itertuples()
    assert row.status == "pass" and row.value == pytest.approx((cur["plan"] == "basic").mean())
    with pytest.raises(ConfigError, match=r"key drift\.alpah: unknown key"):
        mlmon.compare(ref, cur, {**cfg, "drift": {"alpah": 0.1}})


def test_a_models_yaml_and_the_reference_parquet_format_of_the_pipeline(tmp_path: Path) -> None:
    """The demo model's config and a frame in the pipeline's reference format (``__prediction`` …)."""
    from mlmon.tasks import contract as c

    ref, cur = frames()
    names = {"prediction": c.PREDICTION, "score": c.SCORE, "label": c.TARGET}
    r = mlmon.compare(ref.rename(columns=names), cur.rename(columns=names),
                      {"features": {"age": {"type": "numerical"}}, "task": "binary",
                       "classes": ["churn", "stay"], "positive_class": "churn"})  # fmt: skip
    assert "roc_auc" in set(r.metrics["metric"])
    (warn,) = r.checks.query("status != 'pass'").itertuples()  # columns the config does not map are named
    assert warn.status == "warn" and "income" in warn.message and "plan" in warn.message
    with pytest.raises(ConfigError, match="2 models configured; pick one"):
        path = tmp_path / "m.yaml"
        path.write_text("models:\n  a: {features: {age: {type: numerical}}, reference: {path: x}}\n"
                        "  b: {features: {age: {type: numerical}}, reference: {path: x}}\n")  # fmt: skip
        mlmon.compare(ref, cur, path)
    assert mlmon.compare(ref, cur, path, model="b").result.model == "b"


def test_save_html_is_the_pipelines_report_and_repr_html_is_a_compact_escaped_summary(tmp_path: Path) -> None:
    ref, cur = frames(shift=0.3)
    cur["plan"] = cur["plan"].where(cur.index > 10, "<script>x</script>")
    r = mlmon.compare(ref, cur)
    page = r.save_html(tmp_path / "out" / "report.html").read_text()
    assert "Failed checks" in page and "feature_drift" in page and "Content-Security-Policy" in page
    assert "<script>x</script>" not in page
    html = r._repr_html_()
    assert "FAIL" in html and "age" in html and "<script>x" not in html and len(html) < 20_000


def test_import_mlmon_is_light_and_the_api_attributes_load_lazily() -> None:
    code = (
        "import sys, mlmon\n"
        "heavy = [m for m in ('pandas', 'prefect', 'evidently', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(mlmon.compare) and 'pandas' in sys.modules and 'prefect' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlmon.nope  # noqa: B018


def test_doctests_of_the_api_modules_and_the_readme() -> None:
    import mlmon.tasks.checks.kpi
    import mlmon.tasks.checks.registry

    for module in (mlmon, api, mlmon.tasks.checks.registry, mlmon.tasks.checks.kpi):
        assert doctest.testmod(module).failed == 0, module.__name__
    assert doctest.testfile(str(ROOT / "README.md"), module_relative=False).failed == 0


@pytest.mark.slow
def test_in_a_fresh_venv_outside_the_repository_compare_works_with_no_database(tmp_path: Path) -> None:
    """The acceptance line: the built wheel in a new venv, run from an empty folder, no server running.
    The pinned dependencies come from this venv's site-packages (a path entry: its editable mlmon
    finder is not loaded), so only mlmon itself is freshly installed."""
    import site
    import sysconfig

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (whl,) = wheels.glob("mlmon-*.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(whl)], check=True
    )
    fresh_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     check=True, capture_output=True, text=True).stdout.strip())  # fmt: skip
    deps = sysconfig.get_paths()["purelib"]
    assert deps in site.getsitepackages()
    (fresh_site / "zz_pinned_deps.pth").write_text(deps + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import sys, numpy as np, pandas as pd, mlmon\n"
        f"assert mlmon.__file__.startswith({str(fresh_site)!r}), mlmon.__file__\n"
        "rng = np.random.default_rng(0)\n"
        "ref = pd.DataFrame({'x': rng.normal(size=2000), 'c': rng.choice(['a', 'b'], 2000)})\n"
        "cur = ref.assign(x=ref.x + 1)\n"
        "r = mlmon.compare(ref, cur)\n"
        "assert r.status == 'fail' and 'x' in set(r.drift.query('drifted').feature), r.checks\n"
        "assert 'prefect' not in sys.modules and 'pymongo' not in sys.modules and 'psycopg2' not in sys.modules\n"
        "import importlib.util as u\n"
        "assert u.find_spec('tasks') is None\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLMON_", "PREFECT_"))}
    out = subprocess.run([str(py), "-c", code], cwd=work, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    gone = subprocess.run([str(py), "-c", "import tasks"], cwd=work, capture_output=True, text=True, env=env)
    assert gone.returncode != 0 and "No module named 'tasks'" in gone.stderr


def test_a_feature_named_like_a_role_stays_a_feature_and_a_missing_column_is_all_missing() -> None:
    ref, cur = frames()
    cfg = {"features": {"age": {"type": "numerical"}, "score": {"type": "numerical"}}}
    r = mlmon.compare(ref, cur.drop(columns=["age"]), cfg)
    assert "score" not in r.inferred["columns"] and "score" in set(r.drift["feature"])
    (miss,) = r.checks.query("check == 'missing_share' and feature == 'age'").itertuples()
    assert miss.status == "fail" and miss.value == 1.0
    assert any("no column age" in n for n in r.result.notes)


def test_a_multiclass_model_with_a_named_timestamp_column_spans_its_window() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    ref = pd.DataFrame(
        {"x": rng.normal(size=n), "prediction": rng.choice(list("abc"), n), "target": rng.choice(list("abc"), n),
         "ts": pd.date_range("2026-01-01", periods=n, freq="min")}
    )  # fmt: skip
    r = mlmon.compare(ref, ref.copy(), columns={"timestamp": "ts"})
    assert (
        r.status == "pass" and r.inferred["task"] == "multiclass" and r.inferred["classes"] == ["a", "b", "c"]
    )
    assert r.result.window.start.isoformat() == "2026-01-01T00:00:00+00:00"
    assert r.result.window.end.isoformat() == "2026-01-03T01:59:01+00:00"
    assert r.result.n_rows == n and "accuracy" in set(r.metrics["metric"])


def test_the_configs_reference_columns_name_the_role_columns() -> None:
    ref, cur = frames()
    ref, cur = (f.rename(columns={"prediction": "y_hat", "label": "truth"}) for f in (ref, cur))
    cfg = {"features": {"age": {"type": "numerical"}}, "task": "binary", "classes": ["churn", "stay"],
           "reference": {"path": "<in memory>", "columns": {"prediction": "y_hat", "target": "truth"}}}  # fmt: skip
    r = mlmon.compare(ref, cur, cfg)
    assert r.inferred["columns"]["prediction"] == "y_hat" and r.inferred["columns"]["target"] == "truth"
    assert "prediction" in set(r.drift["feature"]) and "accuracy" in set(r.metrics["metric"])
