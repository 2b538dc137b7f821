"""Business days, and what a customer can expect of an order from its dates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from domain.orders import ON_THE_WAY, Order, OrderRules, OrderStatus

# Monday is 0, so Saturday and Sunday are 5 and 6.
_WEEKEND = frozenset({5, 6})


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    """Whether the warehouse and carriers work on this day."""
    return day.weekday() not in _WEEKEND and day not in holidays


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The date `days` business days after `start`, which itself is not counted."""
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    # Terminates because the holidays are finite: weekdays beyond the last one all count.
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day, holidays):
            remaining -= 1
    return day


class Stage(StrEnum):
    """What the customer is waiting for, which decides the dates we can promise."""

    DISPATCH = "dispatch"
    MANUFACTURER = "manufacturer"
    DELIVERY = "delivery"
    DELIVERED = "delivered"
    CLOSED = "closed"


# Stages with a promise that can be broken, so that the bot apologises and offers a human.
_WAITING = frozenset({Stage.DISPATCH, Stage.MANUFACTURER, Stage.DELIVERY})


@dataclass(frozen=True)
class Expectation:
    """When the current stage should end; dates are None when we cannot tell."""

    stage: Stage
    earliest: date | None = None
    latest: date | None = None
    overdue: bool = False


def _window(
    start: date | None, window: tuple[int, int], holidays: Collection[date]
) -> tuple[date | None, date | None]:
    if start is None:
        return None, None
    low, high = window
    return add_business_days(start, low, holidays), add_business_days(start, high, holidays)


def expect(order: Order, today: date, rules: OrderRules) -> Expectation:
    """What the order waits for now and the dates to promise the customer."""
    status = order.status
    earliest: date | None
    latest: date | None
    if status in (OrderStatus.PAID, OrderStatus.PROCESSING):
        stage = Stage.DISPATCH
        earliest, latest = _window(order.paid_on, rules.dispatch_business_days, rules.holidays)
    elif status is OrderStatus.PRE_ORDER:
        stage = Stage.MANUFACTURER
        earliest = latest = order.expected_on
    elif status in ON_THE_WAY:
        stage = Stage.DELIVERY
        if order.ddp and order.shipped_on is not None:
            earliest = latest = add_business_days(
                order.shipped_on, rules.ddp_delivery_business_days, rules.holidays
            )
        else:
            earliest, latest = _window(
                order.shipped_on, rules.delivery_business_days, rules.holidays
            )
    elif status is OrderStatus.DELIVERED:
        stage = Stage.DELIVERED
        earliest = latest = order.delivered_on
    else:
        return Expectation(Stage.CLOSED)
    overdue = stage in _WAITING and latest is not None and today > latest
    return Expectation(stage, earliest, latest, overdue)


def _as_utc(moment: datetime) -> datetime:
    # The shop sends some timestamps without a zone; they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def last_tracking_news(order: Order) -> datetime | None:
    """The last time we heard anything about the parcel, or None if never."""
    news: list[datetime] = []
    if order.tracking_updated_at is not None:
        news.append(_as_utc(order.tracking_updated_at))
    if order.history:
        news.append(_as_utc(order.history[-1].at))
    if order.shipped_on is not None:
        news.append(datetime.combine(order.shipped_on, time(), tzinfo=UTC))
    return max(news, default=None)


def tracking_is_stale(order: Order, now: datetime, rules: OrderRules) -> bool:
    """Whether a parcel on the way has gone quiet for too long, so staff should chase it."""
    if order.status not in ON_THE_WAY:
        return False
    news = last_tracking_news(order)
    # Without any date we cannot tell how long it has been quiet.
    if news is None:
        return False
    return _as_utc(now) - news > timedelta(days=rules.stale_after_days)
