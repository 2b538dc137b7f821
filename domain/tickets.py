"""Repair and second-return tickets: their kinds, statuses, ids and the records a turn writes."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from domain.chats import ChatKey


class TicketKind(StrEnum):
    REPAIR = "repair"
    # A repaired part failed again within its 30 days.
    SECOND_RETURN = "second_return"


class TicketStatus(StrEnum):
    # Being collected in the chat; staff have not seen it.
    DRAFT = "draft"
    # Submitted, waiting for staff (the seed's "pending"); the customer may still revise.
    PENDING = "pending"
    # Staff asked for more; the customer revises and sends it again.
    NEEDS_INFO = "needs_info"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    # Left before submitting: cancelled, solved by the checks, or not eligible.
    CANCELLED = "cancelled"


# Statuses in which the customer can still change the ticket.
REVISABLE = frozenset({TicketStatus.DRAFT, TicketStatus.PENDING, TicketStatus.NEEDS_INFO})

# Statuses in which staff can decide on it.
DECIDABLE = frozenset({TicketStatus.PENDING, TicketStatus.NEEDS_INFO})

# Submitted and not finished: shown to staff in the handoff context card.
OPEN = frozenset({TicketStatus.PENDING, TicketStatus.NEEDS_INFO, TicketStatus.CONFIRMED})

# Staff decisions: they record who decided and why.
DECISIONS = frozenset({TicketStatus.NEEDS_INFO, TicketStatus.CONFIRMED, TicketStatus.REJECTED})

# Crockford's base32 without I, L, O and U: nothing to misread or mistype.
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_ID_PREFIX = {TicketKind.REPAIR: "R", TicketKind.SECOND_RETURN: "S"}


def new_ticket_id(kind: TicketKind) -> str:
    """A short id customers can read out, and 40 random bits nobody can guess: R-7KQ4-M2XP."""
    chars = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"{_ID_PREFIX[kind]}-{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True)
class TicketMedia:
    """A file given for a ticket, referenced by the channel's file id (Telegram) or path
    (console); a video too big for the bot is a `link` instead. `stored_path` is set when
    a copy was kept on disk (`media.store_path`)."""

    kind: str
    file_ref: str = ""
    size: int | None = None
    mime: str | None = None
    file_name: str | None = None
    link: str | None = None
    stored_path: str | None = None


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history: who did what, when."""

    at: datetime
    # "customer", or the staff member's name.
    actor: str
    # opened, answered, media, submitted, revised, confirmed, asked_for_more, rejected,
    # cancelled.
    action: str
    detail: str = ""


@dataclass(frozen=True)
class Ticket:
    id: str
    key: ChatKey
    kind: TicketKind
    status: TicketStatus
    created_at: datetime
    updated_at: datetime
    # The customer's answers by question name (texts, chosen values, "yes"/"no").
    answers: Mapping[str, str] = field(default_factory=dict)
    # Files by question name, in the order given.
    media: Mapping[str, tuple[TicketMedia, ...]] = field(default_factory=dict)
    submitted_at: datetime | None = None
    # How many times it was submitted: 1 after the first submit, +1 per revision sent.
    revision: int = 0
    # The last staff decision's author and message (what to add, why it was rejected).
    decided_by: str | None = None
    staff_note: str | None = None


@dataclass(frozen=True)
class TicketOpened:
    """Record: a new draft ticket for the turn's chat."""

    ticket_id: str
    kind: TicketKind
    at: datetime


@dataclass(frozen=True)
class TicketAnswered:
    """Record: set (or with None, remove) one answer."""

    ticket_id: str
    name: str
    value: str | None
    at: datetime


@dataclass(frozen=True)
class TicketMediaSet:
    """Record: the files of one question, replacing those it had."""

    ticket_id: str
    name: str
    media: tuple[TicketMedia, ...]
    at: datetime


@dataclass(frozen=True)
class TicketStatusSet:
    """Record: a change of status by `actor`, added to the history with `detail`.

    To PENDING it also sets `submitted_at` (the first time) and adds one to `revision`;
    a staff decision (confirmed, needs_info, rejected) sets `decided_by` to the actor and
    `staff_note` to the detail.
    """

    ticket_id: str
    status: TicketStatus
    actor: str
    at: datetime
    detail: str = ""


TicketRecord = TicketOpened | TicketAnswered | TicketMediaSet | TicketStatusSet


# Who answers, files and the opening are attributed to in a ticket's history.
CUSTOMER = "customer"

# The history's action for a change to each status (PENDING: "submitted" or "revised").
_STATUS_ACTIONS = {
    TicketStatus.NEEDS_INFO: "asked_for_more",
    TicketStatus.CONFIRMED: "confirmed",
    TicketStatus.REJECTED: "rejected",
    TicketStatus.CANCELLED: "cancelled",
    TicketStatus.DRAFT: "reopened",
}


def with_status(ticket: Ticket, record: TicketStatusSet) -> Ticket:
    """The ticket after `record`, as storage writes it back in the same transaction.

    To PENDING it is submitted: `submitted_at` is set the first time and `revision` goes up
    by one. A staff decision sets `decided_by` to the actor and `staff_note` to the detail.
    """
    status = TicketStatus(record.status)
    changed = replace(ticket, status=status, updated_at=record.at)
    if status is TicketStatus.PENDING:
        first = ticket.submitted_at is None
        return replace(
            changed,
            submitted_at=record.at if first else ticket.submitted_at,
            revision=ticket.revision + 1,
        )
    if status in DECISIONS:
        # A decision without a message has no note: an older one is not this decision's.
        return replace(changed, decided_by=record.actor, staff_note=record.detail or None)
    return changed


def history_line(record: TicketRecord, revision: int) -> TicketEvent:
    """The line `record` adds to its ticket's history; `revision` is the ticket's before the
    record (0 for a new ticket): a first submission reads "submitted", a later "revised"."""
    match record:
        case TicketOpened(at=at):
            return TicketEvent(at, CUSTOMER, "opened")
        case TicketAnswered(name=name, at=at):
            # Only the name: the answer itself may be personal data, kept in one place.
            return TicketEvent(at, CUSTOMER, "answered", name)
        case TicketMediaSet(name=name, media=media, at=at):
            return TicketEvent(at, CUSTOMER, "media", f"{name}: {len(media)}")
        case TicketStatusSet(status=status, actor=actor, at=at, detail=detail):
            if TicketStatus(status) is TicketStatus.PENDING:
                action = "submitted" if revision == 0 else "revised"
            else:
                action = _STATUS_ACTIONS[TicketStatus(status)]
            return TicketEvent(at, actor, action, detail)
