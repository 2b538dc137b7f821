"""Conversations handed to sales reps in the staff chat, and the staff desk's records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from domain.chats import ChatKey


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
    # The customer's phone number (E.164) when their channel verified it (WhatsApp).
    phone: str | None = None


@dataclass(frozen=True)
class HandoffOpened:
    """Record: open a handoff for this customer (ignored if one is already open)."""

    key: ChatKey
    reason: str
    at: datetime
    order_number: str | None = None
    phone: str | None = None


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


def fields_to_set(update: HandoffUpdate, first_staff_reply_at: datetime | None) -> dict[str, Any]:
    """The fields `update` sets on a handoff whose first staff reply came at
    `first_staff_reply_at` (None: none yet); only the first reply counts, so a later one
    does not move it.

    Raises ValueError for a name outside HANDOFF_FIELDS.
    """
    unknown = set(update.changes) - HANDOFF_FIELDS
    if unknown:
        raise ValueError(f"not handoff fields: {', '.join(sorted(unknown))}")
    return {
        name: value
        for name, value in update.changes.items()
        if name != "first_staff_reply_at" or first_staff_reply_at is None
    }


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
    # The same figures for each customer channel (handoffs by the customer's channel).
    by_channel: Mapping[str, HandoffStats] = field(default_factory=dict)


@dataclass(frozen=True)
class DigestSent:
    """The staff chat got the daily digest of `day` (in the company's time zone)."""

    day: date
    at: datetime
