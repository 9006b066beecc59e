"""The report's estimated-performance section: estimate, band and reference drawn, the realized value
added once the labels are in, the family's checks listed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlmon.reports.render import write_report
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from tests import factories as fx


def _estimated(realized: bool) -> tuple[list[CheckResult], list[Metric]]:
    metrics = [
        Metric(f"estimated_accuracy{s}", v, "", ALL)
        for s, v in (("", 0.70), ("_lower", 0.66), ("_upper", 0.74), ("_reference", 0.79))
    ]
    if realized:
        metrics.append(Metric("accuracy", 0.71, "", ALL))
    msg = "estimated drop: estimated accuracy 0.700 (band 0.660–0.740) on 2,400 rows, reference 0.790"
    check = CheckResult("estimated_accuracy", Category.ESTIMATED_PERFORMANCE, Status.FAIL, 0.7, 0.77, msg)
    return [check], metrics


def test_the_section_shows_estimate_band_and_realized(tmp_path: Path) -> None:
    base = fx.result()
    base = replace(base, metrics=tuple(m for m in base.metrics if m.metric != "accuracy"))
    for realized in (False, True):
        checks, metrics = _estimated(realized)
        r = replace(base, checks=(*base.checks, *checks), metrics=(*base.metrics, *metrics))
        page = write_report(r, fx.config(), tmp_path / str(realized), None).read_text()
        section = page[page.index('<section id="estimated">') :]
        section = section[: section.index("</section>")]
        assert 'href="#estimated"' in page
        assert "estimated drop: estimated accuracy 0.700" in section
        assert "band 0.66 – 0.74" in section and "reference 0.79" in section
        assert ("realized accuracy 0.71" in section) is realized


def test_no_section_without_the_family(tmp_path: Path) -> None:
    page = write_report(fx.result(), fx.config(), tmp_path, None).read_text()
    assert 'id="estimated"' not in page
