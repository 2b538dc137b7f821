"""The Bot API emulator, driven over real HTTP by a real aiogram Bot (never the internet)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
    Update,
)
from aiohttp import web

from tests.emulator import USER_MEDIA_KINDS, BotApiEmulator, HtmlParseError, Upload, parse_html

CHAT = 42
FORUM = -1001234567890
PHOTO_BYTES = b"\xff\xd8\xff\xe0 not really a jpeg " * 10


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons
        ]
    )


def make_bot(emu: BotApiEmulator, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    return Bot(token or emu.token, session=session)


async def eventually(check: Callable[[], bool], within: float = 5) -> None:
    """Await a condition without blocking the test's loop (which may serve a webhook)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(webhook_retry_delay=0.05) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    client = make_bot(emu)
    yield client
    await client.session.close()


# ------------------------------------------------------------------ objects aiogram accepts


@pytest.mark.parametrize("kind", USER_MEDIA_KINDS)
def test_user_media_updates_validate_as_aiogram_types(kind: str) -> None:
    emu = BotApiEmulator()  # no server needed: only the update objects are checked
    update = Update.model_validate(emu.send_media(CHAT, kind, caption="look"))
    assert update.message is not None
    assert getattr(update.message, kind) is not None
    assert update.message.from_user is not None
    assert update.message.from_user.id == CHAT


def test_other_updates_validate_as_aiogram_types() -> None:
    emu = BotApiEmulator()
    emu.add_forum(FORUM)
    updates = [
        emu.send_text(CHAT, "/start deep-link"),
        emu.send_text(CHAT, "fwd", forward_from_name="Hidden Person"),
        emu.send_text(CHAT, "re", reply_to_message_id=1),
        emu.send_text(FORUM, "in a group", user_id=7),
        emu.edit_text(CHAT, 1, "/start edited"),
        emu.bot_added_to_group(-555, by_user_id=7),
        emu.block(CHAT),
        *emu.send_album(CHAT, ["photo", "video"], caption="album"),
    ]
    parsed = [Update.model_validate(update) for update in updates]
    assert [u.update_id for u in parsed] == list(range(1, len(updates) + 1))
    start = parsed[0].message
    assert start is not None
    assert start.entities is not None
    assert start.entities[0].type == "bot_command"
    assert parsed[1].message is not None
    assert parsed[1].message.forward_origin is not None
    assert parsed[1].message.forward_origin.type == "hidden_user"
    assert parsed[2].message is not None
    assert parsed[2].message.reply_to_message is not None
    assert parsed[3].message is not None
    assert parsed[3].message.chat.is_forum
    assert parsed[4].edited_message is not None
    member_update = parsed[5].my_chat_member
    assert member_update is not None
    assert (member_update.old_chat_member.status, member_update.new_chat_member.status) == (
        "left",
        "member",
    )
    album = [u.message for u in parsed[-2:]]
    assert album[0] is not None
    assert album[1] is not None
    assert album[0].media_group_id == album[1].media_group_id is not None
    assert (album[0].caption, album[1].caption) == ("album", None)


# ------------------------------------------------------------------ basics and polling


async def test_get_me_and_wrong_token(emu: BotApiEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "minerdesk_test_bot")

    stranger = make_bot(emu, token="999:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()

    url = f"{emu.base_url}/bot{emu.token}/noSuchMethod"
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }


async def test_json_and_query_string_parameters(emu: BotApiEmulator) -> None:
    emu.send_text(CHAT, "hi")
    url = f"{emu.base_url}/bot{emu.token}"
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    async with aiohttp.ClientSession() as http:
        body = {"chat_id": str(CHAT), "text": "[1, 2]", "reply_markup": markup}
        async with http.post(f"{url}/sendMessage", json=body) as response:
            sent = await response.json()
        async with http.get(f"{url}/SENDMESSAGE", params={"chat_id": CHAT, "text": "{}"}) as r:
            by_query = await r.json()
    assert sent["ok"]
    assert sent["result"]["text"] == "[1, 2]"
    assert by_query["ok"]
    assert by_query["result"]["text"] == "{}"
    assert emu.buttons(sent["result"]) == [("Yes", "yes")]
    assert [call.params["chat_id"] for call in emu.calls("sendMessage")] == [CHAT, CHAT]


async def test_get_updates_offset_confirms_forever(emu: BotApiEmulator, bot: Bot) -> None:
    first = emu.send_text(CHAT, "one")["update_id"]
    second = emu.send_text(CHAT, "two")["update_id"]

    assert [u.update_id for u in await bot.get_updates()] == [first, second]
    assert emu.pending_updates() == 2  # handing updates out does not confirm them

    assert [u.update_id for u in await bot.get_updates(offset=first + 1)] == [second]
    assert emu.pending_updates() == 1
    # A lower offset does not bring a confirmed update back.
    assert [u.update_id for u in await bot.get_updates(offset=first)] == [second]
    assert await bot.get_updates(offset=second + 1) == []
    assert emu.pending_updates() == 0

    third = emu.send_text(CHAT, "three")["update_id"]
    fourth = emu.send_text(CHAT, "four")["update_id"]
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [third]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == [fourth]


async def test_allowed_updates_filters_new_updates(emu: BotApiEmulator, bot: Bot) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    emu.send_text(CHAT, "not wanted")
    assert emu.pending_updates() == 0
    assert len(emu.dropped_updates) == 1
    await bot.get_updates(allowed_updates=[])  # [] means the default set again
    emu.send_text(CHAT, "wanted")
    assert emu.pending_updates() == 1


async def test_long_poll_returns_empty_list_after_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 1.8


async def test_long_poll_wakes_up_on_a_new_update(emu: BotApiEmulator, bot: Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    emu.send_text(CHAT, "wake up")
    updates = await poll
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    assert time.monotonic() - started < 2


async def test_a_second_poll_terminates_the_first(emu: BotApiEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await eventually(lambda: len(emu.calls("getUpdates")) == 1)
    assert await bot.get_updates() == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first


async def test_redeliver_hands_out_a_confirmed_update_again(emu: BotApiEmulator, bot: Bot) -> None:
    update = emu.send_text(CHAT, "once")
    [received] = await bot.get_updates()
    assert await bot.get_updates(offset=received.update_id + 1) == []

    emu.redeliver(update)
    assert emu.pending_updates() == 1
    [again] = await bot.get_updates(offset=received.update_id + 1)
    assert again.update_id == update["update_id"]
    assert again.message is not None
    assert again.message.text == "once"
    assert await bot.get_updates(offset=again.update_id + 1) == []
    assert emu.pending_updates() == 0


# ------------------------------------------------------------------ messages and buttons


async def test_keyboard_press_and_callback_answers(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "/start")
    sent = await bot.send_message(
        CHAT, "Sure?", reply_markup=keyboard(("Yes", "y"), ("No", "n")), disable_notification=True
    )
    assert emu.buttons(emu.messages(CHAT)[0]) == [("Yes", "y"), ("No", "n")]
    # aiogram posts form fields as strings, nested values as JSON: decoded for the test.
    params = emu.calls("sendMessage")[0].params
    assert params["chat_id"] == CHAT
    assert params["disable_notification"] is True
    assert params["reply_markup"]["inline_keyboard"][0][0] == {"text": "Yes", "callback_data": "y"}

    pressed = emu.press(CHAT, "Yes")
    assert pressed["callback_query"]["data"] == "y"
    updates = await bot.get_updates(offset=pressed["update_id"])
    query = updates[0].callback_query
    assert query is not None
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    assert query.from_user.id == CHAT
    assert emu.unanswered_callbacks() == [query.id]

    assert await bot.answer_callback_query(query.id, text="Done")
    assert emu.callback_answers[query.id]["text"] == "Done"
    assert emu.unanswered_callbacks() == []
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("made-up")

    assert emu.press(CHAT, "n")["callback_query"]["data"] == "n"  # by callback_data too
    assert emu.press_data(CHAT, "forged:1")["callback_query"]["data"] == "forged:1"


async def test_press_without_such_button_lists_the_buttons(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    await bot.send_message(CHAT, "Menu", reply_markup=keyboard(("FAQ", "faq")))
    with pytest.raises(AssertionError, match=r"no inline button 'Orders'.*\('FAQ', 'faq'\)"):
        emu.press(CHAT, "Orders")


async def test_edit_message_text(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    sent = await bot.send_message(CHAT, "Old", reply_markup=keyboard(("A", "a")))
    edited = await bot.edit_message_text(
        text="<b>New</b>", chat_id=CHAT, message_id=sent.message_id, parse_mode="HTML"
    )
    assert not isinstance(edited, bool)
    assert edited.edit_date is not None
    [current] = emu.messages(CHAT)
    assert current["text"] == "New"
    assert current["entities"] == [{"type": "bold", "offset": 0, "length": 3}]
    assert "reply_markup" not in current  # an edit without reply_markup drops the keyboard

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="<b>New</b>", chat_id=CHAT, message_id=sent.message_id, parse_mode="HTML"
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=CHAT, message_id=999)

    await bot.edit_message_reply_markup(
        chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard(("B", "b"))
    )
    assert emu.buttons(emu.messages(CHAT)[0]) == [("B", "b")]
    assert await bot.delete_message(CHAT, sent.message_id)
    assert emu.messages(CHAT) == []


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>s</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<br>", 'Unsupported start tag "br" at byte offset 2'),
    ],
)
def test_html_errors_are_telegrams(html: str, error: str) -> None:
    with pytest.raises(HtmlParseError) as raised:
        parse_html(html)
    assert str(raised.value) == error


def test_html_plain_text_and_entities() -> None:
    text, entities = parse_html(
        '<b>Hi</b> &lt;you&gt; &amp; &#128512; <a href="https://e.com/?a=1&amp;b=2">link</a> '
        '<pre><code class="language-python">x = 1</code></pre> &nbsp; '
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>'
    )
    assert text == "Hi <you> & \U0001f600 link x = 1 &nbsp; sq"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 2},
        # the emoji counts as two UTF-16 code units
        {"type": "text_link", "offset": 14, "length": 4, "url": "https://e.com/?a=1&b=2"},
        {"type": "pre", "offset": 19, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 32, "length": 1},
        {"type": "expandable_blockquote", "offset": 33, "length": 1},
    ]


async def test_html_errors_and_text_limits_over_http(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    with pytest.raises(TelegramBadRequest, match=r"can't parse entities: Unsupported start tag"):
        await bot.send_message(CHAT, "<div>no</div>", parse_mode="HTML")
    # The limit counts the text after tags and entities are gone.
    long_html = "<b>" + "&amp;" * 4096 + "</b>"
    sent = await bot.send_message(CHAT, long_html, parse_mode="HTML")
    assert sent.text == "&" * 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "<b> </b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=keyboard(("Long", "é" * 33)))
    assert len(emu.messages(CHAT)) == 1
    failed = [call.status for call in emu.calls("sendMessage")]
    assert failed == [400, 200, 400, 400, 400, 400]


async def test_unknown_chat_reply_and_thread_checks(emu: BotApiEmulator, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "who?")
    emu.send_text(CHAT, "hi")
    first = await bot.send_message(CHAT, "first")
    reply = await bot.send_message(
        CHAT, "reply", reply_parameters=ReplyParameters(message_id=first.message_id)
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(CHAT, "x", reply_parameters=ReplyParameters(message_id=999))


# ------------------------------------------------------------------ fault injection


async def test_429_then_success(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    emu.fail("sendMessage", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(CHAT, "first try")
    assert raised.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in raised.value.message
    await bot.send_message(CHAT, "second try")
    assert [call.status for call in emu.calls("sendMessage")] == [429, 200]
    assert [m["text"] for m in emu.messages(CHAT)] == ["second try"]


async def test_5xx_and_per_chat_faults(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    emu.send_text(CHAT + 1, "hi")
    emu.fail("sendMessage", error_code=502)
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(CHAT, "x")

    emu.fail("sendMessage", times=2, error_code=403, description="Forbidden: x", chat_id=CHAT)
    await bot.send_message(CHAT + 1, "other chat is fine")
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError):
            await bot.send_message(CHAT, "x")
    await bot.send_message(CHAT, "fine again")
    with pytest.raises(ValueError, match="unknown Bot API method"):
        emu.fail("send_message")


async def test_hold_and_release(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    emu.hold("sendMessage")
    sending = asyncio.create_task(bot.send_message(CHAT, "slow"))
    await eventually(lambda: emu.held("sendMessage") == 1)
    await asyncio.sleep(0.1)
    assert not sending.done()
    assert emu.messages(CHAT) == []
    emu.release("sendMessage")
    assert (await sending).text == "slow"
    assert emu.held("sendMessage") == 0


async def test_blocked_and_left_chats_are_forbidden(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    emu.block(CHAT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "x")

    emu.bot_added_to_group(-100, title="Strangers")
    assert (await bot.get_chat(-100)).title == "Strangers"
    assert await bot.leave_chat(-100)
    with pytest.raises(TelegramForbiddenError, match="not a member of the group chat"):
        await bot.send_message(-100, "x")


# ------------------------------------------------------------------ files


async def test_download_a_users_photo(emu: BotApiEmulator, bot: Bot) -> None:
    update = emu.send_media(CHAT, "photo", content=PHOTO_BYTES, caption="my miner")
    photo = Update.model_validate(update).message.photo  # type: ignore[union-attr]
    assert photo is not None
    assert len(photo) == 2
    file = await bot.get_file(photo[-1].file_id)
    assert file.file_size == len(PHOTO_BYTES)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None
    assert downloaded.read() == PHOTO_BYTES
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_big_files_need_local_mode(emu: BotApiEmulator, bot: Bot) -> None:
    big = 25 * 1024 * 1024
    update = emu.send_media(CHAT, "document", file_size=big, content=b"%PDF-1.4 big")
    file_id = update["message"]["document"]["file_id"]
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(file_id)

    with BotApiEmulator(local_mode=True) as local:
        local_bot = make_bot(local)
        try:
            update = local.send_media(CHAT, "video", file_size=big, content=b"\x00video")
            file = await local_bot.get_file(update["message"]["video"]["file_id"])
            assert file.file_size == big
            assert file.file_path is not None
            # Like a local Bot API server: an absolute path to a real file ...
            assert await asyncio.to_thread(Path(file.file_path).read_bytes) == b"\x00video"
            # ... and the emulator serves it over HTTP as well.
            downloaded = await local_bot.download_file(file.file_path)
            assert downloaded is not None
            assert downloaded.read() == b"\x00video"
        finally:
            await local_bot.session.close()


async def test_send_photo_by_upload_and_by_file_id(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    uploaded = await bot.send_photo(
        CHAT, BufferedInputFile(PHOTO_BYTES, "miner.jpg"), caption="<i>look</i>", parse_mode="HTML"
    )
    assert uploaded.photo is not None
    assert uploaded.caption == "look"
    file_id = uploaded.photo[-1].file_id
    again = await bot.send_photo(CHAT, file_id)
    assert again.photo is not None
    assert again.photo[-1].file_id == file_id

    file = await bot.get_file(file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None
    assert downloaded.read() == PHOTO_BYTES

    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await bot.send_photo(CHAT, "no-such-file-id")
    document = await bot.send_document(CHAT, BufferedInputFile(b"%PDF", "invoice.pdf"))
    assert document.document is not None
    assert (document.document.file_name, document.document.mime_type) == (
        "invoice.pdf",
        "application/pdf",
    )
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await bot.send_photo(CHAT, document.document.file_id)
    uploads = [v for v in emu.calls("sendPhoto")[0].params.values() if isinstance(v, Upload)]
    assert [(u.filename, u.data) for u in uploads] == [("miner.jpg", PHOTO_BYTES)]


async def test_send_media_group(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    first = await bot.send_photo(CHAT, BufferedInputFile(PHOTO_BYTES, "a.jpg"))
    assert first.photo is not None
    album = await bot.send_media_group(
        CHAT,
        [
            InputMediaPhoto(media=BufferedInputFile(PHOTO_BYTES, "b.jpg"), caption="two"),
            InputMediaPhoto(media=BufferedInputFile(PHOTO_BYTES, "c.jpg")),
            InputMediaPhoto(media=first.photo[-1].file_id),
        ],
    )
    assert len(album) == 3
    assert len({m.media_group_id for m in album}) == 1
    assert album[0].media_group_id is not None
    assert [m.caption for m in album] == ["two", None, None]
    assert len(emu.messages(CHAT)) == 4
    with pytest.raises(TelegramBadRequest, match="document can't be mixed"):
        await bot.send_media_group(
            CHAT,
            [
                InputMediaPhoto(media=first.photo[-1].file_id),
                InputMediaDocument(media=BufferedInputFile(b"%PDF", "x.pdf")),
            ],
        )


# ------------------------------------------------------------------ forums, copies, members


async def test_copy_message_into_a_forum_topic(emu: BotApiEmulator, bot: Bot) -> None:
    emu.add_forum(FORUM, title="Staff")
    question = emu.send_text(CHAT, "My S19 is broken")["message"]
    topic = await bot.create_forum_topic(FORUM, "Alice #42")
    assert emu.topics(FORUM) == {topic.message_thread_id: "Alice #42"}

    copied = await bot.copy_message(
        FORUM, CHAT, question["message_id"], message_thread_id=topic.message_thread_id
    )
    [in_topic] = emu.messages(FORUM, thread_id=topic.message_thread_id)
    assert in_topic["message_id"] == copied.message_id
    assert in_topic["text"] == "My S19 is broken"
    assert in_topic["is_topic_message"] is True
    assert emu.messages(FORUM, thread_id=topic.message_thread_id + 100) == []

    photo = emu.send_media(CHAT, "photo", caption="old caption")["message"]
    await bot.copy_message(
        FORUM, CHAT, photo["message_id"], message_thread_id=topic.message_thread_id, caption="new"
    )
    assert emu.messages(FORUM)[-1]["caption"] == "new"
    forwarded = await bot.forward_message(FORUM, CHAT, question["message_id"])
    assert forwarded.forward_origin is not None

    assert await bot.close_forum_topic(FORUM, topic.message_thread_id)
    assert emu.closed_topics(FORUM) == {topic.message_thread_id}
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(FORUM, "x", message_thread_id=999)
    emu.send_text(-4000, "plain group", user_id=5)
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(-4000, "nope")
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(FORUM, CHAT, 999)


async def test_chat_members(emu: BotApiEmulator, bot: Bot) -> None:
    emu.add_forum(FORUM)
    emu.set_member(FORUM, 7, "administrator")
    emu.set_member(FORUM, 8, "left")
    emu.send_text(FORUM, "hello", user_id=9)
    assert isinstance(await bot.get_chat_member(FORUM, 7), ChatMemberAdministrator)
    assert isinstance(await bot.get_chat_member(FORUM, 8), ChatMemberLeft)
    assert isinstance(await bot.get_chat_member(FORUM, 9), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(FORUM, emu.bot_id), ChatMemberAdministrator)
    chat = await bot.get_chat(FORUM)
    assert chat.is_forum
    assert chat.type == "supergroup"


async def test_commands_and_chat_actions(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    await bot.set_my_commands(
        [BotCommand(command="start", description="Начать")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="ru",
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert emu.my_commands() == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert emu.my_commands("all_private_chats", "ru") == [
        {"command": "start", "description": "Начать"}
    ]
    assert await bot.get_my_commands(language_code="de") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])

    assert await bot.send_chat_action(CHAT, "typing")
    assert emu.chat_actions(CHAT) == ["typing"]


# ------------------------------------------------------------------ webhook


async def test_webhook_delivery_with_secret_and_retries(emu: BotApiEmulator, bot: Bot) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    statuses = iter([500, 200, 200])

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        status = next(statuses)
        if status == 200 and len(received) == 3:
            # Answer the second update with a method call, as aiogram's webhook handler can.
            return web.json_response(
                {"method": "sendMessage", "chat_id": CHAT, "text": "via reply"}
            )
        return web.json_response({}, status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        first = emu.send_text(CHAT, "before the webhook")["update_id"]
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret_-")
        second = emu.send_text(CHAT, "after")["update_id"]
        await eventually(lambda: emu.pending_updates() == 0 and len(emu.messages(CHAT)) == 1)

        assert [update["update_id"] for update, _ in received] == [first, first, second]
        assert {secret for _, secret in received} == {"s3cret_-"}
        assert emu.webhook_attempts == [(first, 500), (first, 200), (second, 200)]
        assert emu.messages(CHAT)[0]["text"] == "via reply"
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        assert info.pending_update_count == 0
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        assert await bot.delete_webhook()
        assert emu.webhook is None
        emu.send_text(CHAT, "polling again")
        assert len(await bot.get_updates()) == 1
    finally:
        await runner.cleanup()


async def test_webhook_connection_errors_are_retried(emu: BotApiEmulator, bot: Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/nobody-listens")
    update_id = emu.send_text(CHAT, "hi")["update_id"]
    await eventually(lambda: len(emu.webhook_attempts) >= 2)
    assert {attempt for attempt in emu.webhook_attempts} == {(update_id, 0)}
    assert emu.pending_updates() == 1
    await bot.delete_webhook(drop_pending_updates=True)
    assert emu.pending_updates() == 0


# ------------------------------------------------------------------ test-thread helpers


async def test_wait_messages_from_another_thread(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    hooked: list[int] = []
    emu.on_message = lambda message: hooked.append(message["message_id"])
    waiting = asyncio.create_task(asyncio.to_thread(emu.wait_messages, CHAT, 2, 5))
    await bot.send_message(CHAT, "one")
    await asyncio.sleep(0.05)
    await bot.send_message(CHAT, "two")
    messages = await waiting
    assert [m["text"] for m in messages] == ["one", "two"]
    assert hooked == [m["message_id"] for m in messages]
    log = emu.sent_log
    assert [chat_id for _, chat_id, _ in log] == [CHAT, CHAT]
    assert log[0][0] <= log[1][0] <= time.perf_counter()


def test_wait_timeouts_explain_what_happened() -> None:
    with BotApiEmulator() as emu:
        emu.send_text(CHAT, "anyone?")
        with pytest.raises(AssertionError) as raised:
            emu.wait_messages(CHAT, 1, timeout=0.2)
        message = str(raised.value)
        assert "expected at least 1 bot message(s) in chat 42 within 0.2 s, got 0" in message
        assert "no Bot API call at all" in message
        assert "1 update(s) not yet confirmed" in message
        with pytest.raises(AssertionError, match="waiting for the moon"):
            emu.wait_until(lambda: False, timeout=0.1, what="the moon")


async def test_restart_keeps_port_and_state(emu: BotApiEmulator, bot: Bot) -> None:
    emu.send_text(CHAT, "hi")
    base_url = emu.base_url
    await asyncio.to_thread(emu.stop)
    with pytest.raises(TelegramNetworkError):  # nobody listens while stopped
        await bot.get_me()
    await asyncio.to_thread(emu.start)
    assert emu.base_url == base_url
    assert len(await bot.get_updates()) == 1
