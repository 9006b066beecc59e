"""The reports in a real headless Chromium, offline (file:// URLs): what a reader sees, and what never runs.

A hostile value from the logs (a ``<script>`` that would set ``document.title`` and add ``<b id=pwned>``)
is placed in a quarantined document, a feature name, a check message, a segment, a note and an
Evidently category; the pages must show it as text and never execute it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlmon.reports.render import scan_index, write_index, write_report
from mlmon.tasks.checks.presets import run_evidently
from tests import factories as fx
from tests.browser import dump_dom, require_chromium, screenshot, wide_tables

pytestmark = pytest.mark.browser

BUDGET_MS = 10_000  # virtual time for Evidently's 3.5 MB of JavaScript to run


@dataclass(frozen=True)
class Site:
    out: Path
    report: Path
    evidently: Path
    index: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    require_chromium()
    out = tmp_path_factory.mktemp("reports")
    cfg = fx.config()
    ref, cur = fx.frame(400, seed=1), fx.frame(300, seed=2, shift=1.0, labelled=0.5)
    cur.loc[cur.index[:30], "country"] = fx.HOSTILE
    evid = run_evidently(ref, cur, cfg)
    assert evid.errors == ()
    report = write_report(fx.result(hostile=fx.HOSTILE), cfg, out, evid.html)
    for day in range(3):
        write_report(fx.small_result("other", fx.window(day)), cfg, out, None)
    index = write_index(out, scan_index(out))
    return Site(out, report, report.with_name(report.name.replace(".html", ".evidently.html")), index)


def _not_executed(dom: str) -> None:
    assert 'id="pwned"' not in dom and "<b id=pwned>" not in dom
    titles = re.findall(r"<title>(.*?)</title>", dom, re.S)
    assert "pwned" not in (titles[0] if titles else "")


def test_report_shows_summary_and_failed_checks_and_never_runs_logged_script(site: Site) -> None:
    dom = dump_dom(site.report, budget_ms=BUDGET_MS)
    assert re.search(r'<h1 id="headline">demo_classifier<span class="sep">·</span>2026-01-10</h1>', dom)
    assert "<title>demo_classifier · 2026-01-10</title>" in dom
    assert "Failed checks" in dom
    assert "tenure_months missing in 29.7% of rows" in dom
    assert "country: 4.1% of rows in categories the reference never saw" in dom
    # the payload is on the page as text (serialized escaped) and did not run
    assert "&lt;script&gt;document.title='pwned'" in dom
    _not_executed(dom)


def test_evidently_loads_offline_inside_the_report(site: Site) -> None:
    dom = dump_dom(site.report, budget_ms=BUDGET_MS)
    [frame] = re.findall(r'<iframe id="evidently-frame"[^>]*>', dom)
    # the framed page ran Evidently from ../assets/ and told the report its height
    assert 'data-loaded="true"' in frame
    height = int(re.search(r"height: (\d+)px", frame).group(1))
    assert height > 2000


def test_evidently_page_renders_its_dashboard_offline(site: Site) -> None:
    html = site.evidently.read_text()
    assert re.search(r'<script src="\.\./assets/evidently-[0-9a-f]{12}\.js"></script>', html)
    dom = dump_dom(site.evidently, budget_ms=BUDGET_MS)
    root = re.search(r'<div id="root_metric_\w+">(.*)', dom, re.S)
    assert root and len(root.group(1)) > 50_000  # React filled the dashboard
    assert "Dataset Drift" in dom and "Data drift and summary: 300 rows" in dom
    assert "Classification quality:" in dom
    assert "MuiSvgIcon" in dom  # rendered components, not just the embedded data
    _not_executed(dom)


def test_index_lists_reports_and_its_filters_work(site: Site) -> None:
    dom = dump_dom(site.index)
    assert re.search(r'<section id="filters" class="">|<section id="filters">', dom)  # our script ran
    assert 'id="f-shown">4<' in dom
    links = set(re.findall(r'href="([^"#]+\.html)"', dom))
    assert links and all((site.out / link).exists() for link in links)
    assert any(link.startswith("demo_classifier/") for link in links)
    # a link such as index.html#model=other shows that model only
    dom = dump_dom(f"{site.index}#model=other")
    assert re.search(r'<section id="m-demo_classifier" data-model="demo_classifier" class="hidden">', dom)
    assert re.search(r'<section id="m-other" data-model="other"( class="")?>', dom)
    assert 'id="f-shown">3<' in dom


def test_tables_and_tabs_fit_a_laptop_screen(site: Site) -> None:
    # The report's tables (drift: 12 columns), its tab bar (every section's tab) and the index fit
    # 1400 px without sideways scrolling; on a narrower screen the tabs wrap rather than hide.
    for page in (site.report, site.index):
        assert wide_tables(page, 1400, budget_ms=BUDGET_MS) == [], page.name
    assert [w for w in wide_tables(site.report, 900, budget_ms=BUDGET_MS) if w["section"] == "tabs"] == []


def test_screenshots(site: Site, tmp_path: Path) -> None:
    for page, size in ((site.report, (1400, 2000)), (site.index, (1400, 900))):
        png = screenshot(page, tmp_path / f"{page.stem}.png", size=size, budget_ms=BUDGET_MS)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
