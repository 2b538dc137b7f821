"""Conversation state and processed updates, and the turn's atomic save that also keeps its
records and queues its replies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.chats import ChatKey, ConversationState
from domain.faq_log import Feedback, Miss, QuestionAsked
from domain.handoffs import DigestSent, HandoffOpened, HandoffUpdate, Said, StaffNote
from domain.ownership import FailedOwnershipCheck, OrderLinked
from domain.tickets import TicketAnswered, TicketMediaSet, TicketOpened, TicketStatusSet
from storage.base import AlreadyProcessed, QueuedMessage, Record
from storage.sql import faq_log, handoffs, orders, tickets
from storage.sql.database import Repository, Transaction
from storage.sql.queues import claim_queued, queue_reply, take_from_inbox
from storage.sql.times import now_timestamp, optional_timestamp, utc_timestamp
from storage.workers import Claim

# Stores one record of a turn, for the turn's chat, inside the turn's transaction.
RecordWriter = Callable[[Transaction, ChatKey, Any], Awaitable[None]]

# Every type in `storage.base.Record`, and the function that stores it.
WRITERS: Mapping[type, RecordWriter] = {
    QuestionAsked: faq_log.write_question,
    Feedback: faq_log.write_feedback,
    Miss: faq_log.write_miss,
    DigestSent: faq_log.write_digest_sent,
    OrderLinked: orders.write_link,
    FailedOwnershipCheck: orders.write_failed_check,
    HandoffOpened: handoffs.write_opened,
    HandoffUpdate: handoffs.write_update,
    StaffNote: handoffs.write_note,
    Said: handoffs.write_said,
    TicketOpened: tickets.write_opened,
    TicketAnswered: tickets.write_answer,
    TicketMediaSet: tickets.write_media,
    TicketStatusSet: tickets.write_status,
}


async def _write_state(
    tx: Transaction, key: ChatKey, state: ConversationState, inbound_at: datetime | None
) -> None:
    """Keep the chat's state, and `inbound_at` (when the customer wrote, if the turn is a
    customer's message) as its last inbound: a message Meta delivers late never moves it
    back."""
    await tx.execute(
        """INSERT INTO conversations (channel, chat_id, flow, step, data, language,
             language_chosen, last_inbound_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (channel, chat_id) DO UPDATE SET flow=excluded.flow,
             step=excluded.step, data=excluded.data, language=excluded.language,
             language_chosen=excluded.language_chosen, updated_at=?,
             last_inbound_at=CASE
               WHEN conversations.last_inbound_at IS NULL
                 OR conversations.last_inbound_at < excluded.last_inbound_at
               THEN excluded.last_inbound_at ELSE conversations.last_inbound_at END""",
        (
            key.channel,
            key.chat_id,
            state.flow,
            state.step,
            json.dumps(state.data),
            state.language,
            int(state.language_chosen),
            None if inbound_at is None else utc_timestamp(inbound_at),
            now_timestamp(),
        ),
    )


async def _mark_processed(tx: Transaction, key: ChatKey, update_id: str) -> bool:
    """The update will not be handled again, and leaves the inbox; False when it was
    already marked (a concurrent insert waits for the other transaction, then sees it)."""
    marked = await tx.fetch_one(
        "INSERT INTO processed_updates (channel, chat_id, update_id) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING update_id",
        (key.channel, key.chat_id, update_id),
    )
    await take_from_inbox(tx, key.channel, update_id)
    return marked is not None


async def forget_processed_before(tx: Transaction, cutoff: str) -> None:
    """Drop processed-update marks older than `cutoff` (a stored time)."""
    await tx.execute("DELETE FROM processed_updates WHERE processed_at < ?", (cutoff,))


class ConversationRepository(Repository):
    async def load(self, key: ChatKey) -> ConversationState:
        row = await self.database.fetch_one(
            "SELECT flow, step, data, language, language_chosen FROM conversations "
            "WHERE channel=? AND chat_id=?",
            (key.channel, key.chat_id),
        )
        if row is None:
            return ConversationState()
        flow, step, data, language, chosen = row
        return ConversationState(flow, step, json.loads(data), language, bool(chosen))

    async def last_inbound(self, key: ChatKey) -> datetime | None:
        row = await self.database.fetch_one(
            "SELECT last_inbound_at FROM conversations WHERE channel=? AND chat_id=?",
            (key.channel, key.chat_id),
        )
        return None if row is None else optional_timestamp(row[0])

    async def is_processed(self, key: ChatKey, update_id: str) -> bool:
        row = await self.database.fetch_one(
            "SELECT 1 FROM processed_updates WHERE channel=? AND update_id=?",
            (key.channel, update_id),
        )
        return row is not None

    async def save(
        self,
        key: ChatKey,
        state: ConversationState,
        update_id: str | None,
        records: Sequence[Record] = (),
        replies: Sequence[tuple[ChatKey, dict[str, Any]]] = (),
        also_processed: Sequence[str] = (),
        inbound_at: datetime | None = None,
        claim: Claim | None = None,
    ) -> list[QueuedMessage]:
        async with self.database.transaction() as tx:
            # First, so a duplicate turn stops before it writes anything.
            if update_id is not None and not await _mark_processed(tx, key, update_id):
                raise AlreadyProcessed(f"update {update_id} of {key.channel}")
            for merged_id in also_processed:
                await _mark_processed(tx, key, merged_id)
            await _write_state(tx, key, state, inbound_at)
            for record in records:
                await WRITERS[type(record)](tx, key, record)
            queued = [await queue_reply(tx, destination, body) for destination, body in replies]
            return queued if claim is None else await claim_queued(tx, queued, claim)
