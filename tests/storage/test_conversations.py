"""Conversation state, processed updates and the turn's atomic save, on each backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from domain.chats import ChatKey, ConversationState
from domain.faq_log import Feedback
from storage.base import Record
from storage.sql import SqlStorage
from storage.sql.conversations import WRITERS
from tests.storage import raw

KEY = ChatKey("telegram", "42")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def test_unknown_chat_gets_a_fresh_state(storage: SqlStorage) -> None:
    assert await storage.load(KEY) == ConversationState()


async def test_state_round_trips(storage: SqlStorage) -> None:
    state = ConversationState(
        flow="repair",
        step="waiting_for_serial",
        data={"model": "S19", "photos": ["a", "b"]},
        language="ru",
    )
    await storage.save(KEY, state, update_id="7")
    assert await storage.load(KEY) == state
    assert await storage.load(ChatKey("console", "42")) == ConversationState()


async def test_the_processed_mark_is_per_channel(storage: SqlStorage) -> None:
    await storage.save(KEY, ConversationState(), update_id="100")
    assert await storage.is_processed(KEY, "100")
    assert not await storage.is_processed(KEY, "101")
    assert not await storage.is_processed(ChatKey("console", "42"), "100")


async def test_feedback_is_saved_with_the_turn(storage: SqlStorage) -> None:
    await storage.save(KEY, ConversationState(), "1", [Feedback("refunds", True, NOW)])
    await storage.save(
        KEY,
        ConversationState(),
        "2",
        [Feedback("refunds", False, NOW), Feedback("shipping", True, NOW)],
    )
    assert await storage.feedback_counts() == {"refunds": (1, 1), "shipping": (1, 0)}


async def test_a_failing_turn_leaves_nothing_behind(storage: SqlStorage) -> None:
    await storage.save(KEY, ConversationState(flow="faq"), "1")
    await raw.execute(storage, "DROP TABLE faq_feedback")
    with pytest.raises(raw.DATABASE_ERRORS):
        await storage.save(KEY, ConversationState(flow="repair"), "2", [Feedback("x", True, NOW)])
    assert (await storage.load(KEY)).flow == "faq"
    assert not await storage.is_processed(KEY, "2")


async def test_prune_forgets_old_processed_marks_only(storage: SqlStorage) -> None:
    await storage.save(KEY, ConversationState(), "old")
    await storage.save(KEY, ConversationState(), "new")
    await raw.execute(
        storage,
        "UPDATE processed_updates SET processed_at='2020-01-01T00:00:00Z' WHERE update_id='old'",
    )
    await storage.prune(older_than_days=7)
    assert not await storage.is_processed(KEY, "old")
    assert await storage.is_processed(KEY, "new")


def test_every_record_a_turn_may_carry_has_its_writer() -> None:
    assert set(WRITERS) == set(get_args(Record))
