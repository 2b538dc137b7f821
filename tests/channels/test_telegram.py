"""The Telegram adapter's pieces against the emulator, in process: no engine, no model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram import Bot
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import Update
from pydantic import SecretStr

from bot.channels.telegram import (
    Ignored,
    LeaveGroup,
    TelegramSender,
    make_bot,
    read_update,
    typing_while_slow,
)
from bot.delivery import RetryAfter, TemporaryFailure, Undeliverable
from bot.settings import Settings, TelegramSettings
from handlers.messages import Button, Incoming, MediaKind, Reply
from storage.base import ChatKey, QueuedMessage
from tests.emulator import BotApiEmulator

CHAT = 501


@pytest.fixture
def emulator() -> Iterator[BotApiEmulator]:
    with BotApiEmulator() as emu:
        emu.add_chat(CHAT)
        emu.add_chat(CHAT + 1)
        yield emu


@pytest.fixture
async def bot(emulator: BotApiEmulator) -> AsyncIterator[Bot]:
    telegram = TelegramSettings(token=SecretStr(emulator.token), api_base_url=emulator.base_url)
    bot = make_bot(Settings(telegram=telegram))
    yield bot
    await bot.session.close()


def queued(reply: Reply, chat: int = CHAT) -> QueuedMessage:
    return QueuedMessage(1, ChatKey("telegram", str(chat)), reply.to_json())


async def deliver(bot: Bot, reply: Reply) -> None:
    sender = TelegramSender(bot)
    message = queued(reply)
    for part in sender.parts(message):
        await sender.send(message.key, part)


async def test_a_long_answer_arrives_in_clean_parts_with_buttons_on_the_last(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    paragraph = "<b>Shipping</b>: " + "a sentence about delivery times. " * 40
    reply = Reply("\n\n".join([paragraph] * 8), ((Button("👍", "faq:fb:x:1"),),))
    await deliver(bot, reply)
    sent = emulator.messages(CHAT)
    assert len(sent) > 1
    assert all(len(m["text"]) <= 4096 for m in sent)
    assert [emulator.buttons(m) for m in sent[:-1]] == [[]] * (len(sent) - 1)
    assert emulator.buttons(sent[-1]) == [("👍", "faq:fb:x:1")]


async def test_a_replacing_reply_edits_the_message_or_sends_anew_if_it_is_gone(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    await deliver(bot, Reply("answer", ((Button("👍", "faq:fb:x:1"),),)))
    [original] = emulator.messages(CHAT)
    await deliver(bot, Reply("answer", replaces=str(original["message_id"])))
    [edited] = emulator.messages(CHAT)
    assert emulator.buttons(edited) == []
    await deliver(bot, Reply("answer", replaces=str(original["message_id"])))  # not modified
    await deliver(bot, Reply("fresh", replaces="424242"))
    assert [m["text"] for m in emulator.messages(CHAT)] == ["answer", "fresh"]


async def test_html_telegram_rejects_is_sent_as_plain_text(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    await deliver(bot, Reply("Price <b>1 < 2</b> & <i>unclosed"))
    [message] = emulator.messages(CHAT)
    assert message["text"] == "Price 1 < 2 & unclosed"


async def test_telegram_errors_become_delivery_errors(bot: Bot, emulator: BotApiEmulator) -> None:
    sender = TelegramSender(bot)
    part = SendMessage(chat_id=CHAT, text="hi")
    key = ChatKey("telegram", str(CHAT))
    emulator.fail("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(RetryAfter) as waited:
        await sender.send(key, part)
    assert waited.value.seconds == 7
    emulator.fail("sendMessage", error_code=502, retry_after=None)
    with pytest.raises(TemporaryFailure):
        await sender.send(key, part)
    emulator.fail(
        "sendMessage",
        error_code=403,
        retry_after=None,
        description="Forbidden: bot was blocked by the user",
    )
    with pytest.raises(Undeliverable, match="blocked"):
        await sender.send(key, part)
    assert isinstance(sender.parts(queued(Reply("x", replaces="5")))[0], EditMessageText)


async def test_typing_shows_only_when_the_work_is_slow(bot: Bot, emulator: BotApiEmulator) -> None:
    async with typing_while_slow(bot, CHAT):
        await asyncio.sleep(0.01)
    async with typing_while_slow(bot, CHAT + 1):
        await asyncio.sleep(0.8)
    assert emulator.chat_actions(CHAT) == []
    assert emulator.chat_actions(CHAT + 1) == ["typing"]


def read(body: dict[str, object]) -> object:
    return read_update(Update.model_validate(body))


def test_updates_are_read_into_what_they_mean(emulator: BotApiEmulator) -> None:
    text = read(emulator.send_text(CHAT, "hello", language_code="ru"))
    assert isinstance(text, Incoming)
    assert (text.text, text.language, text.chat_id) == ("hello", "ru", str(CHAT))
    photo = read(emulator.send_media(CHAT, "photo", caption="front side"))
    assert isinstance(photo, Incoming)
    assert [m.kind for m in photo.media] == [MediaKind.PHOTO]
    assert photo.text == "front side"
    video = read(emulator.send_media(CHAT, "video", file_size=30_000_000))
    assert isinstance(video, Incoming)
    assert video.media[0].size == 30_000_000
    assert read(emulator.send_text(-100, "hi", user_id=5, chat_type="group")) == Ignored(
        "group_chat"
    )
    assert read(emulator.bot_added_to_group(-200)) == LeaveGroup(-200)
    sent = emulator.send_text(CHAT, "typo")
    edited = read(emulator.edit_text(CHAT, sent["message"]["message_id"], "fixed"))
    assert edited == Ignored("edited_message")
