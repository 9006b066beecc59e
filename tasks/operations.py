"""Operating mlmon: how far behind each model is (``mlmon status``) and retention of old windows.

:func:`status_from_runs` is pure (config, stored runs, now); :func:`status_rows` adds the one read
query. :func:`retention` deletes old windows from Postgres in one transaction, then their report files,
then rebuilds the reports index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mlmon.tasks.config import Config, ModelConfig
from mlmon.tasks.schedule import DONE, RunRow, due_windows, expected_windows, is_due
from mlmon.tasks.store import store
from mlmon.tasks.window import Window, as_utc

STALE = "running (stale)"
"""What ``mlmon status`` says of a ``running`` row older than STALE_RUNNING: its run died (killed, or the
database went away before the run could mark the window ``error``); the next scheduled run redoes it."""

RECENT = timedelta(days=7)
"""How far back ``n_error_or_missing`` counts windows."""

REPORT_SUFFIXES = (".html", ".evidently.html", ".json", ".result.json")
"""The files one window's report consists of: ``<model>/<slug><suffix>`` under the reports folder."""


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusRow:
    """One line of ``mlmon status``: the model's latest window and how far behind its schedule it is."""

    model: str
    last_window_start: datetime | None  # latest stored window, whatever its status (None: never run)
    last_window_end: datetime | None
    last_status: str | None  # pass / warn / fail / error / running / "running (stale)" (its run died)
    last_finished_at: datetime | None
    windows_behind: int | None  # closed windows (after lateness) since the last processed one; None: none
    behind_by: timedelta | None  # from the end of the last processed window to the newest closed one
    n_error_or_missing: int  # windows of the last 7 days (since the first run) that error or are missing


def status_from_runs(cfg: ModelConfig, runs: Sequence[RunRow], now: datetime) -> StatusRow:
    """The status of one model from its stored runs (any subset holding its latest, latest processed and
    first runs and every run of the last :data:`RECENT`).

    A ``running`` row older than :data:`mlmon.tasks.schedule.STALE_RUNNING` counts as an error (its run died).
    """
    now = as_utc(now)
    ordered = sorted(runs, key=lambda r: (as_utc(r.window_start), as_utc(r.window_end)))
    if not ordered:
        return StatusRow(cfg.name, None, None, None, None, None, None, 0)
    last = ordered[-1]
    done = [r for r in ordered if r.status in DONE]
    behind: list[Window] | None = None
    if done:
        behind = expected_windows(cfg, as_utc(done[-1].window_end), now, now)
    since = max(now - RECENT, as_utc(ordered[0].window_start))
    missing = due_windows(expected_windows(cfg, since, now, now), ordered, now=now)
    status = last.status
    if status == "running" and is_due(last, now=now):  # running for longer than STALE_RUNNING
        status = STALE
    return StatusRow(
        model=cfg.name,
        last_window_start=as_utc(last.window_start),
        last_window_end=as_utc(last.window_end),
        last_status=status,
        last_finished_at=getattr(last, "finished_at", None),
        windows_behind=None if behind is None else len(behind),
        behind_by=None if behind is None else (behind[-1].end - behind[0].start if behind else timedelta(0)),
        n_error_or_missing=len(missing),
    )


def status_rows(cfg: Config, pg_uri: store.Target, now: datetime) -> list[StatusRow]:
    """``mlmon status``: one row per configured model, in config order (one read query)."""
    now = as_utc(now)
    by_model: dict[str, list[store.Run]] = defaultdict(list)
    for run in store.status_runs(pg_uri, now - RECENT - _longest_window(cfg), models=list(cfg.models)):
        by_model[run.model].append(run)
    return [status_from_runs(m, by_model.get(name, []), now) for name, m in cfg.models.items()]


def _longest_window(cfg: Config) -> timedelta:
    return max((m.window_length for m in cfg.models.values()), default=timedelta(0))


def format_status(rows: Iterable[StatusRow]) -> str:
    """An aligned plain-text table of :func:`status_rows`.

    >>> from datetime import UTC
    >>> t = datetime(2026, 3, 2, tzinfo=UTC)
    >>> print(format_status([StatusRow("churn", t, t + timedelta(days=1), "pass", t, 2, timedelta(days=2), 1),
    ...                      StatusRow("new", None, None, None, None, None, None, 0)]))
    model  last window        status  finished          behind     errors/missing 7d
    churn  2026-03-02T00:00Z  pass    2026-03-02 00:00  2 (2d 0h)  1
    new    -                  never   -                 -          0
    """
    header = ("model", "last window", "status", "finished", "behind", "errors/missing 7d")
    table = [header]
    for r in rows:
        if r.windows_behind is None:
            behind = "-"
        else:
            behind = f"{r.windows_behind} ({_duration(r.behind_by)})" if r.windows_behind else "0"
        table.append(
            (
                r.model,
                Window(r.last_window_start, r.last_window_end).label if r.last_window_start else "-",
                r.last_status or "never",
                f"{r.last_finished_at:%Y-%m-%d %H:%M}" if r.last_finished_at else "-",
                behind,
                str(r.n_error_or_missing),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    )


def _duration(d: timedelta | None) -> str:
    if d is None:
        return "-"
    hours, seconds = divmod(int(d.total_seconds()), 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {seconds // 60}m"


# ------------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionResult:
    """What :func:`retention` deleted (``dry_run``: would delete)."""

    cutoff: datetime  # windows that ended before this went
    dry_run: bool
    windows: int  # (model, window) pairs whose rows were deleted
    rows: dict[str, int] = field(default_factory=dict)  # per table
    files: int = 0  # report files (html, evidently html, json sidecar)
    kept_running: int = 0  # old windows kept because a flow is working on them

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        tables = ", ".join(f"{t} {n}" for t, n in self.rows.items())
        kept = f"; kept {self.kept_running} running" if self.kept_running else ""
        return (
            f"{verb} {self.windows} windows ended before {self.cutoff.isoformat()}: rows {tables or 'none'}; "
            f"{self.files} report files{kept}"
        )


def retention(
    pg_uri: store.Target, reports_dir: str | Path, older_than: timedelta, now: datetime, *, dry_run: bool
) -> RetentionResult:
    """Delete every window that ended more than ``older_than`` before ``now``: its rows in every table
    (one transaction) and then its report files, then rebuild the reports index. Windows whose run is
    ``running`` are kept. Report files of old windows no longer in Postgres are deleted too.

    Files go only after the database commit: a failed delete leaves both as they were.
    """
    from mlmon.reports import render

    if older_than <= timedelta(0):
        raise ValueError(f"older_than must be positive, got {older_than}")
    cutoff = as_utc(now) - older_than
    purge = store.purge_windows(pg_uri, cutoff, dry_run=dry_run)
    reports = Path(reports_dir)
    keep = {(render.model_dir(m), w.slug) for m, w in purge.running}
    doomed = {(render.model_dir(m), w.slug) for m, w in purge.windows}
    if reports.is_dir():  # reports whose rows are already gone (or were never stored)
        for s in render.scan_index(reports):
            folder = s.report_path.split("/", 1)[0]
            if as_utc(s.window_end) < cutoff:
                doomed.add((folder, Window(s.window_start, s.window_end).slug))
    files = [
        reports / folder / f"{slug}{suffix}"
        for folder, slug in sorted(doomed - keep)
        for suffix in REPORT_SUFFIXES
    ]
    files = [f for f in files if f.is_file()]
    if not dry_run:
        for f in files:
            f.unlink(missing_ok=True)
        if reports.is_dir():
            render.write_index(reports, render.scan_index(reports))
    return RetentionResult(
        cutoff=cutoff,
        dry_run=dry_run,
        windows=len(purge.windows),
        rows=purge.rows,
        files=len(files),
        kept_running=len(purge.running),
    )
