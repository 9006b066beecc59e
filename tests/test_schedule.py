"""Scheduling: which windows a scheduled run processes, from its slot and the stored runs.

The property that matters: over any sequence of slots a schedule produces (on time, late, retried,
missed, doubled by a DST change), every closed window is processed exactly once. ``replay`` plays
slots against an in-memory runs table the way ``mlmon.flows.scheduled.scheduled_monitor`` does against
``mlmon.runs``.
"""

from __future__ import annotations

import asyncio
import doctest
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import mlmon.tasks.schedule
from mlmon.tasks.config import ModelConfig
from mlmon.tasks.schedule import (
    due_windows,
    expected_windows,
    is_due,
    label_recheck_windows,
    slot_cron,
    slot_offset,
    window_for_slot,
    windows_to_run,
)
from mlmon.tasks.window import Window, as_utc

BERLIN = ZoneInfo("Europe/Berlin")
H, D = timedelta(hours=1), timedelta(days=1)


def cfg(window: str = "1d", **schedule: str) -> ModelConfig:
    return ModelConfig(
        name="m",
        features={"x": {"type": "numerical"}},
        reference={"path": "r.parquet"},
        window=window,
        schedule=schedule,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def day(y: int, m: int, d: int) -> Window:
    return Window(utc(y, m, d), utc(y, m, d) + D)


@dataclass(frozen=True)
class Row:
    window_start: datetime
    window_end: datetime
    status: str
    started_at: datetime | None = None
    labels_checked_at: datetime | None = None


def row(w: Window, status: str = "pass", **kw: datetime | None) -> Row:
    return Row(w.start, w.end, status, **kw)


def replay(c: ModelConfig, slots: Iterable[datetime], catch_up: timedelta = 7 * D) -> tuple[Counter, dict]:
    """Process every slot like the scheduled flow, the windows before the first slot's being done already.

    Returns how often each window was processed, and by which slot (the first time).
    """
    slots = list(slots)
    first = window_for_slot(c, slots[0])
    # what ran before the replay: the horizon of the first slot is done
    runs = {w: row(w) for w in expected_windows(c, first.start - catch_up, first.start, first.end)}
    processed: Counter = Counter()
    by_slot: dict[Window, datetime] = {}
    for slot in slots:
        for w in windows_to_run(c, slot, runs.values(), catch_up=catch_up, now=slot + timedelta(minutes=1)):
            processed[w] += 1
            by_slot.setdefault(w, slot)
            runs[w] = row(w)
    return processed, by_slot


def test_doctests() -> None:
    assert doctest.testmod(mlmon.tasks.schedule).failed == 0


# ------------------------------------------------------------------------------------ window_for_slot


def test_slot_window_is_the_latest_closed_at_least_lateness_before_the_slot() -> None:
    c = cfg("1d", lateness="15m")
    assert window_for_slot(c, utc(2026, 3, 2, 0, 15)) == day(2026, 3, 1)
    assert window_for_slot(c, utc(2026, 3, 2, 23, 59)) == day(2026, 3, 1)
    assert window_for_slot(c, utc(2026, 3, 2, 0, 14, 59)) == day(2026, 2, 28)
    hourly = cfg("1h", lateness="90m")  # lateness longer than a window
    assert window_for_slot(hourly, utc(2026, 3, 2, 12, 30)) == Window(
        utc(2026, 3, 2, 10), utc(2026, 3, 2, 11)
    )


def test_slot_window_is_computed_in_utc_whatever_the_slot_timezone() -> None:
    import pendulum  # what prefect.runtime.flow_run.scheduled_start_time returns

    c = cfg("1d", lateness="15m")
    local = datetime(2026, 3, 2, 1, 15, tzinfo=BERLIN)  # = 00:15 UTC
    assert window_for_slot(c, local) == day(2026, 3, 1)
    assert window_for_slot(c, pendulum.datetime(2026, 3, 2, 1, 15, tz="Europe/Berlin")) == day(2026, 3, 1)
    assert window_for_slot(c, datetime(2026, 3, 2, 0, 15)) == day(2026, 3, 1)  # naive = UTC
    w = window_for_slot(c, pendulum.datetime(2026, 3, 2, 1, 15, tz="Europe/Berlin"))
    assert type(w.start) is datetime and w.start.tzinfo is UTC


# ------------------------------------------------------------------------------ expected / due windows


def test_expected_windows_are_whole_closed_and_late_enough() -> None:
    c = cfg("1d", lateness="15m")
    got = expected_windows(c, utc(2026, 3, 1, 6), utc(2026, 3, 5), now=utc(2026, 3, 4, 0, 10))
    # [03-01) starts before `since`; [03-03) closed only 10 minutes before now; [03-04) is open
    assert got == [day(2026, 3, 2)]
    got = expected_windows(c, utc(2026, 3, 1), utc(2026, 3, 3), now=utc(2026, 4, 1))
    assert got == [day(2026, 3, 1), day(2026, 3, 2)]
    assert expected_windows(c, utc(2026, 3, 1), utc(2026, 3, 1, 12), now=utc(2026, 4, 1)) == []


def test_due_means_no_successful_run() -> None:
    now = utc(2026, 3, 10, 12)
    ws = [day(2026, 3, d) for d in range(1, 8)]
    runs = [
        row(ws[0], "pass"),
        row(ws[1], "warn"),
        row(ws[2], "fail"),  # a failed check is a processed window
        row(ws[3], "error"),  # the run failed: due again
        row(ws[4], "running", started_at=now - timedelta(minutes=10)),  # in progress elsewhere
        row(ws[5], "running", started_at=now - timedelta(hours=3)),  # its run died
        # ws[6]: never run
    ]
    assert due_windows(ws, runs, now=now) == [ws[3], ws[5], ws[6]]
    assert due_windows(ws, runs, now=now, stale_after=timedelta(minutes=5)) == [ws[3], ws[4], ws[5], ws[6]]
    assert is_due(None, now=now) and not is_due(runs[0], now=now)


def test_a_run_of_another_window_length_does_not_count() -> None:
    w = day(2026, 3, 1)
    hour_run = Row(w.start, w.start + H, "pass")
    assert due_windows([w], [hour_run], now=utc(2026, 4, 1)) == [w]


# --------------------------------------------------------------------------------------- windows_to_run


def test_on_time_run_processes_its_window_then_older_due_ones() -> None:
    c = cfg("1d", lateness="15m")
    slot = utc(2026, 3, 5, 0, 15)
    runs = [row(day(2026, 3, 1)), row(day(2026, 3, 3), "error")]
    got = windows_to_run(c, slot, runs, catch_up=4 * D, now=slot)
    # slot window first, then the due ones of the horizon [03-01, 03-05), oldest first
    assert got == [day(2026, 3, 4), day(2026, 3, 2), day(2026, 3, 3)]
    assert windows_to_run(c, slot, runs, catch_up=timedelta(0), now=slot) == [day(2026, 3, 4)]


def test_late_run_processes_its_slot_window_not_the_wall_clock_one() -> None:
    c = cfg("1h", lateness="15m")
    slot = utc(2026, 3, 5, 10, 15)
    on_time = windows_to_run(c, slot, [], catch_up=timedelta(0), now=slot)
    an_hour_late = windows_to_run(c, slot, [], catch_up=timedelta(0), now=slot + H)
    assert on_time == an_hour_late == [Window(utc(2026, 3, 5, 9), utc(2026, 3, 5, 10))]
    # the next slot's run (on time, while the late one is done) processes the next window only
    done = [row(on_time[0]), row(Window(utc(2026, 3, 5, 8), utc(2026, 3, 5, 9)))]
    nxt = windows_to_run(c, slot + H, done, catch_up=3 * H, now=slot + H)
    assert nxt == [Window(utc(2026, 3, 5, 10), utc(2026, 3, 5, 11))]


def test_retried_run_redoes_a_failed_window_and_skips_a_done_one() -> None:
    c = cfg("1d", lateness="15m")
    slot = utc(2026, 3, 5, 0, 15)
    w = day(2026, 3, 4)
    history = [row(day(2026, 3, d)) for d in (1, 2, 3)]
    retry_at = slot + 2 * H  # the retry keeps the slot; only `now` moves
    assert windows_to_run(c, slot, [*history, row(w, "error")], catch_up=4 * D, now=retry_at) == [w]
    assert windows_to_run(c, slot, [*history, row(w, "pass")], catch_up=4 * D, now=retry_at) == []


def test_catch_up_after_a_gap_is_bounded_by_the_horizon() -> None:
    c = cfg("1d", lateness="15m")
    runs = [row(day(2026, 3, 1))]
    slot = utc(2026, 3, 10, 0, 15)  # nothing ran for slots 03-03 .. 03-09
    got = windows_to_run(c, slot, runs, catch_up=5 * D, now=slot)
    assert got == [day(2026, 3, 9), *(day(2026, 3, d) for d in (5, 6, 7, 8))]
    got = windows_to_run(c, slot, runs, catch_up=30 * D, now=slot)
    assert got[0] == day(2026, 3, 9) and got[1] == day(2026, 2, 8) and day(2026, 3, 1) not in got
    assert len(got) == 30 - 1  # the 30 days of the horizon but the one already done


# --------------------------------------------------------------------------------- DST and replays


def test_every_window_once_over_a_sequence_of_on_time_late_retried_and_missed_slots() -> None:
    c = cfg("1d", lateness="15m")
    slots = [utc(2026, 3, d, 0, 15) for d in range(2, 20)]
    slots[3] += 5 * H  # late
    slots.insert(7, slots[6])  # retried (same slot)
    del slots[10:14]  # downtime
    processed, _ = replay(c, slots)
    assert set(processed) == {day(2026, 3, d) for d in range(1, 19)}
    assert set(processed.values()) == {1}


def local_slots(cron_hour: int, minute: int, days: range, month: int) -> list[datetime]:
    """A daily local-time cron as a perfect scheduler would fire it (no DST tricks)."""
    return [datetime(2026, month, d, cron_hour, minute, tzinfo=BERLIN) for d in days]


def test_berlin_cron_over_the_spring_forward_skip() -> None:
    # "30 2 * * *" Europe/Berlin: 2026-03-29 02:30 does not exist (02:00 CET -> 03:00 CEST).
    c = cfg("1d", cron="30 2 * * *", timezone="Europe/Berlin", lateness="15m")
    fired = [s for s in local_slots(2, 30, range(25, 32), 3) if s.day != 29]  # a scheduler that skips it
    processed, by_slot = replay(c, fired)
    assert set(processed) == {day(2026, 3, d) for d in range(24, 31)}
    assert set(processed.values()) == {1}
    # the window the missing slot was for is caught up by the next day's run
    assert by_slot[day(2026, 3, 28)] == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


def test_berlin_cron_over_the_fall_back_double() -> None:
    # 2026-10-25 02:30 happens twice (02:30 CEST = 00:30 UTC, 02:30 CET = 01:30 UTC).
    c = cfg("1d", cron="30 2 * * *", timezone="Europe/Berlin", lateness="15m")
    fired = local_slots(2, 30, range(22, 29), 10)
    fired.insert(4, utc(2026, 10, 25, 1, 30))  # a scheduler that fires both
    assert [window_for_slot(c, s) for s in fired[3:5]] == [day(2026, 10, 24)] * 2
    processed, _ = replay(c, fired)
    assert set(processed) == {day(2026, 10, d) for d in range(21, 28)}
    assert set(processed.values()) == {1}


def test_hourly_berlin_cron_over_the_fall_back_pause() -> None:
    # An hourly local cron fires the first 02:30 and then 03:30 CET: two hours apart in UTC, so one
    # slot window ([01:00, 02:00) UTC here) has no slot of its own.
    c = cfg("1h", cron="30 * * * *", timezone="Europe/Berlin", lateness="15m")
    utc_slots = [utc(2026, 10, 24, 22, 30), utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30)]
    utc_slots += [utc(2026, 10, 25, h, 30) for h in range(2, 6)]  # 01:30 UTC never fires
    processed, by_slot = replay(c, utc_slots, catch_up=6 * H)
    hours = [Window(utc(2026, 10, 24, 21) + k * H, utc(2026, 10, 24, 22) + k * H) for k in range(8)]
    assert set(processed) == set(hours) and set(processed.values()) == {1}
    assert by_slot[Window(utc(2026, 10, 25, 0), utc(2026, 10, 25, 1))] == utc(2026, 10, 25, 2, 30)


def prefect_cron_slots(cron: str, tz: str, start: datetime, n: int) -> list[datetime]:
    """The slots Prefect's own scheduler computes (the server-side CronSchedule; no server needed)."""
    from prefect.server.schemas.schedules import CronSchedule

    dates = asyncio.run(CronSchedule(cron=cron, timezone=tz).get_dates(n=n, start=start))
    return list(dates)


@pytest.mark.parametrize(
    ("window", "cron", "start", "n"),
    [
        ("1d", "30 2 * * *", utc(2026, 3, 24), 10),
        ("1d", "30 2 * * *", utc(2026, 10, 20), 10),
        ("1h", "30 * * * *", utc(2026, 3, 28, 20), 12),
        ("1h", "30 * * * *", utc(2026, 10, 24, 20), 12),
    ],
)
def test_prefect_generated_berlin_slots_cover_every_window_once(
    window: str, cron: str, start: datetime, n: int
) -> None:
    c = cfg(window, cron=cron, timezone="Europe/Berlin", lateness="15m")
    slots = prefect_cron_slots(cron, "Europe/Berlin", start, n)
    processed, _ = replay(c, slots, catch_up=c.window_length * 4)
    first, last = window_for_slot(c, slots[0]), window_for_slot(c, slots[-1])
    between = {w for w in processed if first.start <= w.start <= last.start}
    assert len(between) == (last.start - first.start) // c.window_length + 1  # no window missed
    assert set(processed.values()) == {1}  # none twice


# ---------------------------------------------------------------------------------------- late labels


def test_label_recheck_finds_windows_with_newer_labels_inside_the_horizon() -> None:
    c = cfg("1d", label_horizon="7d")
    now = utc(2026, 3, 20, 12)
    old, fresh, newer, never, failed, unlabelled = (day(2026, 3, d) for d in (10, 15, 16, 17, 18, 19))
    checked = utc(2026, 3, 19)
    runs = [
        row(old, labels_checked_at=utc(2026, 3, 11)),  # closed 9 days ago: outside the horizon
        row(fresh, labels_checked_at=checked),  # nothing new since
        row(newer, labels_checked_at=checked),  # a label arrived after the check
        row(never, "warn"),  # never checked, has labels
        row(failed, "error"),  # not processed: due_windows' business, not a recheck
        row(unlabelled, labels_checked_at=checked),
    ]
    latest = {
        old: utc(2026, 3, 20),
        fresh: utc(2026, 3, 18),
        newer: utc(2026, 3, 20),
        never: utc(2026, 3, 18, 5),
        failed: utc(2026, 3, 20),
    }
    assert label_recheck_windows(c, runs, latest, now) == [newer, never]
    assert label_recheck_windows(c, [row(newer, labels_checked_at=utc(2026, 3, 20))], latest, now) == []


# ------------------------------------------------------------------------------------ default schedule


@pytest.mark.parametrize(
    ("window", "lateness", "cron"),
    [
        ("1d", "15m", "15 0 * * *"),
        ("1d", "150m", "30 2 * * *"),
        ("6h", "15m", "15 0,6,12,18 * * *"),
        ("6h", "7h", "0 1,7,13,19 * * *"),  # lateness longer than a window: modulo the window
        ("1h", "15m", "15 * * * *"),
        ("15m", "5m", "5-59/15 * * * *"),
        ("1m", "30s", "* * * * *"),
        ("1w", "15m", "15 0 * * 4"),  # epoch-aligned weeks start on Thursday
        ("1w", "2d", "0 0 * * 6"),
        ("2d", "15m", None),
        ("7h", "15m", None),
        ("90m", "15m", None),
    ],
)
def test_default_cron_fires_once_per_window_after_lateness(
    window: str, lateness: str, cron: str | None
) -> None:
    c = cfg(window, lateness=lateness)
    assert slot_cron(c) == cron
    if cron is None:
        return
    slots = prefect_cron_slots(cron, "UTC", utc(2026, 1, 1), 30)
    windows = [window_for_slot(c, s) for s in slots]
    assert all(b.start == a.end for a, b in itertools.pairwise(windows))  # consecutive, no gap
    assert all((as_utc(s) - utc(1970, 1, 1)) % c.window_length == slot_offset(c) for s in slots)


def test_slot_offset_rounds_lateness_up_to_a_minute() -> None:
    assert slot_offset(cfg("1h", lateness="90s")) == timedelta(minutes=2)
    assert slot_offset(cfg("1h", lateness="2h")) == timedelta(0)


# ------------------------------------------------------------------------- configured window origin


@pytest.mark.parametrize(
    ("window", "origin", "timezone", "cron", "first_start"),
    [
        ("7d", "monday", "UTC", "15 0 * * 1", utc(2026, 1, 5)),
        ("7d", "sunday", "UTC", "15 0 * * 0", utc(2026, 1, 4)),
        ("1d", "monday", "Europe/Berlin", "15 23 * * *", utc(2026, 1, 1, 23)),  # local days (CET)
        ("6h", "2026-01-01T03:00Z", "UTC", "15 3,9,15,21 * * *", utc(2026, 1, 1, 3)),
    ],
)
def test_default_cron_follows_the_window_origin(
    window: str, origin: str, timezone: str, cron: str, first_start: datetime
) -> None:
    c = ModelConfig(
        name="m", features={"x": {"type": "numerical"}}, reference={"path": "r.parquet"}, window=window,
        window_origin=origin, schedule={"timezone": timezone, "lateness": "15m"},
    )  # fmt: skip
    assert slot_cron(c) == cron
    slots = prefect_cron_slots(cron, "UTC", utc(2026, 1, 1), 6)
    windows = [window_for_slot(c, s) for s in slots]
    assert all(b.start == a.end for a, b in itertools.pairwise(windows))  # consecutive, no gap
    assert all((w.start - c.window_anchor) % c.window_length == timedelta(0) for w in windows)
    expected = expected_windows(c, utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 3, 1))
    assert expected[0].start == first_start
    assert all((w.start - c.window_anchor) % c.window_length == timedelta(0) for w in expected)
