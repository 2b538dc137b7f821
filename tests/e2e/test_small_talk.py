"""Small talk end to end in English, Russian and Chinese: the real bot, with a staff forum,
over real HTTP against the Bot API emulator. A greeting, thanks and a goodbye after a
fallback get the KB's own replies; nobody is handed over, nothing is logged as a question.
One bot for the module: starts are expensive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import CompanySettings, bundled_kb_path
from faq.loader import load_kb
from handlers.i18n import translator
from tests.botprocess import BotProcess
from tests.e2e.conftest import Backend, launched
from tests.emulator import BotApiEmulator, parse_html

pytestmark = [pytest.mark.e2e, pytest.mark.model]

FORUM = -1001234567890
ALWAYS_OPEN = {
    "MINERDESK_HANDOFF__BUSINESS_HOURS__DAYS": '["mon","tue","wed","thu","fri","sat","sun"]',
    "MINERDESK_HANDOFF__BUSINESS_HOURS__OPENS": "00:00",
    "MINERDESK_HANDOFF__BUSINESS_HOURS__CLOSES": "23:59:59",
}
KB = load_kb(bundled_kb_path(), CompanySettings().placeholders())
# (language, Telegram's code, chat, greeting, thanks, a question the KB cannot answer, bye)
CUSTOMERS = [
    ("en", "en", 4001, "hi", "thanks!", "asdkjh qwpoeiu zxmcnb", "ok bye"),
    ("ru", "ru", 4002, "привет", "спасибо", "посоветуй хороший рецепт борща", "ок, пока"),
    ("zh", "zh-hans", 4003, "你好", "谢谢", "推荐一个红烧肉的做法", "好的，再见"),
]
MENU = ["menu:ask", "flow:track_order", "flow:warranty_check", "flow:repair_ticket", "flow:handoff"]


@pytest.fixture(scope="module")
def staffed_bot(
    shared_emulator: BotApiEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
    backend: Backend,
) -> Iterator[BotProcess]:
    """One bot with a staff forum open around the clock, so that a handoff would show."""
    shared_emulator.add_forum(FORUM)
    data = tmp_path_factory.mktemp("small-talk-bot") / "data"
    with launched(shared_emulator, data, shared_cache, backend) as process:
        process.env.update(ALWAYS_OPEN, MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM))
        process.start()
        yield process


def reply(kind: str, language: str) -> str:
    [small_talk] = [k for k in KB.small_talk.kinds if k.kind == kind]
    return parse_html(small_talk.reply_in(language))[0]


def says(emu: BotApiEmulator, chat: int, text: str, code: str) -> dict[str, object]:
    """The bot's one reply to `text`."""
    seen = len(emu.messages(chat))
    emu.send_text(chat, text, language_code=code)
    return emu.wait_messages(chat, seen + 1)[-1]


@pytest.mark.parametrize(
    ("language", "code", "chat", "greeting", "thanks", "unanswered", "bye"),
    CUSTOMERS,
    ids=[customer[0] for customer in CUSTOMERS],
)
def test_small_talk_is_answered_and_hands_nobody_over(
    staffed_bot: BotProcess,
    shared_emulator: BotApiEmulator,
    language: str,
    code: str,
    chat: int,
    greeting: str,
    thanks: str,
    unanswered: str,
    bye: str,
) -> None:
    emu, _ = shared_emulator, translator(language)
    hello = says(emu, chat, greeting, code)
    assert hello["text"] == reply("greeting", language)
    assert "Apexto" in str(hello["text"])
    assert [data for _label, data in emu.buttons(hello)] == MENU
    assert emu.buttons(hello)[1][0] == _("📦 Track my order")

    assert says(emu, chat, thanks, code)["text"] == reply("thanks", language)

    fallback = says(emu, chat, unanswered, code)
    assert fallback["text"] == _(
        "Sorry, I don't know the answer to that. Try asking in other words, or talk to a "
        "person from our team."
    )
    # The second message in a row after a fallback, and not a question: no handoff.
    assert says(emu, chat, bye, code)["text"] == reply("goodbye", language)

    staffed_bot.wait_outbox_empty()
    assert emu.topics(FORUM) == {}
    assert not any("Handoff" in str(m.get("text")) for m in emu.messages(FORUM))
    handoffs = "SELECT COUNT(*) FROM handoffs WHERE chat_id = ?"
    assert staffed_bot.query(handoffs, str(chat)) == [(0,)]
    # The real question is the one miss; the small talk is not in the FAQ's log at all.
    misses = "SELECT question, reason FROM faq_misses WHERE chat_id = ?"
    assert staffed_bot.query(misses, str(chat)) == [(unanswered, "fallback")]
    logged = {question for (question,) in staffed_bot.query("SELECT question FROM faq_questions")}
    assert unanswered in logged
    assert not logged & {greeting, thanks, bye}


def test_a_second_real_miss_still_hands_over(
    staffed_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    """The control: small talk between two misses leaves them two in a row."""
    emu, chat = shared_emulator, 4004
    says(emu, chat, "asdkjh qwpoeiu zxmcnb", "en")
    says(emu, chat, "thanks", "en")
    emu.send_text(chat, "lkjqwe poiuyt mnbvcx")
    emu.wait_until(
        lambda: any("passing you to a person" in str(m.get("text")) for m in emu.messages(chat)),
        what="the handoff after the second miss",
    )
    emu.wait_until(lambda: len(emu.topics(FORUM)) == 1, what="the customer's topic")
    assert "faq.small_talk kind=thanks" in staffed_bot.log
