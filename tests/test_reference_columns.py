"""A reference made outside mlmon maps its prediction / score / target columns in the config, and a
reference lacking what the config needs is an error naming the model and the key (issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.config import load_config
from mlmon.tasks.errors import ReferenceDataError
from mlmon.tasks.reference import baseline, check_reference, load_reference

BINARY = """
models:
  churn:
    fields: {{prediction: out.label, probabilities: out.p}}
    task: binary
    classes: [stay, churn]
    positive_class: churn
    features:
      age: {{type: numerical}}
    reference: {reference}
"""


def reference_file(tmp_path: Path, **columns: object) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    p = rng.random(n)
    data = {"age": rng.normal(40, 10, n), "prediction": np.where(p > 0.5, "churn", "stay"), "proba": p,
            "target": np.where(rng.random(n) < p, "churn", "stay")}  # fmt: skip
    data.update(columns)
    path = tmp_path / "ref.parquet"
    pd.DataFrame(data).to_parquet(path)
    return path


def model(tmp_path: Path, reference: str) -> object:
    path = tmp_path / "models.yaml"
    path.write_text(BINARY.format(reference=reference))
    return load_config(path).model("churn")


def test_ordinary_column_names_without_a_mapping_are_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    reference_file(tmp_path)
    cfg = model(tmp_path, "{path: ref.parquet}")
    check = check_reference(cfg)
    assert any("has a column 'prediction' but no mapping" in p and "reference.columns.prediction" in p
               for p in check.problems), check.problems  # fmt: skip
    assert any("reference.columns.score" in p for p in check.problems)
    with pytest.raises(ReferenceDataError, match=r"reference\.columns\.prediction: prediction"):
        load_reference(cfg)


def test_mapped_columns_feed_prediction_drift_and_the_reference_quality(tmp_path: Path) -> None:
    reference_file(tmp_path)
    cfg = model(
        tmp_path, "{path: ref.parquet, columns: {prediction: prediction, score: proba, target: target}}"
    )
    assert check_reference(cfg).problems == ()
    frame = load_reference(cfg)
    assert {c.PREDICTION, c.SCORE, c.TARGET} <= set(frame.columns)
    assert not {"prediction", "proba", "target"} & set(frame.columns)
    base = baseline(cfg, tmp_path / "profiles")
    assert (
        c.PREDICTION in base.profile.columns and c.SCORE in base.profile.columns
    )  # prediction drift is fitted
    assert "accuracy" in base.profile.performance  # the reference's own quality: quality-vs-reference checks


def test_a_mapped_column_the_file_lacks_is_named(tmp_path: Path) -> None:
    reference_file(tmp_path)
    cfg = model(tmp_path, "{path: ref.parquet, columns: {prediction: pred_label, score: proba}}")
    (problem,) = check_reference(cfg).problems
    assert "reference.columns.prediction is 'pred_label', which the file does not have" in problem


def test_missing_file_and_missing_features_are_named(tmp_path: Path) -> None:
    cfg = model(tmp_path, "{path: nope.parquet}")
    (problem,) = check_reference(cfg).problems
    assert "model 'churn'" in problem and "not found" in problem and "mlmon reference build churn" in problem
    pd.DataFrame({"height": [1.0]}).to_parquet(tmp_path / "ref.parquet")
    cfg = model(tmp_path, "{path: ref.parquet, columns: {prediction: height, score: height}}")
    assert any("lacks configured features ['age']" in p for p in check_reference(cfg).problems)


def test_a_reference_built_by_mlmon_needs_no_mapping(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame({"age": rng.normal(size=50), c.PREDICTION: ["stay"] * 50, c.SCORE: rng.random(50),
                  c.TARGET: ["stay"] * 50}).to_parquet(tmp_path / "ref.parquet")  # fmt: skip
    cfg = model(tmp_path, "{path: ref.parquet}")
    assert check_reference(cfg).problems == ()
