"""Russian and Chinese customers through the engine: interface, answers and matching in their
language, /language, and the choice kept per chat."""

from __future__ import annotations

import pytest

from domain.chats import ChatKey
from faq.service import FaqService
from faq.text import script_language
from handlers.engine import Engine
from storage.sqlite import SqliteStorage
from tests.factories import message, press, said

pytestmark = pytest.mark.model


def test_the_script_tells_russian_and_chinese_apart() -> None:
    assert script_language("S19 не включается") == "ru"
    assert script_language("S19j Pro 算力板坏了") == "zh"
    assert script_language("how long is the warranty") is None
    assert script_language("12345 ?!") is None


async def test_the_menu_follows_the_messenger_language(engine: Engine) -> None:
    [russian] = await said(engine, message("/start", chat="1", language="ru-RU"))
    assert "Здравствуйте" in russian.text or "Привет" in russian.text
    assert russian.flat_buttons[1].label.startswith("📦")
    assert "Отслед" in russian.flat_buttons[1].label
    [chinese] = await said(engine, message("/start", chat="2", language="zh-hans"))
    assert "Apexto" in chinese.text
    assert any("订单" in button.label for button in chinese.flat_buttons)
    [other] = await said(engine, message("/start", chat="3", language="de"))
    assert other.text.startswith("Hello!")


@pytest.mark.parametrize(
    ("question", "language", "entry_id"),
    [
        ("Можно оплатить заказ в рассрочку?", "ru", "instalments"),
        ("可以分期付款吗？", "zh", "instalments"),
        ("сколько идет доставка", "ru", "delivery_time"),
        ("发货后多久能到", "zh", "delivery_time"),
    ],
)
async def test_a_question_in_russian_or_chinese_is_answered_in_it(
    engine: Engine, faq_service: FaqService, question: str, language: str, entry_id: str
) -> None:
    [reply] = await said(engine, message(question, language="en"))
    entry = faq_service.kb.by_id[entry_id]
    assert reply.text == entry.answer_in(language)
    related = [b for b in reply.flat_buttons if b.payload.startswith("faq:show:")]
    assert related
    assert all(
        b.label == faq_service.kb.by_id[b.payload.split(":")[2]].question_in(language)
        for b in related
    )
    # Writing in a language is choosing it: the Telegram setting no longer overrides it.
    [menu] = await said(engine, message("/menu", language="en"))
    assert menu.text != "How can I help?"


async def test_latin_text_in_a_russian_chat_is_answered_in_russian(
    engine: Engine, faq_service: FaqService
) -> None:
    [reply] = await said(engine, message("Can I pay with USDT?", language="ru"))
    assert reply.text == faq_service.kb.by_id["payment_methods"].answer_in("ru")


async def test_language_command_sets_and_keeps_the_language(
    engine: Engine, storage: SqliteStorage
) -> None:
    [choices] = await said(engine, message("/language", language="en"))
    assert [b.payload for b in choices.flat_buttons] == ["lang:en", "lang:ru", "lang:zh"]
    assert [b.label for b in choices.flat_buttons] == ["English", "Русский", "中文"]
    [done] = await said(engine, press("lang:zh"))
    assert done.text.startswith("语言")
    state = await storage.load(ChatKey("test", "1"))
    assert (state.language, state.language_chosen) == ("zh", True)
    # Telegram still says English: the choice stands, across a restart of the engine too.
    [menu] = await said(engine, message("/menu", language="en"))
    assert "帮" in menu.text
    [english] = await said(engine, message("/language en", language="ru"))
    assert english.text.startswith("Language: English.")
    [forged] = await said(engine, press("lang:xx"))
    assert "no longer valid" in forged.text


async def test_a_flow_is_not_interrupted_by_a_language_change(engine: Engine) -> None:
    await said(engine, message("/start"))
    await said(engine, press("flow:track_order"))
    [done] = await said(engine, press("lang:ru"))
    assert "Язык" in done.text
    assert not done.flat_buttons  # no menu in the middle of the flow


def test_every_translated_answer_keeps_the_english_links(faq_service: FaqService) -> None:
    for entry in faq_service.kb.entries:
        english_links = entry.answer.count("<a ")
        for language in ("ru", "zh"):
            assert entry.answer_in(language).count("<a ") == english_links, (entry.id, language)
