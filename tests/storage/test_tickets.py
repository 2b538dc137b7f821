"""Tickets on each backend: drafts, answers, files, statuses, history and look-ups."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.chats import ChatKey, ConversationState
from domain.handoffs import HandoffOpened
from domain.tickets import (
    Ticket,
    TicketAnswered,
    TicketEvent,
    TicketKind,
    TicketMedia,
    TicketMediaSet,
    TicketOpened,
    TicketStatus,
    TicketStatusSet,
)
from storage.base import Record
from storage.sql import SqlStorage
from storage.sqlite import MIGRATIONS, SqliteStorage
from storage.tickets import MediaToStore
from tests.factories import Turns
from tests.storage import raw

CUSTOMER = ChatKey("telegram", "42")
OTHER = ChatKey("telegram", "43")
# The staff group: its turns decide on customers' tickets.
STAFF = ChatKey("telegram", "-1001234")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(hours=1)
T3 = T0 + timedelta(days=1)
R1, R2, R3 = "R-7KQ4-M2XP", "R-0000-0001", "R-0000-0002"
S1 = "S-1111-2222"

PHOTO_A = TicketMedia("photo", "AgAD-a", size=120_000, mime="image/jpeg")
PHOTO_B = TicketMedia("photo", "AgAD-b", size=90_000, mime="image/jpeg")
PHOTO_C = TicketMedia("photo", "AgAD-c")
VIDEO_LINK = TicketMedia("video", link="https://drive.example.com/v/1")
LOG_FILE = TicketMedia("document", "BQAD-log", size=2_000, mime="text/plain", file_name="k.log")


async def get(storage: SqlStorage, ticket_id: str) -> Ticket:
    ticket = await storage.ticket(ticket_id)
    assert ticket is not None
    return ticket


async def actions(storage: SqlStorage, ticket_id: str) -> list[str]:
    return [event.action for event in await storage.ticket_events(ticket_id)]


async def test_a_ticket_opens_as_a_draft_of_the_turns_chat(
    storage: SqlStorage, turn: Turns
) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))

    ticket = await get(storage, R1)

    assert ticket == Ticket(
        id=R1,
        key=CUSTOMER,
        kind=TicketKind.REPAIR,
        status=TicketStatus.DRAFT,
        created_at=T0,
        updated_at=T0,
    )
    assert (ticket.answers, ticket.media, ticket.submitted_at, ticket.revision) == ({}, {}, None, 0)
    assert ticket.created_at.utcoffset() == timedelta(0)
    assert await storage.ticket_events(R1) == [TicketEvent(T0, "customer", "opened")]
    assert await storage.ticket(R2) is None
    assert await storage.ticket_events(R2) == []


async def test_answers_are_set_replaced_and_removed(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(
        CUSTOMER,
        TicketAnswered(R1, "model", "Antminer S19", T0),
        TicketAnswered(R1, "serial", "SN-AAA", T1),
    )
    await turn(CUSTOMER, TicketAnswered(R1, "model", "Antminer S19j Pro", T2))
    await turn(CUSTOMER, TicketAnswered(R1, "serial", None, T2))
    await turn(CUSTOMER, TicketAnswered(R1, "never_given", None, T3))

    ticket = await get(storage, R1)

    assert ticket.answers == {"model": "Antminer S19j Pro"}
    assert ticket.updated_at == T3
    events = await storage.ticket_events(R1)
    assert [(e.action, e.detail) for e in events] == [
        ("opened", ""),
        ("answered", "model"),
        ("answered", "serial"),
        ("answered", "model"),
        ("answered", "serial"),
        ("answered", "never_given"),
    ]
    # The history names the question, never the answer (it may be personal data).
    assert not any("S19" in e.detail or "SN-AAA" in e.detail for e in events)


async def test_media_replace_a_questions_files_in_the_order_given(
    storage: SqlStorage, turn: Turns
) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(
        CUSTOMER,
        TicketMediaSet(R1, "photos", (PHOTO_A, PHOTO_B, PHOTO_C), T0),
        TicketMediaSet(R1, "video", (VIDEO_LINK,), T0),
    )
    assert (await get(storage, R1)).media == {
        "photos": (PHOTO_A, PHOTO_B, PHOTO_C),
        "video": (VIDEO_LINK,),
    }

    stored_b = TicketMedia("photo", "AgAD-b", size=90_000, stored_path="tickets/R1/photos-1.jpg")
    await turn(CUSTOMER, TicketMediaSet(R1, "photos", (PHOTO_C, stored_b), T1))
    await turn(CUSTOMER, TicketMediaSet(R1, "logs", (LOG_FILE,), T1))
    await turn(CUSTOMER, TicketMediaSet(R1, "video", (), T2))

    ticket = await get(storage, R1)
    assert ticket.media == {"photos": (PHOTO_C, stored_b), "logs": (LOG_FILE,)}
    assert ticket.updated_at == T2
    assert [(e.action, e.detail) for e in (await storage.ticket_events(R1))[1:]] == [
        ("media", "photos: 3"),
        ("media", "video: 1"),
        ("media", "photos: 2"),
        ("media", "logs: 1"),
        ("media", "video: 0"),
    ]
    assert await raw.rows(
        storage, "SELECT name, position FROM ticket_media ORDER BY name, position"
    ) == [("logs", 0), ("photos", 0), ("photos", 1)]


async def test_submitting_revising_and_deciding(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.SECOND_RETURN, T0))
    await turn(CUSTOMER, TicketAnswered(R1, "part", "hashboard", T0))
    await turn(CUSTOMER, TicketStatusSet(R1, TicketStatus.PENDING, "customer", T1))

    submitted = await get(storage, R1)
    assert (submitted.status, submitted.submitted_at, submitted.revision) == (
        TicketStatus.PENDING,
        T1,
        1,
    )
    assert (submitted.decided_by, submitted.staff_note) == (None, None)

    ask = TicketStatusSet(R1, TicketStatus.NEEDS_INFO, "Anna", T2, "a photo of the label, please")
    await turn(STAFF, ask)
    asked = await get(storage, R1)
    assert asked.status is TicketStatus.NEEDS_INFO
    assert (asked.decided_by, asked.staff_note) == ("Anna", "a photo of the label, please")
    assert (asked.revision, asked.updated_at) == (1, T2)

    await turn(CUSTOMER, TicketMediaSet(R1, "photos", (PHOTO_A,), T3))
    await turn(CUSTOMER, TicketStatusSet(R1, TicketStatus.PENDING, "customer", T3, "label added"))
    revised = await get(storage, R1)
    assert revised.status is TicketStatus.PENDING
    # Submitted once, revised once; the last decision stays until the next one.
    assert (revised.submitted_at, revised.revision, revised.updated_at) == (T1, 2, T3)
    assert (revised.decided_by, revised.staff_note) == ("Anna", "a photo of the label, please")
    assert revised.key == CUSTOMER  # staff turns do not move the ticket

    later = T3 + timedelta(hours=2)
    await turn(STAFF, TicketStatusSet(R1, TicketStatus.CONFIRMED, "Boris", later))
    confirmed = await get(storage, R1)
    assert confirmed.status is TicketStatus.CONFIRMED
    # A decision without a message leaves no note (the earlier one was about something else).
    assert (confirmed.decided_by, confirmed.staff_note) == ("Boris", None)
    assert (confirmed.revision, confirmed.updated_at) == (2, later)

    assert await storage.ticket_events(R1) == [
        TicketEvent(T0, "customer", "opened"),
        TicketEvent(T0, "customer", "answered", "part"),
        TicketEvent(T1, "customer", "submitted"),
        TicketEvent(T2, "Anna", "asked_for_more", "a photo of the label, please"),
        TicketEvent(T3, "customer", "media", "photos: 1"),
        TicketEvent(T3, "customer", "revised", "label added"),
        TicketEvent(later, "Boris", "confirmed"),
    ]


async def test_rejecting_cancelling_and_reopening(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(CUSTOMER, TicketOpened(R2, TicketKind.REPAIR, T0))
    await turn(CUSTOMER, TicketStatusSet(R1, TicketStatus.PENDING, "customer", T1))
    await turn(STAFF, TicketStatusSet(R1, TicketStatus.REJECTED, "Anna", T2, "out of warranty"))
    await turn(CUSTOMER, TicketStatusSet(R2, TicketStatus.CANCELLED, "customer", T1, "solved"))
    await turn(CUSTOMER, TicketStatusSet(R2, TicketStatus.DRAFT, "customer", T2))

    rejected = await get(storage, R1)
    assert (rejected.status, rejected.decided_by, rejected.staff_note, rejected.updated_at) == (
        TicketStatus.REJECTED,
        "Anna",
        "out of warranty",
        T2,
    )
    reopened = await get(storage, R2)
    assert (reopened.status, reopened.updated_at, reopened.revision) == (TicketStatus.DRAFT, T2, 0)
    assert (reopened.submitted_at, reopened.decided_by, reopened.staff_note) == (None, None, None)
    assert await actions(storage, R1) == ["opened", "submitted", "rejected"]
    assert await storage.ticket_events(R2) == [
        TicketEvent(T0, "customer", "opened"),
        TicketEvent(T1, "customer", "cancelled", "solved"),
        TicketEvent(T2, "customer", "reopened"),
    ]


async def test_a_chats_tickets_come_newest_first(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(OTHER, TicketOpened(R2, TicketKind.REPAIR, T1))
    await turn(CUSTOMER, TicketOpened(S1, TicketKind.SECOND_RETURN, T2))
    # Opened at the same moment: the later one counts as newer.
    await turn(CUSTOMER, TicketOpened(R3, TicketKind.REPAIR, T2))
    await turn(ChatKey("console", "42"), TicketOpened("R-CCCC-CCCC", TicketKind.REPAIR, T3))
    await turn(CUSTOMER, TicketStatusSet(R1, TicketStatus.CANCELLED, "customer", T3))

    mine = await storage.tickets_of(CUSTOMER)

    assert [t.id for t in mine] == [R3, S1, R1]
    assert all(t.key == CUSTOMER for t in mine)
    assert [t.id for t in await storage.tickets_of(OTHER)] == [R2]
    assert [t.id for t in await storage.tickets_of(ChatKey("console", "42"))] == ["R-CCCC-CCCC"]
    assert await storage.tickets_of(ChatKey("telegram", "44")) == []


async def test_tickets_are_filtered_by_creation_and_status_oldest_first(
    storage: SqlStorage, turn: Turns
) -> None:
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(OTHER, TicketOpened(R2, TicketKind.REPAIR, T2))
    await turn(CUSTOMER, TicketOpened(S1, TicketKind.SECOND_RETURN, T1))
    await turn(OTHER, TicketOpened(R3, TicketKind.REPAIR, T3))
    await turn(CUSTOMER, TicketStatusSet(R1, TicketStatus.PENDING, "customer", T3))
    await turn(OTHER, TicketStatusSet(R2, TicketStatus.PENDING, "customer", T3))
    await turn(STAFF, TicketStatusSet(R2, TicketStatus.CONFIRMED, "Anna", T3))

    assert [t.id for t in await storage.tickets()] == [R1, S1, R2, R3]
    # Exactly at `since` counts; given in Berlin summer time, compared in UTC.
    since = T1.astimezone(timezone(timedelta(hours=2)))
    assert [t.id for t in await storage.tickets(since)] == [S1, R2, R3]
    assert [t.id for t in await storage.tickets(T3 + timedelta(seconds=1))] == []
    # A year before 1000 keeps its leading zero, or it would compare after 2024.
    assert [t.id for t in await storage.tickets(datetime(999, 12, 31, tzinfo=UTC))] == [
        R1,
        S1,
        R2,
        R3,
    ]
    statuses = [TicketStatus.PENDING, TicketStatus.CONFIRMED]
    assert [t.id for t in await storage.tickets(statuses=statuses)] == [R1, R2]
    assert [t.id for t in await storage.tickets(since, statuses)] == [R2]
    drafts = await storage.tickets(statuses=[TicketStatus.DRAFT])
    assert [(t.id, t.key) for t in drafts] == [(S1, CUSTOMER), (R3, OTHER)]


@raw.sqlite_only
async def test_listing_reads_answers_and_files_in_one_query_each(
    storage: SqlStorage, turn: Turns
) -> None:
    for n, ticket_id in enumerate((R1, R2, R3, S1)):
        kind = TicketKind.SECOND_RETURN if ticket_id == S1 else TicketKind.REPAIR
        at = T0 + timedelta(minutes=n)
        await turn(CUSTOMER, TicketOpened(ticket_id, kind, at))
        await turn(
            CUSTOMER,
            TicketAnswered(ticket_id, "model", f"S{19 + n}", at),
            TicketAnswered(ticket_id, "serial", f"SN-{n}", at),
            TicketMediaSet(ticket_id, "photos", (PHOTO_A, PHOTO_B)[: n % 3], at),
        )
    statements: list[str] = []
    await storage.db.set_trace_callback(statements.append)
    try:
        listed = await storage.tickets()
        of_chat = await storage.tickets_of(CUSTOMER)
    finally:
        await storage.db.set_trace_callback(None)

    assert len(statements) == 6
    assert [t.id for t in listed] == [R1, R2, R3, S1]
    assert of_chat == listed[::-1]
    assert [t.answers for t in listed] == [
        {"model": f"S{19 + n}", "serial": f"SN-{n}"} for n in range(4)
    ]
    assert [t.media for t in listed] == [
        {},
        {"photos": (PHOTO_A,)},
        {"photos": (PHOTO_A, PHOTO_B)},
        {},
    ]
    assert await storage.ticket(R3) == listed[2]


async def test_files_to_store_and_their_stored_paths(storage: SqlStorage, turn: Turns) -> None:
    big = TicketMedia("video", "BAAD-big", size=50_000_000, mime="video/mp4")
    kept = TicketMedia("photo", "AgAD-kept", size=10, stored_path="tickets/kept.jpg")
    unsized = TicketMedia("video", "BAAD-unsized")
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(OTHER, TicketOpened(R2, TicketKind.REPAIR, T0))
    await turn(CUSTOMER, TicketMediaSet(R1, "photos", (PHOTO_A, kept, PHOTO_B), T0))
    await turn(CUSTOMER, TicketMediaSet(R1, "video", (VIDEO_LINK, big, unsized), T1))
    await turn(OTHER, TicketMediaSet(R2, "logs", (LOG_FILE,), T2))
    await turn(OTHER, TicketMediaSet(R2, "photos", (TicketMedia("photo"),), T2))  # no file id

    to_store = await storage.media_to_store("telegram", max_size=20_000_000)

    assert to_store == [
        MediaToStore(R1, "photos", 0, PHOTO_A),
        MediaToStore(R1, "photos", 2, PHOTO_B),
        MediaToStore(R1, "video", 2, unsized),
        MediaToStore(R2, "logs", 0, LOG_FILE),
    ]
    assert await storage.media_to_store("telegram", max_size=20_000_000, limit=2) == to_store[:2]
    assert [m.media for m in await storage.media_to_store("telegram", max_size=100_000)] == [
        PHOTO_B,
        unsized,
        LOG_FILE,
    ]
    assert [m.media for m in await storage.media_to_store("telegram", max_size=60_000_000)] == [
        PHOTO_A,
        PHOTO_B,
        big,
        unsized,
        LOG_FILE,
    ]

    await storage.set_stored_path(MediaToStore(R1, "photos", 0, PHOTO_A), "tickets/R1/photos-0.jpg")
    # "" is a file that will not be copied: it is not offered again.
    await storage.set_stored_path(MediaToStore(R1, "video", 2, unsized), "")
    # Files replaced since they were offered are left alone.
    await storage.set_stored_path(MediaToStore(R1, "photos", 9, PHOTO_A), "tickets/nowhere.jpg")
    await storage.set_stored_path(MediaToStore(R1, "photos", 2, PHOTO_C), "tickets/nowhere.jpg")
    await storage.set_stored_path(MediaToStore(R3, "photos", 0, PHOTO_A), "tickets/nowhere.jpg")

    assert await storage.media_to_store("telegram", max_size=20_000_000) == [
        MediaToStore(R1, "photos", 2, PHOTO_B),
        MediaToStore(R2, "logs", 0, LOG_FILE),
    ]
    ticket = await get(storage, R1)
    assert [m.stored_path for m in ticket.media["photos"]] == [
        "tickets/R1/photos-0.jpg",
        "tickets/kept.jpg",
        None,
    ]
    assert [m.stored_path for m in ticket.media["video"]] == [None, None, ""]
    assert await storage.ticket(R3) is None


async def test_files_to_store_are_those_of_the_channel(storage: SqlStorage, turn: Turns) -> None:
    console = ChatKey("console", "alice")
    await turn(console, TicketOpened(R3, TicketKind.REPAIR, T0))
    await turn(console, TicketMediaSet(R3, "photos", (PHOTO_C,), T0))
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
    await turn(CUSTOMER, TicketMediaSet(R1, "photos", (PHOTO_A,), T1))
    assert await storage.media_to_store("console", max_size=1_000_000) == [
        MediaToStore(R3, "photos", 0, PHOTO_C)
    ]
    assert await storage.media_to_store("telegram", max_size=1_000_000) == [
        MediaToStore(R1, "photos", 0, PHOTO_A)
    ]


@raw.sqlite_only
async def test_files_to_store_use_their_index(storage: SqlStorage) -> None:
    async with storage.db.execute(
        "EXPLAIN QUERY PLAN SELECT ticket_id FROM ticket_media "
        "WHERE file_ref != '' AND link IS NULL AND stored_path IS NULL "
        "AND (size IS NULL OR size <= ?) "
        "AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = ticket_id AND t.channel = ?) "
        "ORDER BY created_at, rowid LIMIT ?",
        (1, "telegram", 1),
    ) as cursor:
        plan = " ".join(str(row[-1]) for row in await cursor.fetchall())
    assert "ticket_media_to_store" in plan


@pytest.mark.parametrize(
    "bad",
    [
        TicketAnswered(R2, "model", "S19", T1),
        TicketAnswered(R2, "model", None, T1),
        TicketMediaSet(R2, "photos", (PHOTO_A,), T1),
        TicketStatusSet(R2, TicketStatus.PENDING, "customer", T1),
        TicketStatusSet(R2, TicketStatus.CONFIRMED, "Anna", T1, "ok"),
        # R1 exists: opening it again is a flow's bug too.
        TicketOpened(R1, TicketKind.REPAIR, T1),
    ],
    ids=lambda record: type(record).__name__,
)
async def test_a_record_for_a_wrong_ticket_fails_the_whole_turn(
    storage: SqlStorage, bad: Record
) -> None:
    await storage.save(
        CUSTOMER,
        ConversationState(flow="repair", step="waiting_for_model"),
        "1",
        [TicketOpened(R1, TicketKind.REPAIR, T0)],
    )
    before = await get(storage, R1)
    records: list[Record] = [
        TicketOpened(R3, TicketKind.REPAIR, T1),
        TicketAnswered(R1, "model", "S19", T1),
        TicketMediaSet(R1, "photos", (PHOTO_A,), T1),
        TicketStatusSet(R1, TicketStatus.PENDING, "customer", T1),
        bad,
    ]

    with pytest.raises(ValueError, match="ticket"):
        await storage.save(
            CUSTOMER,
            ConversationState(flow="repair", step="waiting_for_photos"),
            "2",
            records,
            replies=[(CUSTOMER, {"text": "thanks"})],
        )

    assert await storage.load(CUSTOMER) == ConversationState(
        flow="repair", step="waiting_for_model"
    )
    assert not await storage.is_processed(CUSTOMER, "2")
    assert await storage.outbox(CUSTOMER.channel) == []
    assert await get(storage, R1) == before
    assert await actions(storage, R1) == ["opened"]
    assert await storage.ticket(R2) is None
    assert await storage.ticket(R3) is None
    for table in ("ticket_answers", "ticket_media"):
        assert await raw.count(storage, table) == 0


async def test_a_naive_datetime_is_refused(storage: SqlStorage, turn: Turns) -> None:
    with pytest.raises(ValueError, match="naive"):
        await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, datetime(2024, 5, 1, 9)))
    assert await storage.ticket(R1) is None


async def test_prune_keeps_tickets(storage: SqlStorage, turn: Turns) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, long_ago))
    await turn(
        CUSTOMER,
        TicketAnswered(R1, "model", "S9", long_ago),
        TicketMediaSet(R1, "photos", (PHOTO_A,), long_ago),
        TicketStatusSet(R1, TicketStatus.PENDING, "customer", long_ago),
    )
    before = await get(storage, R1)
    history = await storage.ticket_events(R1)

    await storage.prune(older_than_days=7)

    assert await storage.ticket(R1) == before
    assert await storage.ticket_events(R1) == history
    assert [t.id for t in await storage.tickets_of(CUSTOMER)] == [R1]


async def test_tickets_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with SqliteStorage(path) as first:
        turn = Turns(first)
        await turn(CUSTOMER, TicketOpened(R1, TicketKind.REPAIR, T0))
        await turn(
            CUSTOMER,
            TicketAnswered(R1, "model", "Antminer S21", T0),
            TicketMediaSet(R1, "photos", (PHOTO_A, PHOTO_B), T1),
            TicketMediaSet(R1, "video", (VIDEO_LINK,), T1),
            TicketStatusSet(R1, TicketStatus.PENDING, "customer", T2),
        )
        await turn(STAFF, TicketStatusSet(R1, TicketStatus.NEEDS_INFO, "Anna", T3, "serial?"))
        await first.set_stored_path(
            MediaToStore(R1, "photos", 0, PHOTO_A), "tickets/R1/photos-0.jpg"
        )
        ticket = await get(first, R1)
        history = await first.ticket_events(R1)
        to_store = await first.media_to_store("telegram", max_size=1_000_000)

    async with SqliteStorage(path) as second:
        assert await second.ticket(R1) == ticket
        assert await second.tickets_of(CUSTOMER) == [ticket]
        assert await second.ticket_events(R1) == history
        assert await second.media_to_store("telegram", max_size=1_000_000) == to_store
        assert to_store == [MediaToStore(R1, "photos", 1, PHOTO_B)]
    assert ticket.status is TicketStatus.NEEDS_INFO
    assert (ticket.revision, ticket.staff_note) == (1, "serial?")
    assert ticket.media["photos"][0].stored_path == "tickets/R1/photos-0.jpg"


async def test_a_version_4_file_is_upgraded_to_tickets(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as old:
        old.executescript("".join(MIGRATIONS[:4]) + "; PRAGMA user_version = 4;")
        old.execute(
            "INSERT INTO conversations (channel, chat_id, flow, language) "
            "VALUES ('telegram', '42', 'menu', 'de')"
        )
    old.close()
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS) >= 5
        state = await upgraded.load(CUSTOMER)
        assert (state.flow, state.language) == ("menu", "de")
        await upgraded.save(
            CUSTOMER,
            state,
            "1",
            [
                HandoffOpened(CUSTOMER, "repair", T0),
                TicketOpened(R1, TicketKind.REPAIR, T0),
                TicketAnswered(R1, "model", "S19", T0),
            ],
        )
    async with SqliteStorage(path) as reopened:
        assert await reopened.schema_version() == len(MIGRATIONS)
        ticket = await get(reopened, R1)
        assert (ticket.key, ticket.answers) == (CUSTOMER, {"model": "S19"})
        assert await reopened.open_handoff(CUSTOMER) is not None
