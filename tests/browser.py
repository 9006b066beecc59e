"""A small headless-Chromium helper for the report tests: dump a page's DOM, take a screenshot.

Chromium runs offline-ish (no background networking, no component updates, no sync) with a throwaway
profile, and lets the page's scripts run for a few seconds of virtual time before dumping.
"""

from __future__ import annotations

import os
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


def dump_dom(url_or_path: str | Path, *, budget_ms: int = 5000) -> str:
    """The serialized DOM of a page after its scripts ran (``--dump-dom``)."""
    return _run(["--dump-dom", _url(url_or_path)], budget_ms).stdout


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
