"""The SQLite backend on a real file, fresh per test."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.chats import ChatKey, ConversationState
from domain.faq_log import Feedback
from storage.base import InboxUpdate
from storage.sqlite import MIGRATIONS, DatabaseMissing, SqliteStorage

KEY = ChatKey("telegram", "42")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def test_a_new_file_is_migrated_to_the_latest_version(storage: SqliteStorage) -> None:
    assert await storage.schema_version() == len(MIGRATIONS)


async def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "bot.db") as first:
        await first.save(KEY, ConversationState(flow="faq"), "1")
    async with SqliteStorage(tmp_path / "bot.db") as second:
        assert await second.schema_version() == len(MIGRATIONS)
        assert (await second.load(KEY)).flow == "faq"


async def test_without_create_a_missing_file_is_refused_and_not_made(tmp_path: Path) -> None:
    mistyped, no_folder = tmp_path / "minerdsk.db", tmp_path / "nope" / "bot.db"
    for path in (mistyped, no_folder):
        with pytest.raises(DatabaseMissing, match=f"no database at {path}$"):
            await SqliteStorage.open(path, create=False)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    await (await SqliteStorage.open(tmp_path / "bot.db")).close()
    async with SqliteStorage(tmp_path / "bot.db", create=False) as existing:
        assert await existing.schema_version() == len(MIGRATIONS)


async def test_unknown_chat_gets_a_fresh_state(storage: SqliteStorage) -> None:
    assert await storage.load(KEY) == ConversationState()


async def test_state_round_trips(storage: SqliteStorage) -> None:
    state = ConversationState(
        flow="repair",
        step="waiting_for_serial",
        data={"model": "S19", "photos": ["a", "b"]},
        language="ru",
    )
    await storage.save(KEY, state, update_id="7")
    assert await storage.load(KEY) == state
    assert await storage.load(ChatKey("console", "42")) == ConversationState()


async def test_the_processed_mark_is_per_channel(storage: SqliteStorage) -> None:
    await storage.save(KEY, ConversationState(), update_id="100")
    assert await storage.is_processed(KEY, "100")
    assert not await storage.is_processed(KEY, "101")
    assert not await storage.is_processed(ChatKey("console", "42"), "100")


async def test_feedback_is_saved_with_the_turn(storage: SqliteStorage) -> None:
    await storage.save(KEY, ConversationState(), "1", [Feedback("refunds", True, NOW)])
    await storage.save(
        KEY,
        ConversationState(),
        "2",
        [Feedback("refunds", False, NOW), Feedback("shipping", True, NOW)],
    )
    assert await storage.feedback_counts() == {"refunds": (1, 1), "shipping": (1, 0)}


async def test_a_failing_turn_leaves_nothing_behind(storage: SqliteStorage) -> None:
    await storage.save(KEY, ConversationState(flow="faq"), "1")
    await storage.db.execute("DROP TABLE faq_feedback")
    await storage.db.commit()
    with pytest.raises(sqlite3.OperationalError):
        await storage.save(KEY, ConversationState(flow="repair"), "2", [Feedback("x", True, NOW)])
    assert (await storage.load(KEY)).flow == "faq"
    assert not await storage.is_processed(KEY, "2")


async def test_a_file_from_the_first_release_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        old.execute(
            "INSERT INTO conversations (channel, chat_id, flow) VALUES ('telegram', '42', 'faq')"
        )
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS)
        assert (await upgraded.load(KEY)).flow == "faq"
        assert await upgraded.outbox("telegram") == []


def update(update_id: str) -> InboxUpdate:
    return InboxUpdate("telegram", update_id, {"update_id": int(update_id)})


async def test_the_inbox_keeps_each_update_once_in_arrival_order(storage: SqliteStorage) -> None:
    await storage.receive([update("7"), update("5")])
    await storage.receive([update("5"), update("9")])
    assert [u.update_id for u in await storage.inbox("telegram")] == ["7", "5", "9"]
    assert await storage.inbox("console") == []


async def test_processing_or_discarding_takes_an_update_out_of_the_inbox(
    storage: SqliteStorage,
) -> None:
    await storage.receive([update("1"), update("2"), update("3")])
    await storage.save(KEY, ConversationState(), "1")
    await storage.discard("telegram", "3")
    assert [u.update_id for u in await storage.inbox("telegram")] == ["2"]


async def test_replies_go_to_their_own_chats_and_merged_updates_count_as_processed(
    storage: SqliteStorage,
) -> None:
    staff = ChatKey(KEY.channel, "-100")
    await storage.receive([InboxUpdate(KEY.channel, u, {}) for u in ("5", "6", "7")])
    queued = await storage.save(
        KEY,
        ConversationState(),
        "5",
        replies=[(KEY, {"text": "to you"}), (staff, {"text": "to staff"})],
        also_processed=["6"],
    )
    assert [(m.key, m.body["text"]) for m in queued] == [(KEY, "to you"), (staff, "to staff")]
    assert [await storage.is_processed(KEY, u) for u in ("5", "6", "7")] == [True, True, False]
    assert [u.update_id for u in await storage.inbox(KEY.channel)] == ["7"]


async def test_replies_wait_in_the_outbox_until_delivered_or_failed(
    storage: SqliteStorage,
) -> None:
    bodies = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    queued = await storage.save(KEY, ConversationState(), "1", replies=[(KEY, b) for b in bodies])
    assert [m.body for m in queued] == bodies
    first, second, third = queued
    await storage.mark_delivered(first.id)
    await storage.mark_progress(second.id, 2)
    await storage.mark_failed(third.id, "Forbidden: bot was blocked by the user")
    [left] = await storage.outbox("telegram")
    assert (left.id, left.key, left.body, left.parts_sent) == (second.id, KEY, {"text": "two"}, 2)


async def test_prune_forgets_old_processed_marks_only(storage: SqliteStorage) -> None:
    await storage.save(KEY, ConversationState(), "old")
    await storage.save(KEY, ConversationState(), "new")
    await storage.db.execute(
        "UPDATE processed_updates SET processed_at='2020-01-01T00:00:00Z' WHERE update_id='old'"
    )
    await storage.db.commit()
    await storage.prune(older_than_days=7)
    assert not await storage.is_processed(KEY, "old")
    assert await storage.is_processed(KEY, "new")
