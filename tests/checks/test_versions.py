"""Champion–challenger and shadow models: pairing, split traffic, verdicts, and shadow rows kept out of
every other check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import Category, Status
from mlmon.tasks.checks.versions import (
    Mode,
    Verdict,
    champion_of,
    decide_version,
    mcnemar_exact,
    score_versions,
    two_proportion_z,
    version_checks,
)
from mlmon.tasks.config import ModelConfig, model_from_dict
from mlmon.tasks.errors import ConfigError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLASSES = np.array(["churn", "stay"], dtype=object)


def cfg(task: str = "binary", **versions: Any) -> ModelConfig:
    body: dict[str, Any] = {
        "task": task,
        "features": {"x": {"type": "numerical"}},
        "versions": {"enabled": True, **versions},
        "source": {"labels": {}},
    }
    if task == "binary":
        body |= {"classes": ["churn", "stay"], "positive_class": "churn"}
    return model_from_dict(body)


def answers(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    """Predicted labels that are right with probability ``accuracy``, independently per row."""
    right = rng.random(y.size) < accuracy
    return np.where(right, y, np.where(y == "churn", "stay", "churn")).astype(object)


def window(
    n: int, seed: int, *, challenger_accuracy: float = 0.8, shadow: bool = True, labelled: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(served, shadow) frames: champion v1 (accuracy 0.8) serves every request; challenger v3 scores
    the same requests in shadow, or (``shadow=False``) serves a random half of them instead."""
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, n)
    ids = np.array([f"r{seed}-{i}" for i in range(n)], dtype=object)
    target = np.where(rng.random(n) < labelled, y, None).astype(object)

    def rows(pred: np.ndarray, version: str, keep: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                c.REQUEST_ID: ids[keep],
                c.VERSION: np.full(int(keep.sum()), version, dtype=object),
                c.TIMESTAMP: T0 + pd.to_timedelta(np.flatnonzero(keep), unit="s"),
                c.PREDICTION: pred[keep],
                c.SCORE: np.where(pred[keep] == "churn", 0.7, 0.3) + rng.normal(0, 0.05, int(keep.sum())),
                c.TARGET: target[keep],
                "x": rng.normal(size=int(keep.sum())),
            }
        )

    champ = answers(rng, y, 0.8)
    chall = answers(rng, y, challenger_accuracy)
    every = np.ones(n, dtype=bool)
    if shadow:
        return rows(champ, "v1", every), rows(chall, "v3", every)
    half = rng.random(n) < 0.5
    served = pd.concat([rows(champ, "v1", ~half), rows(chall, "v3", half)], ignore_index=True)
    return served, served.iloc[:0]


# --------------------------------------------------------------------------- statistics


def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_pairs() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.8, rng.random(500) < 0.75
    k01, k10 = int(np.sum(~a & b)), int(np.sum(a & ~b))
    assert mcnemar_exact(a, b) == pytest.approx(stats.binomtest(k01, k01 + k10, 0.5).pvalue)
    assert mcnemar_exact(a, a) == 1.0


def test_two_proportion_z_matches_the_closed_form() -> None:
    k1, n1, k2, n2 = 800, 1000, 760, 1000
    p = (k1 + k2) / (n1 + n2)
    z = (k2 / n2 - k1 / n1) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    assert two_proportion_z(k1, n1, k2, n2) == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert two_proportion_z(10, 10, 20, 20) == 1.0  # all right on both sides: no evidence


# --------------------------------------------------------------------------- pairing and modes


def test_shadow_rows_pair_on_the_request_id_and_give_the_agreement() -> None:
    served, shadow = window(2_000, 1)
    shadow = shadow.sample(frac=1.0, random_state=0).iloc[:1_500]  # order and coverage do not matter
    champion, per_version, (s,) = score_versions(served, shadow, cfg())
    assert champion == "v1" and per_version == {"v1": 2_000, "v3": 1_500}
    assert s.mode is Mode.SHADOW and s.n_pairs == 1_500 and s.test == "mcnemar_exact"
    joined = served.merge(shadow, on=c.REQUEST_ID, suffixes=("_a", "_b"))
    expected = float((joined[f"{c.PREDICTION}_a"] == joined[f"{c.PREDICTION}_b"]).mean())
    assert s.agreement == pytest.approx(expected)
    right_a = (joined[f"{c.PREDICTION}_a"] == joined[f"{c.TARGET}_a"]).to_numpy()
    right_b = (joined[f"{c.PREDICTION}_b"] == joined[f"{c.TARGET}_a"]).to_numpy()
    assert s.p_value == pytest.approx(mcnemar_exact(right_a, right_b))
    assert s.gain == pytest.approx(right_b.mean() - right_a.mean())


def test_a_label_on_either_side_labels_the_pair() -> None:
    served, shadow = window(400, 2)
    shadow[c.TARGET] = None  # e.g. the label joined the served row only
    _, _, (s,) = score_versions(served, shadow, cfg())
    assert s.n_champion == 400


def test_split_traffic_is_tested_unpaired() -> None:
    served, shadow = window(4_000, 3, shadow=False)
    champion, _, (s,) = score_versions(served, shadow, cfg())
    assert champion == "v1" or champion == "v3"  # by traffic: about half each
    assert s.mode is Mode.SPLIT and s.n_pairs == 0 and s.agreement is None and s.test == "two_proportion_z"
    a = served[served[c.VERSION] == s.champion]
    b = served[served[c.VERSION] == s.version]
    ka, kb = int((a[c.PREDICTION] == a[c.TARGET]).sum()), int((b[c.PREDICTION] == b[c.TARGET]).sum())
    assert s.p_value == pytest.approx(two_proportion_z(ka, len(a), kb, len(b)))


def test_the_champion_is_configured_or_the_most_served_version() -> None:
    served = pd.DataFrame({c.VERSION: ["v2", "v1", "v1", "v2", "v3"]})
    assert champion_of(cfg().versions, served) == "v1"  # tie between v1 and v2: sort order
    assert champion_of(cfg().versions, served.iloc[:4].assign(**{c.VERSION: ["v2"] * 3 + ["v1"]})) == "v2"
    assert champion_of(cfg(champion="v3").versions, served) == "v3"


# --------------------------------------------------------------------------- verdicts


def _verdict(served: pd.DataFrame, shadow: pd.DataFrame, model: ModelConfig):
    checks, metrics = version_checks(served, shadow, model)
    (quality,) = [ch for ch in checks if ch.check == "version_quality"]
    return quality, {(m.metric, m.feature): m.value for m in metrics}


def test_a_worse_shadow_challenger_fails_and_an_equal_one_passes() -> None:
    model = cfg(champion="v1")
    worse, m = _verdict(*window(3_000, 4, challenger_accuracy=0.72), model)
    assert worse.status is Status.FAIL and worse.category is Category.VERSIONS and worse.feature == "v3"
    assert worse.message.startswith("challenger worse") and m[("version_verdict", "v3")] == -1.0
    same, m = _verdict(*window(3_000, 5), model)
    assert same.status is Status.PASS and same.message.startswith("indistinguishable at this sample size")
    assert m[("version_verdict", "v3")] == 0.0 and 0.6 < m[("version_agreement", "v3")] < 0.75
    assert m[("version_rows", "v1")] == m[("version_rows", "v3")] == 3_000
    assert {("version_accuracy", "v1"), ("version_accuracy", "v3"), ("version_champion", "v1")} <= set(m)


def test_a_better_challenger_passes_with_its_reason() -> None:
    better, m = _verdict(*window(3_000, 6, challenger_accuracy=0.88), cfg(champion="v1"))
    assert better.status is Status.PASS and better.message.startswith("challenger better")
    assert m[("version_verdict", "v3")] == 1.0


def test_split_traffic_worse_challenger_fails() -> None:
    worse, _ = _verdict(*window(6_000, 7, challenger_accuracy=0.72, shadow=False), cfg(champion="v1"))
    assert worse.status is Status.FAIL and "split traffic" in worse.message


def test_few_labels_warn_insufficient_data_instead_of_a_verdict() -> None:
    quality, m = _verdict(*window(3_000, 8, challenger_accuracy=0.5, labelled=0.03), cfg(champion="v1"))
    assert quality.status is Status.WARN and quality.message.startswith("insufficient data")
    assert ("version_verdict", "v3") not in m


def test_a_significant_but_tiny_difference_is_not_a_verdict() -> None:
    served, shadow = window(4_000, 9, challenger_accuracy=0.7)
    _, _, (s,) = score_versions(served, shadow, cfg(champion="v1"))
    strict = cfg(champion="v1", min_effect=0.5).versions
    verdict, check = decide_version(s, strict)
    assert s.p_value < 0.01 and verdict is Verdict.INDISTINGUISHABLE and check.status is Status.PASS


def test_an_absent_champion_warns() -> None:
    served, shadow = window(500, 10)
    checks, _ = version_checks(served, shadow, cfg(champion="v9"))
    assert [ch.status for ch in checks if ch.feature == "v9"] == [Status.WARN]


def test_regression_versions_compare_absolute_errors() -> None:
    rng = np.random.default_rng(11)
    n = 2_000
    y = rng.normal(10, 3, n)
    ids = [f"q{i}" for i in range(n)]
    base = {c.REQUEST_ID: ids, c.TARGET: y, c.TIMESTAMP: T0}
    served = pd.DataFrame({**base, c.VERSION: "v1", c.PREDICTION: y + rng.normal(0, 1, n)})
    shadow = pd.DataFrame({**base, c.VERSION: "v3", c.PREDICTION: y + rng.normal(0, 1.5, n)})
    model = cfg("regression", champion="v1")
    quality, m = _verdict(served, shadow, model)
    assert quality.status is Status.FAIL and "mae" in quality.message and ("version_mae", "v3") in m
    a = np.abs(served[c.PREDICTION] - y)
    b = np.abs(shadow[c.PREDICTION] - y)
    assert m[("version_p_value", "v3")] == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_shadow_recognition_needs_a_logged_version() -> None:
    with pytest.raises(ConfigError, match=r"versions: needs fields\.model_version"):
        model_from_dict({"features": {"x": {"type": "numerical"}}, "fields": {"model_version": None},
                         "versions": {"shadow_versions": ["v3"]}})  # fmt: skip


# --------------------------------------------------------------------------- served frame only


def _docs(n: int, seed: int, shadow: bool) -> list[dict[str, Any]]:
    """Canonical documents of v1 (served) and, with ``shadow``, v3 scoring the same requests with
    ``served: false`` and a wildly different input (a shadow row reaching quality would fail it)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        rid = f"s{seed}-{i}"
        ts = T0 + timedelta(seconds=i)
        x = float(rng.normal())
        p = float(rng.random())
        pred = {"value": "churn" if p >= 0.5 else "stay", "probabilities": {"churn": p, "stay": 1 - p}}
        doc = {"_id": rid, "request_id": rid, "model_version": "v1", "timestamp": ts, "features": {"x": x},
               "prediction": pred, "latency_ms": 10.0, "status": "ok"}  # fmt: skip
        docs.append(doc)
        if shadow:
            docs.append({**doc, "_id": rid + "-shadow", "model_version": "v3", "served": False,
                         "features": {"x": x * 1000}, "latency_ms": 9_000.0, "status": "error"})  # fmt: skip
    return docs


def _shadow_cfg() -> ModelConfig:
    return model_from_dict(
        {
            "task": "binary",
            "classes": ["churn", "stay"],
            "positive_class": "churn",
            "fields": {"probabilities": "prediction.probabilities"},
            "features": {"x": {"type": "numerical"}},
            "service": {"latency_p95_ms": 100},
            "quality": {"expected_volume": {"min": 1, "max": 1_500}},
            "segments": ["model_version"],
            "versions": {"enabled": True, "served_field": "served", "champion": "v1"},
        }
    )


def test_every_check_but_versions_sees_the_served_predictions_only() -> None:
    from mlmon.tasks.evaluate import evaluate, profile_kinds
    from mlmon.tasks.extract import decode_documents
    from mlmon.tasks.reference import fit_profile
    from mlmon.tasks.window import Window

    model = _shadow_cfg()
    profile = fit_profile(decode_documents(_docs(1_000, 1, False), model).frame, profile_kinds(model), "h")
    w = Window(T0, T0 + timedelta(days=1))
    with_shadow = decode_documents(_docs(1_000, 2, True), model, w)
    served_only = decode_documents(_docs(1_000, 2, False), model, w)
    assert len(with_shadow.frame) == 1_000 and set(with_shadow.frame[c.VERSION]) == {"v1"}
    assert len(with_shadow.shadow) == 1_000 and set(with_shadow.shadow[c.VERSION]) == {"v3"}
    assert served_only.shadow is not None and served_only.shadow.empty
    a = evaluate(model, profile, with_shadow, w, computed_at=T0)
    b = evaluate(model, profile, served_only, w, computed_at=T0)

    def others(r):
        checks = [
            (x.check, x.feature, x.segment, x.status, x.value)
            for x in r.checks
            if x.category is not Category.VERSIONS
        ]
        metrics = [x for x in r.metrics if not x.metric.startswith("version_")]
        return checks, metrics, r.n_rows, r.drift  # fmt: skip

    assert others(a) == others(b)  # drift, quality, volume, duplicates, health: the same as without shadow
    assert [
        x.status for x in a.checks if x.check in ("duplicate_request_ids", "error_rate", "row_count")
    ] == [x.status for x in b.checks if x.check in ("duplicate_request_ids", "error_rate", "row_count")]
    versions = [x for x in a.checks if x.category is Category.VERSIONS and x.segment == "all"]
    assert {x.feature for x in versions} == {"v3"}  # the shadow rows reached the versions family


def test_shadow_versions_by_name_and_a_missing_served_flag_counts_as_served() -> None:
    from mlmon.tasks.extract import decode_documents

    docs = _docs(50, 3, True)
    for d in docs:
        d.pop("served", None)
    by_flag = decode_documents(docs, _shadow_cfg())
    assert len(by_flag.frame) == 100 and by_flag.shadow.empty  # no flag logged: everything was served
    by_name = model_from_dict(
        {"features": {"x": {"type": "numerical"}}, "versions": {"shadow_versions": ["v3"]}}
    )
    batch = decode_documents(docs, by_name)
    assert len(batch.frame) == 50 and len(batch.shadow) == 50


def test_a_served_flag_that_is_not_true_false_is_quarantined() -> None:
    from mlmon.tasks.extract import decode_documents

    docs = _docs(5, 4, True)
    docs[1]["served"] = "nope"
    batch = decode_documents(docs, _shadow_cfg())
    assert [q.reason for q in batch.quarantine] == ["wrong_type"] and len(batch.shadow) == 4


@pytest.mark.integration
def test_labels_join_both_the_served_and_the_shadow_prediction(mongo_db: Any) -> None:
    from mlmon.tasks.extract import read_window
    from mlmon.tasks.window import Window

    model = _shadow_cfg().model_copy(
        update={"source": model_from_dict({"features": {"x": {"type": "numerical"}},
                                          "source": {"database": mongo_db.name, "labels": {}}}).source}
    )  # fmt: skip
    docs = _docs(60, 5, True)
    mongo_db["predictions"].insert_many(docs)
    mongo_db["labels"].insert_many(
        [
            {"request_id": f"s5-{i}", "label": "churn", "timestamp": T0 + timedelta(days=2)}
            for i in range(0, 60, 2)
        ]
    )
    batch = read_window(mongo_db, model, Window(T0, T0 + timedelta(days=1)))
    assert batch.n_labels_joined == 30 and len(batch.frame) == 60 and len(batch.shadow) == 60
    assert batch.shadow[c.TARGET].notna().sum() == 30
    lab = batch.shadow[batch.shadow[c.TARGET].notna()]
    assert set(lab[c.REQUEST_ID]) == set(batch.frame[batch.frame[c.TARGET].notna()][c.REQUEST_ID])


def test_the_report_has_a_versions_section_with_a_row_per_version(tmp_path) -> None:
    from dataclasses import replace

    from mlmon.reports.render import write_report
    from tests import factories as fx

    checks, metrics = version_checks(*window(3_000, 12, challenger_accuracy=0.72), cfg(champion="v1"))
    r = fx.result()
    r = replace(r, checks=(*r.checks, *checks), metrics=(*r.metrics, *metrics))
    page = write_report(r, fx.config(), tmp_path, None).read_text()
    section = page[page.index('id="versions"') : page.index('id="quarantine"')]
    assert "v1</td>" not in section or "(champion)" in section
    assert section.index("(champion)") < section.index(">v3")  # the champion's row first
    assert "worse</td>" in section and "3,000" in section and "Version Quality" in section.title()
    assert 'href="#versions"' in page
