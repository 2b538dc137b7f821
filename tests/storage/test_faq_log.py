"""The FAQ's question log, misses and votes on each backend: what stats and gaps read."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.chats import ChatKey, ConversationState
from domain.faq_log import Feedback, LoggedMiss, Miss, QuestionAsked
from domain.handoffs import DigestSent, HandoffOpened
from storage.sql import SqlStorage
from storage.sqlite import MIGRATIONS, SqliteStorage
from tests.factories import Turns
from tests.storage import raw

KEY = ChatKey("telegram", "42")
OTHER = ChatKey("telegram", "43")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def asked(
    question_id: str,
    question: str = "how do I pay?",
    decision: str = "answer",
    entry_id: str | None = "payment_methods",
    language: str = "en",
    at: datetime = NOW,
) -> QuestionAsked:
    return QuestionAsked(question_id, question, language, decision, entry_id, 0.9, at)


async def test_a_miss_reads_back_with_its_question_chat_and_language(
    storage: SqlStorage, turn: Turns
) -> None:
    await turn(
        KEY,
        asked("q1", "поставка в москву?", "fallback", None, language="ru"),
        Miss("q1", "fallback", NOW),
    )
    later = NOW + timedelta(minutes=5)
    await turn(OTHER, asked("q2", at=later))
    await turn(OTHER, Feedback("payment_methods", False, later, "q2"))
    await turn(OTHER, Miss("q2", "not_helpful", later, "payment_methods"))
    assert await storage.misses() == [
        LoggedMiss("поставка в москву?", "fallback", None, "ru", KEY, NOW, "q1"),
        LoggedMiss("how do I pay?", "not_helpful", "payment_methods", "en", OTHER, later, "q2"),
    ]
    assert await storage.misses(since=later) == (await storage.misses())[1:]
    assert await storage.misses(until=later) == (await storage.misses())[:1]
    assert await storage.feedback_counts() == {"payment_methods": (0, 1)}


async def test_a_miss_of_a_question_never_logged_fails_the_turn(
    storage: SqlStorage,
) -> None:
    with pytest.raises(ValueError, match="no logged question q404"):
        await storage.save(KEY, ConversationState(flow="faq"), "1", [Miss("q404", "fallback", NOW)])
    assert await storage.misses() == []
    assert not await storage.is_processed(KEY, "1")


async def test_an_older_file_keeps_its_misses_and_votes(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    with sqlite3.connect(path) as old:
        old.executescript(";".join(MIGRATIONS[:5]) + "; PRAGMA user_version = 5;")
        old.execute(
            "INSERT INTO faq_misses (channel, chat_id, question, reason, entry_id, created_at) "
            "VALUES ('telegram', '42', 'do you sell hosting', 'fallback', NULL, "
            "'2026-11-20T08:00:00.000Z')"
        )
        old.execute(
            "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful) "
            "VALUES ('telegram', '42', 'refund_policy', 0)"
        )
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS)
        assert await upgraded.misses() == [
            LoggedMiss(
                "do you sell hosting",
                "fallback",
                None,
                "en",
                KEY,
                datetime(2026, 11, 20, 8, tzinfo=UTC),
                None,
            )
        ]
        assert await upgraded.feedback_counts() == {"refund_policy": (0, 1)}
        stats = await upgraded.faq_stats(since=datetime(2026, 11, 1, tzinfo=UTC))
        assert stats.missed == [("do you sell hosting", 1)]
        # New rows go in beside the old ones.
        await Turns(upgraded)(KEY, asked("q1", decision="fallback"), Miss("q1", "fallback", NOW))
        assert [miss.question_id for miss in await upgraded.misses()] == [None, "q1"]


async def test_faq_figures_for_a_period(storage: SqlStorage, turn: Turns) -> None:
    before = NOW - timedelta(days=2)
    await turn(KEY, asked("old", "how do I pay?", at=before))
    for number, (decision, entry_id) in enumerate(
        [
            ("answer", "payment_methods"),
            ("answer", "payment_methods"),
            ("answer", "instalments"),
            ("answer", "instalments"),
            ("answer", "payment_methods"),
            ("suggest", "warranty_period"),
            ("fallback", None),
        ]
    ):
        await turn(KEY, asked(f"q{number}", decision=decision, entry_id=entry_id))
    await turn(OTHER, asked("ru", "сколько стоит доставка", "fallback", None, language="ru"))
    # Missed: the suggestion rejected later counts once; the same words in capitals join it.
    await turn(KEY, Miss("q5", "suggested", NOW), Miss("q5", "none_of_these", NOW))
    await turn(KEY, asked("q7", "Do you offer HOSTING?", "fallback", None))
    await turn(KEY, Miss("q6", "fallback", NOW), Miss("q7", "fallback", NOW))
    await turn(KEY, asked("q8", "do you offer hosting?", "fallback", None))
    await turn(OTHER, Miss("q8", "fallback", NOW), Miss("ru", "fallback", NOW))
    await turn(
        KEY,
        Feedback("instalments", True, NOW, "q2"),
        Feedback("instalments", False, NOW, "q3"),
        Feedback("payment_methods", True, NOW),
        Feedback("payment_methods", True, before),
    )

    stats = await storage.faq_stats(since=NOW - timedelta(days=1), top=2)
    assert stats.questions == 10
    assert stats.decisions == {"answer": 5, "suggest": 1, "fallback": 4}
    assert stats.languages == {"en": 9, "ru": 1}
    assert stats.answered == [("payment_methods", 3), ("instalments", 2)]
    assert stats.votes == {"instalments": (1, 1), "payment_methods": (1, 0)}
    assert stats.missed == [("Do you offer HOSTING?", 2), ("how do I pay?", 2)]

    earlier = await storage.faq_stats(since=before, until=NOW)
    assert (earlier.questions, earlier.votes) == (1, {"payment_methods": (1, 0)})


async def test_questions_are_counted_by_the_customers_channel(
    storage: SqlStorage, turn: Turns
) -> None:
    whatsapp = ChatKey("whatsapp", "447700900123")
    await turn(KEY, asked("t1"), asked("t2", "hosting?", "fallback", None))
    await turn(whatsapp, asked("w1"), asked("w2", decision="suggest"))
    await turn(whatsapp, asked("w3", "hosting?", "fallback", None))

    stats = await storage.faq_stats(since=NOW - timedelta(days=1))

    assert stats.decisions == {"answer": 2, "suggest": 1, "fallback": 2}
    assert stats.channels == {
        "telegram": {"answer": 1, "fallback": 1},
        "whatsapp": {"answer": 1, "suggest": 1, "fallback": 1},
    }


async def test_the_last_digest_day_is_remembered(storage: SqlStorage, turn: Turns) -> None:
    assert await storage.last_digest_day() is None
    await turn(KEY, DigestSent(date(2026, 11, 21), NOW), DigestSent(date(2026, 11, 22), NOW))
    assert await storage.last_digest_day() == date(2026, 11, 22)
    with pytest.raises(raw.DUPLICATE_KEY_ERRORS):
        await turn(KEY, DigestSent(date(2026, 11, 22), NOW))


async def test_handoff_figures_can_end_before_now(storage: SqlStorage, turn: Turns) -> None:
    await turn(KEY, HandoffOpened(KEY, "asked", NOW - timedelta(days=1)))
    await turn(OTHER, HandoffOpened(OTHER, "asked", NOW))
    start = NOW - timedelta(days=2)
    assert (await storage.handoff_stats(start)).handoffs == 2
    assert (await storage.handoff_stats(start, until=NOW)).handoffs == 1
