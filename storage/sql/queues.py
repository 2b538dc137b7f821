"""The inbox (updates received, not yet processed) and the outbox (replies not yet sent)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.chats import ChatKey
from storage.base import InboxUpdate, QueuedMessage
from storage.sql.database import Repository, Transaction


async def take_from_inbox(tx: Transaction, channel: str, update_id: str) -> None:
    """The update is processed or ignored: it leaves the inbox."""
    await tx.execute("DELETE FROM inbox WHERE channel=? AND update_id=?", (channel, update_id))


async def queue_reply(tx: Transaction, key: ChatKey, body: dict[str, Any]) -> QueuedMessage:
    """Put a reply for `key` in the outbox, to be sent after the transaction commits."""
    row = await tx.fetch_one(
        "INSERT INTO outbox (channel, chat_id, body) VALUES (?, ?, ?) RETURNING id",
        (key.channel, key.chat_id, json.dumps(body, ensure_ascii=False)),
    )
    assert row is not None
    return QueuedMessage(row[0], key, body)


async def forget_failed_before(tx: Transaction, cutoff: str) -> None:
    """Drop replies given up on before `cutoff` (a stored time)."""
    await tx.execute(
        "DELETE FROM outbox WHERE failed_reason IS NOT NULL AND created_at < ?", (cutoff,)
    )


class InboxRepository(Repository):
    async def receive(self, updates: Sequence[InboxUpdate]) -> None:
        async with self.database.transaction() as tx:
            await tx.execute_many(
                "INSERT INTO inbox (channel, update_id, body) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(u.channel, u.update_id, json.dumps(u.body)) for u in updates],
            )

    async def inbox(self, channel: str) -> list[InboxUpdate]:
        rows = await self.database.fetch_all(
            # A new row's rowid is above every row present: arrival order.
            "SELECT update_id, body FROM inbox WHERE channel=? ORDER BY rowid",
            (channel,),
        )
        return [InboxUpdate(channel, update_id, json.loads(body)) for update_id, body in rows]

    async def discard(self, channel: str, update_id: str) -> None:
        async with self.database.transaction() as tx:
            await take_from_inbox(tx, channel, update_id)


class OutboxRepository(Repository):
    async def outbox(self, channel: str) -> list[QueuedMessage]:
        rows = await self.database.fetch_all(
            "SELECT id, chat_id, body, parts_sent FROM outbox "
            "WHERE channel=? AND failed_reason IS NULL ORDER BY id",
            (channel,),
        )
        return [
            QueuedMessage(message_id, ChatKey(channel, chat_id), json.loads(body), parts_sent)
            for message_id, chat_id, body, parts_sent in rows
        ]

    async def mark_progress(self, message_id: int, parts_sent: int) -> None:
        async with self.database.transaction() as tx:
            await tx.execute("UPDATE outbox SET parts_sent=? WHERE id=?", (parts_sent, message_id))

    async def mark_delivered(self, message_id: int) -> None:
        async with self.database.transaction() as tx:
            await tx.execute("DELETE FROM outbox WHERE id=?", (message_id,))

    async def mark_failed(self, message_id: int, reason: str) -> None:
        async with self.database.transaction() as tx:
            await tx.execute("UPDATE outbox SET failed_reason=? WHERE id=?", (reason, message_id))
