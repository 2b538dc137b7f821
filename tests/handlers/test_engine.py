"""Flows through the engine with the real FAQ and a real SQLite file; no messenger involved."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from domain.chats import ChatKey
from faq.service import FaqService
from handlers.engine import Engine, Services, Turn
from handlers.messages import Media, MediaKind, Reply
from handlers.routes import build_router
from storage.sqlite import SqliteStorage
from tests.factories import message, press, said

pytestmark = pytest.mark.model


def payloads(reply: Reply) -> list[str]:
    return [button.payload for button in reply.flat_buttons]


def vote(answer: Reply, helpful: bool) -> str:
    """The payload of the answer's 👍 or 👎."""
    thumbs = {"👍": True, "👎": False}
    [payload] = [b.payload for b in answer.flat_buttons if thumbs.get(b.label) is helpful]
    return payload


async def answered(engine: Engine, question: str, chat: str) -> Reply:
    [answer] = await said(engine, message(question, chat=chat))
    return answer


async def test_start_greets_with_the_main_menu(engine: Engine) -> None:
    [reply] = await said(engine, message("/start"))
    assert "Apexto" in reply.text
    assert payloads(reply) == [
        "menu:ask",
        "flow:track_order",
        "flow:warranty_check",
        "flow:repair_ticket",
        "flow:handoff",
    ]


async def test_a_question_gets_its_answer_with_related_and_feedback_buttons(
    engine: Engine, faq_service: FaqService
) -> None:
    [reply] = await said(engine, message("Can I pay for my order in instalments?"))
    entry = faq_service.kb.by_id["instalments"]
    assert reply.text == entry.answer
    buttons = payloads(reply)
    assert [f"faq:show:{related}" for related in entry.related[:3]] == [
        b for b in buttons if b.startswith("faq:show:")
    ]
    assert re.fullmatch(r"faq:fb:[0-9a-f]{8}:1", buttons[-2])
    assert buttons[-1] == buttons[-2].removesuffix("1") + "0"


async def test_feedback_is_stored_and_the_vote_buttons_go_away(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    first = await answered(engine, "Can I pay for my order in instalments?", chat="2")
    thumbs_up = await engine.handle(press(vote(first, True), chat="2", message_id="41"))
    [answer] = thumbs_up.replies
    assert answer.replaces == "41"
    assert answer.text == faq_service.kb.by_id["instalments"].answer
    assert not any(p.startswith("faq:fb:") for p in payloads(answer))
    assert thumbs_up.notice == "Thanks for the feedback!"
    second = await answered(engine, "Can I pay for my order in instalments?", chat="1")
    [_, ask_again] = await said(engine, press(vote(second, False)))
    assert "What were you looking for?" in ask_again.text
    assert "flow:handoff" in payloads(ask_again)
    assert await storage.feedback_counts() == {"instalments": (1, 1)}


async def test_every_question_is_logged_masked_with_the_matchers_verdict(
    engine: Engine, storage: SqliteStorage
) -> None:
    await said(engine, message("how can I track my package 4521987"))
    [row] = await storage.db.execute_fetchall(
        "SELECT channel, chat_id, language, question, decision, entry_id, confidence "
        "FROM faq_questions"
    )
    assert row[:6] == (
        "test",
        "1",
        "en",
        "how can I track my package [number]",
        "answer",
        "track_package",
    )
    assert 0 < row[6] <= 1
    assert await storage.misses() == []


async def test_a_thumbs_down_keeps_the_question_that_got_the_answer(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    answer = await answered(engine, "Can I pay for my order in instalments?", chat="3")
    await said(engine, press(vote(answer, False), chat="3"))
    [reply] = await said(engine, message("How long does shipping take?", chat="3"))
    assert reply.text in {entry.answer for entry in faq_service.kb.entries}
    [miss] = await storage.misses()
    assert (miss.question, miss.reason, miss.entry_id) == (
        "Can I pay for my order in instalments?",
        "not_helpful",
        "instalments",
    )
    [(voted_for,)] = await storage.db.execute_fetchall(
        "SELECT q.question FROM faq_feedback f JOIN faq_questions q ON q.id = f.question_id"
    )
    assert voted_for == "Can I pay for my order in instalments?"
    # The rephrasing is a question like any other, logged and answered.
    questions = await storage.db.execute_fetchall("SELECT question FROM faq_questions")
    assert [question for (question,) in questions][-1] == "How long does shipping take?"
    assert (await storage.load(ChatKey("test", "3"))).flow is None


async def test_unanswered_questions_are_kept_for_staff(
    engine: Engine, storage: SqliteStorage
) -> None:
    await said(engine, message("what is the capital of australia", chat="4"))
    [miss] = await storage.misses()
    assert (miss.question, miss.reason) == ("what is the capital of australia", "fallback")


async def test_a_suggestion_is_a_miss_and_so_is_rejecting_it(
    engine: Engine, storage: SqliteStorage
) -> None:
    [choices] = await said(engine, message("payment", chat="6"))
    assert payloads(choices)[-1] == "faq:none"
    await said(engine, press("faq:none", chat="6"))
    assert [(m.question, m.reason) for m in await storage.misses()] == [
        ("payment", "suggested"),
        ("payment", "none_of_these"),
    ]
    assert len({m.question_id for m in await storage.misses()}) == 1


async def test_a_thumbs_down_on_a_chosen_suggestion_names_the_question(
    engine: Engine, storage: SqliteStorage
) -> None:
    [choices] = await said(engine, message("payment", chat="7"))
    chosen = payloads(choices)[0].removeprefix("faq:show:")
    [answer] = await said(engine, press(f"faq:show:{chosen}", chat="7"))
    await said(engine, press(vote(answer, False), chat="7"))
    assert [(m.question, m.reason, m.entry_id) for m in await storage.misses()] == [
        ("payment", "suggested", None),
        ("payment", "not_helpful", chosen),
    ]


async def test_replies_are_queued_in_the_outbox_with_the_turn(
    engine: Engine, storage: SqliteStorage
) -> None:
    outcome = await engine.handle(message("/start", chat="5"))
    assert [m.id for m in await storage.outbox("test")] == [m.id for m in outcome.queued]


async def test_a_failing_handler_apologises_and_keeps_the_state(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]
) -> None:
    async def broken(turn: Turn, args: list[str]) -> None:
        turn.state.flow = "half-done"
        raise RuntimeError("bug in a flow")

    router = build_router()
    router.commands["help"] = broken
    engine = Engine(storage, Services(faq_service, placeholders, storage), router)
    [reply] = await said(engine, message("/help", chat="6", update_id="900"))
    assert "something went wrong" in reply.text
    key = ChatKey("test", "6")
    assert (await storage.load(key)).flow is None
    assert await storage.is_processed(key, "900")


async def test_a_reply_of_plain_text_is_refused_rather_than_sent_as_markup(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]
) -> None:
    async def unescaped(turn: Turn, args: list[str]) -> None:
        # What mypy cannot see: a value typed Any (from the conversation's data).
        text: Any = turn.incoming.text
        turn.say(text)

    router = build_router()
    router.commands["help"] = unescaped
    engine = Engine(storage, Services(faq_service, placeholders, storage), router)
    [reply] = await said(engine, message('/help <a href="https://evil.example">x</a>', chat="7"))
    assert "something went wrong" in reply.text
    assert "evil" not in reply.text


async def test_a_wall_of_text_gets_a_clear_answer(engine: Engine) -> None:
    [reply] = await said(engine, message("Hello " * 2000))
    assert "too long" in reply.text
    assert "flow:handoff" in payloads(reply)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (MediaKind.VOICE, "can't listen"),
        (MediaKind.STICKER, "only read text"),
        (MediaKind.LOCATION, "don't need that"),
        (MediaKind.CONTACT, "don't need that"),
        (MediaKind.DOCUMENT, "Repair / second return"),
        (MediaKind.OTHER, "only read text"),
    ],
)
async def test_each_kind_of_media_gets_a_fitting_answer(
    engine: Engine, kind: MediaKind, expected: str
) -> None:
    [reply] = await said(engine, message(media=(Media(kind),)))
    assert expected in reply.text


async def test_an_unrelated_question_falls_back_honestly(engine: Engine) -> None:
    [reply] = await said(engine, message("what is the capital of australia"))
    assert "don't know" in reply.text
    assert "flow:handoff" in payloads(reply)


async def test_one_vote_counts_per_answer_shown_and_only_in_its_chat(
    engine: Engine, storage: SqliteStorage
) -> None:
    answer = await answered(engine, "Can I pay for my order in instalments?", chat="8")
    # Another chat pressing this answer's button (a forged payload) counts nothing.
    [stale] = await said(engine, press(vote(answer, False), chat="9"))
    assert "no longer valid" in stale.text
    await said(engine, press(vote(answer, True), chat="8"))
    again = await engine.handle(press(vote(answer, True), chat="8"))
    assert (again.replies, again.notice) == ([], "Your vote is already counted.")
    against = await engine.handle(press(vote(answer, False), chat="8"))
    assert against.replies == []
    assert await storage.feedback_counts() == {"instalments": (1, 0)}
    # Shown again, it can be voted on again: a new answer, a new vote.
    repeated = await answered(engine, "Can I pay for my order in instalments?", chat="8")
    await said(engine, press(vote(repeated, True), chat="8"))
    assert await storage.feedback_counts() == {"instalments": (2, 0)}


async def test_a_related_button_shows_that_entry(engine: Engine, faq_service: FaqService) -> None:
    [reply] = await said(engine, press("faq:show:payment_methods"))
    assert reply.text == faq_service.kb.by_id["payment_methods"].answer


@pytest.mark.parametrize(
    "payload",
    [
        "faq:show:no_such_entry",
        "faq:fb:instalments:7",
        "faq:fb:instalments:1",
        "faq:fb:0123abcd:1",
        "bogus",
        "menu:hack",
        "flow:teleport",
        "faq",
        "",
    ],
)
async def test_forged_or_stale_buttons_get_the_menu(engine: Engine, payload: str) -> None:
    [reply] = await said(engine, press(payload))
    assert "no longer valid" in reply.text
    assert "menu:ask" in payloads(reply)


async def test_the_same_update_twice_is_answered_once(engine: Engine) -> None:
    first = await said(engine, message("/start", update_id="555"))
    again = await said(engine, message("/start", update_id="555"))
    assert len(first) == 1
    assert again == []
    assert (await engine.handle(message("/start", update_id="555"))).duplicate


async def test_two_processes_given_one_update_answer_it_once(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]
) -> None:
    async with SqliteStorage(storage.path) as elsewhere:
        other = Engine(elsewhere, Services(faq_service, placeholders, elsewhere), build_router())
        outcomes = await asyncio.gather(
            engine.handle(message("/start", update_id="777")),
            other.handle(message("/start", update_id="777")),
        )
    assert sorted(outcome.duplicate for outcome in outcomes) == [False, True]
    assert len(await storage.outbox("test")) == 1


async def test_a_turn_waits_for_the_databases_lock_on_its_chat(
    engine: Engine, storage: SqliteStorage
) -> None:
    """The engine holds the store's chat lock, which on PostgreSQL spans every process:
    while someone else holds it, the chat's turn waits and other chats go on."""
    async with storage.chat_lock(ChatKey("test", "1")):
        waiting = asyncio.create_task(engine.handle(message("/start", update_id="801")))
        other = await engine.handle(message("/start", chat="2", update_id="802"))
        assert len(other.queued) == 1
        await asyncio.sleep(0.1)
        assert not waiting.done()
    assert len((await waiting).queued) == 1


async def test_media_outside_a_flow_asks_for_text(engine: Engine) -> None:
    photo = Media(MediaKind.PHOTO, file_ref="abc")
    [reply] = await said(engine, message(media=(photo,)))
    assert "only read text" in reply.text


async def test_unknown_command_and_cancel_with_nothing_to_cancel(engine: Engine) -> None:
    [unknown] = await said(engine, message("/frobnicate"))
    assert "/help" in unknown.text
    [cancel] = await said(engine, message("/cancel"))
    assert "nothing to cancel" in cancel.text


async def test_state_survives_a_new_engine(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], tmp_path: Path
) -> None:
    key = ChatKey("test", "9")
    state = await storage.load(key)
    state.flow, state.step = "repair", "waiting_for_serial"
    await storage.save(key, state, None)
    async with SqliteStorage(tmp_path / "bot.db") as reopened:
        engine = Engine(reopened, Services(faq_service, placeholders, reopened), build_router())
        [reply] = await said(engine, message("/cancel", chat="9"))
        assert reply.text.startswith("Cancelled")
        assert (await reopened.load(key)).flow is None


async def test_one_chat_in_order_while_others_run_in_parallel(engine: Engine) -> None:
    questions = ["/start", "How can I track my package?", "/help", "Can I get a discount?"]
    results = await asyncio.gather(
        *[engine.handle(message(q, chat="a")) for q in questions],
        *[engine.handle(message(q, chat="b")) for q in questions],
    )
    texts = [[reply.text for reply in outcome.replies] for outcome in results]
    assert all(len(replies) == 1 for replies in texts)
    assert texts[:4] == texts[4:]
