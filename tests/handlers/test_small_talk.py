"""Small talk through the engine: its own reply, in the customer's language, never an entry's
answer, never a miss, never a handoff."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.chats import ChatKey
from faq.service import FaqService
from handlers.engine import Engine, Services, StaffDesk
from handlers.messages import Incoming
from handlers.routes import build_router
from storage.sqlite import SqliteStorage
from tests.factories import message, said

pytestmark = pytest.mark.model

STAFF = "-1001"
ADMIN = "77"
GIBBERISH = ("asdkjh qwpoeiu zxmcnb", "lkjqwe poiuyt mnbvcx")
# Questions the shipped KB cannot answer, in Russian and Chinese.
UNANSWERED = {"ru": "посоветуй хороший рецепт борща", "zh": "推荐一个红烧肉的做法"}
MENU = ["menu:ask", "flow:track_order", "flow:warranty_check", "flow:repair_ticket", "flow:handoff"]


def make_engine(storage: SqliteStorage, faq: FaqService, placeholders: dict[str, str]) -> Engine:
    """With a staff chat, so that a handoff would show, and an admin for /faq_test."""
    desk = StaffDesk(chat=ChatKey("test", STAFF), admin_ids=frozenset({ADMIN}))
    return Engine(storage, Services(faq, placeholders, storage, staff=desk), build_router())


@pytest.fixture
def engine(storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]) -> Engine:
    return make_engine(storage, faq_service, placeholders)


def staff_says(text: str) -> Incoming:
    return Incoming(
        channel="test",
        chat_id=STAFF,
        user_id=ADMIN,
        text=text,
        user_name="Bob Rep",
        message_id="5",
        staff=True,
        update_id=f"staff-{text}",
    )


def reply_of(faq_service: FaqService, kind: str, language: str = "en") -> str:
    [small_talk] = [k for k in faq_service.kb.small_talk.kinds if k.kind == kind]
    return small_talk.reply_in(language)


async def nothing_logged(storage: SqliteStorage, chat: str = "1") -> None:
    """No question, no miss, no handoff: the FAQ's figures do not know it happened."""
    assert await storage.misses() == []
    assert await storage.db.execute_fetchall("SELECT question FROM faq_questions") == []
    stats = await storage.faq_stats(since=datetime(2000, 1, 1, tzinfo=UTC))
    assert (stats.decisions, stats.missed) == ({}, [])
    assert await storage.open_handoff(ChatKey("test", chat)) is None


async def test_hi_gets_a_greeting_and_the_menu(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    [reply] = await said(engine, message("hi"))
    assert reply.text == reply_of(faq_service, "greeting")
    assert "Apexto" in reply.text
    assert [b.payload for b in reply.flat_buttons] == MENU
    await nothing_logged(storage)


async def test_thanks_gets_its_own_reply(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    [reply] = await said(engine, message("thanks!"))
    assert reply.text == reply_of(faq_service, "thanks")
    assert reply.flat_buttons == []
    await nothing_logged(storage)


@pytest.mark.parametrize("text", ["ok", "got it", "👍", "ok 👍", "Got it, thanks"])
async def test_an_acknowledgement_gets_its_own_reply(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService, text: str
) -> None:
    [reply] = await said(engine, message(text))
    kind = "thanks" if "thanks" in text else "acknowledgement"
    assert reply.text == reply_of(faq_service, kind)
    assert reply.flat_buttons == []
    await nothing_logged(storage)


async def test_ok_bye_after_a_fallback_hands_nobody_over(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    [fallback] = await said(engine, message(GIBBERISH[0]))
    assert "don't know the answer" in fallback.text
    [bye] = await said(engine, message("ok bye"))
    assert bye.text == reply_of(faq_service, "goodbye")
    assert await storage.open_handoff(ChatKey("test", "1")) is None
    assert [m.question for m in await storage.misses()] == [GIBBERISH[0]]


async def test_small_talk_neither_grows_nor_resets_the_misses_in_a_row(
    engine: Engine, storage: SqliteStorage
) -> None:
    """Two questions in a row the bot could not answer still hand over, whatever small talk
    came between them: it is not a question."""
    await said(engine, message(GIBBERISH[0]))
    await said(engine, message("thanks"))
    replies = await said(engine, message(GIBBERISH[1]))
    assert "passing you to a person" in replies[0].text
    assert await storage.open_handoff(ChatKey("test", "1")) is not None


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("привет", "greeting", "ru"),
        ("спасибо", "thanks", "ru"),
        ("ок", "acknowledgement", "ru"),
        ("понятно", "acknowledgement", "ru"),
        ("пока", "goodbye", "ru"),
        ("你好", "greeting", "zh"),
        ("谢谢", "thanks", "zh"),
        ("好的", "acknowledgement", "zh"),
        ("明白了", "acknowledgement", "zh"),
        ("再见", "goodbye", "zh"),
    ],
)
async def test_small_talk_in_russian_and_chinese_is_answered_in_it(
    engine: Engine,
    storage: SqliteStorage,
    faq_service: FaqService,
    text: str,
    kind: str,
    language: str,
) -> None:
    [reply] = await said(engine, message(text, language="en"))
    assert reply.text == reply_of(faq_service, kind, language)
    assert reply.text != faq_service.kb.by_id["talk_to_human"].answer_in(language)
    # Written in the language: the chat is in it now, as after a question.
    state = await storage.load(ChatKey("test", "1"))
    assert (state.language, state.language_chosen) == (language, True)
    if kind == "greeting":
        assert [b.payload for b in reply.flat_buttons] == MENU
        assert reply.flat_buttons[1].label != "📦 Track my order"
    else:
        assert reply.flat_buttons == []
    await nothing_logged(storage)


@pytest.mark.parametrize(("language", "bye"), [("ru", "ок, пока"), ("zh", "好的，再见")])
async def test_a_goodbye_after_a_fallback_in_russian_and_chinese_hands_nobody_over(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService, language: str, bye: str
) -> None:
    question = UNANSWERED[language]
    [fallback] = await said(engine, message(question, language=language))
    assert [b.payload for b in fallback.flat_buttons] == ["flow:handoff", "menu:show"]
    [reply] = await said(engine, message(bye, language=language))
    assert reply.text == reply_of(faq_service, "goodbye", language)
    assert await storage.open_handoff(ChatKey("test", "1")) is None
    assert [m.question for m in await storage.misses()] == [question]


async def test_are_you_a_bot_offers_a_person_and_hands_nobody_over(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    for chat, (text, language) in enumerate(
        [("are you a bot?", "en"), ("ты бот?", "ru"), ("你是机器人吗", "zh")]
    ):
        [reply] = await said(engine, message(text, chat=str(chat)))
        assert reply.text == reply_of(faq_service, "are_you_a_bot", language)
        assert [b.payload for b in reply.flat_buttons] == ["flow:handoff"]
        await nothing_logged(storage, str(chat))
    # Asking for a person in words still hands over.
    [told, _card] = await said(engine, message("can I talk to a human", chat="9"))
    assert "sales rep" in told.text


async def test_a_question_after_a_greeting_gets_its_answer(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    asked = [
        ("hi, how long does delivery take?", "en"),
        ("Привет! Сколько идёт доставка?", "ru"),
        ("你好，发货要多久？", "zh"),
    ]
    for chat, (text, language) in enumerate(asked):
        [reply] = await said(engine, message(text, chat=str(chat)))
        assert reply.text == faq_service.kb.by_id["delivery_time"].answer_in(language)
    # Logged as the customer wrote it.
    questions = await storage.db.execute_fetchall("SELECT question, decision FROM faq_questions")
    assert [tuple(row) for row in questions] == [(text, "answer") for text, _ in asked]


async def test_faq_test_shows_small_talk_and_the_question_it_opens(engine: Engine) -> None:
    [reply] = await said(engine, staff_says("/faq_test thanks!"))
    assert reply.text.splitlines() == [
        "🔎 <b>FAQ test</b>: <i>thanks!</i>",
        "Decision: <b>small talk</b>: the customer gets the KB's reply to it",
        "Small talk: <code>thanks</code>",
    ]
    [reply] = await said(engine, staff_says("/faq_test hi, how long does <b>delivery</b> take?"))
    lines = reply.text.splitlines()
    assert lines[1].startswith("Decision: <b>answer</b>")
    # What the customer wrote is escaped, here too.
    assert lines[2] == (
        "Small talk left out, matched as: <i>how long does &lt;b&gt;delivery&lt;/b&gt; take?</i>"
    )
    assert "1. <code>delivery_time</code>" in reply.text


async def test_staff_edit_a_reply_and_add_a_phrase_like_the_kb(
    storage: SqliteStorage, editable_faq: FaqService, placeholders: dict[str, str]
) -> None:
    """small_talk.yaml is a KB file: an edit is served after the reload the running bot does
    when a file changes (faq.reload_interval_seconds)."""
    engine = make_engine(storage, editable_faq, placeholders)
    path = editable_faq.kb_path / "small_talk.yaml"
    text = path.read_text(encoding="utf-8")
    old = reply_of(editable_faq, "thanks")
    [reply] = await said(engine, message("thanks!"))
    assert reply.text == old
    assert editable_faq.kb.small_talk.read("much obliged").kind is None

    new_reply = "You are <b>very</b> welcome, from all of us at {company_name}!"
    edited = text.replace("      - cheers\n", "      - cheers\n      - much obliged\n", 1)
    start = edited.index("    reply:\n      en: ", edited.index("- kind: thanks"))
    end = edited.index("\n", start + len("    reply:\n"))
    edited = edited[:start] + f"    reply:\n      en: {new_reply}" + edited[end:]
    path.write_text(edited, encoding="utf-8")
    report = editable_faq.reload()
    assert report.accepted, report.problems
    assert report.changed == ("small_talk.yaml",)

    expected = new_reply.replace("{company_name}", placeholders["company_name"])
    for chat, text in enumerate(["thanks!", "much obliged", "Much obliged!!"], 3):
        [reply] = await said(engine, message(text, chat=str(chat)))
        assert reply.text == expected
    await nothing_logged(storage, "3")
    # The other languages' replies were left as they were.
    [reply] = await said(engine, message("спасибо", chat="9", language="ru"))
    assert reply.text == reply_of(editable_faq, "thanks", "ru") != expected
