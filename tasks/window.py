"""Time windows: half-open UTC intervals ``[start, end)`` of a fixed length, aligned to an origin.

Every window is computed in UTC, whatever timezone a schedule is displayed in. Window boundaries are
``origin + k * length``; the origin defaults to the Unix epoch (1970-01-01T00:00Z, a Thursday), so daily
windows start at midnight UTC and 7-day windows on Thursdays unless a model sets ``window_origin``.

>>> w = Window.containing(datetime(2026, 1, 1, 13, 5, tzinfo=UTC), parse_duration("1h"))
>>> w.label
'2026-01-01T13:00Z'
>>> [x.label for x in Window.range(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 3, tzinfo=UTC),
...                                 parse_duration("1h"))]
['2026-01-01T00:00Z', '2026-01-01T01:00Z', '2026-01-01T02:00Z']
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNIT = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Parse ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` into a timedelta.

    >>> parse_duration("6h")
    datetime.timedelta(seconds=21600)
    """
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number and a unit s, m, h, d or w (e.g. '1h')"
        )
    return timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})


def as_utc(value: datetime | str) -> datetime:
    """A timezone-aware UTC datetime; naive values are taken to be UTC. Accepts ISO strings."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        # pendulum DateTime is a datetime subclass; anything else is a caller bug
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} must be after its start {self.start.isoformat()}"
            )

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def label(self) -> str:
        """Short human label, also used in report file names."""
        return self.start.strftime("%Y-%m-%dT%H:%MZ")

    @property
    def slug(self) -> str:
        """File-name safe identifier of the window (start and end)."""
        return f"{self.start:%Y%m%dT%H%M%SZ}_{self.end:%Y%m%dT%H%M%SZ}"

    @classmethod
    def containing(cls, t: datetime, length: timedelta, origin: datetime = EPOCH) -> Window:
        """The window of ``length`` aligned to ``origin`` (default: the Unix epoch) that contains ``t``."""
        t, origin = as_utc(t), as_utc(origin)
        n = (t - origin) // length
        start = origin + n * length
        return cls(start, start + length)

    @classmethod
    def range(
        cls, start: datetime, end: datetime, length: timedelta, origin: datetime = EPOCH
    ) -> Iterator[Window]:
        """Aligned windows of ``length`` covering ``[start, end)``; partial windows at the edges are kept whole."""
        start, end = as_utc(start), as_utc(end)
        if end <= start:
            raise ValueError(f"range end {end.isoformat()} must be after its start {start.isoformat()}")
        w = cls.containing(start, length, origin)
        while w.start < end:
            yield w
            w = cls(w.end, w.end + length)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def unaligned(t: datetime, length: timedelta, origin: datetime = EPOCH) -> str | None:
    """None when ``t`` is a window boundary; else a message naming the boundaries around it.

    >>> unaligned(datetime(2026, 2, 5, tzinfo=UTC), timedelta(days=7)) is None   # a Thursday
    True
    >>> print(unaligned(datetime(2026, 2, 2, tzinfo=UTC), timedelta(days=7)))
    2026-02-02T00:00Z is not a window boundary: 7-day windows are aligned to 1970-01-01T00:00Z (a Thursday); the nearest boundaries are 2026-01-29T00:00Z (Thursday) and 2026-02-05T00:00Z (Thursday)
    """
    w = Window.containing(t, length, origin)
    if w.start == as_utc(t):
        return None
    origin = as_utc(origin)

    def say(x: datetime) -> str:
        return x.strftime("%Y-%m-%dT%H:%MZ")

    size = f"{length.days}-day" if length % timedelta(days=1) == timedelta(0) else f"{length}"
    return (
        f"{say(as_utc(t))} is not a window boundary: {size} windows are aligned to {say(origin)} "
        f"(a {origin:%A}); the nearest boundaries are {say(w.start)} ({w.start:%A}) and "
        f"{say(w.end)} ({w.end:%A})"
    )
