"""Sent messages and the statuses the messenger reports of them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from domain.chats import ChatKey
from domain.sent import SentMessage, SentStatus, supersedes
from storage.base import QueuedMessage
from storage.sql.database import Repository, Row, Transaction
from storage.sql.times import now_timestamp, optional_timestamp, parse_timestamp, utc_timestamp

_COLUMNS = (
    "channel, chat_id, message_id, outbox_id, part, body, sent_at, status, status_at, "
    "error_code, error"
)


async def forget_sent_before(tx: Transaction, cutoff: str) -> None:
    """Drop records of messages sent before `cutoff` (a stored time)."""
    await tx.execute("DELETE FROM sent_messages WHERE sent_at < ?", (cutoff,))


def _sent(row: Row) -> SentMessage:
    channel, chat_id, message_id, outbox_id, part, body, sent_at, status, status_at = row[:9]
    error_code, error = row[9:]
    return SentMessage(
        message_id,
        ChatKey(channel, chat_id),
        outbox_id,
        part,
        None if body is None else json.loads(body),
        parse_timestamp(sent_at),
        SentStatus(status),
        optional_timestamp(status_at),
        error_code,
        error,
    )


class SentRepository(Repository):
    async def record_sent(self, message: QueuedMessage, part: int, message_id: str) -> SentMessage:
        async with self.database.transaction() as tx:
            # A status may have come first (Meta can post it before answering the call):
            # it stays, and this fills in the reply it belongs to.
            row = await tx.fetch_one(
                f"""INSERT INTO sent_messages ({_COLUMNS})
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)
                    ON CONFLICT (channel, message_id) DO UPDATE SET
                      outbox_id=excluded.outbox_id, part=excluded.part, body=excluded.body
                    RETURNING {_COLUMNS}""",  # noqa: S608
                (
                    message.key.channel,
                    message.key.chat_id,
                    message_id,
                    message.id,
                    part,
                    json.dumps(message.body, ensure_ascii=False),
                    now_timestamp(),
                    SentStatus.SENT.value,
                ),
            )
        assert row is not None
        return _sent(row)

    async def record_status(
        self,
        key: ChatKey,
        message_id: str,
        status: SentStatus,
        at: datetime,
        error_code: int | None = None,
        error: str | None = None,
    ) -> SentMessage | None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO sent_messages (channel, chat_id, message_id, sent_at, status) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, message_id) DO NOTHING",
                (key.channel, key.chat_id, message_id, now_timestamp(), SentStatus.SENT.value),
            )
            rows = await tx.fetch_locked(
                f"SELECT {_COLUMNS} FROM sent_messages WHERE channel=? AND message_id=?",  # noqa: S608
                (key.channel, message_id),
            )
            kept = _sent(rows[0])
            if not supersedes(status, kept.status):
                return None
            await tx.execute(
                "UPDATE sent_messages SET status=?, status_at=?, error_code=?, error=? "
                "WHERE channel=? AND message_id=?",
                (status.value, utc_timestamp(at), error_code, error, key.channel, message_id),
            )
        return replace(kept, status=status, status_at=at, error_code=error_code, error=error)

    async def sent_messages(self, key: ChatKey) -> list[SentMessage]:
        rows = await self.database.fetch_all(
            f"SELECT {_COLUMNS} FROM sent_messages WHERE channel=? AND chat_id=? "  # noqa: S608
            "ORDER BY sent_at, message_id",
            (key.channel, key.chat_id),
        )
        return [_sent(row) for row in rows]
