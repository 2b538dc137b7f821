"""Telling chats, unprompted, that their order's status changed.

Saving an order with a new status queues a notice per linked chat in the same
transaction (see `OrderStore.save_order`), whoever saved it: the HTTP API in this
process or `minerdesk orders import` in another. The notifier of each running channel
turns its notices into outbox messages and hands them to delivery, so a notice survives
a restart and is sent once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from bot.delivery import Delivery
from domain.orders import Order
from handlers.messages import Reply
from storage.base import Storage

logger = logging.getLogger(__name__)

# How often notices written by another process are looked for; this process's own
# order changes wake the notifier at once.
POLL_SECONDS = 2.0

WriteNotice = Callable[[Order, str], Reply]


class OrderNotifier:
    def __init__(
        self,
        storage: Storage,
        channel: str,
        delivery: Delivery,
        write: WriteNotice,
        wake: asyncio.Event,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.storage = storage
        self.channel = channel
        self.delivery = delivery
        self.write = write
        self.wake = wake
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        """Send notices until cancelled."""
        while True:
            self.wake.clear()
            try:
                await self.send_waiting()
            except Exception:
                # A broken notice must not stop the others, nor the channel.
                logger.exception("notifier.failed channel=%s", self.channel)
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_seconds)

    async def send_waiting(self) -> int:
        """Queue every waiting notice of this channel; returns how many were queued."""
        sent = 0
        # Many chats can be linked to one order: read each order once per pass.
        orders: dict[str, Order | None] = {}
        for notice in await self.storage.order_notices(self.channel):
            if notice.number not in orders:
                orders[notice.number] = await self.storage.order(notice.number)
            order = orders[notice.number]
            if order is None or order.status != notice.status:
                # Superseded by a later change, which has its own notice.
                await self.storage.drop_notice(notice)
                continue
            reply = self.write(order, notice.language)
            try:
                queued = await self.storage.deliver_notice(notice, reply.to_json())
            except LookupError:
                continue
            logger.info(
                "notifier.queued channel=%s chat=%s order=%s status=%s",
                self.channel,
                # A WhatsApp customer's chat is their phone number: masked as delivery logs it.
                self.delivery.shown(notice.key),
                order.number,
                order.status,
            )
            self.delivery.enqueue(queued)
            sent += 1
        return sent
