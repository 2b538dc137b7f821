"""Sent messages and the statuses the messenger reports of them."""

from __future__ import annotations

import json
from datetime import datetime

from domain.chats import ChatKey
from domain.sent import SentMessage, SentStatus
from storage.base import QueuedMessage
from storage.sql.database import Repository, Row, Transaction
from storage.sql.times import now_timestamp, optional_timestamp, parse_timestamp, utc_timestamp

_COLUMNS = (
    "channel, chat_id, message_id, outbox_id, part, body, sent_at, status, status_at, "
    "error_code, error"
)


def _rank(status: str) -> str:
    """SQL for the place of a stored `status` in SentStatus's order (a later one wins)."""
    places = " ".join(f"WHEN '{s.value}' THEN {i}" for i, s in enumerate(SentStatus))
    return f"CASE {status} {places} END"


# Statuses may arrive out of order (a `read` before its `delivered`): a later one never
# goes back, and the row comes back only when the status reported was kept.
_RECORD_STATUS = f"""INSERT INTO sent_messages (channel, chat_id, message_id, sent_at, status,
      status_at, error_code, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (channel, message_id) DO UPDATE SET status=excluded.status,
      status_at=excluded.status_at, error_code=excluded.error_code, error=excluded.error
    WHERE {_rank("excluded.status")} > {_rank("sent_messages.status")}
    RETURNING {_COLUMNS}"""  # noqa: S608


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
        # A status may have come first (Meta can post it before answering the call):
        # it stays, and this fills in the reply it belongs to.
        row = await self.database.write_returning(
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
        # One statement, so a status costs one write. `sent`, where every message starts,
        # keeps no time or error of its own.
        kept = status is not SentStatus.SENT
        row = await self.database.write_returning(
            _RECORD_STATUS,
            (
                key.channel,
                key.chat_id,
                message_id,
                now_timestamp(),
                status.value,
                utc_timestamp(at) if kept else None,
                error_code if kept else None,
                error if kept else None,
            ),
        )
        # A `sent` reported never changes what is kept (nothing comes before it).
        return None if row is None or status is SentStatus.SENT else _sent(row)

    async def sent_messages(self, key: ChatKey) -> list[SentMessage]:
        rows = await self.database.fetch_all(
            f"SELECT {_COLUMNS} FROM sent_messages WHERE channel=? AND chat_id=? "  # noqa: S608
            "ORDER BY sent_at, message_id",
            (key.channel, key.chat_id),
        )
        return [_sent(row) for row in rows]
