"""Evidently's presets for one window, rendered to a self-contained HTML page for the report.

mlmon's own checks give the verdict; Evidently adds an interactive view of the same window: the
DataDrift and DataSummary presets on every row, plus the Classification or Regression preset on the
labelled rows when the window has any. Evidently keeps its own defaults (its drift methods, thresholds
and 50% dataset-drift share), so its verdicts can differ from mlmon's: the report says mlmon's decide.
Its auto-generated test summary is not rendered, for the same reason (``include_tests=False`` itself
crashes in evidently 0.7.23, so the tests are computed and dropped).

Our reserved columns are renamed for Evidently in a copy (``__prediction`` → ``prediction``, ``__score``
→ ``score``, ``__target`` → ``target``, ``__proba::<class>`` → ``<class>``); features keep their names.
Windows larger than ``evidently.max_rows`` run on a seeded sample (and so does a large reference).

Evidently is an optional view: a failure inside it is logged and shown in its place in the report, and
never fails the window. Its HTML is built here rather than with ``snapshot.get_html_str`` because
Evidently embeds its data with a plain ``json.dumps`` inside ``<script>``: a logged value such as
``</script><script>…`` would run as code. We escape ``<``, ``>`` and ``&`` in that JSON.

Tested against evidently 0.7.23 (pinned); the page is assembled from ``Snapshot._widgets``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import gc
import html
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.config import ModelConfig, TaskType

log = logging.getLogger(__name__)

NO_DATA_MARKER = "<!-- no embedded data -->"  # what evidently's page template leaves when embed_data=False


@dataclass(frozen=True)
class EvidentlyOutput:
    """Evidently's page for one window and how it was computed."""

    html: str  # a complete HTML document (Evidently's ~3.5 MB JavaScript still inline)
    rows_used: int  # current rows Evidently's data presets saw
    sampled: bool  # the current window was larger than evidently.max_rows and was sampled
    seconds: float
    reference_rows: int = 0  # reference rows Evidently saw (sampled too when larger than max_rows)
    errors: tuple[str, ...] = ()  # parts Evidently could not compute ("<part>: <error>")
    notes: tuple[str, ...] = ()  # what was left out of Evidently's view, and why
    workers: int = 0  # worker processes that computed it (0: the calling process)


@dataclass(frozen=True)
class _Part:
    """One titled group of Evidently widgets (rendered as one section of the page)."""

    title: str
    widgets: list[Any]


_PRELOAD: list[threading.Thread] = []


def preload() -> None:
    """Import Evidently in a background thread, once per process (about 3 s here, mostly Plotly and
    pydantic models). Called as a window's run starts, the import overlaps extraction, which waits on
    MongoDB and on its decoding workers, instead of adding to the window's time; a later
    :func:`run_evidently` finds the modules loaded (Python's import lock makes it wait if it comes first).
    """
    if _PRELOAD or "evidently.presets" in sys.modules:
        return
    thread = threading.Thread(target=_import_evidently, name="mlmon-evidently-import", daemon=True)
    _PRELOAD.append(thread)
    thread.start()


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, cfg: ModelConfig) -> EvidentlyOutput:
    """Run Evidently's presets on one window against the reference and render them to HTML.

    ``reference`` and ``current`` are window frames in the contract's shape (:mod:`mlmon.tasks.contract`).
    Never raises for what the data does: a failure anywhere in Evidently's part (computing, sampling,
    rendering) becomes an error on a small page saying which part failed and why.
    """
    t0 = time.perf_counter()
    try:
        return _run_evidently(reference, current, cfg, t0)
    except Exception as e:  # Evidently is an optional view: shown as failed, never failing the window
        log.debug("Evidently failed", exc_info=True)
        error = f"Evidently: {type(e).__name__}: {e}"
        return EvidentlyOutput(
            html=_note_page("Evidently", "Evidently could not compute this window.", [error]),
            rows_used=0,
            sampled=False,
            seconds=time.perf_counter() - t0,
            errors=(error,),
        )


# --------------------------------------------------------------------------- in worker processes


def evidently_workers(cfg: ModelConfig) -> int:
    """How many processes compute Evidently's parts (``evidently.workers``; 0 = one per CPU, at most 4,
    as the decoding workers; 1 = the calling process). A daemonic process cannot start any."""
    from mlmon.tasks.extract import worker_count

    return 1 if multiprocessing.current_process().daemon else worker_count(cfg.evidently.workers)


def prewarm(cfg: ModelConfig) -> None:
    """Start importing Evidently where the window's Evidently section will be computed, as the window's
    run starts, so that the import (5-9 s of a core here) overlaps the extraction: in Evidently's
    process (:func:`_server`), or in a background thread of this process when Evidently runs here
    (:func:`preload`). Nothing when Evidently is disabled."""
    if not cfg.evidently.enabled:
        return
    workers = evidently_workers(cfg)
    if workers <= 1:
        preload()
        return
    _server(workers)


# Evidently's process: one process of its own (loky's executor: it never re-runs the caller's script)
# imports Evidently once, then forks the processes that compute the parts, before it computes anything
# (a fork of a process that has computed may inherit a busy thread pool); they share its imported
# modules. Importing Evidently takes as long as computing a window's section: imported once instead of
# once per worker, it leaves a core to the extraction. Kept for the next windows.
_SERVER: dict[int, Any] = {}
_SERVER_LOCK = threading.Lock()
_FORKS: list[_Forks] = []  # in Evidently's process: its forked processes (none or one)


def _server(workers: int) -> Any:
    """Evidently's process for ``workers`` parts at a time, started (in the background) if need be."""
    from joblib.externals.loky import ProcessPoolExecutor

    with _SERVER_LOCK:
        server = _SERVER.get(workers)
        if server is None:
            server = _SERVER[workers] = ProcessPoolExecutor(
                max_workers=1, initializer=_serve, initargs=(workers,)
            )
            server.submit(_ready)  # starts it now: the import runs while the window is extracted
        return server


def _drop_server(workers: int, server: Any) -> None:
    with _SERVER_LOCK:
        if _SERVER.get(workers) is server:  # not a replacement another window started meanwhile
            del _SERVER[workers]
    server.shutdown(wait=False, kill_workers=True)


def _serve(workers: int) -> None:
    """In Evidently's process, once: import Evidently, then fork the processes that compute the parts.
    It waits for them as it exits (a container's init may not reap orphans).

    The import runs without the cyclic garbage collector: it creates about 500,000 objects, nearly all
    of which live as long as the process (modules, classes, their pydantic fields), and collecting
    among them as they grow took 15-25 % of the import's CPU here. They are then frozen (``gc.freeze``,
    still without collecting, as Python's documentation advises before a fork): the first forks'
    collections never walk them again. The cost: cyclic garbage of the import itself is never freed."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        _import_evidently()
        _remember_plotly_paths()
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    _forks(workers)
    atexit.register(_close_forks)


def _remember_plotly_paths() -> None:
    """In Evidently's own process: make Plotly remember how it parsed each property path.

    Plotly parses a property path string ("xaxis.title.text", "marker_color") anew on every get, set
    and update of a figure. Evidently builds about 200 figures per window, each through thousands of
    such accesses, and the parsing alone is 20-35 % of its parts' CPU here. The parse
    (``plotly.basedatatypes._str_to_dict_path_full``) depends on nothing but the string, so it is
    memoized, returning a fresh copy of its mutable part each time: the figures, and so the page,
    are the same (tested). Only here, never in a caller's process (a notebook's Plotly stays as it
    is). Nothing changes when this Plotly has no such function."""
    try:
        from plotly import basedatatypes
    except ImportError:
        return
    parse = getattr(basedatatypes, "_str_to_dict_path_full", None)
    if parse is None or getattr(parse, "remembered", False):
        return

    @functools.lru_cache(maxsize=8192)
    def parsed(path: str) -> tuple[tuple[Any, ...], tuple[int, ...]]:
        keys, starts = parse(path)
        return tuple(keys), tuple(starts)

    @functools.wraps(parse)
    def remembered(key_path_str: Any) -> tuple[tuple[Any, ...], list[int]]:
        if type(key_path_str) is not str:  # only strings are what the cache may keep
            return parse(key_path_str)  # type: ignore[no-any-return]
        keys, starts = parsed(key_path_str)
        return keys, list(starts)

    remembered.remembered = True  # type: ignore[attr-defined]
    basedatatypes._str_to_dict_path_full = remembered


def _close_forks() -> None:
    for forks in _FORKS:
        forks.close()


def _die_with_parent() -> None:
    """In a forked process: be killed when Evidently's process ends, even mid-call (Linux only;
    elsewhere it ends when its pipe closes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _forks(workers: int) -> _Forks:
    """The forked processes (made now if there are none, or the last ones died)."""
    if not _FORKS:
        _FORKS.append(_Forks(workers))
    return _FORKS[0]


def _ready() -> None:
    """Nothing: a task that makes a process start."""


class _Forks:
    """Processes forked from Evidently's process, each computing one call at a time sent over its pipe
    (no thread here or there: a fork of a process with threads may inherit a held lock). A process whose
    pipe closes (Evidently's process ended) exits. Where there is no ``fork``, the calls run here."""

    def __init__(self, n: int) -> None:
        from multiprocessing.connection import Pipe

        self.conns: list[tuple[Any, int]] = []
        for _ in range(n if hasattr(os, "fork") else 0):
            here, there = Pipe()
            pid = os.fork()
            if pid == 0:  # the child: only its own end stays open, so that it sees its pipe close
                try:
                    _die_with_parent()
                    here.close()
                    for conn, _ in self.conns:
                        conn.close()
                    _serve_calls(there)
                finally:
                    os._exit(1)  # never back into the server's code as a second copy of it
            there.close()
            self.conns.append((here, pid))

    def map(self, calls: Sequence[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
        """``fn(*args)`` of each call, in order, at most one per process at a time."""
        from multiprocessing.connection import wait

        if not self.conns:
            return [fn(*args) for fn, args in calls]
        results: list[Any] = [None] * len(calls)
        todo = list(enumerate(calls))
        idle = [conn for conn, _ in self.conns]
        busy: dict[Any, int] = {}
        while todo or busy:
            while todo and idle:
                conn = idle.pop()
                k, call = todo.pop(0)
                try:
                    conn.send(call)
                except OSError:  # it died while idle
                    raise _PartsFailed("a process computing Evidently's parts died") from None
                busy[conn] = k
            for conn in wait(list(busy)):
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError):
                    raise _PartsFailed("a process computing Evidently's parts died") from None
                results[busy.pop(conn)] = value
                idle.append(conn)
                if not ok:
                    raise value
        return results

    def close(self) -> None:
        for conn, pid in self.conns:
            conn.close()
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.conns = []


def _serve_calls(conn: Any) -> None:
    """In a forked process: compute the calls sent until the pipe closes, then exit (never returns)."""
    code = 0
    try:
        while True:
            try:
                fn, args = conn.recv()
            except EOFError:
                break
            try:
                out = (True, fn(*args))
            except Exception as e:
                out = (False, RuntimeError(f"{type(e).__name__}: {e}"))
            conn.send(out)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _section(
    pieces: list[bytes], sections: list[str], owners: list[str], notes: tuple[str, ...], workers: int,
    compute: Any,
) -> tuple[str, list[str]]:  # fmt: skip
    """In Evidently's process: each piece computed (``compute``) in a forked process, then the page
    rendered in one; a forked process dying raises (the caller computes the section itself)."""
    forks = _forks(workers)
    try:
        computed = forks.map([(compute, (p,)) for p in pieces])
        ((page, errors),) = forks.map([(_page_pickled, (sections, owners, computed, notes))])
    except BaseException:  # a fork died, or a reply is owed by another: none of them is reused
        _FORKS.clear()  # the next window forks new ones
        forks.close()
        raise
    return page, errors


class _PartsFailed(RuntimeError):
    """A forked process of Evidently's process died; Evidently's process itself goes on."""


def _import_evidently() -> None:
    """Import Evidently (nothing if this process has it already), in a worker or preload's thread."""
    if "evidently.presets" in sys.modules:
        return
    try:
        import evidently.presets  # noqa: F401
    except Exception:  # the part that needs it reports the failure where it is shown
        log.debug("importing Evidently failed", exc_info=True)


class EvidentlyJob:
    """Evidently's section of one window, computed in worker processes while the caller goes on (with
    mlmon's checks); :meth:`result` waits for it.

    The inputs (seeded samples, screened window, labelled rows) are prepared here, at submission; each
    part (DataDriftPreset, DataSummaryPreset, the quality preset) is computed by one of the processes
    forked from Evidently's process (:func:`_server`), and the page is rendered by one of them, so this
    process never imports Evidently; the page is the one
    :func:`run_evidently` renders here from the same inputs. With ``evidently.workers: 1``, or when the
    worker processes cannot start or one dies, :meth:`result` computes it here (:func:`run_evidently`,
    logged); like it, the job never raises for what Evidently does.
    """

    def __init__(self, reference: pd.DataFrame, current: pd.DataFrame, cfg: ModelConfig) -> None:
        self._inputs = (reference, current, cfg)
        self._t0 = time.perf_counter()
        self._done: Future[EvidentlyOutput | None] = Future()  # None: compute in this process
        workers = evidently_workers(cfg)
        plan = None
        if workers > 1:
            try:
                plan = _plan(reference, current, cfg, split=True)
            except Exception:  # run_evidently meets it again and shows it on its error page
                log.debug("preparing Evidently's inputs failed", exc_info=True)
        if plan is None or not plan.pieces:
            self._done.set_result(plan.output([], self._t0) if plan is not None else None)
            return
        thread = threading.Thread(target=self._run, args=(plan, workers), name="mlmon-evidently", daemon=True)
        thread.start()

    def _run(self, plan: _Plan, workers: int) -> None:
        server = None
        try:
            server = _server(workers)
            pieces = [pickle.dumps(p) for p in plan.pieces]
            owners = [p.section for p in plan.pieces]
            page, errors = server.submit(
                _section, pieces, plan.sections(), owners, plan.notes, workers, _computed_pickled
            ).result()
        except Exception as e:  # a process died (BrokenProcessPool), no processes here, a broken pool
            log.warning(
                "mlmon: Evidently's worker processes failed (%s: %s); computing it in this process",
                type(e).__name__,
                e,
            )
            if server is not None and isinstance(e, BrokenProcessPool):  # Evidently's process itself
                _drop_server(workers, server)  # the next window starts a new one
            self._done.set_result(None)
        else:
            self._done.set_result(plan.rendered(page, errors, self._t0, workers))

    def result(self) -> EvidentlyOutput:
        """The section (waits for the workers; computes it here when they could not)."""
        out = self._done.result()
        if out is not None:
            return out
        reference, current, cfg = self._inputs
        return run_evidently(reference, current, cfg)


# Pieces and widgets travel pickled: joblib would otherwise memory-map a frame's big NumPy blocks
# through /dev/shm, for a few MB (and its resource tracker complains about files of other threads' calls).
def _computed_pickled(piece: bytes) -> bytes:
    return pickle.dumps(_computed(pickle.loads(piece)))


def _page_pickled(
    sections: list[str], owners: list[str], computed: list[bytes], notes: tuple[str, ...]
) -> tuple[str, list[str]]:
    return _page(sections, owners, [pickle.loads(b) for b in computed], notes)


def submit_evidently(reference: pd.DataFrame, current: pd.DataFrame, cfg: ModelConfig) -> EvidentlyJob:
    """Start computing Evidently's section of one window (see :class:`EvidentlyJob`)."""
    return EvidentlyJob(reference, current, cfg)


def _run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, cfg: ModelConfig, t0: float
) -> EvidentlyOutput:
    plan = _plan(reference, current, cfg, split=False)
    return plan.output([_computed(p) for p in plan.pieces], t0)


@dataclass(frozen=True)
class _Piece:
    """One Evidently ``Report`` of a section of the page, with its (small, sampled) inputs: picklable, so
    that a worker process can compute it."""

    section: str  # the title of the page's section its widgets go to
    kind: str  # "drift", "summary", "data" (both in one Report) or "quality"
    reference: pd.DataFrame
    current: pd.DataFrame
    cfg: ModelConfig


@dataclass(frozen=True)
class _Plan:
    """What Evidently computes for one window, prepared in the calling process: the seeded samples, the
    screened window and labelled rows (cheap), and the notes saying what was left out."""

    pieces: tuple[_Piece, ...]
    notes: tuple[str, ...]
    rows_used: int
    sampled: bool
    reference_rows: int
    empty: str | None = None  # the page when there is nothing to compute

    def sections(self) -> list[str]:
        return list(dict.fromkeys(p.section for p in self.pieces))

    def output(self, computed: Sequence[tuple[list[Any] | None, str | None]], t0: float) -> EvidentlyOutput:
        """The output from each piece's ``(widgets, error)``, rendered in this process."""
        if self.empty is not None:
            return EvidentlyOutput(
                html=self.empty, rows_used=0, sampled=False, seconds=time.perf_counter() - t0
            )
        page, errors = _page(self.sections(), [p.section for p in self.pieces], computed, self.notes)
        return self.rendered(page, errors, t0)

    def rendered(self, page: str, errors: Sequence[str], t0: float, workers: int = 0) -> EvidentlyOutput:
        return EvidentlyOutput(
            html=page,
            rows_used=self.rows_used,
            sampled=self.sampled,
            seconds=time.perf_counter() - t0,
            reference_rows=self.reference_rows,
            errors=tuple(errors),
            notes=self.notes,
            workers=workers,
        )


def _plan(reference: pd.DataFrame, current: pd.DataFrame, cfg: ModelConfig, *, split: bool) -> _Plan:
    """The pieces to compute. ``split``: DataDriftPreset and DataSummaryPreset as two Reports (two tasks
    for two processes) rather than one; their widgets, and so the page, are the same (tested)."""
    ev = cfg.evidently
    if current.empty:
        empty = _note_page("Evidently", "The window has no rows: there is nothing for Evidently to show.")
        return _Plan((), (), 0, False, 0, empty=empty)
    cur, sampled = sample(current, ev.max_rows, ev.seed)
    ref, _ = sample(reference, ev.max_rows, ev.seed)
    pieces: list[_Piece] = []
    notes: list[str] = []
    cur = _screened(ref, cur, cfg, notes)

    title = f"Data drift and summary: {len(cur):,} rows" + (
        f" (seeded sample of {len(current):,})" if sampled else ""
    )
    left_out = [f for f in cfg.features if not _both_have(ref, cur, f)]
    if left_out:
        notes.append(
            "Left out of Evidently's view (no value in the window or in the reference; see mlmon's data "
            f"quality checks): {', '.join(left_out)}."
        )
    for kind in ("drift", "summary") if split else ("data",):
        pieces.append(_Piece(title, kind, ref, cur, cfg))

    if cfg.task is not TaskType.NONE:
        what = "Regression" if cfg.task is TaskType.REGRESSION else "Classification"
        labelled = _known_classes(_labelled(current), cfg, notes)
        ref_labelled = _known_classes(_labelled(reference), cfg, [])
        skip = _skip_quality(labelled, cfg)
        if skip:
            notes.append(f"{what} preset skipped: {skip}.")
        else:
            lab, lab_sampled = sample(labelled, ev.max_rows, ev.seed)
            ref_lab, _ = sample(ref_labelled, ev.max_rows, ev.seed)
            if _skip_quality(ref_lab, cfg):
                notes.append(f"{what} preset shown without the reference: it has no usable labelled rows.")
                ref_lab = ref_lab.iloc[:0]
            title = f"{what} quality: {len(lab):,} labelled rows" + (
                f" (seeded sample of {len(labelled):,})" if lab_sampled else ""
            )
            pieces.append(_Piece(title, "quality", ref_lab, lab, cfg))
    return _Plan(tuple(pieces), tuple(notes), len(cur), sampled, len(ref))


_DATA_PRESETS = {"data": ("drift", "summary"), "drift": ("drift",), "summary": ("summary",)}


def _computed(piece: _Piece) -> tuple[list[Any] | None, str | None]:
    """The piece's widgets, or the error that stopped Evidently (never raised: Evidently is an optional
    view, its failure is shown in its place)."""
    try:
        if piece.kind == "quality":
            return _quality_widgets(piece.reference, piece.current, piece.cfg), None
        return _data_widgets(piece.reference, piece.current, piece.cfg, _DATA_PRESETS[piece.kind]), None
    except Exception as e:  # Evidently is an optional view: the error is shown and logged, not raised
        log.debug("Evidently could not compute %r", piece.section, exc_info=True)  # the caller logs errors
        return None, f"{piece.section}: {type(e).__name__}: {e}"


def _page(
    sections: Sequence[str],
    owners: Sequence[str],
    computed: Sequence[tuple[list[Any] | None, str | None]],
    notes: Sequence[str],
) -> tuple[str, list[str]]:
    """The page of the computed pieces (``owners``: each piece's section), sections in a fixed order,
    whichever process computed what; and the errors. When only one of a section's split pieces fails,
    the section shows the other's widgets (one Report of both would show neither)."""
    widgets: dict[str, list[Any]] = {}
    errors: list[str] = []
    for section, (got, error) in zip(owners, computed, strict=True):
        if error is not None:
            if error not in errors:  # drift and summary of one section failing alike: said once
                errors.append(error)
        else:
            widgets.setdefault(section, []).extend(got or [])
    parts = [_Part(s, widgets[s]) for s in sections if s in widgets]
    return render_page(parts, errors, notes), errors


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with both a target and a prediction."""
    if c.TARGET not in frame or c.PREDICTION not in frame:
        return frame.iloc[:0]
    return frame[frame[c.TARGET].notna() & frame[c.PREDICTION].notna()]


def _screened(ref: pd.DataFrame, cur: pd.DataFrame, cfg: ModelConfig, notes: list[str]) -> pd.DataFrame:
    """The window as Evidently sees it: numbers far outside the reference's magnitude (1e308 among
    incomes, see :func:`mlmon.tasks.checks.quality.widened_range`) left out, as mlmon's statistics do."""
    from mlmon.tasks.checks.quality import widened_range

    out, dropped = cur, []
    for name in [*cfg.numerical, c.SCORE, c.PREDICTION, c.TARGET]:
        if (
            name not in cur
            or name not in ref
            or cur[name].dtype != np.float64
            or ref[name].dtype != np.float64
        ):
            continue
        finite = ref[name].to_numpy()
        finite = finite[np.isfinite(finite)]
        if not finite.size:
            continue
        lo, hi = widened_range(float(finite.min()), float(finite.max()))
        values = cur[name].to_numpy()
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & ~((values >= lo) & (values <= hi))
        if bad.any():
            out = out.copy() if out is cur else out
            out[name] = np.where(bad, np.nan, values)
            dropped.append(f"{c.column_label(name)} ({int(bad.sum()):,})")
    if dropped:
        notes.append(
            "Left out of Evidently's view as implausible (far outside the reference's magnitude; see "
            f"mlmon's implausible_values check): values of {', '.join(dropped)}."
        )
    return out


def _known_classes(labelled: pd.DataFrame, cfg: ModelConfig, notes: list[str]) -> pd.DataFrame:
    """Labelled rows whose label and prediction are configured classes (Evidently's classification
    preset fails on any other value, e.g. a binary model's label "maybe")."""
    if not cfg.classes or cfg.task not in (TaskType.BINARY, TaskType.MULTICLASS) or labelled.empty:
        return labelled
    classes = list(cfg.classes)
    known = labelled[c.TARGET].astype(str).isin(classes) & labelled[c.PREDICTION].astype(str).isin(classes)
    if known.all():
        return labelled
    notes.append(
        f"{int((~known).sum()):,} labelled rows left out of Evidently's quality view: their label or "
        f"prediction is not one of classes {classes}."
    )
    return labelled[known.to_numpy()]


def _skip_quality(labelled: pd.DataFrame, cfg: ModelConfig) -> str | None:
    """Why Evidently's quality preset cannot run on these labelled rows (None = it can)."""
    if labelled.empty:
        return "no labelled row with a prediction in the window (labels may not have arrived yet)"
    if cfg.task is TaskType.BINARY:
        seen = set(labelled[c.TARGET].astype(str)) | set(labelled[c.PREDICTION].astype(str))
        if len(seen) < 2:
            return (
                f"labels and predictions hold a single class ({', '.join(sorted(seen))}); Evidently needs two"
            )
    return None


def sample(frame: pd.DataFrame, max_rows: int, seed: int) -> tuple[pd.DataFrame, bool]:
    """At most ``max_rows`` rows: a seeded uniform sample kept in the original order; True if sampled.

    >>> f = pd.DataFrame({"x": range(10)})
    >>> s, was = sample(f, 4, seed=0)
    >>> len(s), was, list(s["x"]) == sorted(s["x"]), s.equals(sample(f, 4, seed=0)[0])
    (4, True, True, True)
    >>> sample(f, 10, seed=0)[1]
    False
    """
    if len(frame) <= max_rows:
        return frame, False
    return frame.sample(n=max_rows, random_state=np.random.default_rng(seed)).sort_index(), True


# --------------------------------------------------------------------------- the two parts


def friendly_names(cfg: ModelConfig) -> dict[str, str]:
    """Evidently's column name for each reserved column we pass (never clashing with a feature).

    >>> from mlmon.tasks.config import ModelConfig
    >>> cfg = ModelConfig(name="m", features={"score": {"type": "numerical"}}, reference={"path": "r"})
    >>> friendly_names(cfg)["__score"], friendly_names(cfg)["__prediction"]
    ('score_', 'prediction')
    """
    taken = set(cfg.features)
    out = {}
    for col, name in ((c.PREDICTION, "prediction"), (c.SCORE, "score"), (c.TARGET, "target")):
        while name in taken:
            name += "_"
        taken.add(name)
        out[col] = name
    return out


def _data_widgets(
    ref: pd.DataFrame, cur: pd.DataFrame, cfg: ModelConfig, kinds: Sequence[str] = ("drift", "summary")
) -> list[Any]:
    """DataDriftPreset and/or DataSummaryPreset (``kinds``) over the features, the prediction and its score."""
    from evidently import DataDefinition
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    names = friendly_names(cfg)
    numerical = [f for f in cfg.numerical if _both_have(ref, cur, f)]
    categorical = [f for f in cfg.categorical if _both_have(ref, cur, f)]
    columns = {f: f for f in numerical + categorical}
    if _both_have(ref, cur, c.PREDICTION):
        columns[c.PREDICTION] = names[c.PREDICTION]
        (numerical if cfg.task is TaskType.REGRESSION else categorical).append(names[c.PREDICTION])
    if cfg.task is not TaskType.REGRESSION and _both_have(ref, cur, c.SCORE):
        columns[c.SCORE] = names[c.SCORE]
        numerical.append(names[c.SCORE])
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    presets = {"drift": DataDriftPreset, "summary": DataSummaryPreset}
    return _run(
        [presets[k]() for k in kinds],
        _renamed(ref, columns),
        _renamed(cur, columns),
        definition,
    )


def _quality_widgets(ref: pd.DataFrame, cur: pd.DataFrame, cfg: ModelConfig) -> list[Any]:
    """ClassificationPreset or RegressionPreset on labelled rows (reference too, when it has labels)."""
    from evidently import BinaryClassification, DataDefinition, MulticlassClassification, Regression
    from evidently.presets import ClassificationPreset, RegressionPreset

    names = friendly_names(cfg)
    target, prediction = names[c.TARGET], names[c.PREDICTION]
    columns = {c.TARGET: target, c.PREDICTION: prediction}
    preset: Any
    if cfg.task is TaskType.REGRESSION:
        definition = DataDefinition(
            numerical_columns=[target, prediction],
            regression=[Regression(target=target, prediction=prediction)],
        )
        preset = RegressionPreset()
    elif cfg.task is TaskType.BINARY:
        pos = _positive(cfg, cur)
        probas = None
        if _usable(cur, c.SCORE):
            columns[c.SCORE] = probas = names[c.SCORE]
        definition = DataDefinition(
            categorical_columns=[target, prediction],
            numerical_columns=[probas] if probas else [],
            classification=[
                BinaryClassification(
                    target=target, prediction_labels=prediction, prediction_probas=probas, pos_label=pos
                )
            ],
        )
        preset = ClassificationPreset()
    else:
        # Evidently names each probability column after its class
        classes = [k[len(c.PROBA_PREFIX) :] for k in cur.columns if k.startswith(c.PROBA_PREFIX)]
        usable = classes and not {target, prediction} & set(classes)
        if usable:
            columns.update({c.PROBA_PREFIX + k: k for k in classes})
        definition = DataDefinition(
            categorical_columns=[target, prediction],
            numerical_columns=classes if usable else [],
            classification=[
                MulticlassClassification(
                    target=target, prediction_labels=prediction, prediction_probas=classes if usable else None
                )
            ],
        )
        preset = ClassificationPreset()
    has_ref = not ref.empty and all(k in ref for k in columns)
    return _run(
        [preset],
        _renamed(ref, columns) if has_ref else None,
        _renamed(cur, columns),
        definition,
    )


def _run(items: list[Any], ref: pd.DataFrame | None, cur: pd.DataFrame, definition: Any) -> list[Any]:
    from evidently import Dataset, Report

    with warnings.catch_warnings():
        # Evidently and its plotting stack warn about pandas/numpy internals we cannot act on.
        warnings.simplefilter("ignore")
        current = Dataset.from_pandas(cur, data_definition=definition)
        reference = Dataset.from_pandas(ref, data_definition=definition) if ref is not None else None
        snapshot = Report(items).run(current, reference)
        return list(snapshot._widgets)


def _renamed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame.loc[:, list(columns)].rename(columns=columns).reset_index(drop=True)


def _both_have(ref: pd.DataFrame, cur: pd.DataFrame, col: str) -> bool:
    return _usable(ref, col) and _usable(cur, col)


def _usable(frame: pd.DataFrame, col: str) -> bool:
    return col in frame and bool(frame[col].notna().any())


def _positive(cfg: ModelConfig, cur: pd.DataFrame) -> str:
    """The positive class: configured, else the second configured class, else the last label seen."""
    if cfg.positive_class is not None:
        return cfg.positive_class
    if cfg.classes and len(cfg.classes) == 2:
        return cfg.classes[1]
    seen = set(cur[c.TARGET].dropna().astype(str)) | set(cur[c.PREDICTION].dropna().astype(str))
    return sorted(seen)[-1]


# --------------------------------------------------------------------------- rendering


def render_page(parts: Sequence[_Part], errors: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """Evidently's standalone page for these parts, with its embedded data escaped for ``<script>``."""
    from evidently.legacy.model.dashboard import DashboardInfo
    from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo
    from evidently.legacy.renderers.html_widgets import group_widget
    from evidently.legacy.utils import NumpyEncoder
    from evidently.legacy.utils.dashboard import TemplateParams, dashboard_info_to_json, file_html_template

    if not parts:
        return _note_page("Evidently", "Evidently could not compute this window.", errors, notes)
    widgets = [group_widget(title=p.title, widgets=p.widgets) for p in parts]
    # as in evidently.core.metric_types.render_widgets
    graphs: dict[str, Any] = {}
    for widget in widgets:
        for g in widget.get_additional_graphs():
            info = g.params if isinstance(g, AdditionalGraphInfo) else g
            graphs[str(g.id)] = info.dict() if isinstance(info, BaseWidgetInfo) else info
    dashboard_id = "metric_" + uuid.uuid4().hex
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = DashboardInfo(name="Report", widgets=widgets)
        page = file_html_template(
            TemplateParams(
                dashboard_id=dashboard_id, dashboard_info=info, additional_graphs=graphs, embed_data=False
            )
        )
        data = (
            f"<script>\nvar {dashboard_id} = {script_json(dashboard_info_to_json(info))};\n"
            f"var additional_graphs_{dashboard_id} = {script_json(json.dumps(graphs, cls=NumpyEncoder))};\n"
            "</script>"
        )
    if NO_DATA_MARKER not in page:
        raise RuntimeError(
            "evidently's page template changed: no data placeholder (is evidently still 0.7.23?)"
        )
    page = page.replace(NO_DATA_MARKER, data, 1)
    if errors or notes:
        page = page.replace("<body>", "<body>\n" + _errors_html(errors) + _notes_html(notes), 1)
    return page


def script_json(text: str) -> str:
    """JSON text made safe inside an HTML ``<script>``: ``<``, ``>`` and ``&`` as ``\\u`` escapes.

    The result is the same JSON value (the escapes only ever occur inside strings).

    >>> script_json(json.dumps(["</script><script>alert(1)</script>"]))
    '["\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"]'
    """
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _errors_html(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{html.escape(e)}</li>" for e in errors)
    return (
        '<div class="mlmon-evidently-errors" style="font:14px system-ui,sans-serif;margin:12px;'
        'padding:10px 14px;border-left:4px solid #c0392b;background:#fdf0ee">'
        f"<strong>Evidently could not compute part of this report</strong><ul>{items}</ul></div>"
    )


def _notes_html(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        '<div class="mlmon-evidently-notes" style="font:14px system-ui,sans-serif;margin:12px;'
        'padding:8px 14px;border-left:4px solid #2f5fd0;background:#eef3ff">'
        f'<ul style="margin:0">{items}</ul></div>'
    )


def _note_page(title: str, message: str, errors: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """A small page standing in for Evidently's when there is nothing (or nothing computable) to show."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font:14px system-ui,sans-serif;margin:16px;color:#333">'
        f'<p class="mlmon-evidently-note">{html.escape(message)}</p>'
        f"{_errors_html(errors)}{_notes_html(notes)}</body></html>"
    )
