"""The distributor's orders as the bot knows them, and what storage must do with them.

Orders come from the shop (`minerdesk orders import`, the orders HTTP API); the bot only
reads them, links them to the chats that proved they own them, and tells those chats when
an order's status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # storage.base gathers every store, this one included.
    from storage.base import ChatKey, QueuedMessage


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


@dataclass(frozen=True)
class SaveResult:
    """What saving an order changed: `created`, or the status it had before (None if new)."""

    created: bool
    changed: bool
    previous_status: OrderStatus | None


@dataclass(frozen=True)
class OrderNotice:
    """A status change waiting to be told to one chat linked to the order."""

    id: int
    key: ChatKey
    number: str
    status: OrderStatus
    # The chat's language, for writing the notice.
    language: str = "en"


class OrderStore(Protocol):
    async def save_order(self, order: Order, at: datetime) -> SaveResult:
        """Insert or replace the order by number. When the status differs from the stored
        one (or the order is new and has no history), append StatusChange(status, at) to
        its history; when the status changed on an existing order, queue an OrderNotice for
        every chat linked to it, in the same transaction. Saving an identical order changes
        nothing (`changed` False)."""
        ...

    async def order(self, number: str) -> Order | None:
        """The order with this number (exact match, case-insensitive), or None."""
        ...

    async def orders_with_serial(self, serial: str) -> list[Order]:
        """Orders with an item carrying this serial number (case-insensitive)."""
        ...

    async def linked_orders(self, key: ChatKey) -> list[Order]:
        """Orders this chat proved it owns, most recently linked first."""
        ...

    async def order_notices(self, channel: str) -> list[OrderNotice]:
        """Status changes not yet told to this channel's chats, oldest first."""
        ...

    async def deliver_notice(self, notice: OrderNotice, reply: dict[str, Any]) -> QueuedMessage:
        """Replace the notice by this reply in the outbox, in one transaction."""
        ...

    async def drop_notice(self, notice: OrderNotice) -> None:
        """Forget a notice a later status change made pointless."""
        ...

    async def failed_checks_since(self, key: ChatKey, since: datetime) -> Sequence[datetime]:
        """When this chat failed an ownership check since `since`, oldest first."""
        ...


def order_to_record(order: Order) -> dict[str, Any]:
    """The order as JSON-ready data: what the API returns, what the database keeps, and the
    shape `handlers.order_feed.order_from_record` reads."""
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
    the way in, by `handlers.order_feed`)."""
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
