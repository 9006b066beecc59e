"""The HTML reports: escaping of untrusted values, shared Evidently assets, sidecars and the index."""

from __future__ import annotations

import base64
import doctest
import hashlib
import json
import logging
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mlmon.reports import render
from mlmon.reports.render import RunSummary, scan_index, write_index, write_report
from mlmon.tasks.checks.outcome import Status
from tests import factories as fx

FONT = b"wOF2-not-really-a-font" * 50
LIB = "var evidentlyLib = function () { return 1; };\n/*" + "x" * 300_000 + "*/"


def fake_evidently(data_chars: int = 1000) -> str:
    """A page shaped like Evidently's: inline data, a large inline library, a base64 font."""
    data = json.dumps({"name": "Report", "widgets": [{"title": "t", "pad": "y" * data_chars}]})
    return f"""
    <!DOCTYPE html>
    <html lang="en">
    <head>
        <style>
        @font-face {{ font-family: 'Material Icons';
        src: url(data:font/ttf;base64,{base64.b64encode(FONT).decode()}) format('woff2'); }}
        </style>
        <script>
    var metric_abc = {data};
    var additional_graphs_metric_abc = {{}};
</script>
    </head>
    <body>
    <div id="root_metric_abc"></div>
    <script>var global = globalThis</script>
    <script>{LIB}</script>
    <script>window.drawDashboard(metric_abc, new Map(), "root_metric_abc");</script>
    </body>
    </html>
"""


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>", html)


def test_doctests() -> None:
    from mlmon.tasks import contract

    assert doctest.testmod(render).failed == 0
    assert doctest.testmod(contract).failed == 0


# --------------------------------------------------------------------------- escaping


def test_untrusted_values_are_escaped_everywhere(tmp_path: Path) -> None:
    r = fx.result(hostile=fx.HOSTILE)
    page = write_report(r, fx.config(), tmp_path, None).read_text()
    assert fx.HOSTILE not in page
    assert "<b id=pwned>" not in page
    escaped = "&lt;script&gt;document.title=&#39;pwned&#39;"
    # in a quarantined document, its field and detail, a check message, a feature name, a segment, a note
    assert page.count(escaped) >= 7
    assert f"features.{escaped}" in page  # the quarantined field
    assert f"plan={escaped}" in page  # the segment
    assert f"note with {escaped}" in page
    assert _scripts(page) == ["<script>"]  # only our own script


def test_hostile_model_name_stays_inside_the_reports_folder(tmp_path: Path) -> None:
    model = "../../<script>alert(1)</script>"
    page = write_report(fx.small_result(model), fx.config(), tmp_path / "out", None)
    assert page.resolve().is_relative_to((tmp_path / "out").resolve())
    assert "<" not in page.parent.name and "/" not in page.parent.name
    html = page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    [run] = scan_index(tmp_path / "out")
    assert run.model == model
    index = write_index(tmp_path / "out", [run]).read_text()
    assert "<script>alert(1)" not in index and "&lt;script&gt;alert(1)" in index


def test_model_dir_names_do_not_collide() -> None:
    names = ["a/b", "a?b", "a-b", "assets", "ASSETS", "index.html", ".hidden", ""]
    dirs = [render.model_dir(n) for n in names]
    assert len(set(dirs)) == len(dirs)
    assert all(d and not d.startswith(".") and "/" not in d for d in dirs)
    assert render.model_dir("churn.v2") == "churn.v2"


def test_the_csp_pins_our_only_script(tmp_path: Path) -> None:
    page = write_report(fx.result(), fx.config(), tmp_path, None).read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    [script] = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.replace("&#39;", "'")
    assert "default-src 'none'" in csp.replace("&#39;", "'")


def test_nothing_is_loaded_from_the_network(tmp_path: Path) -> None:
    page = write_report(fx.result(), fx.config(), tmp_path, fake_evidently()).read_text()
    index = write_index(tmp_path, scan_index(tmp_path)).read_text()
    evid = next(tmp_path.glob("*/*.evidently.html")).read_text()
    for html in (page, index, evid):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
        assert "@import" not in html and "fonts.googleapis" not in html


# --------------------------------------------------------------------------- the report's content


def test_summary_comes_first_and_failed_checks_are_listed(tmp_path: Path) -> None:
    r = fx.result()
    page = write_report(r, fx.config(), tmp_path, fake_evidently()).read_text()
    order = [page.index(f'id="{s}"') for s in ("summary", "failed", "drift", "quality", "model", "health")]
    order += [page.index('id="quarantine"'), page.index('id="evidently"')]
    assert order == sorted(order)
    failed = page[page.index('id="failed"') : page.index('id="drift"')]
    for ch in r.failed:
        assert ch.message.replace("'", "&#39;") in failed
    assert 'class="badge fail big"' in page  # the headline status
    assert "2,431" in page and "60%" in page  # rows and label coverage
    assert "Evidently ran on a seeded sample of 2,000 of 2,431 rows" in page


def test_drift_table_is_sorted_by_severity_then_effect(tmp_path: Path) -> None:
    page = write_report(fx.result(), fx.config(), tmp_path, None).read_text()
    table = page[page.index('id="drift"') : page.index("Segment <span")]
    names = re.findall(r'<td class="name">([^<]+?) <span class="tag">', table)
    assert names[:4] == [
        "income",
        "sessions_last_7d",
        "country",
        "avg_session_minutes",
    ]  # failed, by effect/min
    assert names[4] == "score"  # passed, largest effect relative to its minimum first
    assert "1.00e-42" in table  # p-values in scientific notation


def test_numbers_are_formatted() -> None:
    assert render.fmt_p(1.234e-9) == "1.23e-9"
    assert render.fmt_num(1e308) == "1.0e308"  # never a 309-digit number
    assert render.fmt_ms(2500.0) == "2.5 s"
    assert render.fmt_num(-1.5e20) == "-1.5e20"
    assert render.fmt_pct(0.297) == "29.7%"
    assert render.fmt_value("error_rate", 0.004) == "0.40%"
    assert render.fmt_value("latency_p99", 131.0) == "131 ms"
    assert render.fmt_num(2431.0) == "2,431"


# --------------------------------------------------------------------------- Evidently assets


def test_evidently_assets_are_written_once_and_referenced_relatively(tmp_path: Path) -> None:
    cfg = fx.config()
    first = write_report(fx.result(), cfg, tmp_path, fake_evidently(data_chars=400_000))
    assets = sorted((tmp_path / "assets").iterdir())
    assert [a.suffix for a in assets] == [".js", ".woff2"]
    js = next(a for a in assets if a.suffix == ".js")
    assert js.name == f"evidently-{hashlib.sha256(LIB.encode()).hexdigest()[:12]}.js"
    assert js.read_text() == LIB
    font = next(a for a in assets if a.suffix == ".woff2")
    assert font.read_bytes() == FONT
    stamps = {a.name: a.stat().st_mtime_ns for a in assets}

    second = write_report(fx.result(w=fx.window(5)), cfg, tmp_path, fake_evidently(data_chars=400_000))
    assert {a.name: a.stat().st_mtime_ns for a in (tmp_path / "assets").iterdir()} == stamps  # not rewritten

    for page in (first, second):
        evid = page.with_name(page.name.replace(".html", ".evidently.html"))
        html = evid.read_text()
        assert f'<script src="../assets/{js.name}"></script>' in html
        assert f"url(../assets/{font.name})" in html
        assert LIB not in html and "base64," not in html
        assert "var metric_abc = " in html  # the report's own data stays inline, however large
        assert (evid.parent / f"../assets/{js.name}").resolve() == js.resolve()
        assert f'src="{evid.name}"' in page.read_text()  # the iframe
        assert len(html) < 420_000


def test_real_evidently_page_shrinks(tmp_path: Path) -> None:
    from mlmon.tasks.checks.presets import run_evidently

    out = run_evidently(fx.frame(300, seed=1), fx.frame(200, seed=2), fx.config())
    page = write_report(fx.result(), fx.config(), tmp_path, out.html)
    evid = page.with_name(page.name.replace(".html", ".evidently.html"))
    js = next((tmp_path / "assets").glob("*.js"))
    assert len(out.html) > 3_500_000
    assert evid.stat().st_size < len(out.html) - 3_400_000
    assert js.stat().st_size > 3_000_000
    assert "window.drawDashboard(" in evid.read_text()


def test_rerun_without_evidently_removes_the_stale_page(tmp_path: Path) -> None:
    page = write_report(fx.result(), fx.config(), tmp_path, fake_evidently())
    evid = page.with_name(page.name.replace(".html", ".evidently.html"))
    assert evid.exists()
    write_report(fx.result(), fx.config(), tmp_path, None)
    assert not evid.exists()
    assert "No Evidently report for this window" in page.read_text()


def test_extra_details_are_shown_and_only_http_links_are_links(tmp_path: Path) -> None:
    extra = {"Grafana": "https://grafana.example/d/x", "note": "javascript:alert(1)"}
    page = write_report(fx.result(), fx.config(), tmp_path, None, extra=extra).read_text()
    assert 'href="https://grafana.example/d/x"' in page
    assert 'href="javascript:' not in page and "<b>javascript:alert(1)</b>" in page


# --------------------------------------------------------------------------- sidecars and index


def test_sidecar_round_trips(tmp_path: Path) -> None:
    r = fx.result()
    page = write_report(r, fx.config(), tmp_path, None)
    side = json.loads(page.with_suffix(".json").read_text())
    assert side["version"] == 1 and side["status"] == "fail"
    [run] = scan_index(tmp_path)
    assert run == replace(
        render.summarize(r, f"demo_classifier/{page.name}"),
        n_incidents=run.n_incidents,
        headline=run.headline,
    )
    assert run.n_incidents > 0 and run.headline
    assert (run.n_failed, run.n_warned, run.n_quarantined, run.n_rows) == (8, 2, 8, 2431)


def _runs(tmp_path: Path) -> list[RunSummary]:
    cfg = fx.config()
    statuses = [Status.PASS, Status.WARN, Status.FAIL, Status.PASS]
    for day in (2, 0, 3, 1):  # written out of order on purpose
        for model in ("b-model", "a-model"):
            write_report(fx.small_result(model, fx.window(day), statuses[day]), cfg, tmp_path, None)
    return scan_index(tmp_path)


def test_scan_index_is_newest_first(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    assert len(runs) == 8
    starts = [r.window_start for r in runs]
    assert starts == sorted(starts, reverse=True)
    assert all((tmp_path / r.report_path).exists() for r in runs)


def test_index_lists_each_model_newest_window_first(tmp_path: Path) -> None:
    html = write_index(tmp_path, _runs(tmp_path)).read_text()
    assert html.index('data-model="a-model"') < html.index('data-model="b-model"')
    for model in ("a-model", "b-model"):
        section = html[html.index(f'data-model="{model}"') :]
        section = section[: section.index("</section>")]
        days = re.findall(r'<td class="nowrap"><a href="[^"]+">(2026-01-\d\d)</a></td>', section)
        assert days == ["2026-01-09", "2026-01-08", "2026-01-07", "2026-01-06"]
        links = re.findall(r'href="([^"]+)"', section)
        assert links and all(link.startswith(f"{model}/") and link.endswith(".html") for link in links)
        assert all((tmp_path / link).exists() for link in links)
    assert 'data-status="fail"' in html and 'class="badge warn' in html


def test_scan_skips_damaged_and_orphan_sidecars(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _runs(tmp_path)
    sides = sorted(p for p in tmp_path.glob("a-model/*.json") if not p.name.endswith(render.RESULT_SUFFIX))
    sides[0].write_text("{not json")
    sides[1].with_suffix(".html").unlink()
    with caplog.at_level(logging.WARNING, logger="mlmon.reports.render"):
        runs = scan_index(tmp_path)
    assert len(runs) == 6
    assert "skipping unreadable report summary" in caplog.text and sides[0].name in caplog.text


def test_empty_index(tmp_path: Path) -> None:
    html = write_index(tmp_path / "new", []).read_text()
    assert "No reports yet" in html


def test_hourly_windows_are_labelled_with_times(tmp_path: Path) -> None:
    w = fx.window(0, hours=1)
    write_report(fx.small_result("m", w), fx.config(), tmp_path, None)
    later = replace(w, start=w.start + timedelta(hours=1), end=w.end + timedelta(hours=1))
    write_report(fx.small_result("m", later), fx.config(), tmp_path, None)
    html = write_index(tmp_path, scan_index(tmp_path)).read_text()
    assert html.index("2026-01-06 01:00 → 02:00 UTC") < html.index("2026-01-06 00:00 → 01:00 UTC")


def test_the_fairness_section_shows_the_gaps_with_limits_and_a_row_per_group(tmp_path: Path) -> None:
    from mlmon.tasks.checks.fairness import fairness_checks
    from mlmon.tasks.config import model_from_dict
    from tests.checks.test_fairness import binary_frame

    cfg = model_from_dict({
        "task": "binary", "classes": ["stay", "churn"], "positive_class": "churn",
        "features": {"x": {"type": "numerical"}, "plan": {"type": "categorical"}},
        "business_fields": {"region": {"path": "customer.region", "type": "categorical"}},
        "fairness": {"enabled": True, "attributes": ["region"]},
    })  # fmt: skip
    checks, metrics = fairness_checks(binary_frame(4_000, 1, {"north": 0.4, "<b>south</b>": 0.1}), cfg)
    r = fx.result()
    r = replace(r, checks=(*r.checks, *checks), metrics=(*r.metrics, *metrics))
    page = write_report(r, fx.config(), tmp_path, None).read_text()
    assert '<a href="#fairness">' in page
    section = page[page.index('id="fairness"') : page.index('id="quarantine"')]
    assert "demographic parity ratio" in section and ">0.8<" in section  # the gap with its limit
    assert section.count('class="badge fail"') >= 2  # difference and ratio fail on a 30-point gap
    assert "region=north" in section and "region=&lt;b&gt;south&lt;/b&gt;" in section  # escaped
    assert "Selection rate" in section or "selection rate" in section
    plain = write_report(fx.result(), fx.config(), tmp_path / "plain", None).read_text()
    assert 'id="fairness"' not in plain  # no family, no section
