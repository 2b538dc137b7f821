"""The SQLite backend on a real file, fresh per test."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.base import ChatKey, ConversationState, Feedback
from storage.sqlite import MIGRATIONS, SqliteStorage

KEY = ChatKey("telegram", "42")


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with SqliteStorage(tmp_path / "bot.db") as opened:
        yield opened


async def test_a_new_file_is_migrated_to_the_latest_version(storage: SqliteStorage) -> None:
    assert await storage.schema_version() == len(MIGRATIONS)


async def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "bot.db") as first:
        await first.save(KEY, ConversationState(flow="faq"), "1")
    async with SqliteStorage(tmp_path / "bot.db") as second:
        assert await second.schema_version() == len(MIGRATIONS)
        assert (await second.load(KEY)).flow == "faq"


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
    await storage.save(KEY, ConversationState(), "1", [Feedback("refunds", True)])
    await storage.save(
        KEY, ConversationState(), "2", [Feedback("refunds", False), Feedback("shipping", True)]
    )
    assert await storage.feedback_counts() == {"refunds": (1, 1), "shipping": (1, 0)}


async def test_a_failing_turn_leaves_nothing_behind(storage: SqliteStorage) -> None:
    await storage.save(KEY, ConversationState(flow="faq"), "1")
    await storage.db.execute("DROP TABLE faq_feedback")
    await storage.db.commit()
    with pytest.raises(sqlite3.OperationalError):
        await storage.save(KEY, ConversationState(flow="repair"), "2", [Feedback("x", True)])
    assert (await storage.load(KEY)).flow == "faq"
    assert not await storage.is_processed(KEY, "2")
