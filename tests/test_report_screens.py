"""What a reader sees on the first screen, in a real headless Chromium, offline and without JavaScript.

The failing report is the demo's data-quality day computed by the real engine; the passing one a clean
window; the index lists both. Pixels are read from the screenshots (Pillow): the verdict badge's colour
in the header, the pictures' window bars (a solid fill only the charts use) and the sparklines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlmon.reports import render
from mlmon.tasks.checks.outcome import Status
from mlmon.tasks.evaluate import evaluate, profile_kinds
from mlmon.tasks.extract import Batch
from mlmon.tasks.reference import fit_profile
from tests import factories as fx
from tests.browser import dump_dom, require_chromium, screenshot

pytestmark = pytest.mark.browser

FIRST_SCREEN = (1400, 900)
FAIL_RED = (224, 64, 47)  # .top .badge.fail
PASS_GREEN = (44, 156, 81)  # .top .badge.pass
BAR_BLUE = (63, 111, 216)  # svg.chart .cur: the window's bars and marks
N = 2500


@dataclass(frozen=True)
class Site:
    failing: Path
    passing: Path
    index: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    require_chromium()
    out = tmp_path_factory.mktemp("screens")
    cfg = fx.config()
    profile = fit_profile(fx.frame(N, seed=1), profile_kinds(cfg), "ref")
    bad = evaluate(cfg, profile, Batch(frame=fx.data_quality_frame(N)), fx.window(3))
    good = evaluate(cfg, profile, Batch(frame=fx.frame(N, seed=8)), fx.window(4))
    good = type(good)(
        **{**good.__dict__, "checks": tuple(ch for ch in good.checks if ch.status is Status.PASS)}
    )
    failing = render.write_report(bad, cfg, out, None)
    passing = render.write_report(good, cfg, out, None)
    index = render.write_index(out, render.scan_index(out))
    return Site(failing, passing, index)


def without_scripts(page: Path) -> Path:
    """The page as a reader without JavaScript gets it: every script removed (same folder, same links)."""
    html = re.sub(r"<script\b.*?</script>", "", page.read_text(), flags=re.S)
    assert "<script" not in html
    copy = page.with_name(page.stem + ".nojs.html")
    copy.write_text(html)
    return copy


def shot(page: Path, png: Path, javascript: bool) -> Path:
    return screenshot(page if javascript else without_scripts(page), png, size=FIRST_SCREEN)


def pixels(png: Path, color: tuple[int, int, int]) -> int:
    from PIL import Image

    with Image.open(png) as im:
        return sum(n for n, rgb in im.convert("RGB").getcolors(maxcolors=1 << 20) if rgb == color)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_failing_report_first_screen_shows_verdict_incidents_and_pictures(
    site: Site, tmp_path: Path, javascript: bool
) -> None:
    png = shot(site.failing, tmp_path / "failing.png", javascript)
    assert pixels(png, FAIL_RED) > 500  # the FAIL verdict in the header
    assert pixels(png, BAR_BLUE) > 3000  # the incidents' pictures are drawn on the first screen
    assert pixels(png, PASS_GREEN) == 0


def test_failing_report_dom_orders_verdict_incidents_then_details(site: Site) -> None:
    dom = dump_dom(site.failing)
    first = dom.index('id="incidents"')
    assert first < dom.index('id="trends"') < dom.index("<table")
    blocks = re.findall(r'<li class="incident (\w+)" data-key="([^"]+)">(.*?)</li>', dom, re.S)
    assert 1 <= len(blocks) <= 6
    assert all("<svg" in body for _, key, body in blocks if key.startswith("column:"))
    assert "values about 60× larger than in the reference" in dom


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_passing_report_first_screen_says_so(site: Site, tmp_path: Path, javascript: bool) -> None:
    png = shot(site.passing, tmp_path / "passing.png", javascript)
    assert pixels(png, PASS_GREEN) > 500 and pixels(png, FAIL_RED) == 0
    dom = dump_dom(site.passing)
    assert re.search(r"All [\d,]+ checks passed: nothing broke in this window\.", dom)


def test_index_first_screen_has_a_sparkline_per_model(site: Site, tmp_path: Path) -> None:
    png = shot(site.index, tmp_path / "index.png", javascript=False)
    assert pixels(png, BAR_BLUE) > 20  # the sparkline's points
    html = site.index.read_text()
    assert html.count('<span class="spark"') == 1
    assert "values about 60× larger" in html  # the failing window's top incident


def test_pages_load_nothing_from_the_network(site: Site) -> None:
    for page in (site.failing, site.passing, site.index):
        html = page.read_text()
        assert "default-src &#39;none&#39;" in html  # the CSP blocks any request the page might make
        assert not re.search(r'(src|href)="(https?:)?//', html)
