"""The distributor's orders as the bot knows them, and what storage must do with them.

Orders come from the shop (`minerdesk orders import`, the orders HTTP API); the bot only
reads them, links them to the chats that proved they own them, and tells those chats when
an order's status changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from domain.chats import ChatKey
from domain.orders import (
    Order,
    OrderStatus,
)

if TYPE_CHECKING:
    # storage.base gathers every store, this one included.
    from storage.base import QueuedMessage


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

    async def failed_checks_since(
        self, since: datetime, key: ChatKey | None = None, lookup: str | None = None
    ) -> Sequence[datetime]:
        """When ownership checks failed since `since`, oldest first: this chat's, those of
        this order or serial number (any case, from any chat), or all of them."""
        ...
