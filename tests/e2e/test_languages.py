"""Russian and Chinese customers end to end: the real bot over real HTTP against the Bot API
emulator, in the language Telegram reports, with questions written in that language."""

from __future__ import annotations

import pytest

from bot.settings import CompanySettings, bundled_kb_path
from faq.loader import load_kb
from handlers.i18n import translator
from tests.botprocess import BotProcess
from tests.emulator import BotApiEmulator, parse_html

pytestmark = [pytest.mark.e2e, pytest.mark.model]

KB = load_kb(bundled_kb_path(), CompanySettings().placeholders())


def plain(html: str) -> str:
    return parse_html(html)[0]


@pytest.mark.parametrize(
    ("language", "telegram_code", "chat", "question", "entry_id"),
    [
        ("ru", "ru", 3001, "Можно ли оплатить заказ в рассрочку?", "instalments"),
        ("zh", "zh-hans", 3002, "可以分期付款吗？", "instalments"),
    ],
)
def test_a_customer_is_served_in_their_language(
    running_bot: BotProcess,
    shared_emulator: BotApiEmulator,
    language: str,
    telegram_code: str,
    chat: int,
    question: str,
    entry_id: str,
) -> None:
    emu, _ = shared_emulator, translator(language)
    commands = {c["command"]: c["description"] for c in emu.my_commands(language_code=language)}
    assert commands["language"] == _("Change the language") != "Change the language"

    emu.send_text(chat, "/start", language_code=telegram_code)
    [greeting] = emu.wait_messages(chat, 1)
    assert "Apexto" in greeting["text"]
    labels = [label for label, _data in emu.buttons(greeting)]
    assert labels[1] == _("📦 Track my order") != "📦 Track my order"

    emu.send_text(chat, question, language_code=telegram_code)
    answer = emu.wait_messages(chat, 2)[-1]
    entry = KB.by_id[entry_id]
    assert answer["text"] == plain(entry.answer_in(language))
    related = [label for label, data in emu.buttons(answer) if data.startswith("faq:show:")]
    assert related == [
        KB.by_id[related_id].question_in(language) for related_id in entry.related[:3]
    ]

    emu.press(chat, "👍", message=answer)
    emu.wait_until(
        lambda: any(
            a.get("text") == _("Thanks for the feedback!") for a in emu.callback_answers.values()
        ),
        what="the thank-you toast in the customer's language",
    )

    emu.send_text(chat, "/language", language_code=telegram_code)
    choices = emu.wait_messages(chat, 3)[-1]
    assert [label for label, _data in emu.buttons(choices)] == ["English", "Русский", "中文"]
    emu.press(chat, "English", message=choices)
    done = emu.wait_messages(chat, 4)[-1]
    assert done["text"].startswith("Language: English.")
    # Chosen: Telegram's language code no longer decides.
    emu.send_text(chat, "/menu", language_code=telegram_code)
    assert emu.wait_messages(chat, 5)[-1]["text"] == "How can I help?"
