"""Warranty rules: the distributor's days from shipment, none for used or refurbished
machines, and a repaired part's own days from its return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from domain.orders import Condition, Order, OrderItem, OrderRules, OrderStatus, Repair


class Coverage(StrEnum):
    """Whether a warranty claim can be accepted, and if not, why."""

    ACTIVE = "active"
    EXPIRED = "expired"
    NONE = "none"
    NOT_STARTED = "not_started"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Warranty:
    """A warranty's state on a given day; `ends_on` is the last covered day."""

    coverage: Coverage
    starts_on: date | None = None
    ends_on: date | None = None
    days_left: int = 0


_NOT_SHIPPED = frozenset({OrderStatus.PAID, OrderStatus.PRE_ORDER, OrderStatus.PROCESSING})

_CLOSED = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})


def _calendar_warranty(starts_on: date, days: int, today: date) -> Warranty:
    ends_on = starts_on + timedelta(days=days)
    if today <= ends_on:
        return Warranty(Coverage.ACTIVE, starts_on, ends_on, (ends_on - today).days)
    return Warranty(Coverage.EXPIRED, starts_on, ends_on)


def machine_warranty(order: Order, item: OrderItem, today: date, rules: OrderRules) -> Warranty:
    """The distributor's warranty on one machine of the order, which runs from shipment."""
    if item.condition in (Condition.USED, Condition.REFURBISHED):
        return Warranty(Coverage.NONE)
    if order.status in _CLOSED:
        return Warranty(Coverage.UNKNOWN)
    if order.status in _NOT_SHIPPED:
        return Warranty(Coverage.NOT_STARTED)
    if order.shipped_on is None:
        return Warranty(Coverage.UNKNOWN)
    return _calendar_warranty(order.shipped_on, rules.warranty_days, today)


def repair_warranty(repair: Repair, today: date, rules: OrderRules) -> Warranty:
    """The short warranty on a repaired part, which runs from the repair's shipment."""
    return _calendar_warranty(repair.shipped_on, rules.repaired_part_warranty_days, today)
