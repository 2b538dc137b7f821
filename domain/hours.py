"""When the sales reps are at work, so the bot can say when a human will answer.

Pure date arithmetic with no I/O. Opening and closing are wall-clock times in the company's zone;
each day's window is built as aware datetimes (fold=0) and compared as instants, so the clock
changes for daylight saving neither lose nor invent open time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# Monday is 0, as for date.weekday().

# How far next_opening looks before deciding the shop never opens.
_SEARCH_DAYS = 366


def _require_aware(moment: datetime, name: str) -> None:
    """Refuse naive datetimes, because their instant depends on the machine's zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def clock(value: time) -> str:
    """A wall-clock time as HH:MM, keeping seconds only when they are set."""
    if value.second or value.microsecond:
        return value.isoformat()
    return value.strftime("%H:%M")


@dataclass(frozen=True)
class BusinessHours:
    """The sales reps' working week in the company's zone; one place to change it."""

    zone: tzinfo = UTC
    # Weekdays open, Monday is 0.
    days: frozenset[int] = frozenset(range(5))
    opens: time = time(9, 0)
    # Later than `opens`: there are no overnight shifts.
    closes: time = time(18, 0)
    # Local dates closed all day.
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        """Reject schedules the arithmetic below cannot represent."""
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opens and closes are wall-clock times and must be naive")
        if self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be later than opens ({self.opens})")
        unknown = sorted(day for day in self.days if day not in range(7))
        if unknown:
            raise ValueError(f"days must be weekdays 0 (Monday) to 6 (Sunday), got {unknown}")

    def _is_working_day(self, day: date) -> bool:
        """Whether the reps work at all on this local date."""
        return day.weekday() in self.days and day not in self.holidays

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The open instants of a local date as [start, end), in UTC so they subtract correctly."""
        # Aware datetimes sharing a tzinfo subtract as wall-clock times, so convert first.
        start = datetime.combine(day, self.opens, tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(day, self.closes, tzinfo=self.zone).astimezone(UTC)
        return start, end

    def _windows(self, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
        """The open windows of the working days from `first` to `last` inclusive."""
        day = first
        while day <= last:
            if self._is_working_day(day):
                yield self._window(day)
            day += timedelta(days=1)

    def is_open(self, moment: datetime) -> bool:
        """Whether a rep is at work at this instant, so a human can answer now."""
        _require_aware(moment, "moment")
        day = moment.astimezone(self.zone).date()
        if not self._is_working_day(day):
            return False
        start, end = self._window(day)
        return start <= moment < end

    def next_opening(self, moment: datetime) -> datetime:
        """`moment` if open, else the next opening in the company's zone, to promise a reply."""
        if self.is_open(moment):
            return moment
        today = moment.astimezone(self.zone).date()
        last = today + timedelta(days=_SEARCH_DAYS)
        for start, _ in self._windows(today, last):
            if start > moment:
                return start.astimezone(self.zone)
        raise ValueError(f"no opening within {_SEARCH_DAYS} days after {moment.isoformat()}")

    def open_seconds_between(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end) within open hours, so waiting times count only working time."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end <= start:
            return 0.0
        first = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        total = timedelta()
        for opening, closing in self._windows(first, last):
            overlap = min(closing, end) - max(opening, start)
            if overlap > timedelta():
                total += overlap
        return total.total_seconds()
