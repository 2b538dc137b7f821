"""Handoffs to sales reps, the customers' topics in the staff chat, relayed messages, staff
notes, the chats' recent transcript, and the figures `minerdesk stats` reads of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import Enum
from typing import Any

from domain.chats import ChatKey
from domain.handoffs import (
    ChatLine,
    Handoff,
    HandoffOpened,
    HandoffStats,
    HandoffStatus,
    HandoffUpdate,
    Said,
    StaffNote,
    fields_to_set,
)
from storage.sql.database import Reader, Repository, Row, Transaction
from storage.sql.times import (
    now_timestamp,
    optional_timestamp,
    parse_timestamp,
    period,
    utc_timestamp,
)

# A transcript line longer than this is cut (the context card only needs the gist).
CHAT_LINE_MAX_CHARS = 500
# Transcript lines kept per chat; older ones are dropped as new ones come.
CHAT_LINES_KEPT = 50

_HANDOFF_COLUMNS = (
    "id, channel, chat_id, status, reason, opened_at, order_number, claimed_by, "
    "claimed_by_name, first_staff_reply_at, last_customer_at, last_staff_at, reminded_at, "
    "closed_at, closed_by, rating, waiting_since, phone"
)


def _handoff_from_row(row: Row) -> Handoff:
    """A Handoff from a row selecting `_HANDOFF_COLUMNS`."""
    return Handoff(
        id=row[0],
        key=ChatKey(row[1], row[2]),
        status=HandoffStatus(row[3]),
        reason=row[4],
        opened_at=parse_timestamp(row[5]),
        order_number=row[6],
        claimed_by=row[7],
        claimed_by_name=row[8],
        first_staff_reply_at=optional_timestamp(row[9]),
        last_customer_at=optional_timestamp(row[10]),
        last_staff_at=optional_timestamp(row[11]),
        reminded_at=optional_timestamp(row[12]),
        closed_at=optional_timestamp(row[13]),
        closed_by=row[14],
        rating=row[15],
        waiting_since=optional_timestamp(row[16]),
        phone=row[17],
    )


def _column_value(value: Any) -> Any:
    """A HandoffUpdate value as stored: datetimes as `utc_timestamp`, enums by value."""
    if isinstance(value, datetime):
        return utc_timestamp(value)
    if isinstance(value, Enum):
        return value.value
    return value


async def write_opened(tx: Transaction, key: ChatKey, record: HandoffOpened) -> None:
    # The record names the customer (a staff turn may open one too); the partial unique
    # index handoffs_one_open makes a second open handoff for the same customer a no-op.
    opened_at = utc_timestamp(record.at)
    await tx.execute(
        """INSERT INTO handoffs (channel, chat_id, status, reason, order_number, opened_at,
             waiting_since, phone)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING""",
        (
            record.key.channel,
            record.key.chat_id,
            HandoffStatus.WAITING.value,
            record.reason,
            record.order_number,
            opened_at,
            # The customer waits for staff from the start.
            opened_at,
            record.phone,
        ),
    )


async def write_update(tx: Transaction, key: ChatKey, record: HandoffUpdate) -> None:
    """Set the fields `fields_to_set` allows; an unknown handoff id changes nothing.

    Raises ValueError for a name outside HANDOFF_FIELDS, writing nothing.
    """
    rows = await tx.fetch_locked(
        "SELECT first_staff_reply_at FROM handoffs WHERE id=?", (record.handoff_id,)
    )
    changes = fields_to_set(record, optional_timestamp(rows[0][0]) if rows else None)
    if not changes:
        return
    names = sorted(changes)
    # fields_to_set checked the names against HANDOFF_FIELDS; only values are parameters.
    assignments = ", ".join(f"{name}=?" for name in names)
    await tx.execute(
        f"UPDATE handoffs SET {assignments} WHERE id=?",  # noqa: S608
        (*(_column_value(changes[name]) for name in names), record.handoff_id),
    )


async def write_note(tx: Transaction, key: ChatKey, record: StaffNote) -> None:
    await tx.execute(
        "INSERT INTO staff_notes (handoff_id, author, text, at) VALUES (?, ?, ?, ?)",
        (record.handoff_id, record.author, record.text, utc_timestamp(record.at)),
    )


async def write_said(tx: Transaction, key: ChatKey, record: Said) -> None:
    """Add the line to the chat's transcript, which keeps its last CHAT_LINES_KEPT."""
    text = record.text
    if len(text) > CHAT_LINE_MAX_CHARS:
        text = text[: CHAT_LINE_MAX_CHARS - 1] + "…"
    await tx.execute(
        "INSERT INTO chat_lines (channel, chat_id, at, from_customer, text) VALUES (?, ?, ?, ?, ?)",
        (key.channel, key.chat_id, utc_timestamp(record.at), int(record.from_customer), text),
    )
    # Everything at or below the first id past the newest CHAT_LINES_KEPT goes.
    await tx.execute(
        """DELETE FROM chat_lines WHERE channel=? AND chat_id=? AND id <= (
             SELECT id FROM chat_lines WHERE channel=? AND chat_id=?
             ORDER BY id DESC LIMIT 1 OFFSET ?)""",
        (key.channel, key.chat_id, key.channel, key.chat_id, CHAT_LINES_KEPT),
    )


async def forget_before(tx: Transaction, cutoff: str) -> None:
    """Drop relays and transcript lines older than `cutoff` (a stored time)."""
    # Handoffs, their notes and the customers' topics stay: stats and reuse need them.
    await tx.execute("DELETE FROM staff_relays WHERE created_at < ?", (cutoff,))
    await tx.execute("DELETE FROM chat_lines WHERE at < ?", (cutoff,))


async def _handoffs(db: Reader, where: str, params: tuple[Any, ...] = ()) -> list[Handoff]:
    rows = await db.fetch_all(f"SELECT {_HANDOFF_COLUMNS} FROM handoffs {where}", params)  # noqa: S608
    return [_handoff_from_row(row) for row in rows]


async def _chats_that_wrote(db: Reader, bounds: tuple[str, str]) -> dict[str, int]:
    """How many customer chats wrote to the bot within `bounds` (see `period`), by channel."""
    rows = await db.fetch_all(
        "SELECT channel, COUNT(*) FROM (SELECT DISTINCT channel, chat_id FROM chat_lines "
        "WHERE from_customer=1 AND at >= ? AND at < ?) AS chats GROUP BY channel",
        bounds,
    )
    return {channel: int(count) for channel, count in rows}


def _figures(rows: list[Row], conversations: int) -> HandoffStats:
    """HandoffStats of handoff rows (opened_at, first_staff_reply_at, rating, ...)."""
    per_day: dict[str, int] = {}
    first_reply_seconds: list[float] = []
    for opened_at, first_reply_at, *_ in rows:
        # Stored as UTC 'YYYY-MM-DDTHH:MM:SS.mmmZ': the first ten characters are the day.
        day = opened_at[:10]
        per_day[day] = per_day.get(day, 0) + 1
        if first_reply_at is not None:
            waited = parse_timestamp(first_reply_at) - parse_timestamp(opened_at)
            first_reply_seconds.append(waited.total_seconds())
    return HandoffStats(
        handoffs=len(rows),
        per_day=sorted(per_day.items()),
        conversations=conversations,
        first_reply_seconds=first_reply_seconds,
        ratings=[row[2] for row in rows if row[2] is not None],
    )


class HandoffRepository(Repository):
    async def open_handoff(self, key: ChatKey) -> Handoff | None:
        """The customer's open handoff (status waiting or active), if any."""
        found = await _handoffs(
            self.database,
            # The condition of the index handoffs_one_open, spelled the same for SQLite to use it.
            "WHERE channel=? AND chat_id=? AND status != 'closed'",
            (key.channel, key.chat_id),
        )
        return found[0] if found else None

    async def handoff(self, handoff_id: int) -> Handoff | None:
        """The handoff with that id, open or closed, if any."""
        found = await _handoffs(self.database, "WHERE id=?", (handoff_id,))
        return found[0] if found else None

    async def open_handoffs(self) -> list[Handoff]:
        """Every open handoff, oldest first (for reminders)."""
        return await _handoffs(self.database, "WHERE status != 'closed' ORDER BY opened_at, id")

    async def set_topic(
        self, customer: ChatKey, staff: ChatKey, thread_id: str, replacing: str | None = None
    ) -> str:
        """Make `thread_id` the customer's topic in the staff chat if the customer has none
        there, or has `replacing` (a topic found deleted). The customer may write on another
        channel than the staff chat's. Returns the customer's topic afterwards: another
        writer's, when one got there first."""
        async with self.database.transaction() as tx:
            # The primary key (channel, chat_id, staff_channel, staff_chat_id) makes the race
            # a conflict, which waits for the other writer and keeps its topic.
            await tx.execute(
                """INSERT INTO staff_topics
                     (channel, chat_id, staff_channel, staff_chat_id, thread_id)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (channel, chat_id, staff_channel, staff_chat_id) DO UPDATE SET
                     thread_id=excluded.thread_id
                   WHERE staff_topics.thread_id = ?""",
                (
                    customer.channel,
                    customer.chat_id,
                    staff.channel,
                    staff.chat_id,
                    thread_id,
                    replacing,
                ),
            )
            row = await tx.fetch_one(
                "SELECT thread_id FROM staff_topics "
                "WHERE channel=? AND chat_id=? AND staff_channel=? AND staff_chat_id=?",
                (customer.channel, customer.chat_id, staff.channel, staff.chat_id),
            )
        assert row is not None
        return str(row[0])

    async def topic_of(self, customer: ChatKey, staff: ChatKey) -> str | None:
        """The thread id of the customer's topic in that staff chat, if one was made."""
        row = await self.database.fetch_one(
            "SELECT thread_id FROM staff_topics "
            "WHERE channel=? AND chat_id=? AND staff_channel=? AND staff_chat_id=?",
            (customer.channel, customer.chat_id, staff.channel, staff.chat_id),
        )
        return None if row is None else str(row[0])

    async def customer_of_topic(self, staff: ChatKey, thread_id: str) -> ChatKey | None:
        """Whose topic this is: the customer, on their own channel."""
        row = await self.database.fetch_one(
            "SELECT channel, chat_id FROM staff_topics "
            "WHERE staff_channel=? AND staff_chat_id=? AND thread_id=? "
            "ORDER BY rowid DESC LIMIT 1",
            (staff.channel, staff.chat_id, thread_id),
        )
        return None if row is None else ChatKey(row[0], row[1])

    async def remember_relay(self, staff: ChatKey, message_id: str, customer: ChatKey) -> None:
        """A message the bot posted in the staff chat on behalf of this customer (who may
        write on another channel than the staff chat's)."""
        await self.database.write(
            """INSERT INTO staff_relays
                 (channel, staff_chat_id, message_id, customer_channel, chat_id)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (channel, staff_chat_id, message_id) DO UPDATE SET
                 customer_channel=excluded.customer_channel, chat_id=excluded.chat_id,
                 created_at=?""",
            (
                staff.channel,
                staff.chat_id,
                message_id,
                customer.channel,
                customer.chat_id,
                now_timestamp(),
            ),
        )

    async def customer_of_relay(self, staff: ChatKey, message_id: str) -> ChatKey | None:
        """The customer a relayed staff-chat message speaks for, if it is remembered."""
        row = await self.database.fetch_one(
            "SELECT customer_channel, chat_id FROM staff_relays "
            "WHERE channel=? AND staff_chat_id=? AND message_id=?",
            (staff.channel, staff.chat_id, message_id),
        )
        return None if row is None else ChatKey(row[0], row[1])

    async def recent_lines(self, key: ChatKey, limit: int = 10) -> list[ChatLine]:
        """The chat's last `limit` transcript lines, oldest first."""
        rows = await self.database.fetch_all(
            "SELECT at, from_customer, text FROM chat_lines WHERE channel=? AND chat_id=? "
            "ORDER BY id DESC LIMIT ?",
            (key.channel, key.chat_id, limit),
        )
        return [
            ChatLine(parse_timestamp(at), bool(mine), text) for at, mine, text in reversed(rows)
        ]

    async def notes(self, customer: ChatKey, limit: int = 5) -> list[StaffNote]:
        """The newest staff notes on this customer's handoffs, oldest first."""
        rows = await self.database.fetch_all(
            """SELECT n.handoff_id, n.author, n.text, n.at FROM staff_notes n
               JOIN handoffs h ON h.id = n.handoff_id
               WHERE h.channel=? AND h.chat_id=?
               ORDER BY n.at DESC, n.id DESC LIMIT ?""",
            (customer.channel, customer.chat_id, limit),
        )
        return [
            StaffNote(handoff_id, author, text, parse_timestamp(at))
            for handoff_id, author, text, at in reversed(rows)
        ]

    async def handoff_stats(self, since: datetime, until: datetime | None = None) -> HandoffStats:
        """Figures for handoffs opened (and customer chats that wrote) at or after `since`
        and before `until` (tz-aware; None: up to now)."""
        bounds = period(since, until)
        rows = await self.database.fetch_all(
            "SELECT opened_at, first_staff_reply_at, rating, channel FROM handoffs "
            "WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
            bounds,
        )
        conversations = await _chats_that_wrote(self.database, bounds)
        channels = sorted({row[3] for row in rows} | set(conversations))
        by_channel = {
            channel: _figures(
                [row for row in rows if row[3] == channel], conversations.get(channel, 0)
            )
            for channel in channels
        }
        overall = _figures(rows, sum(conversations.values()))
        return replace(overall, by_channel=by_channel)
