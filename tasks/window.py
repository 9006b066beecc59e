"""Time windows: half-open UTC intervals ``[start, end)`` aligned to a fixed length.

Every window is computed in UTC, whatever timezone a schedule is displayed in.

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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    def containing(cls, t: datetime, length: timedelta) -> Window:
        """The aligned window of ``length`` (aligned to the Unix epoch, in UTC) that contains ``t``."""
        t = as_utc(t)
        n = (t - _EPOCH) // length
        start = _EPOCH + n * length
        return cls(start, start + length)

    @classmethod
    def range(cls, start: datetime, end: datetime, length: timedelta) -> Iterator[Window]:
        """Aligned windows of ``length`` covering ``[start, end)``; partial windows at the edges are kept whole."""
        start, end = as_utc(start), as_utc(end)
        if end <= start:
            raise ValueError(f"range end {end.isoformat()} must be after its start {start.isoformat()}")
        w = cls.containing(start, length)
        while w.start < end:
            yield w
            w = cls(w.end, w.end + length)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"
