"""The window-check registry: one contract over every registered check, the decision, errors kept local,
business fields reaching the frame, and names resolved when the config loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml

from mlmon.tasks import contract as c
from mlmon.tasks.checks import registry
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.checks.registry import CHECKS, ThresholdSpec, WindowInput, decide, get_check, window_checks
from mlmon.tasks.config import ModelConfig, load_config
from mlmon.tasks.errors import ConfigError
from tests.plugins import ensure_kpi_plugin

ensure_kpi_plugin()  # at collection: the contract below is parametrized over every registered check


def contract_frame(n: int = 600, seed: int = 0, missing: float = 0.0) -> pd.DataFrame:
    """The frame every registered check is run on (the columns ``example`` params may name)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "num_a": rng.gamma(2.0, 10.0, n),
            "num_b": rng.normal(5.0, 1.0, n),
            "flag": rng.integers(0, 2, n).astype(float),
            "cat": rng.choice(["a", "b", "c"], n).astype(object),
            c.PREDICTION: rng.choice(["churn", "stay"], n).astype(object),
            c.TARGET: rng.choice(["churn", "stay"], n).astype(object),
            c.SCORE: rng.uniform(0, 1, n),
        }
    )
    if missing:
        for col in df.columns:
            hole = rng.uniform(size=n) < missing
            df.loc[hole, col] = np.nan if df[col].dtype.kind == "f" else None
    return df


def _run(reg: registry.RegisteredCheck, frame: pd.DataFrame) -> dict[str, float | None]:
    return registry._values(reg(WindowInput(frame, task="binary"), **reg.example))


def test_the_builtins_and_the_installed_package_are_registered() -> None:
    assert {"mean", "rate", "per_prediction", "ratio"} <= set(CHECKS)
    assert {"revenue_per_conversion", "margin_per_prediction", "accuracy_by_prediction"} <= set(CHECKS)
    assert CHECKS["revenue_per_conversion"].func.__module__ == "mlmon_test_kpis"  # from the entry point
    assert CHECKS["labelled_share"].category is Category.CUSTOM  # a plain function named by its entry point
    assert get_check("labelled_share")(WindowInput(contract_frame())) == 1.0


@pytest.mark.parametrize("name", sorted(registry.discover()) or ["(none)"])
def test_contract_every_registered_check(name: str) -> None:
    """Finite or no value, deterministic, order-independent, NaN-safe, and nothing on an empty window."""
    reg = get_check(name)
    frame = contract_frame()
    first = _run(reg, frame)
    assert first == _run(reg, frame)  # deterministic
    assert all(v is None or np.isfinite(v) for v in first.values())
    shuffled = frame.sample(frac=1.0, random_state=1)
    again = _run(reg, shuffled)
    assert again.keys() == first.keys()
    for k, v in first.items():
        assert v == pytest.approx(again[k], rel=1e-9, abs=1e-12) if v is not None else again[k] is None
    holes = _run(reg, contract_frame(missing=0.2))  # missing values never raise nor poison the value
    assert all(v is None or np.isfinite(v) for v in holes.values())
    empty = _run(reg, frame.iloc[:0])
    assert all(v is None for v in empty.values())
    assert reg.category in Category and (":" in reg.name or registry._NAME.match(reg.name))


def test_register_rejects_bad_names_and_a_second_function_under_one_name() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        registry.register("Bad-Name")
    with pytest.raises(ValueError, match="registered twice"):

        @registry.register("mean")
        def other_mean(window: WindowInput, column: str) -> float:
            return 0.0


def test_unknown_check_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown check 'meen'; known checks: .*mean.*rate"):
        get_check("meen")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod'"):
        get_check("no_such_mod:f")


def test_decide_fail_outside_min_max_warn_outside_warn_limits_and_no_value_warns() -> None:
    spec = ThresholdSpec(min=0.1, max=0.9, warn_min=0.2)
    assert decide(0.5, spec) is Status.PASS
    assert decide(0.15, spec) is Status.WARN
    assert decide(0.05, spec) is Status.FAIL
    assert decide(0.95, spec) is Status.FAIL
    assert decide(None, spec) is Status.WARN
    assert decide(float("nan"), spec) is Status.WARN


def cfg_with(checks: dict, business: dict | None = None) -> ModelConfig:
    return ModelConfig.model_validate(
        {"name": "m", "features": {"num_a": {"type": "numerical"}}, "reference": {"path": "r.parquet"},
         "task": "binary", "checks": checks, "business_fields": business or {}}
    )  # fmt: skip


def test_a_raising_check_is_an_error_with_its_message_and_the_others_are_kept() -> None:
    cfg = cfg_with(
        {
            "avg_a": {"function": "mean", "params": {"column": "num_a"}, "max": 1.0},
            "margin": {"function": "margin_per_prediction"},  # no `cost` column: raises KeyError
            "conv": {"function": "rate", "params": {"column": "flag"}, "min": 0.2, "max": 0.8},
        }
    )
    checks, metrics = window_checks(cfg, contract_frame())
    by = {ch.check: ch for ch in checks}
    assert by["margin"].status is Status.ERROR and "KeyError" in by["margin"].message
    assert "cost" in by["margin"].message
    assert by["avg_a"].status is Status.FAIL and by["avg_a"].threshold == 1.0
    assert by["avg_a"].value == pytest.approx(contract_frame()["num_a"].mean())
    assert by["conv"].status is Status.PASS and by["conv"].category is Category.CUSTOM
    assert {m.metric for m in metrics} == {"avg_a", "conv"}


def test_several_values_by_name_are_one_check_row_each() -> None:
    cfg = cfg_with({"acc_by_class": {"function": "accuracy_by_prediction", "min": 0.0}})
    checks, metrics = window_checks(cfg, contract_frame())
    assert sorted(ch.feature for ch in checks) == ["churn", "stay"]
    assert {(m.metric, m.feature) for m in metrics} == {("acc_by_class", "churn"), ("acc_by_class", "stay")}


def test_a_module_function_named_in_the_config_is_resolved() -> None:
    cfg = cfg_with({"rpc": {"function": "mlmon_test_kpis:revenue_per_conversion",
                            "params": {"revenue": "num_a", "converted": "flag"}}})  # fmt: skip
    (ch,), _ = window_checks(cfg, contract_frame())
    f = contract_frame()
    assert ch.value == pytest.approx(f.loc[f.flag == 1, "num_a"].sum() / (f.flag == 1).sum())


def write(tmp_path, model: dict) -> str:
    body = {"features": {"age": {"type": "numerical"}}, "reference": {"path": "r.parquet"}, **model}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": {"churn": body}}))
    return str(path)


@pytest.mark.parametrize(
    "checks, expect",
    [
        ({"conv": {"function": "raet"}}, r"key checks: .*conv\.function: unknown check 'raet'"),
        (
            {"conv": {"function": "rate", "params": {"colum": "x"}}},
            r"conv\.params: .*colum.*parameters: \['column', 'value'\]",
        ),
        (
            {"conv": {"function": "rate", "mni": 0.1}},
            r"key checks\.conv\.mni: unknown key; allowed: function, max, min, params, warn_max, warn_min",
        ),
        ({"conv": {"function": "nope_mod:f"}}, r"conv\.function: check 'nope_mod:f': cannot import"),
    ],
)
def test_a_typo_in_the_checks_section_fails_the_load_naming_file_model_and_key(
    tmp_path, checks, expect
) -> None:
    path = write(tmp_path, {"checks": checks})
    with pytest.raises(ConfigError, match=expect) as e:
        load_config(path)
    assert str(tmp_path) in str(e.value) and "model 'churn'" in str(e.value)


def test_business_fields_reach_the_window_frame_by_dotted_path_and_bad_values_are_quarantined() -> None:
    from mlmon.tasks.extract import decode_documents

    cfg = cfg_with({}, {"revenue": {"path": "outcome.revenue"}, "converted": {"path": "outcome.conv", "type": "boolean"},
                        "channel": {"path": "ctx.channel", "type": "categorical"}})  # fmt: skip
    t = datetime(2026, 1, 1, tzinfo=UTC)
    docs = [
        {"_id": 1, "timestamp": t, "features": {"num_a": 1.0}, "prediction": {"value": "a"},
         "outcome": {"revenue": 12.5, "conv": True}, "ctx": {"channel": "web"}},
        {"_id": 2, "timestamp": t, "features": {"num_a": 2.0}, "prediction": {"value": "a"}, "outcome": {}},
        {"_id": 3, "timestamp": t, "features": {"num_a": 3.0}, "prediction": {"value": "a"},
         "outcome": {"revenue": 1.0, "conv": "yes"}},
    ]  # fmt: skip
    batch = decode_documents(docs, cfg)
    assert batch.frame["revenue"].tolist()[0] == 12.5 and np.isnan(batch.frame["revenue"].tolist()[1])
    assert batch.frame["converted"].tolist()[0] == 1.0 and batch.frame["channel"].tolist() == ["web", None]
    (q,) = batch.quarantine
    assert q.doc_id == "3" and q.reason == "wrong_type" and q.field == "outcome.conv"


def test_business_field_names_may_not_clash_with_features() -> None:
    with pytest.raises(ValueError, match="clashes with a feature"):
        cfg_with({}, {"num_a": {"path": "x.y"}})


def test_evaluate_runs_the_configured_checks_per_segment_like_any_check() -> None:
    from mlmon.tasks.evaluate import evaluate, profile_kinds
    from mlmon.tasks.extract import Batch
    from mlmon.tasks.reference import fit_profile
    from mlmon.tasks.window import Window

    frame = contract_frame(2000)
    frame[c.TIMESTAMP] = pd.Timestamp("2026-01-01", tz="UTC")
    frame[c.IS_ERROR] = False
    frame[c.VERSION] = np.where(np.arange(len(frame)) % 2, "v1", "v2").astype(object)
    cfg = cfg_with({"avg_a": {"function": "mean", "params": {"column": "num_a"}, "max": 1e9},
                    "margin": {"function": "margin_per_prediction"}}).model_copy(update={"segments": ["model_version"]})  # fmt: skip
    profile = fit_profile(frame, profile_kinds(cfg), "h")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    result = evaluate(cfg, profile, Batch(frame), Window(t, t + timedelta(days=1)), reference=frame)
    custom = [ch for ch in result.checks if ch.category is Category.CUSTOM]
    assert {(ch.check, ch.segment, ch.status.value) for ch in custom} == {
        (name, seg, st)
        for seg in ("all", "model_version=v1", "model_version=v2")
        for name, st in (("avg_a", "pass"), ("margin", "error"))
    }
    assert any(ch.category is Category.DRIFT for ch in result.checks)  # the rest of the window is kept
    assert result.status is Status.ERROR
    json.dumps([m.value for m in result.metrics if m.metric == "avg_a"])
