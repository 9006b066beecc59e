"""The demo's model-health days through the real engine (simulated documents, the demo's config):
multivariate drift fails on the correlation day (9) and passes on the clean days (1, 2) while univariate
drift passes on day 9; on the drift day (3) the drifted features are ranked by impact."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlmon.simulate import simulate
from mlmon.tasks.checks.families import fit_families
from mlmon.tasks.checks.outcome import ALL, Category, Status, WindowResult
from mlmon.tasks.checks.performance import reference_performance
from mlmon.tasks.config import load_config
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import decode_documents
from mlmon.tasks.reference import fit_profile
from mlmon.tasks.window import Window

START = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = Path(__file__).resolve().parents[1] / "deployments" / "models.yaml"


def demo_config():
    # segments off: the whole window is what the acceptance is about (segments have their own tests)
    return load_config(CONFIG).model("demo_classifier").model_copy(update={"segments": []})


@pytest.fixture(scope="module")
def days() -> dict[int, WindowResult]:
    cfg = demo_config()
    assert cfg.multivariate_drift.enabled and cfg.explanations.enabled
    predictions, _ = simulate(START, days=10, per_day=2_500, seed=0)

    def batch(d: int):
        w = Window(START + timedelta(days=d), START + timedelta(days=d + 1))
        docs = [
            p
            for p in predictions
            if isinstance(p["timestamp"], datetime) and w.start <= p["timestamp"] < w.end
        ]
        return w, decode_documents(docs, cfg, w)

    _, ref = batch(0)
    profile = fit_profile(ref.frame, profile_kinds(cfg), "demo")
    profile = fit_families(
        replace(profile, performance=reference_performance(ref.frame, cfg)), ref.frame, cfg
    )
    out = {}
    for d in (1, 2, 3, 9):
        window, b = batch(d)
        out[d] = evaluate(cfg, profile, b, window, reference=ref.frame)
    return out


def _check(r: WindowResult, name: str, feature: str = ""):
    return next(ch for ch in r.checks if ch.check == name and ch.feature == feature and ch.segment == ALL)


def test_multivariate_drift_fails_on_the_correlation_day_only(days) -> None:
    for d in (1, 2):
        assert _check(days[d], "multivariate_drift").status is Status.PASS, d
    day9 = days[9]
    mv = _check(day9, "multivariate_drift")
    assert mv.status is Status.FAIL, mv.message
    assert "relies on income" in mv.message or "relies on age" in mv.message
    assert not [x.feature for x in day9.drift if x.drifted]  # every per-feature test passes
    assert _check(day9, "dataset_drift").status is Status.PASS


def test_the_drift_day_ranks_drifted_features_by_impact(days) -> None:
    from mlmon.reports.render import impact_rows

    r = days[3]
    ranked = [row["d"].feature for row in impact_rows(r)]
    drifted_features = {x.feature for x in r.drift if x.drifted and not x.feature.startswith("__")}
    assert set(ranked) == drifted_features == {"income", "sessions_last_7d"}
    impacts = [row["impact"] for row in impact_rows(r)]
    assert impacts == sorted(impacts, reverse=True)
    assert {_check(r, "feature_impact", f).status for f in ranked} == {Status.FAIL}
    attribution = _check(r, "prediction_drift_attribution")
    assert attribution.status is Status.FAIL and "explained by sessions_last_7d" in attribution.message
    for d in (1, 2, 9):
        bad = [
            ch
            for ch in days[d].checks
            if ch.category is Category.EXPLANATIONS and ch.status is not Status.PASS
        ]
        assert not bad, (d, [(ch.check, ch.feature, ch.segment, ch.message) for ch in bad])


def test_the_drift_day_report_shows_the_ranking_and_day_9_the_multivariate_failure(days, tmp_path) -> None:
    from mlmon.reports.render import write_report

    page = write_report(days[3], demo_config(), tmp_path / "d3", None).read_text()
    ranking = page[page.index('id="impact"') : page.index("</table>", page.index('id="impact"'))]
    assert ranking.index("sessions_last_7d") < ranking.index("income")
    assert "tenure_months" not in ranking  # not drifted: not ranked
    page = write_report(days[9], demo_config(), tmp_path / "d9", None).read_text()
    section = page[page.index('<section id="multivariate">') :]
    assert "joint distribution changed" in section[: section.index("</section>")]
