"""The distributor's orders as the bot knows them, and the shop's rules for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class OrderStatus(StrEnum):
    PAID = "paid"
    # Paid (or deposit paid) for machines the manufacturer has not delivered yet.
    PRE_ORDER = "pre_order"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    IN_CUSTOMS = "in_customs"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


# Statuses in which the parcel is with a carrier, so tracking should keep moving.
ON_THE_WAY = frozenset({OrderStatus.SHIPPED, OrderStatus.IN_TRANSIT, OrderStatus.IN_CUSTOMS})


class Condition(StrEnum):
    NEW = "new"
    USED = "used"
    REFURBISHED = "refurbished"


@dataclass(frozen=True)
class Repair:
    """A part the service centre repaired and shipped back; it has its own short warranty."""

    part: str
    shipped_on: date
    serial: str | None = None
    ticket_id: str | None = None


@dataclass(frozen=True)
class OrderItem:
    brand: str
    model: str
    quantity: int = 1
    condition: Condition = Condition.NEW
    serials: tuple[str, ...] = ()
    repairs: tuple[Repair, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.brand} {self.model}"


@dataclass(frozen=True)
class StatusChange:
    status: OrderStatus
    at: datetime


@dataclass(frozen=True)
class Order:
    """One order. Dates are calendar dates in the company's time zone; `history` is oldest
    first and ends with the current status."""

    number: str
    email: str
    status: OrderStatus
    items: tuple[OrderItem, ...] = ()
    phone: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    # Delivered Duty Paid: the distributor clears customs, delivery takes longer.
    ddp: bool = False
    paid_on: date | None = None
    shipped_on: date | None = None
    delivered_on: date | None = None
    # For pre-orders: the date the manufacturer expects to ship.
    expected_on: date | None = None
    # The carrier's latest tracking event, when the shop knows it.
    tracking_updated_at: datetime | None = None
    history: tuple[StatusChange, ...] = ()

    def has_serial(self, serial: str) -> bool:
        wanted = serial.strip().upper()
        return any(s.upper() == wanted for item in self.items for s in item.serials)


def order_to_record(order: Order) -> dict[str, Any]:
    """The order as JSON-ready data: what the API returns, what the database keeps, and the
    shape `domain.order_feed.order_from_record` reads."""
    return {
        "number": order.number,
        "email": order.email,
        "phone": order.phone,
        "status": order.status.value,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "ddp": order.ddp,
        "paid_on": _iso_or_none(order.paid_on),
        "shipped_on": _iso_or_none(order.shipped_on),
        "delivered_on": _iso_or_none(order.delivered_on),
        "expected_on": _iso_or_none(order.expected_on),
        "tracking_updated_at": _iso_or_none(order.tracking_updated_at),
        "items": [
            {
                "brand": item.brand,
                "model": item.model,
                "quantity": item.quantity,
                "condition": item.condition.value,
                "serials": list(item.serials),
                "repairs": [
                    {
                        "part": repair.part,
                        "shipped_on": repair.shipped_on.isoformat(),
                        "serial": repair.serial,
                        "ticket_id": repair.ticket_id,
                    }
                    for repair in item.repairs
                ],
            }
            for item in order.items
        ],
        "history": [
            {"status": change.status.value, "at": change.at.isoformat()} for change in order.history
        ],
    }


def order_from_trusted_record(record: Mapping[str, Any]) -> Order:
    """The inverse of `order_to_record`, for data it wrote (the shop's data is validated on
    the way in, by `domain.order_feed`)."""
    tracking_updated_at = record.get("tracking_updated_at")
    return Order(
        number=record["number"],
        email=record["email"],
        status=OrderStatus(record["status"]),
        items=tuple(
            OrderItem(
                brand=item["brand"],
                model=item["model"],
                quantity=item["quantity"],
                condition=Condition(item["condition"]),
                serials=tuple(item["serials"]),
                repairs=tuple(
                    Repair(
                        part=repair["part"],
                        shipped_on=date.fromisoformat(repair["shipped_on"]),
                        serial=repair["serial"],
                        ticket_id=repair["ticket_id"],
                    )
                    for repair in item["repairs"]
                ),
            )
            for item in record["items"]
        ),
        phone=record.get("phone"),
        carrier=record.get("carrier"),
        tracking_number=record.get("tracking_number"),
        ddp=record.get("ddp", False),
        paid_on=_date_or_none(record.get("paid_on")),
        shipped_on=_date_or_none(record.get("shipped_on")),
        delivered_on=_date_or_none(record.get("delivered_on")),
        expected_on=_date_or_none(record.get("expected_on")),
        tracking_updated_at=(
            None if tracking_updated_at is None else datetime.fromisoformat(tracking_updated_at)
        ),
        history=tuple(
            StatusChange(OrderStatus(change["status"]), datetime.fromisoformat(change["at"]))
            for change in record.get("history", ())
        ),
    )


def _iso_or_none(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date_or_none(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


@dataclass(frozen=True)
class OrderRules:
    """The windows and warranty terms the distributor promises; one place to change them."""

    dispatch_business_days: tuple[int, int] = (3, 7)
    delivery_business_days: tuple[int, int] = (5, 10)
    ddp_delivery_business_days: int = 15
    warranty_days: int = 180
    repaired_part_warranty_days: int = 30
    stale_after_days: int = 7
    # Non-working days besides Saturday and Sunday.
    holidays: frozenset[date] = frozenset()
