"""A ticket's status changes and history lines, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.chats import ChatKey
from domain.tickets import (
    CUSTOMER,
    Ticket,
    TicketAnswered,
    TicketEvent,
    TicketKind,
    TicketMedia,
    TicketMediaSet,
    TicketOpened,
    TicketStatus,
    TicketStatusSet,
    history_line,
    with_status,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
DRAFT = Ticket(
    "R-7KQ4-M2XP", ChatKey("telegram", "42"), TicketKind.REPAIR, TicketStatus.DRAFT, T0, T0
)


def status(
    to: TicketStatus, at: datetime, actor: str = CUSTOMER, detail: str = ""
) -> TicketStatusSet:
    return TicketStatusSet(DRAFT.id, to, actor, at, detail)


def test_the_first_submission_sets_submitted_at_and_revision_one() -> None:
    submitted = with_status(DRAFT, status(TicketStatus.PENDING, T1))
    assert (submitted.status, submitted.updated_at) == (TicketStatus.PENDING, T1)
    assert (submitted.submitted_at, submitted.revision) == (T1, 1)


def test_a_revision_keeps_the_first_submission_time_and_counts_one_more() -> None:
    submitted = with_status(DRAFT, status(TicketStatus.PENDING, T1))
    asked = with_status(submitted, status(TicketStatus.NEEDS_INFO, T1, "Anna", "the PSU photo"))
    revised = with_status(asked, status(TicketStatus.PENDING, T2))
    assert (revised.submitted_at, revised.revision, revised.updated_at) == (T1, 2, T2)


@pytest.mark.parametrize(
    "decision", [TicketStatus.CONFIRMED, TicketStatus.NEEDS_INFO, TicketStatus.REJECTED]
)
def test_a_staff_decision_records_who_decided_and_why(decision: TicketStatus) -> None:
    submitted = with_status(DRAFT, status(TicketStatus.PENDING, T1))
    decided = with_status(submitted, status(decision, T2, "Anna", "send it to Shenzhen"))
    assert (decided.status, decided.decided_by, decided.staff_note) == (
        decision,
        "Anna",
        "send it to Shenzhen",
    )
    assert (decided.submitted_at, decided.revision) == (T1, 1)


def test_a_decision_without_a_message_drops_the_older_note() -> None:
    asked = with_status(DRAFT, status(TicketStatus.NEEDS_INFO, T1, "Anna", "the PSU photo"))
    confirmed = with_status(asked, status(TicketStatus.CONFIRMED, T2, "Boris"))
    assert (confirmed.decided_by, confirmed.staff_note) == ("Boris", None)


@pytest.mark.parametrize("to", [TicketStatus.CANCELLED, TicketStatus.DRAFT])
def test_other_changes_keep_the_submission_and_the_last_decision(to: TicketStatus) -> None:
    submitted = with_status(DRAFT, status(TicketStatus.PENDING, T1))
    asked = with_status(submitted, status(TicketStatus.NEEDS_INFO, T1, "Anna", "the PSU photo"))
    changed = with_status(asked, status(to, T2, CUSTOMER, "replaced by a new one"))
    assert changed == Ticket(
        DRAFT.id,
        DRAFT.key,
        DRAFT.kind,
        to,
        T0,
        T2,
        submitted_at=T1,
        revision=1,
        decided_by="Anna",
        staff_note="the PSU photo",
    )


def test_a_status_given_by_its_value_counts_as_the_status() -> None:
    submitted = with_status(DRAFT, TicketStatusSet(DRAFT.id, "pending", CUSTOMER, T1))  # type: ignore[arg-type]
    assert (submitted.status, submitted.revision) == (TicketStatus.PENDING, 1)


PHOTO = TicketMedia("photo", "AgAD-1")


@pytest.mark.parametrize(
    ("record", "revision", "line"),
    [
        (TicketOpened(DRAFT.id, TicketKind.REPAIR, T0), 0, TicketEvent(T0, CUSTOMER, "opened")),
        (
            TicketAnswered(DRAFT.id, "email", "me@example.com", T0),
            0,
            TicketEvent(T0, CUSTOMER, "answered", "email"),
        ),
        (
            TicketAnswered(DRAFT.id, "email", None, T0),
            1,
            TicketEvent(T0, CUSTOMER, "answered", "email"),
        ),
        (
            TicketMediaSet(DRAFT.id, "photos", (PHOTO, PHOTO), T0),
            0,
            TicketEvent(T0, CUSTOMER, "media", "photos: 2"),
        ),
        (status(TicketStatus.PENDING, T1), 0, TicketEvent(T1, CUSTOMER, "submitted")),
        (status(TicketStatus.PENDING, T1), 1, TicketEvent(T1, CUSTOMER, "revised")),
        (
            status(TicketStatus.NEEDS_INFO, T1, "Anna", "why"),
            1,
            TicketEvent(T1, "Anna", "asked_for_more", "why"),
        ),
        (status(TicketStatus.CONFIRMED, T1, "Anna"), 1, TicketEvent(T1, "Anna", "confirmed")),
        (
            status(TicketStatus.REJECTED, T1, "Anna", "void"),
            1,
            TicketEvent(T1, "Anna", "rejected", "void"),
        ),
        (status(TicketStatus.CANCELLED, T1), 0, TicketEvent(T1, CUSTOMER, "cancelled")),
        (status(TicketStatus.DRAFT, T1), 1, TicketEvent(T1, CUSTOMER, "reopened")),
    ],
)
def test_each_record_adds_its_history_line(
    record: TicketOpened | TicketAnswered | TicketMediaSet | TicketStatusSet,
    revision: int,
    line: TicketEvent,
) -> None:
    assert history_line(record, revision) == line


def test_the_history_never_holds_an_answer() -> None:
    line = history_line(TicketAnswered(DRAFT.id, "email", "me@example.com", T0), 0)
    assert "me@example.com" not in (line.action, line.detail)
