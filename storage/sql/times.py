"""Times as the stored text: UTC to the millisecond, which sorts and compares as strings."""

from __future__ import annotations

from datetime import UTC, datetime

# An upper bound later than any stored time, for periods open at the end.
END_OF_TIME = "9999-12-31T23:59:59.999Z"


def utc_timestamp(moment: datetime) -> str:
    """`moment` (tz-aware) in the shape of SQLite's strftime('%Y-%m-%dT%H:%M:%fZ', 'now').

    SQLite's '%f' keeps milliseconds ('SS.SSS'), so times written from Python keep them too
    and compare as strings with the schema's column defaults.
    """
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a tz-aware one")
    utc = moment.astimezone(UTC)
    # Not %Y: glibc writes year 999 as "999", which compares after "2024".
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def now_timestamp() -> str:
    """The current time as stored, for columns the bot stamps itself (`updated_at`)."""
    return utc_timestamp(datetime.now(UTC))


def period(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """Bounds for `column >= ? AND column < ?` on stored times; None leaves that end open."""
    start = "" if since is None else utc_timestamp(since)
    return start, END_OF_TIME if until is None else utc_timestamp(until)


def parse_timestamp(value: str) -> datetime:
    """A `utc_timestamp` string back as a tz-aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)


def optional_timestamp(value: str | None) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def optional_utc_timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else utc_timestamp(moment)
