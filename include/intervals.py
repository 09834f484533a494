"""Time on the data's calendar: UTC days and half-open data intervals ``[start, end)``.

One home for "UTC midnight" and for the shape of a data interval, from the source up to
monitoring. A DAG run's ``data_interval_start``/``data_interval_end`` become an ``Interval`` as
they are (timezone-aware datetimes); XCom and asset extras carry ``to_json()`` (two ISO strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

ONE_DAY = timedelta(days=1)


def as_utc(value: str | date | datetime) -> datetime:
    """``value`` as an aware UTC datetime: ISO strings are parsed, dates and naive datetimes are UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def utc_day(value: date | datetime) -> date:
    """The UTC calendar day of ``value`` (a date is its own day)."""
    return as_utc(value).date() if isinstance(value, datetime) else value


def utc_midnight(value: date | datetime) -> datetime:
    """00:00 UTC of the UTC day of ``value``."""
    day = utc_day(value)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@dataclass(frozen=True, order=True)
class Interval:
    """A data interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start.isoformat()} .. {self.end.isoformat()}")

    @classmethod
    def of_day(cls, day: date | datetime) -> Interval:
        """The whole UTC day ``[00:00, 24:00)``."""
        start = utc_midnight(day)
        return cls(start, start + ONE_DAY)

    def __iter__(self):
        """``start, end = interval``."""
        return iter((self.start, self.end))

    @property
    def day(self) -> date:
        """The UTC day the interval starts on."""
        return self.start.date()

    def to_json(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]

    @classmethod
    def from_json(cls, value) -> Interval:
        start, end = value
        return cls(start, end)  # __post_init__ makes both UTC
