"""The Telegram adapter's pieces against the emulator, in process: no engine, no model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram import Bot
from aiogram.methods import CopyMessage, EditMessageText, SendMessage
from aiogram.types import Update
from markupsafe import Markup
from pydantic import SecretStr

from bot.albums import Albums
from bot.channels.telegram import (
    Ignored,
    LeaveGroup,
    TelegramSender,
    album_parts,
    from_telegram,
    keyboard,
    make_bot,
    read_update,
    show_typing,
)
from bot.delivery import RetryAfter, TemporaryFailure, Undeliverable
from bot.presence import ShowTyping, Typing
from bot.serial import SerialQueues
from bot.settings import Settings, TelegramSettings
from domain.chats import ChatKey
from handlers.messages import Button, Incoming, Media, MediaKind, Reply
from storage.base import QueuedMessage
from storage.sqlite import SqliteStorage
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


def typing_in(bot: Bot) -> ShowTyping:
    async def show(chat_id: str) -> None:
        await show_typing(bot, chat_id)

    return show


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


BROKEN_HTML = "Board <b>front</b>: 1 < 2 & <i>unclosed"
AS_PLAIN_TEXT = "Board front: 1 < 2 & unclosed"


async def test_an_album_whose_caption_telegram_cannot_parse_arrives_as_plain_text(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    photos = tuple(
        Media(
            MediaKind.PHOTO, emulator.send_media(CHAT, "photo")["message"]["photo"][-1]["file_id"]
        )
        for _ in range(2)
    )
    await deliver(bot, Reply(BROKEN_HTML, album=photos))
    await deliver(bot, Reply(BROKEN_HTML, album=photos[:1]))
    album, single = emulator.messages(CHAT)[:2], emulator.messages(CHAT)[2]
    assert [m.get("caption") for m in album] == [AS_PLAIN_TEXT, None]
    assert single["caption"] == AS_PLAIN_TEXT
    rejected = [c.method for c in emulator.calls() if c.status == 400]
    assert rejected == ["sendMediaGroup", "sendPhoto"]


async def test_an_edit_and_a_copy_telegram_cannot_parse_go_as_plain_text(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    await deliver(bot, Reply("answer"))
    [answer] = emulator.messages(CHAT)
    await deliver(bot, Reply(BROKEN_HTML, replaces=str(answer["message_id"])))
    assert emulator.messages(CHAT)[0]["text"] == AS_PLAIN_TEXT

    photo = emulator.send_media(CHAT, "photo")["message"]
    copy = CopyMessage(
        chat_id=CHAT + 1, from_chat_id=CHAT, message_id=photo["message_id"], caption=BROKEN_HTML
    )
    await TelegramSender(bot).send(ChatKey("telegram", str(CHAT + 1)), copy)
    assert emulator.messages(CHAT + 1)[0]["caption"] == AS_PLAIN_TEXT
    rejected = [c.method for c in emulator.calls() if c.status == 400]
    assert rejected == ["editMessageText", "copyMessage"]


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
    typing = Typing(typing_in(bot), SerialQueues("turns"))
    async with typing.while_slow(str(CHAT)):
        await asyncio.sleep(0.01)
    async with typing.while_slow(str(CHAT + 1)):
        await asyncio.sleep(0.8)
    assert emulator.chat_actions(CHAT) == []
    assert emulator.chat_actions(CHAT + 1) == ["typing"]


async def test_a_burst_of_slow_turns_shows_typing_once(bot: Bot, emulator: BotApiEmulator) -> None:
    typing = Typing(typing_in(bot), SerialQueues("turns"), after=0.0)
    async with typing.while_slow(str(CHAT)):
        await asyncio.to_thread(emulator.wait_until, lambda: emulator.chat_actions(CHAT) != [])
    for _ in range(10):
        async with typing.while_slow(str(CHAT)):
            await asyncio.sleep(0.05)
    assert emulator.chat_actions(CHAT) == ["typing"]


async def test_typing_is_shown_once_per_chat_in_five_seconds_and_never_for_a_backlog(
    bot: Bot,
) -> None:
    now = [0.0]
    turns = SerialQueues("turns")
    typing = Typing(typing_in(bot), turns, max_busy=3, clock=lambda: now[0])
    gate = asyncio.Event()

    async def turn() -> None:
        await gate.wait()

    for chat in ("a", "b", "c", "c"):
        turns.submit(chat, turn)
    assert [typing.due(chat) for chat in "abc"] == [True, True, False]  # c: one more queued
    now[0] = 4.9
    assert [typing.due(chat) for chat in "abc"] == [False, False, False]
    now[0] = 5.0
    assert typing.due("a")
    now[0] = 10.0
    turns.submit("d", turn)  # four chats busy: the bot is behind for everyone
    assert [typing.due(chat) for chat in "abd"] == [False, False, False]
    gate.set()
    await turns.join()


def read(body: dict[str, object], staff_chat_id: int | None = None) -> object:
    return read_update(Update.model_validate(body), staff_chat_id)


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


STAFF = -1001234567890


async def test_a_button_press_in_the_staff_chat_is_a_staff_turn(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    emulator.add_forum(STAFF)
    emulator.set_member(STAFF, 7, "administrator")
    topic = await bot.create_forum_topic(STAFF, "Alice #501")
    card_buttons = keyboard(((Button("Confirm", "ticket:confirm:R-7KQ4-M2XP"),),))
    card = await bot.send_message(
        STAFF, "Ticket", reply_markup=card_buttons, message_thread_id=topic.message_thread_id
    )
    press = emulator.press(STAFF, "Confirm", user_id=7)
    assert read(press, staff_chat_id=STAFF) == Incoming(
        channel="telegram",
        chat_id=str(STAFF),
        user_id="7",
        payload="ticket:confirm:R-7KQ4-M2XP",
        update_id=str(press["update_id"]),
        user_name="User 7",
        message_id=str(card.message_id),
        staff=True,
        thread_id=str(topic.message_thread_id),
    )

    # Outside a topic there is no thread; in another group the press means nothing.
    general = await bot.send_message(STAFF, "Ticket", reply_markup=card_buttons)
    outside = read(emulator.press_data(STAFF, "x", message_id=general.message_id), STAFF)
    assert isinstance(outside, Incoming)
    assert (outside.staff, outside.thread_id, outside.message_id) == (
        True,
        None,
        str(general.message_id),
    )
    assert read(emulator.press_data(STAFF, "x"), staff_chat_id=None) == Ignored(
        "supergroup_callback"
    )


def test_a_press_on_a_message_too_old_to_show_still_names_it() -> None:
    body = {
        "update_id": 9,
        "callback_query": {
            "id": "1",
            "from": {"id": 7, "is_bot": False, "first_name": "Rep"},
            "chat_instance": "1",
            "data": "ticket:reject:R-7KQ4-M2XP",
            "message": {"chat": {"id": STAFF, "type": "supergroup"}, "message_id": 12, "date": 0},
        },
    }
    pressed = read(body, staff_chat_id=STAFF)
    assert isinstance(pressed, Incoming)
    assert (pressed.staff, pressed.message_id, pressed.thread_id) == (True, "12", None)


def files(*kinds: MediaKind) -> tuple[Media, ...]:
    return tuple(Media(kind, f"{kind}-{n}") for n, kind in enumerate(kinds))


P, V, D, A = MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.DOCUMENT, MediaKind.AUDIO


@pytest.mark.parametrize(
    ("kinds", "parts"),
    [
        ((P, V, P), [[0, 1, 2]]),
        ((P, D, V, D), [[0, 2], [1, 3]]),
        ((A, P, A, D), [[0, 2], [1], [3]]),
        ((P,) * 12, [list(range(10)), [10, 11]]),
        ((P,) * 11, [list(range(10)), [10]]),
        ((MediaKind.VOICE, D, MediaKind.STICKER, MediaKind.OTHER), [[0, 1, 2, 3]]),
        ((), []),
    ],
)
def test_an_album_is_split_as_telegram_requires(
    kinds: tuple[MediaKind, ...], parts: list[list[int]]
) -> None:
    album = files(*kinds)
    assert album_parts(album) == [tuple(album[i] for i in part) for part in parts]


async def test_an_album_of_every_kind_reaches_the_chat_by_file_id(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    ids = {
        kind: emulator.send_media(CHAT, kind)["message"]
        for kind in ("photo", "video", "document", "audio", "voice")
    }
    photo = ids["photo"]["photo"][-1]["file_id"]
    album = (
        Media(MediaKind.PHOTO, photo),
        Media(MediaKind.DOCUMENT, ids["document"]["document"]["file_id"]),
        Media(MediaKind.VIDEO, ids["video"]["video"]["file_id"]),
        Media(MediaKind.AUDIO, ids["audio"]["audio"]["file_id"]),
        Media(MediaKind.VOICE, ids["voice"]["voice"]["file_id"]),
    )
    await deliver(bot, Reply("<b>Ticket R-7KQ4-M2XP</b>", album=album))
    calls = [call.method for call in emulator.calls() if call.method.startswith("send")]
    assert calls == ["sendMediaGroup", "sendMediaGroup", "sendAudio"]
    groups = [call.params["media"] for call in emulator.calls("sendMediaGroup")]
    assert [[(item["type"], item["media"]) for item in group] for group in groups] == [
        [("photo", album[0].file_ref), ("video", album[2].file_ref)],
        # The voice message travels as a document, grouped with the other document.
        [("document", album[1].file_ref), ("document", album[4].file_ref)],
    ]
    assert emulator.calls("sendAudio")[0].params["audio"] == album[3].file_ref
    sent = emulator.messages(CHAT)
    assert [m.get("caption") for m in sent] == ["Ticket R-7KQ4-M2XP", None, None, None, None]
    assert sent[0]["caption_entities"][0]["type"] == "bold"
    assert sent[0]["media_group_id"] == sent[1]["media_group_id"] != sent[2]["media_group_id"]


async def test_one_file_goes_alone_and_a_long_text_follows_the_album(
    bot: Bot, emulator: BotApiEmulator
) -> None:
    video = emulator.send_media(CHAT, "video")["message"]["video"]["file_id"]
    await deliver(bot, Reply("Your video", album=(Media(MediaKind.VIDEO, video),)))
    [single] = emulator.messages(CHAT)
    assert (single["video"]["file_id"], single["caption"]) == (video, "Your video")
    assert "media_group_id" not in single

    long_text = "word " * 300
    buttons = ((Button("Confirm", "ticket:confirm:1"),),)
    await deliver(bot, Reply(long_text, buttons, album=(Media(MediaKind.VIDEO, video),) * 2))
    album, text = emulator.messages(CHAT)[1:3], emulator.messages(CHAT)[3]
    assert [m.get("caption") for m in album] == [None, None]
    assert text["text"].strip() == long_text.strip()
    assert emulator.buttons(text) == [("Confirm", "ticket:confirm:1")]


def test_a_local_bot_api_server_is_read_in_local_mode() -> None:
    telegram = TelegramSettings(token=SecretStr("1:x"), api_base_url="http://127.0.0.1:8081")
    assert not make_bot(Settings(telegram=telegram)).session.api.is_local
    local = telegram.model_copy(update={"local_bot_api": True})
    assert make_bot(Settings(telegram=local)).session.api.is_local


def test_a_webhook_request_without_the_secret_is_never_from_telegram() -> None:
    secret = "s" * 40
    assert from_telegram(secret, secret)
    assert not from_telegram(None, secret)
    assert not from_telegram("", secret)
    assert not from_telegram("s" * 39, secret)
    # Settings refuse an empty secret; should one ever reach here, it matches nothing.
    assert not from_telegram(None, "")
    assert not from_telegram("", "")


def album_item(n: int, group: str = "g1") -> Incoming:
    photo = Media(MediaKind.PHOTO, f"p{n}", media_group_id=group)
    return Incoming(
        "telegram", str(CHAT), str(CHAT), media=(photo,), message_id=str(n), update_id=str(n)
    )


async def test_an_album_is_handed_on_at_ten_items_and_the_rest_is_the_next_message() -> None:
    albums = Albums(quiet=0.01)
    opened = [albums.add(album_item(n)) for n in range(1, 13)]
    assert [i for i, album in enumerate(opened) if album is not None] == [0, 10]
    first, second = opened[0], opened[10]
    assert first is not None
    assert second is not None
    whole = await albums.complete(first)
    assert [m.file_ref for m in whole.media] == [f"p{n}" for n in range(1, 11)]
    rest = await albums.complete(second)
    assert [m.file_ref for m in rest.media] == ["p11", "p12"]
    assert rest.update_ids == ("11", "12")


async def test_an_album_is_handed_on_when_its_time_is_up_however_busy() -> None:
    # No quiet moment would ever come: only the time limit closes the album.
    albums = Albums(quiet=3600, max_seconds=0)
    album = albums.add(album_item(1))
    assert album is not None
    assert [m.file_ref for m in (await albums.complete(album)).media] == ["p1"]
    assert albums.add(album_item(2)) is not None  # a new message, not the old album


async def test_a_whatsapp_customers_staff_posts_open_their_topic_in_the_telegram_staff_chat(
    bot: Bot, emulator: BotApiEmulator, storage: SqliteStorage
) -> None:
    emulator.add_forum(STAFF)
    staff = ChatKey("telegram", str(STAFF))
    customer = ChatKey("whatsapp", "447700900123")
    sender = TelegramSender(bot, storage)
    own_photo = emulator.send_media(CHAT, "photo")["message"]["photo"][-1]["file_id"]
    files = (
        Media(MediaKind.PHOTO, "wamid-photo", channel="whatsapp"),
        Media(MediaKind.PHOTO, own_photo, channel="telegram"),
    )

    async def post(reply: Reply) -> None:
        message = QueuedMessage(1, staff, reply.to_json())
        for part in sender.parts(message):
            await sender.send(staff, part)

    await post(Reply(Markup("card"), to=staff, topic_of=customer, open_topic="A" * 200))
    await post(Reply(Markup("both sides"), to=staff, topic_of=customer, album=files))

    [(thread, name)] = emulator.topics(STAFF).items()
    assert name == "A" * 128
    assert await storage.topic_of(customer, staff) == str(thread)
    assert await storage.customer_of_topic(staff, str(thread)) == customer
    card, photo, note = emulator.messages(STAFF, thread)
    assert (card["text"], photo["caption"]) == ("card", "both sides")
    assert note["text"] == "📎 Not shown here: a file sent on whatsapp (photo)."
    # A rep replying to any of them reaches the customer on WhatsApp.
    for sent in (card, photo, note):
        assert await storage.customer_of_relay(staff, str(sent["message_id"])) == customer
