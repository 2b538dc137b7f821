"""Business hours instant by instant: boundaries, weekends, holidays, time zones and DST.

Weekdays checked against `calendar`: 2026-03-02 and 2026-03-30 are Mondays, 2026-03-06 and
2026-03-27 Fridays, 2026-03-29 and 2026-10-25 Sundays. Europe/Berlin moves to summer time at
02:00 on 2026-03-29 (02:00-03:00 does not exist) and back at 03:00 on 2026-10-25 (02:00-03:00
happens twice). Asia/Hong_Kong is UTC+8 all year.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.hours import BusinessHours
from handlers.i18n import describe_hours

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0

OFFICE = BusinessHours()


def test_weekdays_used_in_these_tests() -> None:
    assert date(2026, 3, 2).weekday() == calendar.MONDAY
    assert date(2026, 3, 30).weekday() == calendar.MONDAY
    assert date(2026, 3, 6).weekday() == calendar.FRIDAY
    assert date(2026, 3, 27).weekday() == calendar.FRIDAY
    assert date(2026, 3, 29).weekday() == calendar.SUNDAY
    assert date(2026, 10, 25).weekday() == calendar.SUNDAY


# --- validation ---------------------------------------------------------------------------


def test_defaults() -> None:
    assert OFFICE.zone is UTC
    assert OFFICE.days == frozenset({0, 1, 2, 3, 4})
    assert (OFFICE.opens, OFFICE.closes) == (time(9), time(18))
    assert OFFICE.holidays == frozenset()


@pytest.mark.parametrize(("opens", "closes"), [(time(9), time(9)), (time(18), time(9))])
def test_closing_not_after_opening_is_rejected(opens: time, closes: time) -> None:
    with pytest.raises(ValueError, match="closes"):
        BusinessHours(opens=opens, closes=closes)


def test_unknown_weekday_is_rejected() -> None:
    with pytest.raises(ValueError, match="days"):
        BusinessHours(days=frozenset({0, 7}))


def test_aware_wall_clock_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        BusinessHours(opens=time(9, tzinfo=UTC))


def test_hours_are_frozen() -> None:
    with pytest.raises(AttributeError):
        OFFICE.opens = time(8)  # type: ignore[misc]


# --- is_open ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        (time(8, 59, 59, 999999), False),
        (time(9), True),
        (time(12, 30), True),
        (time(17, 59, 59, 999999), True),
        (time(18), False),
        (time(23, 0), False),
        (time(0, 0), False),
    ],
)
def test_opening_is_inclusive_and_closing_exclusive(clock: time, expected: bool) -> None:
    assert OFFICE.is_open(datetime.combine(date(2026, 3, 2), clock, tzinfo=UTC)) is expected


@pytest.mark.parametrize("day", [date(2026, 3, 7), date(2026, 3, 8)])
def test_closed_at_the_weekend(day: date) -> None:
    assert not OFFICE.is_open(datetime.combine(day, time(12), tzinfo=UTC))


def test_closed_on_a_holiday_and_open_the_day_after() -> None:
    hours = BusinessHours(holidays=frozenset({date(2026, 3, 2)}))
    assert not hours.is_open(datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 3, 3, 12, tzinfo=UTC))


def test_weekend_days_can_be_open() -> None:
    hours = BusinessHours(days=frozenset({5, 6}))
    assert hours.is_open(datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 3, 2, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 2, 0, 59, tzinfo=UTC), False),  # 08:59 in Hong Kong
        (datetime(2026, 3, 2, 1, 0, tzinfo=UTC), True),  # 09:00
        (datetime(2026, 3, 2, 9, 59, tzinfo=UTC), True),  # 17:59
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), False),  # 18:00
        (datetime(2026, 3, 2, 9, 0, tzinfo=HONG_KONG), True),
        (datetime(2026, 3, 8, 23, 30, tzinfo=UTC), False),  # Monday 07:30 there
        (datetime(2026, 3, 9, 1, 30, tzinfo=UTC), True),  # Monday 09:30 there
        (datetime(2026, 3, 6, 12, 0, tzinfo=UTC), False),  # Friday 20:00 there
        (datetime(2026, 3, 7, 1, 30, tzinfo=UTC), False),  # Saturday 09:30 there
    ],
)
def test_open_in_hong_kong_hours(moment: datetime, expected: bool) -> None:
    assert BusinessHours(zone=HONG_KONG).is_open(moment) is expected


def test_holidays_are_local_dates() -> None:
    # 23:00 UTC on Monday is already Tuesday 07:00 in Hong Kong.
    moment = datetime(2026, 3, 2, 23, tzinfo=UTC)
    early = BusinessHours(zone=HONG_KONG, opens=time(6), closes=time(10))
    assert early.is_open(moment)
    holiday = BusinessHours(
        zone=HONG_KONG, opens=time(6), closes=time(10), holidays=frozenset({date(2026, 3, 3)})
    )
    assert not holiday.is_open(moment)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 7, 7, 59, tzinfo=UTC), False),  # 08:59 CET
        (datetime(2026, 1, 7, 8, 0, tzinfo=UTC), True),  # 09:00 CET
        (datetime(2026, 1, 7, 17, 0, tzinfo=UTC), False),  # 18:00 CET
        (datetime(2026, 7, 1, 6, 59, tzinfo=UTC), False),  # 08:59 CEST
        (datetime(2026, 7, 1, 7, 0, tzinfo=UTC), True),  # 09:00 CEST
        (datetime(2026, 7, 1, 15, 59, tzinfo=UTC), True),  # 17:59 CEST
        (datetime(2026, 7, 1, 16, 0, tzinfo=UTC), False),  # 18:00 CEST
    ],
)
def test_open_in_berlin_hours_winter_and_summer(moment: datetime, expected: bool) -> None:
    assert BusinessHours(zone=BERLIN).is_open(moment) is expected


def test_open_across_the_missing_hour() -> None:
    night = BusinessHours(zone=BERLIN, days=frozenset(range(7)), opens=time(1), closes=time(4))
    assert not night.is_open(datetime(2026, 3, 28, 23, 59, tzinfo=UTC))  # 00:59 CET
    assert night.is_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))  # 01:00 CET
    assert night.is_open(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 CEST
    assert night.is_open(datetime(2026, 3, 29, 1, 59, tzinfo=UTC))  # 03:59 CEST
    assert not night.is_open(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 04:00 CEST


def test_naive_moment_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.is_open(datetime(2026, 3, 2, 12))


# --- next_opening -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 6, 18, 0, tzinfo=UTC),
        datetime(2026, 3, 6, 21, 30, tzinfo=UTC),
        datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 8, 59, 59, tzinfo=UTC),
    ],
)
def test_next_opening_after_the_weekend_is_monday_morning(moment: datetime) -> None:
    assert OFFICE.next_opening(moment) == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def test_next_opening_before_opening_is_the_same_day() -> None:
    assert OFFICE.next_opening(datetime(2026, 3, 3, 7, 30, tzinfo=UTC)) == datetime(
        2026, 3, 3, 9, 0, tzinfo=UTC
    )


def test_next_opening_at_closing_is_the_next_morning() -> None:
    assert OFFICE.next_opening(datetime(2026, 3, 3, 18, 0, tzinfo=UTC)) == datetime(
        2026, 3, 4, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 3, 3, 9, 0, tzinfo=UTC), datetime(2026, 3, 3, 19, 15, 42, tzinfo=HONG_KONG)],
)
def test_next_opening_while_open_is_the_moment_itself(moment: datetime) -> None:
    assert OFFICE.next_opening(moment) is moment


def test_next_opening_skips_a_holiday_monday() -> None:
    hours = BusinessHours(holidays=frozenset({date(2026, 3, 9)}))
    assert hours.next_opening(datetime(2026, 3, 6, 19, tzinfo=UTC)) == datetime(
        2026, 3, 10, 9, 0, tzinfo=UTC
    )


def test_next_opening_is_in_the_company_zone() -> None:
    hours = BusinessHours(zone=HONG_KONG)
    # Friday 11:00 UTC is 19:00 in Hong Kong.
    opening = hours.next_opening(datetime(2026, 3, 6, 11, tzinfo=UTC))
    assert opening.tzinfo is HONG_KONG
    assert opening.replace(tzinfo=None) == datetime(2026, 3, 9, 9, 0)
    assert opening == datetime(2026, 3, 9, 1, 0, tzinfo=UTC)


def test_next_opening_over_the_clock_change_uses_summer_time() -> None:
    hours = BusinessHours(zone=BERLIN)
    opening = hours.next_opening(datetime(2026, 3, 27, 18, tzinfo=BERLIN))
    assert opening.replace(tzinfo=None) == datetime(2026, 3, 30, 9, 0)
    assert opening.utcoffset() == timedelta(hours=2)
    assert opening == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_next_opening_in_the_missing_hour_is_open_and_a_second_before_is_not() -> None:
    # 02:30 does not exist on 2026-03-29; fold=0 reads it with the winter offset.
    hours = BusinessHours(zone=BERLIN, days=frozenset(range(7)), opens=time(2, 30), closes=time(5))
    opening = hours.next_opening(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert hours.is_open(opening)
    assert not hours.is_open(opening - timedelta(seconds=1))


def test_next_opening_without_working_days_is_an_error() -> None:
    with pytest.raises(ValueError, match="no opening"):
        BusinessHours(days=frozenset()).next_opening(datetime(2026, 3, 2, 12, tzinfo=UTC))


def test_next_opening_gives_up_after_a_year_of_holidays() -> None:
    start = date(2026, 3, 3)
    year = frozenset(start + timedelta(days=n) for n in range(367))
    with pytest.raises(ValueError, match="no opening"):
        BusinessHours(holidays=year).next_opening(datetime(2026, 3, 2, 19, tzinfo=UTC))


def test_next_opening_rejects_a_naive_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.next_opening(datetime(2026, 3, 6, 19))


# --- open_seconds_between -----------------------------------------------------------------


def test_open_seconds_within_one_day() -> None:
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, start + timedelta(hours=2, minutes=30)) == 9000.0


def test_open_seconds_clipped_to_opening_and_closing() -> None:
    start = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, datetime(2026, 3, 2, 10, tzinfo=UTC)) == HOUR
    assert OFFICE.open_seconds_between(start, datetime(2026, 3, 2, 23, tzinfo=UTC)) == 9 * HOUR


def test_open_seconds_across_a_night() -> None:
    start = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, datetime(2026, 3, 3, 10, tzinfo=UTC)) == 2 * HOUR


def test_open_seconds_across_a_weekend() -> None:
    start = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, datetime(2026, 3, 9, 10, tzinfo=UTC)) == 2 * HOUR


def test_open_seconds_in_a_full_week_and_with_a_holiday() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(weeks=1)
    assert OFFICE.open_seconds_between(start, end) == 45 * HOUR
    hours = BusinessHours(holidays=frozenset({date(2026, 3, 4)}))
    assert hours.open_seconds_between(start, end) == 36 * HOUR


@pytest.mark.parametrize("delta", [timedelta(), timedelta(hours=-3)])
def test_open_seconds_of_an_empty_interval_is_zero(delta: timedelta) -> None:
    start = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, start + delta) == 0.0


def test_open_seconds_entirely_outside_hours_is_zero() -> None:
    start = datetime(2026, 3, 7, 8, tzinfo=UTC)
    assert OFFICE.open_seconds_between(start, datetime(2026, 3, 8, 20, tzinfo=UTC)) == 0.0


def test_open_seconds_in_hong_kong_from_utc_moments() -> None:
    hours = BusinessHours(zone=HONG_KONG)
    # Monday 08:00 to 12:00 UTC is 16:00 to 20:00 in Hong Kong: two hours before closing.
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert hours.open_seconds_between(start, datetime(2026, 3, 2, 12, tzinfo=UTC)) == 2 * HOUR


def test_open_seconds_across_the_spring_clock_change_in_berlin() -> None:
    hours = BusinessHours(zone=BERLIN)
    start = datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)
    end = datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert hours.open_seconds_between(start, end) == 2 * HOUR
    assert hours.open_seconds_between(start.astimezone(UTC), end.astimezone(UTC)) == 2 * HOUR


def test_open_seconds_across_the_autumn_clock_change_in_berlin() -> None:
    hours = BusinessHours(zone=BERLIN)
    start = datetime(2026, 10, 23, 17, 0, tzinfo=BERLIN)
    end = datetime(2026, 10, 26, 10, 0, tzinfo=BERLIN)
    assert hours.open_seconds_between(start, end) == 2 * HOUR


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 28), 3 * HOUR),  # an ordinary night
        (date(2026, 3, 29), 2 * HOUR),  # 02:00-03:00 is skipped
        (date(2026, 10, 25), 4 * HOUR),  # 02:00-03:00 happens twice
    ],
)
def test_open_seconds_on_a_clock_change_day(day: date, expected: float) -> None:
    night = BusinessHours(zone=BERLIN, days=frozenset(range(7)), opens=time(1), closes=time(4))
    start = datetime.combine(day, time(0), tzinfo=BERLIN)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=BERLIN)
    assert night.open_seconds_between(start, end) == expected


def test_open_seconds_over_three_nights_including_the_spring_change() -> None:
    night = BusinessHours(zone=BERLIN, days=frozenset(range(7)), opens=time(1), closes=time(4))
    start = datetime(2026, 3, 28, tzinfo=BERLIN)
    end = datetime(2026, 3, 31, tzinfo=BERLIN)
    assert night.open_seconds_between(start, end) == (3 + 2 + 3) * HOUR


def test_open_seconds_rejects_naive_datetimes() -> None:
    aware = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.open_seconds_between(datetime(2026, 3, 2, 10), aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.open_seconds_between(aware, datetime(2026, 3, 2, 14))


# --- describe -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (OFFICE, "Mon–Fri 09:00–18:00 (UTC)"),
        (BusinessHours(zone=HONG_KONG), "Mon–Fri 09:00–18:00 (Asia/Hong_Kong)"),
        (BusinessHours(days=frozenset({0, 1, 2, 4})), "Mon–Wed, Fri 09:00–18:00 (UTC)"),
        (BusinessHours(days=frozenset({0, 2, 4})), "Mon, Wed, Fri 09:00–18:00 (UTC)"),
        (BusinessHours(days=frozenset({5, 6})), "Sat–Sun 09:00–18:00 (UTC)"),
        (BusinessHours(days=frozenset({6})), "Sun 09:00–18:00 (UTC)"),
        (
            BusinessHours(zone=BERLIN, days=frozenset(range(7)), opens=time(1), closes=time(4)),
            "Mon–Sun 01:00–04:00 (Europe/Berlin)",
        ),
        (
            BusinessHours(days=frozenset({0, 1, 3, 4, 5}), opens=time(8, 30), closes=time(17, 45)),
            "Mon–Tue, Thu–Sat 08:30–17:45 (UTC)",
        ),
        (
            BusinessHours(zone=timezone(timedelta(hours=8))),
            "Mon–Fri 09:00–18:00 (UTC+08:00)",
        ),
        (BusinessHours(closes=time(17, 59, 30)), "Mon–Fri 09:00–17:59:30 (UTC)"),
        (BusinessHours(days=frozenset()), "Closed (UTC)"),
    ],
)
def test_describe(hours: BusinessHours, expected: str) -> None:
    assert describe_hours(hours) == expected
