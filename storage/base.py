"""What the conversations need from storage, as small interfaces any backend can implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from storage.handoffs import HandoffOpened, HandoffStore, HandoffUpdate, Said, StaffNote
from storage.orders import OrderStore
from storage.tickets import TicketRecord, TicketStore


@dataclass(frozen=True)
class ChatKey:
    """A conversation is identified by its channel and the chat's id on that channel."""

    channel: str
    chat_id: str


@dataclass
class ConversationState:
    """Where a chat is: the flow it is in, the step the bot waits on, and what it collected."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    language: str = "en"
    # Set by /language: the messenger's language code no longer overrides `language`.
    language_chosen: bool = False

    def reset(self) -> None:
        """Leave the current flow, forgetting what it collected."""
        self.flow, self.step, self.data = None, None, {}


@dataclass(frozen=True)
class QuestionAsked:
    """A question the FAQ matcher saw and what it decided: the log `minerdesk stats` and
    `minerdesk faq gaps` read.

    `question` has personal data masked; `entry_id` is the best candidate whatever the
    decision ("answer", "suggest" or "fallback"). The turn chooses `id`, so a Miss or
    Feedback of a later turn can name the question.
    """

    id: str
    question: str
    language: str
    decision: str
    entry_id: str | None
    confidence: float
    at: datetime


@dataclass(frozen=True)
class Feedback:
    """A customer's 👍 (helpful) or 👎 on an FAQ answer, and the question it answered when
    the chat still knew it (None: the answer came from a button, or long ago)."""

    entry_id: str
    helpful: bool
    at: datetime
    question_id: str | None = None


@dataclass(frozen=True)
class Miss:
    """A logged question the knowledge base did not answer well: what staff should look at.

    `reason` says how we know: "fallback" (no answer), "suggested" (not sure: choices
    offered), "none_of_these" (the choices rejected) or "not_helpful" (a 👎 on the answer
    `entry_id`).
    """

    question_id: str
    reason: str
    at: datetime
    entry_id: str | None = None


@dataclass(frozen=True)
class LoggedMiss:
    """A miss read back with its question, the chat that asked and the chat's language."""

    question: str
    reason: str
    entry_id: str | None
    language: str
    key: ChatKey
    at: datetime
    # None for misses kept before the question log (schema 6): each one a question of its own.
    question_id: str | None


@dataclass(frozen=True)
class FaqStats:
    """The FAQ's figures for a period."""

    # Questions by decision ("answer", "suggest", "fallback") and by the chat's language.
    decisions: dict[str, int]
    languages: dict[str, int]
    # (entry id, questions it answered), most first.
    answered: list[tuple[str, int]]
    # Entry id -> (👍, 👎).
    votes: dict[str, tuple[int, int]]
    # (masked question, times missed), most first; the same words in any case count as one.
    missed: list[tuple[str, int]]

    @property
    def questions(self) -> int:
        return sum(self.decisions.values())


@dataclass(frozen=True)
class DigestSent:
    """The staff chat got the daily digest of `day` (in the company's time zone)."""

    day: date
    at: datetime


@dataclass(frozen=True)
class OrderLinked:
    """The chat proved it owns this order (by its e-mail): later look-ups skip the check."""

    number: str


@dataclass(frozen=True)
class FailedOwnershipCheck:
    """A wrong order number or e-mail; too many in an hour lock the chat out for a while."""

    at: datetime


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


@dataclass(frozen=True)
class InboxUpdate:
    """A channel update stored on arrival, before the channel is told it was received."""

    channel: str
    update_id: str
    body: dict[str, Any]


class ConversationStore(Protocol):
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
    ) -> list[QueuedMessage]:
        """Store the turn atomically: state, records, replies queued in the outbox for the
        chat each is addressed to, and the update (with `also_processed`, the other updates
        merged into it) marked processed and so removed from the inbox. Returns the queued
        replies."""
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
    Protocol,
):
    """Everything the bot stores; one implementation per backend."""

    async def prune(self, older_than_days: float) -> None:
        """Forget processed-update marks and failed replies older than that."""
        ...

    async def close(self) -> None: ...
