"""Order status notices: from a saved change to a delivered message, once, in the chat's
language, and only for the chats linked to the order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.delivery import Delivery
from bot.notifier import OrderNotifier
from domain.chats import ChatKey, ConversationState
from domain.orders import Order, OrderStatus
from domain.ownership import OrderLinked
from handlers.messages import Reply
from storage.sqlite import SqliteStorage
from tests.factories import order
from tests.test_delivery import ScriptedSender

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


class SignallingSender(ScriptedSender):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def send(self, key: ChatKey, part: Any) -> None:
        await super().send(key, part)
        self.arrived.set()


def write(order: Order, language: str) -> Reply:
    return Reply(f"{order.number} is {order.status} ({language})")


async def link(storage: SqliteStorage, chat: str, number: str, language: str = "en") -> None:
    state = ConversationState(language=language)
    await storage.save(ChatKey("test", chat), state, None, records=[OrderLinked(number)])


def notifier(storage: SqliteStorage, sender: ScriptedSender) -> OrderNotifier:
    delivery = Delivery(storage, "test", sender)
    return OrderNotifier(storage, "test", delivery, write, asyncio.Event(), poll_seconds=0.05)


async def test_a_status_change_reaches_each_linked_chat_once(storage: SqliteStorage) -> None:
    await storage.save_order(order("A-1"), NOW)
    await storage.save_order(order("B-2"), NOW)
    await link(storage, "1", "A-1")
    await link(storage, "2", "A-1", language="ru")
    await link(storage, "3", "B-2")
    await storage.save_order(order("A-1", status=OrderStatus.SHIPPED), NOW)
    sender = ScriptedSender()
    sending = notifier(storage, sender)
    assert await sending.send_waiting() == 2
    await sending.delivery.join()
    assert sorted(sender.sent) == [("1", "A-1 is shipped (en)"), ("2", "A-1 is shipped (ru)")]
    assert await sending.send_waiting() == 0
    assert await storage.outbox("test") == []


async def test_a_superseded_change_is_not_told(storage: SqliteStorage) -> None:
    await storage.save_order(order("A-1"), NOW)
    await link(storage, "1", "A-1")
    await storage.save_order(order("A-1", status=OrderStatus.SHIPPED), NOW)
    await storage.save_order(order("A-1", status=OrderStatus.IN_TRANSIT), NOW)
    sender = ScriptedSender()
    sending = notifier(storage, sender)
    assert await sending.send_waiting() == 1
    await sending.delivery.join()
    assert sender.sent == [("1", "A-1 is in_transit (en)")]


async def test_the_running_notifier_picks_up_changes_saved_elsewhere(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    await storage.save_order(order("A-1"), NOW)
    await link(storage, "1", "A-1")
    sender = SignallingSender()
    running = asyncio.create_task(notifier(storage, sender).run())
    try:
        # Another process (an import) writes to the same file.
        async with SqliteStorage(tmp_path / "bot.db") as elsewhere:
            await elsewhere.save_order(order("A-1", status=OrderStatus.DELIVERED), NOW)
        await asyncio.wait_for(sender.arrived.wait(), 5)
    finally:
        running.cancel()
    assert sender.sent == [("1", "A-1 is delivered (en)")]
