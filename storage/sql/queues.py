"""The inbox (updates received, not yet processed) and the outbox (replies not yet sent),
and the claims that share them among workers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.chats import ChatKey
from storage.base import InboxUpdate, QueuedMessage
from storage.sql.database import Repository, Row, Transaction
from storage.sql.times import now_timestamp, utc_timestamp
from storage.workers import Claim

_TAKE_FROM_INBOX = "DELETE FROM inbox WHERE channel=? AND update_id=?"


async def take_from_inbox(tx: Transaction, channel: str, update_id: str) -> None:
    """The update is processed or ignored: it leaves the inbox."""
    await tx.execute(_TAKE_FROM_INBOX, (channel, update_id))


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


@dataclass(frozen=True)
class _Queue:
    """A table workers claim rows of: what they select, in which order, which rows wait."""

    table: str
    columns: str
    key: str
    order: str
    # Which of its rows wait to be handled, for a row named {row}.
    waiting: str


_INBOX = _Queue("inbox", "update_id, body, chat_id", "update_id", "rowid", "TRUE")
_OUTBOX = _Queue(
    "outbox", "id, chat_id, body, parts_sent", "id", "id", "{row}.failed_reason IS NULL"
)
_QUEUES = (_INBOX, _OUTBOX)


def _lease_end(lease_seconds: float) -> str:
    return utc_timestamp(datetime.now(UTC) + timedelta(seconds=lease_seconds))


async def _claim(
    tx: Transaction,
    queue: _Queue,
    channel: str,
    worker: str,
    lease_seconds: float,
    limit: int,
    only: Sequence[str | int] | None = None,
) -> list[Row]:
    """Claim rows of `queue` for `worker` (see WorkerStore.claim_outbox), of those keyed
    `only` if given; rows selecting `queue.columns`, in queue order."""
    now = now_timestamp()
    chosen, chosen_params = _only(queue, worker, only)
    # Claims of one queue run one at a time, so each sees the chats the last one took.
    await tx.serialize(f"claim:{queue.table}:{channel}")
    # Skipped rows are only ever locked by their holder's own writes, whose chat the
    # NOT EXISTS already leaves out (or, with its lease run out, by a late holder).
    rows = await tx.fetch_locked(
        f"""SELECT {queue.columns} FROM {queue.table} q
            WHERE channel=? AND {queue.waiting.format(row="q")}
              AND (claimed_by IS NULL OR lease_until < ?)
              AND NOT EXISTS (
                SELECT 1 FROM {queue.table} h
                WHERE h.channel = q.channel AND h.chat_id = q.chat_id
                  AND {queue.waiting.format(row="h")} AND h.claimed_by != ? AND h.lease_until >= ?)
              {chosen}
            ORDER BY {queue.order} LIMIT ?""",  # noqa: S608
        (channel, now, worker, now, *chosen_params, limit),
        skip_locked=True,
    )
    await tx.execute_many(
        f"UPDATE {queue.table} SET claimed_by=?, lease_until=? "  # noqa: S608
        f"WHERE channel=? AND {queue.key}=?",
        [(worker, _lease_end(lease_seconds), channel, row[0]) for row in rows],
    )
    return rows


async def claim_queued(
    tx: Transaction, queued: Sequence[QueuedMessage], claim: Claim
) -> list[QueuedMessage]:
    """Claim for `claim.worker` the replies just queued to its channels, as `claim_outbox`
    with `only` would, in the transaction that queued them: one round of writes less."""
    held: set[int] = set()
    for channel in sorted({message.key.channel for message in queued} & claim.channels):
        ids = [message.id for message in queued if message.key.channel == channel]
        rows = await _claim(tx, _OUTBOX, channel, claim.worker, claim.lease_seconds, len(ids), ids)
        held.update(row[0] for row in rows)
    return [replace(message, claimed=True) if message.id in held else message for message in queued]


def _only(queue: _Queue, worker: str, only: Sequence[str | int] | None) -> tuple[str, list[Any]]:
    """The claim's condition and parameters for rows keyed `only`: none of a chat with an
    earlier row waiting outside them that `worker` does not hold, for whoever takes that
    one must take these after it."""
    if only is None:
        return "", []
    keys = ", ".join("?" * len(only))
    condition = f"""AND q.{queue.key} IN ({keys})
              AND NOT EXISTS (
                SELECT 1 FROM {queue.table} e
                WHERE e.channel = q.channel AND e.chat_id = q.chat_id
                  AND {queue.waiting.format(row="e")} AND e.{queue.order} < q.{queue.order}
                  AND e.{queue.key} NOT IN ({keys})
                  AND (e.claimed_by IS NULL OR e.claimed_by != ?))"""  # noqa: S608
    return condition, [*only, *only, worker]


async def _keep(tx: Transaction, updates: Sequence[InboxUpdate]) -> None:
    await tx.execute_many(
        "INSERT INTO inbox (channel, update_id, body, chat_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(u.channel, u.update_id, json.dumps(u.body), u.chat_id) for u in updates],
    )


class InboxRepository(Repository):
    async def receive(self, updates: Sequence[InboxUpdate]) -> None:
        async with self.database.transaction() as tx:
            await _keep(tx, updates)

    async def inbox(self, channel: str) -> list[InboxUpdate]:
        rows = await self.database.fetch_all(
            # A new row's rowid is above every row present: arrival order.
            "SELECT update_id, body, chat_id FROM inbox WHERE channel=? ORDER BY rowid",
            (channel,),
        )
        return [_inbox_update(channel, row) for row in rows]

    async def discard(self, channel: str, update_id: str) -> None:
        await self.database.write(_TAKE_FROM_INBOX, (channel, update_id))

    async def claim_inbox(
        self,
        channel: str,
        worker: str,
        lease_seconds: float,
        limit: int = 100,
    ) -> list[InboxUpdate]:
        async with self.database.transaction() as tx:
            rows = await _claim(tx, _INBOX, channel, worker, lease_seconds, limit)
        return [_inbox_update(channel, row) for row in rows]

    async def receive_claimed(
        self, channel: str, updates: Sequence[InboxUpdate], worker: str, lease_seconds: float
    ) -> list[InboxUpdate]:
        if not updates:
            return []
        given = {update.update_id: update for update in updates}
        async with self.database.transaction() as tx:
            await _keep(tx, updates)
            rows = await _claim(tx, _INBOX, channel, worker, lease_seconds, len(given), [*given])
        return [given[row[0]] for row in rows]


def _inbox_update(channel: str, row: Row) -> InboxUpdate:
    update_id, body, chat_id = row
    return InboxUpdate(channel, update_id, json.loads(body), chat_id)


def _queued(channel: str, row: Row) -> QueuedMessage:
    message_id, chat_id, body, parts_sent = row
    return QueuedMessage(message_id, ChatKey(channel, chat_id), json.loads(body), parts_sent)


class OutboxRepository(Repository):
    async def outbox(self, channel: str) -> list[QueuedMessage]:
        rows = await self.database.fetch_all(
            "SELECT id, chat_id, body, parts_sent FROM outbox "
            "WHERE channel=? AND failed_reason IS NULL ORDER BY id",
            (channel,),
        )
        return [_queued(channel, row) for row in rows]

    async def claim_outbox(
        self,
        channel: str,
        worker: str,
        lease_seconds: float,
        limit: int = 100,
        only: Sequence[int] | None = None,
    ) -> list[QueuedMessage]:
        if only is not None and not only:
            return []
        async with self.database.transaction() as tx:
            rows = await _claim(tx, _OUTBOX, channel, worker, lease_seconds, limit, only)
        return [_queued(channel, row) for row in rows]

    async def mark_progress(self, message_id: int, parts_sent: int) -> None:
        await self.database.write(
            "UPDATE outbox SET parts_sent=? WHERE id=?", (parts_sent, message_id)
        )

    async def mark_delivered(self, message_id: int) -> None:
        await self.database.write("DELETE FROM outbox WHERE id=?", (message_id,))

    async def mark_failed(self, message_id: int, reason: str) -> None:
        await self.database.write(
            "UPDATE outbox SET failed_reason=? WHERE id=?", (reason, message_id)
        )


class ClaimRepository(Repository):
    """The claims a worker holds on both queues."""

    async def renew_claims(self, worker: str, lease_seconds: float) -> None:
        async with self.database.transaction() as tx:
            for queue in _QUEUES:
                await tx.execute(
                    f"UPDATE {queue.table} SET lease_until=? WHERE claimed_by=?",  # noqa: S608
                    (_lease_end(lease_seconds), worker),
                )

    async def release_claims(self, worker: str) -> None:
        async with self.database.transaction() as tx:
            for queue in _QUEUES:
                await tx.execute(
                    f"UPDATE {queue.table} SET claimed_by=NULL, lease_until=NULL "  # noqa: S608
                    "WHERE claimed_by=?",
                    (worker,),
                )
