"""Handoffs on each backend: records, topics, relays, notes, transcripts and stats."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.chats import ChatKey, ConversationState
from domain.handoffs import (
    ChatLine,
    Handoff,
    HandoffOpened,
    HandoffStats,
    HandoffStatus,
    HandoffUpdate,
    Said,
    StaffNote,
)
from storage.sql import SqlStorage
from storage.sqlite import CHAT_LINES_KEPT, MIGRATIONS, SqliteStorage
from tests.factories import Turns
from tests.storage import raw

CUSTOMER = ChatKey("telegram", "42")
OTHER = ChatKey("telegram", "43")
# The staff group: its turns carry records about customers' handoffs.
STAFF = ChatKey("telegram", "-1001234")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(hours=1)


async def open_for(storage: SqlStorage, turn: Turns, key: ChatKey, at: datetime) -> Handoff:
    await turn(key, HandoffOpened(key, "asked", at))
    handoff = await storage.open_handoff(key)
    assert handoff is not None
    return handoff


async def test_a_customer_turn_opens_a_waiting_handoff(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, HandoffOpened(CUSTOMER, "order", T0, order_number="MD-1001"))

    handoff = await storage.open_handoff(CUSTOMER)

    assert handoff is not None
    assert handoff == Handoff(
        id=handoff.id,
        key=CUSTOMER,
        status=HandoffStatus.WAITING,
        reason="order",
        opened_at=T0,
        order_number="MD-1001",
        waiting_since=T0,
    )
    assert handoff.opened_at.utcoffset() == timedelta(0)
    assert await storage.handoff(handoff.id) == handoff
    assert await storage.handoff(handoff.id + 1) is None
    assert await storage.open_handoff(OTHER) is None
    assert await storage.open_handoff(ChatKey("console", "42")) is None


async def test_the_record_names_the_customer_not_the_turn(storage: SqlStorage, turn: Turns) -> None:
    await turn(STAFF, HandoffOpened(CUSTOMER, "repair", T0))
    assert await storage.open_handoff(STAFF) is None
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert (handoff.key, handoff.reason) == (CUSTOMER, "repair")


async def test_a_second_open_while_one_is_open_is_ignored(storage: SqlStorage, turn: Turns) -> None:
    first = await open_for(storage, turn, CUSTOMER, T0)
    await turn(CUSTOMER, HandoffOpened(CUSTOMER, "fallbacks", T1, order_number="MD-9"))
    await turn(STAFF, HandoffOpened(CUSTOMER, "order", T2))
    assert await storage.open_handoff(CUSTOMER) == first
    assert await storage.open_handoffs() == [first]


async def test_staff_turns_claim_reply_and_close_a_handoff_by_id(
    storage: SqlStorage, turn: Turns
) -> None:
    opened = await open_for(storage, turn, CUSTOMER, T0)
    claim = {
        "status": HandoffStatus.ACTIVE,
        "claimed_by": "7001",
        "claimed_by_name": "Anna",
        "first_staff_reply_at": T1,
        "last_staff_at": T1,
    }
    await turn(STAFF, HandoffUpdate(opened.id, claim))
    # Berlin time: stored and returned as the same instant in UTC.
    later = (T2).astimezone(timezone(timedelta(hours=2)))
    await turn(
        STAFF,
        HandoffUpdate(opened.id, {"first_staff_reply_at": later, "last_staff_at": later}),
    )
    await turn(CUSTOMER, HandoffUpdate(opened.id, {"last_customer_at": T2, "reminded_at": T2}))

    active = await storage.open_handoff(CUSTOMER)
    assert active is not None
    assert active.id == opened.id
    assert active.status is HandoffStatus.ACTIVE
    assert (active.claimed_by, active.claimed_by_name) == ("7001", "Anna")
    assert active.first_staff_reply_at == T1  # only the first reply counts
    assert active.last_staff_at == T2
    assert active.last_staff_at is not None
    assert active.last_staff_at.utcoffset() == timedelta(0)
    assert (active.last_customer_at, active.reminded_at) == (T2, T2)

    closing = {"status": "closed", "closed_at": T2, "closed_by": "7001", "rating": 5}
    await turn(STAFF, HandoffUpdate(opened.id, closing))
    assert await storage.open_handoff(CUSTOMER) is None
    assert await storage.open_handoffs() == []
    closed = await storage.handoff(opened.id)
    assert closed is not None
    assert closed.status is HandoffStatus.CLOSED
    assert (closed.closed_at, closed.closed_by, closed.rating) == (T2, "7001", 5)
    assert closed.first_staff_reply_at == T1

    reopened = await open_for(storage, turn, CUSTOMER, T2 + timedelta(days=1))
    assert reopened.id != opened.id
    assert reopened.status is HandoffStatus.WAITING
    assert reopened.claimed_by is None


async def test_an_update_of_an_unknown_field_fails_the_whole_turn(
    storage: SqlStorage, turn: Turns
) -> None:
    opened = await open_for(storage, turn, CUSTOMER, T0)
    await storage.save(STAFF, ConversationState(flow="staff"), "ok")
    bad = HandoffUpdate(opened.id, {"claimed_by": "7001", "chat_id": "666"})
    with pytest.raises(ValueError, match="chat_id"):
        await storage.save(
            STAFF, ConversationState(flow="claim"), "bad", [Said(False, "claimed", T1), bad]
        )
    assert await storage.handoff(opened.id) == opened
    assert not await storage.is_processed(STAFF, "bad")
    assert (await storage.load(STAFF)).flow == "staff"
    assert await storage.recent_lines(STAFF) == []


async def test_a_naive_datetime_is_refused(storage: SqlStorage, turn: Turns) -> None:
    opened = await open_for(storage, turn, CUSTOMER, T0)
    with pytest.raises(ValueError, match="naive"):
        await turn(STAFF, HandoffUpdate(opened.id, {"reminded_at": datetime(2024, 5, 1, 10)}))
    assert await storage.handoff(opened.id) == opened


async def test_an_empty_update_changes_nothing(storage: SqlStorage, turn: Turns) -> None:
    opened = await open_for(storage, turn, CUSTOMER, T0)
    await turn(STAFF, HandoffUpdate(opened.id))
    assert await storage.handoff(opened.id) == opened


async def test_open_handoffs_come_oldest_first(storage: SqlStorage, turn: Turns) -> None:
    third = ChatKey("telegram", "44")
    await open_for(storage, turn, OTHER, T1)
    await open_for(storage, turn, CUSTOMER, T2)
    gone = await open_for(storage, turn, third, T0)
    await open_for(storage, turn, ChatKey("console", "1"), T0 - timedelta(minutes=1))
    await turn(STAFF, HandoffUpdate(gone.id, {"status": HandoffStatus.CLOSED}))
    assert [h.key for h in await storage.open_handoffs()] == [
        ChatKey("console", "1"),
        OTHER,
        CUSTOMER,
    ]


async def test_a_verified_phone_is_kept_with_the_handoff(storage: SqlStorage, turn: Turns) -> None:
    customer = ChatKey("whatsapp", "15551234567")
    await turn(customer, HandoffOpened(customer, "asked", T0, phone="+15551234567"))
    handoff = await storage.open_handoff(customer)
    assert handoff is not None
    assert handoff.phone == "+15551234567"
    assert (await open_for(storage, turn, CUSTOMER, T0)).phone is None


async def test_topics_are_kept_per_staff_chat_and_found_both_ways(
    storage: SqlStorage,
) -> None:
    second_staff = ChatKey("telegram", "-1005678")
    assert await storage.topic_of(CUSTOMER, STAFF) is None
    assert await storage.customer_of_topic(STAFF, "11") is None

    await storage.set_topic(CUSTOMER, STAFF, "11")
    await storage.set_topic(OTHER, STAFF, "12")
    await storage.set_topic(CUSTOMER, second_staff, "12")

    assert await storage.topic_of(CUSTOMER, STAFF) == "11"
    assert await storage.topic_of(CUSTOMER, second_staff) == "12"
    assert await storage.customer_of_topic(STAFF, "11") == CUSTOMER
    assert await storage.customer_of_topic(STAFF, "12") == OTHER
    assert await storage.customer_of_topic(second_staff, "12") == CUSTOMER
    assert await storage.customer_of_topic(second_staff, "11") is None
    assert await storage.customer_of_topic(ChatKey("console", STAFF.chat_id), "11") is None
    # A customer on another channel than the staff chat: found as who they are.
    whatsapp = ChatKey("whatsapp", "15551234567")
    await storage.set_topic(whatsapp, STAFF, "13")
    assert await storage.topic_of(whatsapp, STAFF) == "13"
    assert await storage.topic_of(ChatKey("telegram", whatsapp.chat_id), STAFF) is None
    assert await storage.customer_of_topic(STAFF, "13") == whatsapp

    # Another writer's topic stands; one that was found deleted is replaced.
    assert await storage.set_topic(CUSTOMER, STAFF, "30") == "11"
    assert await storage.set_topic(CUSTOMER, STAFF, "31", replacing="11") == "31"
    assert await storage.topic_of(CUSTOMER, STAFF) == "31"
    assert await storage.customer_of_topic(STAFF, "31") == CUSTOMER
    assert await storage.customer_of_topic(STAFF, "11") is None
    assert await storage.topic_of(CUSTOMER, second_staff) == "12"


async def test_relays_lead_back_to_the_customer(storage: SqlStorage) -> None:
    await storage.remember_relay(STAFF, "501", CUSTOMER)
    await storage.remember_relay(STAFF, "502", OTHER)
    assert await storage.customer_of_relay(STAFF, "501") == CUSTOMER
    assert await storage.customer_of_relay(STAFF, "502") == OTHER
    assert await storage.customer_of_relay(STAFF, "503") is None
    assert await storage.customer_of_relay(ChatKey("telegram", "-1005678"), "501") is None
    # The customer may write on another channel than the staff chat's.
    await storage.remember_relay(STAFF, "504", ChatKey("whatsapp", "42"))
    assert await storage.customer_of_relay(STAFF, "504") == ChatKey("whatsapp", "42")
    assert await storage.customer_of_relay(ChatKey("whatsapp", STAFF.chat_id), "504") is None


async def test_notes_are_the_customers_newest_oldest_first(
    storage: SqlStorage, turn: Turns
) -> None:
    first = await open_for(storage, turn, CUSTOMER, T0)
    other = await open_for(storage, turn, OTHER, T0)
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        await turn(STAFF, StaffNote(first.id, "Anna", f"first {minute}", at))
    await turn(STAFF, HandoffUpdate(first.id, {"status": HandoffStatus.CLOSED}))
    second = await open_for(storage, turn, CUSTOMER, T2)
    await turn(
        STAFF,
        StaffNote(second.id, "Boris", "second 0", T2),
        StaffNote(other.id, "Anna", "someone else", T2 + timedelta(minutes=1)),
        StaffNote(second.id, "Anna", "second 1", T2 + timedelta(minutes=2)),
        StaffNote(second.id, "Boris", "second 2", T2 + timedelta(minutes=3)),
    )

    notes = await storage.notes(CUSTOMER)

    assert [note.text for note in notes] == [
        "first 1",
        "first 2",
        "second 0",
        "second 1",
        "second 2",
    ]
    assert notes[2] == StaffNote(second.id, "Boris", "second 0", T2)
    assert notes[0].handoff_id == first.id
    assert notes[0].at.utcoffset() == timedelta(0)
    assert [note.text for note in await storage.notes(CUSTOMER, limit=2)] == [
        "second 1",
        "second 2",
    ]
    assert [note.text for note in await storage.notes(OTHER)] == ["someone else"]
    assert await storage.notes(ChatKey("telegram", "44")) == []


async def test_recent_lines_are_the_turns_chat_oldest_first(
    storage: SqlStorage, turn: Turns
) -> None:
    await turn(CUSTOMER, Said(True, "my S19 is down", T0), Said(False, "Which error?", T0))
    await turn(CUSTOMER, Said(True, "fan error", T1), Said(False, "Passing you on", T1))
    await turn(STAFF, Said(False, "staff chat line", T2))

    assert await storage.recent_lines(CUSTOMER, limit=3) == [
        ChatLine(T0, False, "Which error?"),
        ChatLine(T1, True, "fan error"),
        ChatLine(T1, False, "Passing you on"),
    ]
    lines = await storage.recent_lines(CUSTOMER)
    assert [line.text for line in lines] == [
        "my S19 is down",
        "Which error?",
        "fan error",
        "Passing you on",
    ]
    assert all(line.at.utcoffset() == timedelta(0) for line in lines)
    assert await storage.recent_lines(STAFF) == [ChatLine(T2, False, "staff chat line")]
    assert await storage.recent_lines(OTHER) == []


async def test_long_lines_are_cut_to_500_characters(storage: SqlStorage, turn: Turns) -> None:
    await turn(CUSTOMER, Said(True, "a" * 500, T0), Said(True, "b" * 2000, T1))
    exact, cut = await storage.recent_lines(CUSTOMER)
    assert exact.text == "a" * 500
    assert cut.text == "b" * 499 + "…"


async def test_only_the_newest_50_lines_are_kept_per_chat(storage: SqlStorage, turn: Turns) -> None:
    assert CHAT_LINES_KEPT == 50
    await turn(OTHER, Said(True, "other 0", T0), Said(True, "other 1", T0))
    for n in range(0, 60, 6):
        await turn(CUSTOMER, *(Said(n % 2 == 0, f"line {i}", T0) for i in range(n, n + 6)))

    lines = await storage.recent_lines(CUSTOMER, limit=100)

    assert [line.text for line in lines] == [f"line {i}" for i in range(10, 60)]
    assert [line.text for line in await storage.recent_lines(OTHER)] == ["other 0", "other 1"]
    assert await raw.count(storage, "chat_lines") == 52


async def test_stats_count_handoffs_replies_ratings_and_conversations(
    storage: SqlStorage, turn: Turns
) -> None:
    day1 = datetime(2024, 5, 1, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    third, fourth = ChatKey("telegram", "44"), ChatKey("telegram", "45")
    # Before the period: neither its handoff nor its rating nor its chat count.
    old = await open_for(storage, turn, fourth, day1 - timedelta(minutes=1))
    await turn(fourth, Said(True, "long ago", day1 - timedelta(seconds=1)))
    await turn(STAFF, HandoffUpdate(old.id, {"status": "closed", "rating": 1}))

    first = await open_for(storage, turn, CUSTOMER, day1)  # exactly at `since`: counts
    await turn(
        STAFF,
        HandoffUpdate(
            first.id,
            {"first_staff_reply_at": day1 + timedelta(seconds=90), "status": "closed"},
        ),
    )
    await turn(CUSTOMER, HandoffUpdate(first.id, {"rating": 5}))
    second = await open_for(storage, turn, OTHER, day1 + timedelta(hours=15))
    await turn(
        STAFF,
        HandoffUpdate(
            second.id,
            {
                "first_staff_reply_at": day1 + timedelta(hours=15, minutes=30, milliseconds=250),
                "status": "closed",
                "rating": 3,
            },
        ),
    )
    await open_for(storage, turn, CUSTOMER, day2 + timedelta(hours=10))  # no reply yet
    await turn(CUSTOMER, Said(True, "hello", day1 + timedelta(hours=1)))
    await turn(CUSTOMER, Said(True, "again", day2))
    await turn(OTHER, Said(True, "hi", day1 + timedelta(hours=14)))
    await turn(third, Said(False, "only the bot spoke", day2))

    # Midnight UTC, given in Berlin summer time.
    stats = await storage.handoff_stats(day1.astimezone(timezone(timedelta(hours=2))))

    assert stats == HandoffStats(
        handoffs=3,
        per_day=[("2024-05-01", 2), ("2024-05-02", 1)],
        conversations=2,
        first_reply_seconds=[90.0, 1800.25],
        ratings=[5, 3],
        by_channel={
            "telegram": HandoffStats(
                handoffs=3,
                per_day=[("2024-05-01", 2), ("2024-05-02", 1)],
                conversations=2,
                first_reply_seconds=[90.0, 1800.25],
                ratings=[5, 3],
            )
        },
    )
    assert await storage.handoff_stats(day2 + timedelta(days=1)) == HandoffStats(
        handoffs=0, per_day=[], conversations=0, first_reply_seconds=[], ratings=[]
    )


async def test_stats_are_split_by_the_customers_channel(storage: SqlStorage, turn: Turns) -> None:
    day = datetime(2024, 5, 1, tzinfo=UTC)
    whatsapp, web = ChatKey("whatsapp", "15551234567"), ChatKey("web", "w1")
    first = await open_for(storage, turn, CUSTOMER, day)
    await turn(
        STAFF, HandoffUpdate(first.id, {"first_staff_reply_at": day + timedelta(seconds=60)})
    )
    second = await open_for(storage, turn, whatsapp, day + timedelta(hours=1))
    await turn(
        STAFF,
        HandoffUpdate(
            second.id,
            {"first_staff_reply_at": day + timedelta(hours=1, minutes=2), "status": "closed"},
        ),
    )
    await turn(whatsapp, HandoffUpdate(second.id, {"rating": 4}))
    for key in (CUSTOMER, OTHER, whatsapp, web):
        await turn(key, Said(True, "hello", day))

    stats = await storage.handoff_stats(day)

    assert (stats.handoffs, stats.conversations, stats.ratings) == (2, 4, [4])
    assert sorted(stats.by_channel) == ["telegram", "web", "whatsapp"]
    on_whatsapp = stats.by_channel["whatsapp"]
    assert (on_whatsapp.handoffs, on_whatsapp.conversations) == (1, 1)
    assert (on_whatsapp.first_reply_seconds, on_whatsapp.ratings) == ([120.0], [4])
    assert (stats.by_channel["telegram"].handoffs, stats.by_channel["telegram"].conversations) == (
        1,
        2,
    )
    assert stats.by_channel["web"] == HandoffStats(0, [], 1, [], [])


async def test_prune_forgets_old_relays_and_lines_but_keeps_handoffs(
    storage: SqlStorage, turn: Turns
) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    handoff = await open_for(storage, turn, CUSTOMER, long_ago)
    await turn(STAFF, StaffNote(handoff.id, "Anna", "old note", long_ago))
    await storage.set_topic(CUSTOMER, STAFF, "11")
    await storage.remember_relay(STAFF, "old", CUSTOMER)
    await storage.remember_relay(STAFF, "new", CUSTOMER)
    await raw.execute(
        storage,
        "UPDATE staff_relays SET created_at='2020-01-01T00:00:00.000Z' WHERE message_id='old'",
    )
    await turn(CUSTOMER, Said(True, "old line", long_ago), Said(True, "new line", now))

    await storage.prune(older_than_days=7)

    assert await storage.customer_of_relay(STAFF, "old") is None
    assert await storage.customer_of_relay(STAFF, "new") == CUSTOMER
    assert [line.text for line in await storage.recent_lines(CUSTOMER)] == ["new line"]
    assert await storage.open_handoff(CUSTOMER) == handoff
    assert [note.text for note in await storage.notes(CUSTOMER)] == ["old note"]
    assert await storage.topic_of(CUSTOMER, STAFF) == "11"


async def test_a_version_3_file_is_upgraded_to_handoffs(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as old:
        old.executescript(
            MIGRATIONS[0] + MIGRATIONS[1] + MIGRATIONS[2] + "; PRAGMA user_version = 3;"
        )
        old.execute(
            "INSERT INTO conversations (channel, chat_id, language) VALUES ('telegram', '42', 'de')"
        )
    old.close()
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS) >= 4
        state = await upgraded.load(CUSTOMER)
        assert state.language == "de"
        await upgraded.save(CUSTOMER, state, "1", [HandoffOpened(CUSTOMER, "words", T0)])
        await upgraded.set_topic(CUSTOMER, STAFF, "11")
    async with SqliteStorage(path) as reopened:
        handoff = await reopened.open_handoff(CUSTOMER)
        assert handoff is not None
        assert (handoff.reason, handoff.opened_at) == ("words", T0)
        assert await reopened.customer_of_topic(STAFF, "11") == CUSTOMER
