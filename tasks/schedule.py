"""Which windows a scheduled run processes: pure functions of the config, the slot and the stored runs.

A scheduled run works from its *slot* (the time Prefect scheduled it for), never from the wall clock,
so a run that starts late, or is retried an hour later, still processes the window its slot was for.
Windows are UTC; a cron's timezone only moves the slots. A slot that never fires (downtime, a
local-time cron skipped by a DST change) leaves its window without a successful run; the next run finds
it with :func:`due_windows` and processes it. A slot that fires twice (a DST fall-back, two runners)
finds its window already done and leaves it alone.

>>> from mlmon.tasks.config import ModelConfig
>>> cfg = ModelConfig(name="m", features={"x": {"type": "numerical"}}, reference={"path": "r.parquet"},
...                   window="1d", schedule={"lateness": "15m"})
>>> window_for_slot(cfg, datetime(2026, 3, 2, 0, 15, tzinfo=UTC)).label
'2026-03-01T00:00Z'
>>> window_for_slot(cfg, datetime(2026, 3, 2, 0, 14, tzinfo=UTC)).label   # yesterday is not 15 min old
'2026-02-28T00:00Z'
>>> slot_cron(cfg)
'15 0 * * *'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mlmon.tasks.config import ModelConfig
from mlmon.tasks.window import Window, as_utc, parse_duration

DONE = frozenset({"pass", "warn", "fail"})
"""Run statuses that mean the window was processed; anything else (missing, error, running) may be due."""

STALE_RUNNING = timedelta(hours=2)
"""A ``running`` row older than this belongs to a run that died (crash, killed worker): due again."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # cron weekdays are counted from it (a Thursday)
_HOUR, _DAY, _WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)


class RunRow(Protocol):
    """What scheduling reads from a row of ``mlmon.runs`` (:class:`mlmon.tasks.store.store.Run` fits)."""

    window_start: datetime
    window_end: datetime
    status: str
    started_at: datetime | None
    labels_checked_at: datetime | None


def window_for_slot(cfg: ModelConfig, scheduled_time: datetime) -> Window:
    """The latest window that closed at least ``schedule.lateness`` before ``scheduled_time`` (UTC)."""
    t = as_utc(scheduled_time) - parse_duration(cfg.schedule.lateness)
    length = cfg.window_length
    current = Window.containing(t, length, cfg.window_anchor)  # still open at t
    return Window(current.start - length, current.start)


def expected_windows(cfg: ModelConfig, since: datetime, until: datetime, now: datetime) -> list[Window]:
    """Aligned windows inside ``[since, until)`` closed at least ``lateness`` before ``now``, oldest first."""
    length = cfg.window_length
    last_end = min(as_utc(until), as_utc(now) - parse_duration(cfg.schedule.lateness))
    w = Window.containing(since, length, cfg.window_anchor)
    if w.start < as_utc(since):
        w = Window(w.end, w.end + length)
    out: list[Window] = []
    while w.end <= last_end:
        out.append(w)
        w = Window(w.end, w.end + length)
    return out


def is_due(run: RunRow | None, *, now: datetime, stale_after: timedelta = STALE_RUNNING) -> bool:
    """True when a window with this run row (None = never run) still needs a successful run.

    Done (pass / warn / fail) is not due; missing and error are; ``running`` is due only once it is
    older than ``stale_after`` (its run died without marking the window failed).
    """
    if run is None or run.status == "error":
        return True
    if run.status in DONE:
        return False
    started = run.started_at
    return started is None or as_utc(now) - as_utc(started) >= stale_after


def due_windows(
    expected: Iterable[Window],
    runs: Iterable[RunRow],
    *,
    now: datetime,
    stale_after: timedelta = STALE_RUNNING,
) -> list[Window]:
    """The ``expected`` windows without a successful run (see :func:`is_due`), in the given order."""
    by_window = {(as_utc(r.window_start), as_utc(r.window_end)): r for r in runs}
    return [w for w in expected if is_due(by_window.get((w.start, w.end)), now=now, stale_after=stale_after)]


def windows_to_run(
    cfg: ModelConfig,
    scheduled_time: datetime,
    runs: Iterable[RunRow],
    *,
    catch_up: timedelta,
    now: datetime,
    stale_after: timedelta = STALE_RUNNING,
) -> list[Window]:
    """What a run scheduled at ``scheduled_time`` processes: its own window first, if it is still due,
    then every other due window that started within ``catch_up`` before the slot's window ended,
    oldest first.

    Everything is relative to the slot (a late or retried run plans exactly as an on-time one); only
    the staleness of ``running`` rows is judged against ``now``, the wall clock.
    """
    slot = window_for_slot(cfg, scheduled_time)
    since = min(slot.start, slot.end - catch_up)
    expected = expected_windows(cfg, since, slot.end, scheduled_time)
    due = due_windows(expected, runs, now=now, stale_after=stale_after)
    return sorted(due, key=lambda w: (w != slot, w.start))


def label_recheck_windows(
    cfg: ModelConfig, runs: Iterable[RunRow], latest_label_at: Mapping[Window, datetime], now: datetime
) -> list[Window]:
    """Processed windows, closed less than ``schedule.label_horizon`` ago, with labels newer than the ones
    their model-quality metrics saw (``labels_checked_at``), oldest first.

    ``latest_label_at`` maps a window to the arrival time of the newest label joined to one of its
    predictions; a window without labels is absent.
    """
    oldest_end = as_utc(now) - parse_duration(cfg.schedule.label_horizon)
    out = []
    for r in runs:
        w = Window(r.window_start, r.window_end)
        arrived = latest_label_at.get(w)
        if r.status not in DONE or w.end <= oldest_end or arrived is None:
            continue
        if r.labels_checked_at is None or as_utc(arrived) > as_utc(r.labels_checked_at):
            out.append(w)
    return sorted(out)


def slot_offset(cfg: ModelConfig) -> timedelta:
    """How long after an epoch-aligned boundary (UTC) the default schedule fires: the window origin's
    offset plus ``lateness``, modulo the window length, rounded up to a whole minute (cron's resolution)."""
    length = cfg.window_length
    off = ((cfg.window_anchor - _EPOCH) + parse_duration(cfg.schedule.lateness)) % length
    return timedelta(minutes=math.ceil(off / timedelta(minutes=1))) % length


def slot_anchor(cfg: ModelConfig) -> datetime:
    """A slot of the default schedule: anchor of the interval schedule when :func:`slot_cron` has none."""
    return _EPOCH + slot_offset(cfg)


def slot_cron(cfg: ModelConfig) -> str | None:
    """A UTC cron that fires once per window, :func:`slot_offset` after it closes; None when no cron can
    (the window length does not divide an hour, a day, or is not a week): use an interval schedule
    anchored at :func:`slot_anchor` instead.

    Windows are aligned to ``window_origin`` (default the Unix epoch, so daily windows start at
    midnight UTC and weekly windows on Thursdays: 1970-01-01 was a Thursday).
    """
    length, off = cfg.window_length, slot_offset(cfg)
    minute = int(off.total_seconds() // 60)
    if length <= _HOUR and length % timedelta(minutes=1) == timedelta(0) and _HOUR % length == timedelta(0):
        step = int(length.total_seconds() // 60)
        minutes = {1: "*", 60: str(minute)}.get(step, f"{minute}-59/{step}")
        return f"{minutes} * * * *"
    if length <= _DAY and length % _HOUR == timedelta(0) and _DAY % length == timedelta(0):
        hours = ",".join(str(minute // 60 + k * (length // _HOUR)) for k in range(_DAY // length))
        return f"{minute % 60} {hours} * * *"
    if length == _WEEK:
        days, rest = divmod(off, _DAY)
        weekday = (_EPOCH.isoweekday() + days) % 7  # cron: 0 = Sunday, 4 = Thursday
        return f"{int(rest // timedelta(minutes=1)) % 60} {rest // _HOUR} * * {weekday}"
    return None
