"""What the conversations need from storage, as small interfaces any backend can implement."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from domain.chats import ChatKey, ConversationState
from domain.faq_log import FaqStats, Feedback, LoggedMiss, Miss, QuestionAsked
from domain.handoffs import DigestSent, HandoffOpened, HandoffUpdate, Said, StaffNote
from domain.ownership import FailedOwnershipCheck, OrderLinked
from domain.tickets import TicketRecord
from storage.handoffs import HandoffStore
from storage.orders import OrderStore
from storage.sent import SentStore
from storage.tickets import TicketStore
from storage.workers import Claim, WorkerStore

# What a turn of conversation asks storage to keep, besides the state itself.
Record = (
    QuestionAsked
    | Feedback
    | Miss
    | DigestSent
    | OrderLinked
    | FailedOwnershipCheck
    | HandoffOpened
    | HandoffUpdate
    | StaffNote
    | Said
    | TicketRecord
)


@dataclass(frozen=True)
class QueuedMessage:
    """A reply waiting in the outbox; `body` is the serialised reply, `parts_sent` its progress."""

    id: int
    key: ChatKey
    body: dict[str, Any]
    parts_sent: int = 0
    # Claimed for the worker whose turn queued it, in the turn's transaction (`Claim`).
    claimed: bool = False


@dataclass(frozen=True)
class InboxUpdate:
    """A channel update stored on arrival, before the channel is told it was received."""

    channel: str
    update_id: str
    body: dict[str, Any]
    # The chat it belongs to, when the channel can tell: workers keep each chat's order.
    chat_id: str | None = None


class AlreadyProcessed(Exception):
    """The update was processed meanwhile (by another process): the turn saved nothing."""


class DatabaseMissing(FileNotFoundError):
    """No database where one must already be; nothing was created."""


class StorageUnavailable(ConnectionError):
    """The database server could not be reached or refused the login."""


class ConversationStore(Protocol):
    def chat_lock(self, key: ChatKey) -> AbstractAsyncContextManager[None]:
        """Held while a turn of the chat runs: another holder, in this process or another
        one on the same database, waits until it is let go."""
        ...

    async def load(self, key: ChatKey) -> ConversationState:
        """The chat's saved state, or a fresh one."""
        ...

    async def is_processed(self, key: ChatKey, update_id: str) -> bool:
        """Whether this channel update was already handled (re-delivery)."""
        ...

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
        """Store the turn atomically: state, records, replies queued in the outbox for the
        chat each is addressed to, and the update (with `also_processed`, the other updates
        merged into it) marked processed and so removed from the inbox. Returns the queued
        replies. `inbound_at` (tz-aware): when the customer wrote the update, kept as the
        chat's `last_inbound` unless a later one is kept already. With `claim`, the replies
        to its channels are claimed for its worker as `WorkerStore.claim_outbox(only=their
        ids)` would, and come back `claimed`.

        Raises AlreadyProcessed, saving nothing, when `update_id` was marked processed
        before (another process handled it): an update is processed exactly once.
        """
        ...

    async def last_inbound(self, key: ChatKey) -> datetime | None:
        """When the customer of the chat last wrote (the latest `inbound_at` saved), or None
        if never: what WhatsApp's 24-hour window runs from."""
        ...


class InboxStore(Protocol):
    async def receive(self, updates: Sequence[InboxUpdate]) -> None:
        """Keep updates until they are processed; an update already kept is not kept twice."""
        ...

    async def inbox(self, channel: str) -> list[InboxUpdate]:
        """Updates received but not yet processed, oldest first."""
        ...

    async def discard(self, channel: str, update_id: str) -> None:
        """Drop an update the channel decided to ignore."""
        ...


class OutboxStore(Protocol):
    async def outbox(self, channel: str) -> list[QueuedMessage]:
        """Replies not yet delivered, in the order they were queued."""
        ...

    async def mark_progress(self, message_id: int, parts_sent: int) -> None:
        """Remember how many parts of a long reply were sent, so a restart sends the rest."""
        ...

    async def mark_delivered(self, message_id: int) -> None: ...

    async def mark_failed(self, message_id: int, reason: str) -> None:
        """Give up on a reply; it stays on record with the reason."""
        ...


class FeedbackStore(Protocol):
    async def feedback_counts(self) -> dict[str, tuple[int, int]]:
        """Entry id -> (helpful, not helpful) votes."""
        ...

    async def misses(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[LoggedMiss]:
        """Misses kept at or after `since` and before `until` (tz-aware; None: no bound),
        oldest first."""
        ...

    async def faq_stats(
        self, since: datetime, until: datetime | None = None, top: int = 10
    ) -> FaqStats:
        """The FAQ's figures for questions, votes and misses at or after `since` and before
        `until` (tz-aware; None: up to now), with the `top` answered entries and missed
        questions."""
        ...


class DigestStore(Protocol):
    async def last_digest_day(self) -> date | None:
        """The newest day whose daily digest went to the staff chat, if any did."""
        ...


class Storage(
    ConversationStore,
    InboxStore,
    OutboxStore,
    FeedbackStore,
    DigestStore,
    OrderStore,
    HandoffStore,
    TicketStore,
    WorkerStore,
    SentStore,
    Protocol,
):
    """Everything the bot stores; one implementation per backend."""

    async def prune(self, older_than_days: float) -> None:
        """Forget processed-update marks, failed replies and records of sent messages older
        than that."""
        ...

    async def close(self) -> None: ...
