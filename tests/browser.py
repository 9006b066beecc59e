"""A small headless-Chromium helper for the report tests: dump a page's DOM, take a screenshot.

Chromium runs offline-ish (no background networking, no component updates, no sync) with a throwaway
profile, and lets the page's scripts run for a few seconds of virtual time before dumping.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TIMEOUT_S = 120  # a cold start on 2 busy cores can take a while
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of the Chromium binary (``/usr/bin/chromium`` or ``chromium`` on PATH), or None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium binary; skips the test when absent locally, fails in CI (where it must be installed)."""
    found = find_chromium()
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (.ci/run installs it) but was not found")
    pytest.skip("chromium not installed (apt-get install chromium); the browser tests need it")


def _url(url_or_path: str | Path) -> str:
    text = str(url_or_path)
    if "://" in text:
        return text
    path, hash_, fragment = text.partition("#")
    return Path(path).resolve().as_uri() + hash_ + fragment


def _run(args: list[str], budget_ms: int) -> subprocess.CompletedProcess[str]:
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="mlmon-chromium-") as profile:
        cmd = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *args,
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"chromium did not finish within {TIMEOUT_S}s: {' '.join(cmd)}") from e
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def dump_dom(url_or_path: str | Path, *, budget_ms: int = 5000, width: int | None = None) -> str:
    """The serialized DOM of a page after its scripts ran (``--dump-dom``), laid out ``width`` px wide."""
    size = [f"--window-size={width},900"] if width else []
    return _run([*size, "--dump-dom", _url(url_or_path)], budget_ms).stdout


_MEASURE = """<script>addEventListener("load", () => {
  const wide = [...document.querySelectorAll(".tw, .tabs")].filter((e) =>
    e.scrollWidth > e.clientWidth + 1 ||
    [...e.querySelectorAll(":scope > a")].some((a) => a.getBoundingClientRect().right > innerWidth));
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify(wide.map((e) => ({
    section: e.matches(".tabs") ? "tabs" : (e.closest("section") || {}).id || "",
    width: e.scrollWidth, box: e.clientWidth})));
  document.body.appendChild(out);
});</script>"""


def wide_tables(page: Path, width: int = 1400, *, budget_ms: int = 5000) -> list[dict[str, object]]:
    """What a reader would have to scroll sideways for when ``page`` is shown ``width`` px wide: its
    tables (their ``.tw`` scroll boxes) wider than their box, and its tab bar (section ``tabs``) when a
    tab is off the screen. Measured on a copy next to the page without its Content-Security-Policy, so
    that the measuring script may run."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    copy = page.with_name(f".measure-{page.name}")
    copy.write_text(text.replace("</body>", _MEASURE + "</body>"))
    try:
        dom = dump_dom(copy, budget_ms=budget_ms, width=width)
    finally:
        copy.unlink()
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError(f"the measuring script did not run on {page}")
    return json.loads(html.unescape(found.group(1)))


def screenshot(
    url_or_path: str | Path,
    png_path: str | Path,
    *,
    size: tuple[int, int] = (1400, 2000),
    budget_ms: int = 5000,
) -> Path:
    """Save a PNG screenshot of a page (``--screenshot``) at ``size`` (width, height) and return its path."""
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    _run([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", _url(url_or_path)], budget_ms)
    if not png.exists():
        raise RuntimeError(f"chromium did not write the screenshot {png}")
    return png
