"""Evidently's section computed in worker processes (``presets.submit_evidently``) while the checks run:
the page the calling process would render from the same inputs, and the fallbacks to this process when
the workers are off, cannot start, or die."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlmon.tasks.checks import presets
from tests import factories as fx

DASHBOARD = "window.drawDashboard("
REPO = Path(__file__).resolve().parents[1]


def _widgets(html: str) -> list[tuple[str, int]]:
    """Each section's title and how many widgets it holds."""
    m = re.search(r"var (metric_\w+) = (\{.*?\});\n", html, re.S)
    assert m, "no embedded dashboard data"
    return [(w["title"], len(w["widgets"])) for w in json.loads(m.group(2))["widgets"]]


def _inputs() -> tuple:
    return fx.frame(300, seed=1), fx.frame(200, seed=2, shift=1.0, labelled=0.5)


def test_worker_processes_compute_the_same_sections() -> None:
    ref, cur = _inputs()
    cfg = fx.config(evidently={"workers": 2})
    out = presets.submit_evidently(ref, cur, cfg).result()
    here = presets.run_evidently(ref, cur, cfg)
    assert out.workers == 2 and here.workers == 0
    assert out.errors == () and DASHBOARD in out.html
    assert _widgets(out.html) == _widgets(here.html)
    titles = [t.split(":")[0] for t, _ in _widgets(out.html)]
    assert titles == ["Data drift and summary", "Classification quality"]
    assert (out.rows_used, out.sampled, out.reference_rows, out.notes) == (
        here.rows_used,
        here.sampled,
        here.reference_rows,
        here.notes,
    )


def test_workers_off_computes_in_this_process() -> None:
    ref, cur = _inputs()
    out = presets.submit_evidently(ref, cur, fx.config(evidently={"workers": 1})).result()
    assert out.workers == 0 and out.errors == () and DASHBOARD in out.html
    assert _widgets(out.html) == _widgets(presets.run_evidently(ref, cur, fx.config()).html)


def test_a_daemonic_process_starts_no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    assert presets.evidently_workers(fx.config(evidently={"workers": 2})) == 1


def _die(_piece: bytes) -> bytes:
    os._exit(3)  # a worker killed mid-task (out of memory, say)


def test_a_dying_worker_falls_back_to_this_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(presets, "_computed_pickled", _die)
    ref, cur = _inputs()
    with caplog.at_level(logging.WARNING, logger=presets.__name__):
        out = presets.submit_evidently(ref, cur, fx.config(evidently={"workers": 2})).result()
    assert out.workers == 0 and out.errors == () and DASHBOARD in out.html
    assert "computing it in this process" in caplog.text and "parts died" in caplog.text
    monkeypatch.undo()  # the next window: Evidently's process forks new processes and they compute it
    again = presets.submit_evidently(ref, cur, fx.config(evidently={"workers": 2})).result()
    assert again.workers == 2 and again.errors == ()


def _kill_evidentlys_process(_piece: bytes) -> bytes:
    os.kill(os.getppid(), signal.SIGKILL)  # Evidently's process itself killed (out of memory, say)
    time.sleep(120)  # this fork dies with it
    return b""


def _raises(_piece: bytes) -> bytes:
    raise MemoryError("no room for the widgets")


def test_a_dead_evidently_process_is_replaced_by_the_next_window(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ref, cur = _inputs()
    cfg = fx.config(evidently={"workers": 2})
    presets.submit_evidently(ref, cur, cfg).result()  # Evidently's process is up
    before = presets._SERVER[2]
    monkeypatch.setattr(presets, "_computed_pickled", _kill_evidentlys_process)
    with caplog.at_level(logging.WARNING, logger=presets.__name__):
        out = presets.submit_evidently(ref, cur, cfg).result()
    assert out.workers == 0 and out.errors == () and DASHBOARD in out.html  # computed here instead
    assert "computing it in this process" in caplog.text
    monkeypatch.undo()
    again = presets.submit_evidently(ref, cur, cfg).result()
    assert again.workers == 2 and presets._SERVER[2] is not before


def test_a_failing_fork_keeps_evidentlys_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ref, cur = _inputs()
    cfg = fx.config(evidently={"workers": 2})
    presets.submit_evidently(ref, cur, cfg).result()
    before = presets._SERVER[2]
    monkeypatch.setattr(presets, "_computed_pickled", _raises)
    with caplog.at_level(logging.WARNING, logger=presets.__name__):
        out = presets.submit_evidently(ref, cur, cfg).result()
    assert out.workers == 0 and out.errors == () and "MemoryError" in caplog.text
    monkeypatch.undo()
    again = presets.submit_evidently(ref, cur, cfg).result()  # new forks, no second import
    assert again.workers == 2 and presets._SERVER[2] is before


def test_a_failing_part_in_a_worker_is_shown_not_raised() -> None:
    ref, cur = _inputs()
    cur = cur.assign(__score=cur["__score"].astype(object).where(cur.index % 2 == 0, "oops"))
    out = presets.submit_evidently(ref, cur, fx.config(evidently={"workers": 2})).result()
    here = presets.run_evidently(ref, cur, fx.config())
    assert out.workers == 2
    assert out.errors == here.errors and len(out.errors) >= 1  # the same part fails, its error shown
    assert "could not compute part of this report" in out.html


SAME_PAGE = """
import json, re, sys
from mlmon.tasks.checks import presets
from tests import factories as fx

ref, cur = fx.frame(300, seed=1), fx.frame(200, seed=2, shift=1.0, labelled=0.5)
ids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
there = presets.submit_evidently(ref, cur, fx.config(evidently={"workers": 2})).result()
here = presets.run_evidently(ref, cur, fx.config(evidently={"workers": 1}))
# Evidently's process parses Plotly's property paths once each (presets._remember_plotly_paths); this one not
remembered = "getattr(__import__('plotly.basedatatypes').basedatatypes._str_to_dict_path_full, 'remembered', 0)"
# it imported Evidently without the cyclic collector and froze what it imported; the collector runs again
collector = "[__import__('gc').isenabled(), __import__('gc').get_freeze_count() > 100_000]"
print(json.dumps({"workers": there.workers, "same": ids.sub("ID", there.html) == ids.sub("ID", here.html),
                  "ids": ids.search(here.html) is not None, "errors": there.errors,
                  "remembered": [presets._SERVER[2].submit(eval, remembered).result(), eval(remembered)],
                  "collector": [presets._SERVER[2].submit(eval, collector).result(), eval(collector)]}))
"""


@pytest.mark.slow
def test_worker_page_is_the_in_process_page() -> None:
    """Byte for byte but for Evidently's random ids (uuids of widgets and the dashboard), with Plotly's
    parsed paths remembered in Evidently's process and not in this one, and its imported objects frozen
    there (the collector on again). Evidently
    orders some categories by Python's string hash, random per process: the child and its workers
    share PYTHONHASHSEED=0 here, as processes of one deployment would with it set."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", SAME_PAGE], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {
        "workers": 2, "same": True, "ids": True, "errors": [], "remembered": [True, 0],
        "collector": [[True, True], [True, False]],
    }  # fmt: skip
