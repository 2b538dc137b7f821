"""The order rules day by day: business days, expected dates, stale tracking and warranties.

Weekdays checked against `calendar`: 2026-03-02 is a Monday, 2026-01-30 a Friday,
2026-12-31 a Thursday and 2027-01-01 a Friday.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.order_dates import (
    Expectation,
    Stage,
    add_business_days,
    expect,
    is_business_day,
    last_tracking_news,
    tracking_is_stale,
)
from domain.orders import (
    ON_THE_WAY,
    Condition,
    Order,
    OrderItem,
    OrderRules,
    OrderStatus,
    Repair,
    StatusChange,
)
from domain.warranty import Coverage, Warranty, machine_warranty, repair_warranty

RULES = OrderRules()
MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)
SATURDAY = date(2026, 3, 7)
SUNDAY = date(2026, 3, 8)
NEXT_MONDAY = date(2026, 3, 9)
NEW_YEAR = date(2027, 1, 1)


def order(status: OrderStatus, **fields: Any) -> Order:
    return Order("A-1001", "buyer@example.com", status, **fields)


def test_the_weekdays_the_tests_rely_on() -> None:
    assert MONDAY.weekday() == calendar.MONDAY
    assert FRIDAY.weekday() == calendar.FRIDAY
    assert date(2026, 1, 30).weekday() == calendar.FRIDAY
    assert date(2026, 12, 31).weekday() == calendar.THURSDAY
    assert date(2027, 1, 1).weekday() == calendar.FRIDAY


# --- business days ---


@pytest.mark.parametrize("start", [FRIDAY, SATURDAY, SUNDAY])
def test_one_business_day_after_a_weekend_is_monday(start: date) -> None:
    assert add_business_days(start, 1) == NEXT_MONDAY


def test_business_days_within_a_week() -> None:
    assert add_business_days(MONDAY, 4) == FRIDAY
    assert add_business_days(MONDAY, 5) == NEXT_MONDAY


def test_business_days_across_a_month_end() -> None:
    assert add_business_days(date(2026, 1, 30), 3) == date(2026, 2, 4)


def test_business_days_across_a_year_end() -> None:
    assert add_business_days(date(2026, 12, 31), 1) == date(2027, 1, 1)
    assert add_business_days(date(2026, 12, 30), 3) == date(2027, 1, 4)


def test_a_holiday_on_the_would_be_day_pushes_it() -> None:
    new_year = {date(2027, 1, 1)}
    assert add_business_days(date(2026, 12, 31), 1, new_year) == date(2027, 1, 4)


def test_consecutive_holidays_are_all_skipped() -> None:
    holidays = {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 28)}
    assert add_business_days(date(2026, 12, 23), 1, holidays) == date(2026, 12, 29)
    assert add_business_days(date(2026, 12, 23), 2, holidays) == date(2026, 12, 30)


def test_a_holiday_on_a_weekend_changes_nothing() -> None:
    assert add_business_days(FRIDAY, 1, {SATURDAY, SUNDAY}) == NEXT_MONDAY


def test_zero_business_days_is_the_start_even_on_a_weekend() -> None:
    assert add_business_days(SATURDAY, 0) == SATURDAY
    assert add_business_days(MONDAY, 0, {MONDAY}) == MONDAY


def test_negative_business_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_business_days(MONDAY, -1)


def test_business_days_between_inverts_add_business_days() -> None:
    # 2026-12-26 is a Saturday; the others are weekdays, two of them next to each other.
    holidays = frozenset(
        [date(2026, 5, 1), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), NEW_YEAR]
    )
    first = date(2026, 4, 20)
    for offset in range(300):
        start = first + timedelta(days=offset)
        for n in range(30):
            end = add_business_days(start, n, holidays)
            days = range(1, (end - start).days + 1)
            passed = [start + timedelta(days=d) for d in days]
            assert sum(is_business_day(day, holidays) for day in passed) == n, (start, n)
            if n > 0:
                assert end.weekday() < calendar.SATURDAY, (start, n)
                assert end not in holidays, (start, n)


# --- expected dates ---


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.PROCESSING])
def test_paid_orders_wait_for_dispatch(status: OrderStatus) -> None:
    got = expect(order(status, paid_on=MONDAY), MONDAY, RULES)
    assert got == Expectation(Stage.DISPATCH, date(2026, 3, 5), date(2026, 3, 11))


def test_paid_without_a_payment_date_has_no_dates() -> None:
    got = expect(order(OrderStatus.PAID), date(2027, 1, 1), RULES)
    assert got == Expectation(Stage.DISPATCH)


def test_dispatch_is_overdue_only_after_the_last_day() -> None:
    paid = order(OrderStatus.PAID, paid_on=MONDAY)
    assert not expect(paid, date(2026, 3, 11), RULES).overdue
    assert expect(paid, date(2026, 3, 12), RULES).overdue


def test_dispatch_counts_holidays() -> None:
    rules = OrderRules(holidays=frozenset({date(2026, 3, 4)}))
    got = expect(order(OrderStatus.PAID, paid_on=MONDAY), MONDAY, rules)
    assert (got.earliest, got.latest) == (date(2026, 3, 6), date(2026, 3, 12))


def test_pre_order_waits_for_the_manufacturer() -> None:
    pre_order = order(OrderStatus.PRE_ORDER, paid_on=MONDAY, expected_on=date(2026, 5, 15))
    assert expect(pre_order, date(2026, 5, 15), RULES) == Expectation(
        Stage.MANUFACTURER, date(2026, 5, 15), date(2026, 5, 15)
    )
    assert expect(pre_order, date(2026, 5, 16), RULES).overdue


def test_pre_order_without_an_expected_date_has_no_dates() -> None:
    got = expect(order(OrderStatus.PRE_ORDER, paid_on=MONDAY), date(2027, 1, 1), RULES)
    assert got == Expectation(Stage.MANUFACTURER)


@pytest.mark.parametrize("status", sorted(ON_THE_WAY))
def test_shipped_orders_wait_for_delivery(status: OrderStatus) -> None:
    shipped = order(status, paid_on=date(2026, 2, 20), shipped_on=MONDAY)
    assert expect(shipped, date(2026, 3, 16), RULES) == Expectation(
        Stage.DELIVERY, NEXT_MONDAY, date(2026, 3, 16)
    )
    assert expect(shipped, date(2026, 3, 17), RULES).overdue


def test_ddp_delivery_is_a_single_later_date() -> None:
    shipped = order(OrderStatus.IN_CUSTOMS, ddp=True, shipped_on=MONDAY)
    assert expect(shipped, date(2026, 3, 23), RULES) == Expectation(
        Stage.DELIVERY, date(2026, 3, 23), date(2026, 3, 23)
    )
    assert expect(shipped, date(2026, 3, 24), RULES).overdue


@pytest.mark.parametrize("ddp", [False, True])
def test_shipped_without_a_shipment_date_has_no_dates(ddp: bool) -> None:
    got = expect(order(OrderStatus.SHIPPED, ddp=ddp), date(2027, 1, 1), RULES)
    assert got == Expectation(Stage.DELIVERY)


def test_delivered_is_never_overdue() -> None:
    delivered = order(OrderStatus.DELIVERED, shipped_on=MONDAY, delivered_on=NEXT_MONDAY)
    assert expect(delivered, date(2027, 1, 1), RULES) == Expectation(
        Stage.DELIVERED, NEXT_MONDAY, NEXT_MONDAY
    )


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.REFUNDED])
def test_closed_orders_have_no_dates(status: OrderStatus) -> None:
    closed = order(status, paid_on=MONDAY, shipped_on=MONDAY, expected_on=MONDAY)
    assert expect(closed, date(2027, 1, 1), RULES) == Expectation(Stage.CLOSED)


def test_every_status_has_a_stage() -> None:
    for status in OrderStatus:
        assert expect(order(status), MONDAY, RULES).stage in Stage


# --- tracking news ---

TRACKED_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WEEK_LATER = TRACKED_AT + timedelta(days=7)
SECOND = timedelta(seconds=1)


def test_last_news_is_none_without_any_date() -> None:
    assert last_tracking_news(order(OrderStatus.SHIPPED)) is None


def test_last_news_is_the_latest_of_tracking_history_and_shipment() -> None:
    history = (StatusChange(OrderStatus.SHIPPED, datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),)
    shipped = order(
        OrderStatus.SHIPPED, shipped_on=MONDAY, history=history, tracking_updated_at=TRACKED_AT
    )
    assert last_tracking_news(shipped) == TRACKED_AT
    only_shipped = order(OrderStatus.SHIPPED, shipped_on=MONDAY)
    assert last_tracking_news(only_shipped) == datetime(2026, 3, 2, tzinfo=UTC)


def test_naive_times_count_as_utc() -> None:
    shipped = order(OrderStatus.SHIPPED, tracking_updated_at=datetime(2026, 3, 10, 12, 0))
    assert last_tracking_news(shipped) == TRACKED_AT
    assert not tracking_is_stale(shipped, WEEK_LATER, RULES)
    assert tracking_is_stale(shipped, WEEK_LATER + SECOND, RULES)


def test_tracking_goes_stale_only_after_the_limit() -> None:
    shipped = order(OrderStatus.IN_TRANSIT, shipped_on=MONDAY, tracking_updated_at=TRACKED_AT)
    assert not tracking_is_stale(shipped, WEEK_LATER, RULES)
    assert tracking_is_stale(shipped, WEEK_LATER + SECOND, RULES)


def test_a_later_status_change_counts_as_news() -> None:
    history = (
        StatusChange(OrderStatus.SHIPPED, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        StatusChange(OrderStatus.IN_CUSTOMS, TRACKED_AT + timedelta(days=2)),
    )
    in_customs = order(
        OrderStatus.IN_CUSTOMS, shipped_on=MONDAY, history=history, tracking_updated_at=TRACKED_AT
    )
    assert not tracking_is_stale(in_customs, WEEK_LATER + timedelta(days=1), RULES)
    assert tracking_is_stale(in_customs, WEEK_LATER + timedelta(days=2) + SECOND, RULES)


def test_stale_compares_across_time_zones() -> None:
    shipped = order(OrderStatus.SHIPPED, tracking_updated_at=TRACKED_AT)
    plus_three = timezone(timedelta(hours=3))
    now = datetime(2026, 3, 17, 15, 0, tzinfo=plus_three)  # 12:00 UTC
    assert not tracking_is_stale(shipped, now, RULES)
    assert tracking_is_stale(shipped, now + SECOND, RULES)


def test_without_any_news_tracking_is_not_called_stale() -> None:
    assert not tracking_is_stale(order(OrderStatus.SHIPPED), WEEK_LATER, RULES)


@pytest.mark.parametrize("status", sorted(set(OrderStatus) - ON_THE_WAY))
def test_only_parcels_on_the_way_go_stale(status: OrderStatus) -> None:
    quiet = order(status, shipped_on=MONDAY, tracking_updated_at=TRACKED_AT)
    assert not tracking_is_stale(quiet, datetime(2027, 1, 1, tzinfo=UTC), RULES)


def test_stale_limit_comes_from_the_rules() -> None:
    shipped = order(OrderStatus.SHIPPED, tracking_updated_at=TRACKED_AT)
    assert tracking_is_stale(
        shipped, TRACKED_AT + timedelta(days=2), OrderRules(stale_after_days=1)
    )


# --- warranty ---

NEW = OrderItem("Bitmain", "Antminer S21")
SHIPPED_ON = date(2026, 1, 10)
LAST_COVERED = date(2026, 7, 9)  # 180 days after SHIPPED_ON


def test_new_machine_warranty_is_active_with_days_left() -> None:
    delivered = order(OrderStatus.DELIVERED, items=(NEW,), shipped_on=SHIPPED_ON)
    assert machine_warranty(delivered, NEW, date(2026, 7, 1), RULES) == Warranty(
        Coverage.ACTIVE, SHIPPED_ON, LAST_COVERED, 8
    )


def test_new_machine_warranty_covers_the_last_day_and_not_the_next() -> None:
    delivered = order(OrderStatus.DELIVERED, items=(NEW,), shipped_on=SHIPPED_ON)
    assert machine_warranty(delivered, NEW, LAST_COVERED, RULES) == Warranty(
        Coverage.ACTIVE, SHIPPED_ON, LAST_COVERED, 0
    )
    assert machine_warranty(delivered, NEW, date(2026, 7, 10), RULES) == Warranty(
        Coverage.EXPIRED, SHIPPED_ON, LAST_COVERED
    )


def test_warranty_starts_on_shipment_while_still_on_the_way() -> None:
    shipped = order(OrderStatus.IN_TRANSIT, items=(NEW,), shipped_on=SHIPPED_ON)
    assert machine_warranty(shipped, NEW, SHIPPED_ON, RULES) == Warranty(
        Coverage.ACTIVE, SHIPPED_ON, LAST_COVERED, 180
    )


@pytest.mark.parametrize("condition", [Condition.USED, Condition.REFURBISHED])
@pytest.mark.parametrize("status", list(OrderStatus))
def test_used_and_refurbished_machines_have_no_warranty(
    condition: Condition, status: OrderStatus
) -> None:
    item = OrderItem("Bitmain", "Antminer S19", condition=condition)
    second_hand = order(status, items=(item,), shipped_on=SHIPPED_ON)
    assert machine_warranty(second_hand, item, date(2026, 2, 1), RULES) == Warranty(Coverage.NONE)


@pytest.mark.parametrize(
    "status", [OrderStatus.PAID, OrderStatus.PRE_ORDER, OrderStatus.PROCESSING]
)
def test_warranty_has_not_started_before_shipment(status: OrderStatus) -> None:
    waiting = order(status, items=(NEW,), paid_on=SHIPPED_ON)
    assert machine_warranty(waiting, NEW, date(2027, 1, 1), RULES) == Warranty(Coverage.NOT_STARTED)


@pytest.mark.parametrize("status", [*sorted(ON_THE_WAY), OrderStatus.DELIVERED])
def test_warranty_is_unknown_when_the_shipment_date_is_missing(status: OrderStatus) -> None:
    shipped = order(status, items=(NEW,))
    assert machine_warranty(shipped, NEW, date(2026, 2, 1), RULES) == Warranty(Coverage.UNKNOWN)


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.REFUNDED])
def test_warranty_is_unknown_for_closed_orders(status: OrderStatus) -> None:
    closed = order(status, items=(NEW,), shipped_on=SHIPPED_ON)
    assert machine_warranty(closed, NEW, date(2026, 2, 1), RULES) == Warranty(Coverage.UNKNOWN)


def test_repaired_part_warranty_covers_thirty_days() -> None:
    repair = Repair("hashboard", shipped_on=MONDAY, serial="HB-1")
    last_day = date(2026, 4, 1)
    assert repair_warranty(repair, date(2026, 3, 30), RULES) == Warranty(
        Coverage.ACTIVE, MONDAY, last_day, 2
    )
    assert repair_warranty(repair, last_day, RULES) == Warranty(
        Coverage.ACTIVE, MONDAY, last_day, 0
    )
    assert repair_warranty(repair, date(2026, 4, 2), RULES) == Warranty(
        Coverage.EXPIRED, MONDAY, last_day
    )


def test_repaired_part_of_a_used_machine_is_covered() -> None:
    repair = Repair("PSU", shipped_on=MONDAY)
    item = OrderItem("Bitmain", "Antminer S19", condition=Condition.USED, repairs=(repair,))
    used = order(OrderStatus.DELIVERED, items=(item,), shipped_on=SHIPPED_ON)
    assert machine_warranty(used, item, MONDAY, RULES).coverage is Coverage.NONE
    assert repair_warranty(item.repairs[0], MONDAY, RULES).coverage is Coverage.ACTIVE
