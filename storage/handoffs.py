"""Conversations handed to sales reps in the staff chat, and what storage keeps of them.

A handoff is open from the moment the customer is passed to staff until a rep closes it
(`/close`) or the customer leaves it (`/cancel`). While one is open the bot relays
instead of answering. The customer's topic in the staff chat outlives handoffs: the next
handoff of the same customer reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from storage.base import ChatKey


class HandoffStatus(StrEnum):
    # Waiting for the first word from staff.
    WAITING = "waiting"
    # A rep claimed it or replied.
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass(frozen=True)
class Handoff:
    id: int
    key: ChatKey
    status: HandoffStatus
    # Why: "asked" (menu or button), "words" (asked in words), "fallbacks" (two misses in
    # a row), "order" (from an order card), "repair" (from the repair flow).
    reason: str
    opened_at: datetime
    order_number: str | None = None
    claimed_by: str | None = None
    claimed_by_name: str | None = None
    first_staff_reply_at: datetime | None = None
    last_customer_at: datetime | None = None
    last_staff_at: datetime | None = None
    # Since when a customer message waits for a staff answer (None: nothing waits).
    waiting_since: datetime | None = None
    reminded_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    rating: int | None = None


@dataclass(frozen=True)
class HandoffOpened:
    """Record: open a handoff for this customer (ignored if one is already open)."""

    key: ChatKey
    reason: str
    at: datetime
    order_number: str | None = None


# Columns a HandoffUpdate may set.
HANDOFF_FIELDS = frozenset(
    {
        "status",
        "claimed_by",
        "claimed_by_name",
        "first_staff_reply_at",
        "last_customer_at",
        "last_staff_at",
        "waiting_since",
        "reminded_at",
        "closed_at",
        "closed_by",
        "rating",
    }
)


@dataclass(frozen=True)
class HandoffUpdate:
    """Record: set some fields of a handoff (names from HANDOFF_FIELDS); datetimes are
    tz-aware. `first_staff_reply_at` is only set when still empty."""

    handoff_id: int
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffNote:
    """Record: an internal note on a handoff, never sent to the customer."""

    handoff_id: int
    author: str
    text: str
    at: datetime


@dataclass(frozen=True)
class ChatLine:
    """One line of a chat's recent transcript, for the context card staff see."""

    at: datetime
    from_customer: bool
    text: str


@dataclass(frozen=True)
class Said:
    """Record: add a line to the turn's chat transcript."""

    from_customer: bool
    text: str
    at: datetime


@dataclass(frozen=True)
class HandoffStats:
    """Figures for `minerdesk stats` over a period."""

    handoffs: int
    # Handoffs opened per calendar day (UTC, YYYY-MM-DD), oldest first.
    per_day: Sequence[tuple[str, int]]
    # Distinct customer chats that talked to the bot in the period.
    conversations: int
    # Seconds from opening to the first staff reply, for the handoffs that got one.
    first_reply_seconds: Sequence[float]
    # Ratings given (1-5).
    ratings: Sequence[int]


class HandoffStore(Protocol):
    async def open_handoff(self, key: ChatKey) -> Handoff | None:
        """The customer's open handoff (status waiting or active), if any."""
        ...

    async def handoff(self, handoff_id: int) -> Handoff | None: ...

    async def open_handoffs(self) -> list[Handoff]:
        """Every open handoff, oldest first (for reminders)."""
        ...

    async def set_topic(self, customer: ChatKey, staff_chat_id: str, thread_id: str) -> None:
        """Remember the customer's topic in the staff chat (replacing an earlier one)."""
        ...

    async def topic_of(self, customer: ChatKey, staff_chat_id: str) -> str | None:
        """The thread id of the customer's topic in that staff chat, if one was made."""
        ...

    async def customer_of_topic(self, staff: ChatKey, thread_id: str) -> ChatKey | None:
        """Whose topic this is."""
        ...

    async def remember_relay(self, staff: ChatKey, message_id: str, customer: ChatKey) -> None:
        """A message the bot posted in the staff chat on behalf of this customer; staff
        replying to it reach the customer (for staff chats without topics)."""
        ...

    async def customer_of_relay(self, staff: ChatKey, message_id: str) -> ChatKey | None: ...

    async def recent_lines(self, key: ChatKey, limit: int = 10) -> list[ChatLine]:
        """The chat's last `limit` transcript lines, oldest first."""
        ...

    async def notes(self, customer: ChatKey, limit: int = 5) -> list[StaffNote]:
        """The newest staff notes on this customer's handoffs, oldest first."""
        ...

    async def handoff_stats(self, since: datetime, until: datetime | None = None) -> HandoffStats:
        """Figures for handoffs opened (and conversations active) at or after `since` and
        before `until` (None: up to now)."""
        ...
