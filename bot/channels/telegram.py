"""The Telegram channel, on aiogram 3: the only module that knows Telegram's types.

The adapter the runtime (`bot.runtime`) runs: it receives updates (long polling or
webhook) and hands them to the runtime to store before Telegram is told they arrived (the
next getUpdates offset, or the webhook's 200), reads a stored update into an `Incoming`,
renders replies into Bot API calls (`TelegramSender`) and fetches files (`TelegramFetcher`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction, ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    CopyMessage,
    EditMessageText,
    ForwardMessage,
    SendAudio,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    TelegramMethod,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    FSInputFile,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaLivePhoto,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    Update,
)
from aiohttp import web
from markupsafe import Markup

from bot.app import App
from bot.channels.html_split import split_html
from bot.channels.telegram_files import TelegramFetcher
from bot.delivery import Gate, RetryAfter, RetryPolicy, TemporaryFailure, Undeliverable
from bot.media import MB, FileNotCarried, OpenFile
from bot.runtime import Aside, CannotServe, Pace, Store
from bot.settings import Settings
from bot.workers import REUSE_PORT
from domain.chats import ChatKey
from handlers.i18n import N_, SUPPORTED_LANGUAGES, translator
from handlers.messages import Button, Incoming, Media, MediaKind, Reply
from storage.base import InboxUpdate, QueuedMessage
from storage.handoffs import HandoffStore

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
# Telegram out of reach: keep asking for updates, they wait there. A button's answer is
# worth a few seconds at most: the customer's spinner stops on its own.
POLL_RETRY = RetryPolicy(max_failures=None)
CALLBACK_RETRY = RetryPolicy(max_delay=5.0, max_failures=3)
# What Telegram sends the webhook's secret in.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
COMMANDS = (
    ("start", N_("Start over and show the main menu")),
    ("menu", N_("The main menu")),
    ("orders", N_("Your orders")),
    ("tickets", N_("Your repair tickets")),
    ("language", N_("Change the language")),
    ("help", N_("What I can do")),
    ("cancel", N_("Stop what we are doing")),
)


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates with the updates left as Telegram sent them, to be stored verbatim."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class TokenRejected(CannotServe):
    """Telegram does not know the bot token."""


class AnotherPoller(CannotServe):
    """Another process polls with the same token: Telegram serves one long poll per bot and
    ends the older with 409 Conflict, so two pollers would take turns losing updates' order."""


@dataclass(frozen=True)
class Ignored:
    """An update the bot does not answer, with the reason for the log."""

    reason: str


@dataclass(frozen=True)
class LeaveGroup:
    """The bot was added to a group it does not serve."""

    chat_id: int


Event = Incoming | Ignored | LeaveGroup


def read_update(update: Update, staff_chat_id: int | None = None) -> Event:
    """What an update means to the bot, independent of how it will be answered."""
    if update.message is not None:
        if update.message.chat.id == staff_chat_id:
            return _read_staff_message(update.message, str(update.update_id))
        return _read_message(update.message, str(update.update_id))
    if update.callback_query is not None:
        return _read_callback(update.callback_query, str(update.update_id), staff_chat_id)
    if update.edited_message is not None:
        # Answering edits would answer the same question twice; customers re-send instead.
        return Ignored("edited_message")
    if (member := update.my_chat_member) is not None:
        if member.chat.id == staff_chat_id:
            return Ignored(f"staff_chat_member:{member.new_chat_member.status}")
        if member.chat.type != "private" and member.new_chat_member.status in (
            "member",
            "administrator",
        ):
            return LeaveGroup(member.chat.id)
        return Ignored(f"my_chat_member:{member.new_chat_member.status}")
    return Ignored("unsupported_update")


def _read_message(message: Message, update_id: str) -> Event:
    user = message.from_user
    if message.chat.type != "private":
        return Ignored(f"{message.chat.type}_chat")
    if user is None or user.is_bot:
        return Ignored("from_bot")
    return Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(user.id),
        text=message.text if message.text is not None else message.caption,
        language=user.language_code,
        media=_media(message),
        update_id=update_id,
        user_name=user.full_name,
        message_id=str(message.message_id),
        username=user.username,
    )


def _read_staff_message(message: Message, update_id: str) -> Event:
    """A rep's message in the staff chat; service messages (topic created, members
    joined) and other bots are none of the bot's business."""
    user = message.from_user
    anonymous_admin = message.sender_chat is not None and message.sender_chat.id == message.chat.id
    if user is None or (user.is_bot and not anonymous_admin):
        return Ignored("staff_chat_bot")
    media = _media(message)
    if message.text is None and message.caption is None and not media:
        return Ignored("staff_chat_service_message")
    if media and all(m.kind is MediaKind.OTHER for m in media) and message.text is None:
        return Ignored("staff_chat_service_message")
    thread = message.message_thread_id if message.is_topic_message else None
    replied = message.reply_to_message
    # In a topic every message "replies" to the topic's first message; only real replies count.
    reply_to = replied.message_id if replied and replied.message_id != thread else None
    return Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(user.id),
        text=message.text if message.text is not None else message.caption,
        media=media,
        update_id=update_id,
        user_name=message.author_signature if anonymous_admin else user.full_name,
        message_id=str(message.message_id),
        username=None if anonymous_admin else user.username,
        staff=True,
        thread_id=None if thread is None else str(thread),
        reply_to=None if reply_to is None else str(reply_to),
    )


def _media(message: Message) -> tuple[Media, ...]:
    group = message.media_group_id
    if message.photo:
        largest = message.photo[-1]
        return (Media(MediaKind.PHOTO, largest.file_id, largest.file_size, "image/jpeg", group),)
    files = (
        (MediaKind.VIDEO, message.video),
        (MediaKind.VIDEO, message.video_note),
        (MediaKind.VIDEO, message.animation),
        (MediaKind.DOCUMENT, message.document),
        (MediaKind.VOICE, message.voice),
        (MediaKind.AUDIO, message.audio),
        (MediaKind.STICKER, message.sticker),
    )
    for kind, file in files:
        if file is not None:
            return (
                Media(
                    kind,
                    file.file_id,
                    file.file_size,
                    getattr(file, "mime_type", None),
                    group,
                    getattr(file, "file_name", None),
                ),
            )
    if message.location is not None or message.venue is not None:
        return (Media(MediaKind.LOCATION),)
    if message.contact is not None:
        return (Media(MediaKind.CONTACT),)
    if message.text is None:
        return (Media(MediaKind.OTHER),)
    return ()


def _read_callback(query: CallbackQuery, update_id: str, staff_chat_id: int | None) -> Event:
    message = query.message
    if message is None or query.data is None:
        return Ignored("callback_without_message_or_data")
    if message.chat.id == staff_chat_id:
        return _read_staff_callback(query, message, update_id)
    if message.chat.type != "private":
        return Ignored(f"{message.chat.type}_callback")
    return Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(query.from_user.id),
        language=query.from_user.language_code,
        payload=query.data,
        update_id=update_id,
        user_name=query.from_user.full_name,
        message_id=str(message.message_id),
        username=query.from_user.username,
    )


def _read_staff_callback(
    query: CallbackQuery, message: Message | InaccessibleMessage, update_id: str
) -> Incoming:
    """A rep pressed a button of a bot message in the staff chat (a ticket card)."""
    thread = None
    # A message too old for Telegram to show (InaccessibleMessage) still has its chat and id.
    if isinstance(message, Message) and message.is_topic_message:
        thread = message.message_thread_id
    return Incoming(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(query.from_user.id),
        payload=query.data,
        update_id=update_id,
        user_name=query.from_user.full_name,
        message_id=str(message.message_id),
        username=query.from_user.username,
        staff=True,
        thread_id=None if thread is None else str(thread),
    )


def keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=b.payload) for b in row]
            for row in rows
        ]
    )


# Only what looks like a tag: a stray "<" in the text (as in "1 < 2") stays.
_TAG = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]*)?>")


@dataclass(frozen=True)
class Upload:
    """A file of another channel (a WhatsApp customer's photo): fetched and uploaded when
    sent, a line saying why in its place when it cannot cross."""

    chat_id: int
    media: Media
    caption: str | None = None


Method = TelegramMethod[Any] | Upload


@dataclass(frozen=True)
class StaffPost:
    """A part for the staff chat, posted in the customer's topic (opened first if the
    reply asks and there is none); the message sent is remembered as theirs."""

    method: Method
    # The customer, on their own channel (a WhatsApp customer's topic is in this chat too).
    customer: ChatKey
    open_topic: str | None = None


Part = Method | StaffPost


class TelegramSender:
    """Turns queued replies into Bot API calls and Telegram's errors into delivery errors."""

    def __init__(
        self,
        bot: Bot,
        desk: HandoffStore | None = None,
        shown: Callable[[ChatKey], str] = lambda key: key.chat_id,
        open_file: OpenFile | None = None,
    ) -> None:
        self.bot = bot
        self.desk = desk
        # How logs name a customer's chat, who may be on WhatsApp: a phone number masked.
        self.shown = shown
        # Other channels' files (a WhatsApp customer's photos), uploaded when sent.
        self.open_file = open_file
        # Learnt from Telegram: a staff chat without topics gets the reply-based relay.
        self._chats_without_topics: set[str] = set()

    def parts(self, message: QueuedMessage) -> list[Part]:
        reply = Reply.from_json(message.body, message.key.channel)
        methods = self._methods(int(message.key.chat_id), reply)
        if reply.topic_of is None:
            return list(methods)
        return [
            StaffPost(method, reply.topic_of, reply.open_topic if i == 0 else None)
            for i, method in enumerate(methods)
        ]

    def _methods(self, chat_id: int, reply: Reply) -> list[Method]:
        if reply.copy_of is not None:
            source_chat, source_message = int(reply.copy_of[0]), int(reply.copy_of[1])
            if reply.topic_of is not None:
                # To staff: a forward shows who wrote it; to a customer: a copy hides the rep.
                return [
                    ForwardMessage(
                        chat_id=chat_id, from_chat_id=source_chat, message_id=source_message
                    )
                ]
            return [
                CopyMessage(chat_id=chat_id, from_chat_id=source_chat, message_id=source_message)
            ]
        if reply.album:
            # Files of another channel (a WhatsApp customer's) have no Telegram file id:
            # they are uploaded one by one after the album of Telegram's own.
            own = tuple(media for media in reply.album if media.channel in ("", CHANNEL))
            uploads = [
                Upload(chat_id, media)
                for media in reply.album
                if media.channel not in ("", CHANNEL)
            ]
            if own:
                return [*_album_methods(chat_id, replace(reply, album=own)), *uploads]
            if reply.text and not reply.buttons and fits_caption(reply.text):
                return [replace(uploads[0], caption=str(reply.text)), *uploads[1:]]
            return [*self._methods(chat_id, replace(reply, album=())), *uploads]
        chunks = split_html(reply.text)
        markup = keyboard(reply.buttons)
        if reply.replaces is not None and len(chunks) == 1:
            return [
                EditMessageText(
                    chat_id=chat_id,
                    message_id=int(reply.replaces),
                    text=chunks[0],
                    reply_markup=markup,
                )
            ]
        last = len(chunks) - 1
        return [
            SendMessage(chat_id=chat_id, text=chunk, reply_markup=markup if i == last else None)
            for i, chunk in enumerate(chunks)
        ]

    def is_group(self, chat_id: str) -> bool:
        # Telegram gives groups and channels negative ids, users positive ones.
        return chat_id.startswith("-")

    async def send(self, key: ChatKey, part: Part) -> None:
        if not isinstance(part, StaffPost):
            await self._post(key, part)
            return
        assert self.desk is not None, "staff posts need the handoff store"
        customer = part.customer
        thread = await self._topic(key, customer, part.open_topic)
        sent = await self._post(key, part.method, None if thread is None else int(thread))
        for message_id in _sent_ids(sent):
            await self.desk.remember_relay(key, str(message_id), customer)

    async def _post(self, key: ChatKey, method: Method, thread: int | None = None) -> Any:
        if isinstance(method, Upload):
            return await self._upload(key, method, thread)
        if thread is not None:
            method = method.model_copy(update={"message_thread_id": thread})
        return await self._emit(key, method)

    def upload_limit(self, kind: MediaKind) -> int:
        """The largest file of this kind a bot may upload: 10 MB for a photo and 50 MB for
        the rest on the cloud Bot API, 2,000 MB on a local server."""
        if self.bot.session.api.is_local:
            return LOCAL_UPLOAD_BYTES
        return PHOTO_UPLOAD_BYTES if kind is MediaKind.PHOTO else UPLOAD_BYTES

    async def _upload(self, key: ChatKey, part: Upload, thread: int | None) -> Any:
        """Another channel's file, fetched and uploaded; a line saying why in its place when
        it cannot cross (too big for Telegram, gone), so staff know something was sent."""
        media = part.media
        try:
            if self.open_file is None:
                raise FileNotCarried(f"cannot fetch a file of the {media.channel} channel")
            limit = self.upload_limit(media.kind)
            async with self.open_file(media, limit, "Telegram") as file:
                upload = FSInputFile(file.path, filename=file.name)
                method = _file_message(part.chat_id, media.kind, upload, part.caption)
                if thread is not None:
                    method = method.model_copy(update={"message_thread_id": thread})
                return await self._emit(key, method)
        except FileNotCarried as exc:
            logger.warning(
                "telegram.file_not_carried chat=%s kind=%s reason=%s", key.chat_id, media.kind, exc
            )
            note = Markup("📎 Not shown here: a {} sent on {} ({}).").format(
                media.kind.value, media.channel, str(exc)
            )
            if part.caption:
                note = Markup(part.caption) + Markup("\n\n") + note  # noqa: S704 (our markup)
            line = SendMessage(chat_id=part.chat_id, text=str(note), message_thread_id=thread)
            return await self._emit(key, line)

    async def _topic(self, staff: ChatKey, customer: ChatKey, name: str | None) -> str | None:
        """The customer's topic in the staff chat, opened now if asked and possible."""
        assert self.desk is not None
        thread = await self.desk.topic_of(customer, staff)
        if thread is not None or name is None or staff.chat_id in self._chats_without_topics:
            return thread
        try:
            # Telegram caps topic names at 128 characters.
            topic = await self.bot.create_forum_topic(int(staff.chat_id), name[:MAX_TOPIC_NAME])
        except TelegramBadRequest as exc:
            if "forum" not in exc.message.lower():
                raise Undeliverable(exc.message) from exc
            logger.warning("handoff.staff_chat_without_topics chat=%s", staff.chat_id)
            self._chats_without_topics.add(staff.chat_id)
            return None
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TemporaryFailure(exc.message) from exc
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after, exc.message) from exc
        opened = str(topic.message_thread_id)
        thread = await self.desk.set_topic(customer, staff, opened)
        if thread != opened:
            # Another process opened the customer's topic first; this one stays unused.
            logger.warning("handoff.topic_surplus chat=%s thread=%s", self.shown(customer), opened)
        else:
            logger.info("handoff.topic_opened chat=%s thread=%s", self.shown(customer), thread)
        return thread

    async def _emit(self, key: ChatKey, part: TelegramMethod[Any]) -> Any:
        try:
            return await part.emit(self.bot)
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after, exc.message) from exc
        except TelegramEntityTooLarge as exc:
            raise Undeliverable(exc.message) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TemporaryFailure(exc.message) from exc
        except TelegramBadRequest as exc:
            return await self._recover(key, part, exc)
        except TelegramAPIError as exc:
            # Forbidden (bot blocked), not found, unauthorized, chat migrated: no retry helps.
            raise Undeliverable(exc.message) from exc

    async def _recover(
        self, key: ChatKey, part: TelegramMethod[Any], exc: TelegramBadRequest
    ) -> Any:
        """Some refusals have a sensible second try; the others are final."""
        description = exc.message.lower()
        if isinstance(part, EditMessageText):
            if "message is not modified" in description:
                return None
            if "message to edit not found" in description or "can't be edited" in description:
                return await self._emit(key, _as_new_message(part))
        if "thread not found" in description and getattr(part, "message_thread_id", None):
            # Staff deleted the customer's topic: post in the general thread instead.
            logger.warning("handoff.topic_gone chat=%s", key.chat_id)
            return await self._emit(key, part.model_copy(update={"message_thread_id": None}))
        if "can't parse entities" in description and (plain := as_plain_text(part)) is not None:
            logger.warning(
                "telegram.html_rejected chat=%s method=%s reason=%s",
                key.chat_id,
                part.__api_method__,
                exc.message,
            )
            return await self._emit(key, plain)
        raise Undeliverable(exc.message) from exc


def plain_text(html_text: str) -> str:
    """What an HTML text reads as without its tags."""
    return html.unescape(_TAG.sub("", html_text))


def as_plain_text(method: TelegramMethod[Any]) -> TelegramMethod[Any] | None:
    """The call with every HTML text and caption in it (an album's items' too) sent as
    plain text instead, for when Telegram cannot parse them; None if none is left."""
    changes = _plain_fields(method)
    media = getattr(method, "media", None)
    if isinstance(media, list) and any(_plain_fields(item) for item in media):
        changes["media"] = [item.model_copy(update=_plain_fields(item)) for item in media]
    return method.model_copy(update=changes) if changes else None


def _plain_fields(model: Any) -> dict[str, Any]:
    """The changes that send a method's or an album item's text and caption as plain text;
    none if it is not sent as HTML."""
    if getattr(model, "parse_mode", None) is None:
        return {}
    changes: dict[str, Any] = {"parse_mode": None}
    for name in ("text", "caption"):
        if isinstance(value := getattr(model, name, None), str):
            changes[name] = plain_text(value)
    return changes


AlbumItem = (
    InputMediaAudio | InputMediaDocument | InputMediaLivePhoto | InputMediaPhoto | InputMediaVideo
)
# Telegram's rules for sendMediaGroup: 2-10 items; photos and videos may share a group.
MAX_ALBUM_ITEMS = 10
_ALBUM_GROUPS = {
    MediaKind.PHOTO: "visual",
    MediaKind.VIDEO: "visual",
    MediaKind.AUDIO: "audio",
    MediaKind.DOCUMENT: "document",
}
MAX_CAPTION_LENGTH = 1024
# What a bot may upload: photos and other files on the cloud Bot API, any on a local one.
PHOTO_UPLOAD_BYTES = 10 * MB
UPLOAD_BYTES = 50 * MB
LOCAL_UPLOAD_BYTES = 2000 * MB
MAX_TOPIC_NAME = 128


def album_parts(album: Sequence[Media]) -> list[tuple[Media, ...]]:
    """The album as Telegram takes it: documents only with documents, audio only with
    audio, photos and videos together, at most 10 per media group; each group keeps the
    given order, and a part of one item goes out as a plain file message."""
    groups: dict[str, list[Media]] = {}
    for media in album:
        groups.setdefault(_ALBUM_GROUPS.get(media.kind, "document"), []).append(media)
    return [
        tuple(items[start : start + MAX_ALBUM_ITEMS])
        for items in groups.values()
        for start in range(0, len(items), MAX_ALBUM_ITEMS)
    ]


def fits_caption(text: str) -> bool:
    return len(plain_text(text)) <= MAX_CAPTION_LENGTH


def _album_methods(chat_id: int, reply: Reply) -> list[TelegramMethod[Any]]:
    """The album's parts, with `reply.text` as the caption of the very first item; a text
    too long for a caption follows the album as messages of its own."""
    caption: str | None = reply.text or None
    after: list[TelegramMethod[Any]] = []
    if caption is not None and not fits_caption(caption):
        caption = None
        chunks = split_html(reply.text)
        last, markup = len(chunks) - 1, keyboard(reply.buttons)
        after = [
            SendMessage(chat_id=chat_id, text=chunk, reply_markup=markup if i == last else None)
            for i, chunk in enumerate(chunks)
        ]
    methods: list[TelegramMethod[Any]] = []
    for part in album_parts(reply.album):
        if len(part) == 1:
            methods.append(_file_message(chat_id, part[0].kind, part[0].file_ref, caption))
        else:
            items = [_album_item(m, caption if i == 0 else None) for i, m in enumerate(part)]
            methods.append(SendMediaGroup(chat_id=chat_id, media=items))
        caption = None
    return methods + after


def _file_message(
    chat_id: int, kind: MediaKind, ref: str | InputFile, caption: str | None
) -> TelegramMethod[Any]:
    """A file sent by its Telegram file id, or uploaded."""
    match kind:
        case MediaKind.PHOTO:
            return SendPhoto(chat_id=chat_id, photo=ref, caption=caption)
        case MediaKind.VIDEO:
            return SendVideo(chat_id=chat_id, video=ref, caption=caption)
        case MediaKind.AUDIO:
            return SendAudio(chat_id=chat_id, audio=ref, caption=caption)
        case _:
            # Voice messages, stickers and the rest travel as documents.
            return SendDocument(chat_id=chat_id, document=ref, caption=caption)


def _album_item(media: Media, caption: str | None) -> AlbumItem:
    match media.kind:
        case MediaKind.PHOTO:
            return InputMediaPhoto(media=media.file_ref, caption=caption)
        case MediaKind.VIDEO:
            return InputMediaVideo(media=media.file_ref, caption=caption)
        case MediaKind.AUDIO:
            return InputMediaAudio(media=media.file_ref, caption=caption)
        case _:
            return InputMediaDocument(media=media.file_ref, caption=caption)


def _sent_ids(result: Any) -> list[int]:
    """Message ids in what a send method returned (a message, a list, or a MessageId)."""
    results = result if isinstance(result, list) else [result]
    return [item.message_id for item in results if hasattr(item, "message_id")]


def _as_new_message(edit: EditMessageText) -> SendMessage:
    assert edit.chat_id is not None
    return SendMessage(chat_id=edit.chat_id, text=edit.text or "", reply_markup=edit.reply_markup)


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one derived from the token (stable across restarts)."""
    secret = settings.telegram.webhook.secret
    if secret is not None:
        return secret.get_secret_value()
    token = settings.telegram.token
    assert token is not None
    return hashlib.sha256(b"minerdesk-webhook:" + token.get_secret_value().encode()).hexdigest()


def from_telegram(given: str | None, secret: str) -> bool:
    """Whether a webhook request carries the secret; a missing or empty header never does,
    whatever the secret."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def make_bot(settings: Settings) -> Bot:
    token = settings.telegram.token
    assert token is not None
    server = TelegramAPIServer.from_base(
        str(settings.telegram.api_base_url).rstrip("/"),
        # Local mode: getFile gives paths on the server's disk, read from there.
        is_local=settings.telegram.local_bot_api,
    )
    return Bot(
        token.get_secret_value(),
        session=AiohttpSession(api=server),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


class TelegramChannel:
    """The Telegram adapter the runtime runs: receives updates (long polling or webhook),
    reads them, answers button presses, shows "typing…"; its sender and fetcher do the rest."""

    name = CHANNEL
    # No window or statuses to heed: replies go as rendered.
    gate: Gate | None = None

    def __init__(
        self, app: App, bot: Bot, webhook: bool = False, open_file: OpenFile | None = None
    ) -> None:
        self.bot = bot
        self.app_settings = app.settings
        self.settings = app.settings.telegram
        self.webhook = webhook
        self.staff_chat_id = app.settings.handoff.staff_chat_id
        # `open_file`: other channels' files (a WhatsApp customer's), uploaded when sent.
        self.sender = TelegramSender(bot, app.storage, app.services.shown_chat_id, open_file)
        self.fetcher = TelegramFetcher(bot)
        self.pace = Pace(
            messages_per_second=self.settings.messages_per_second,
            inbound_per_minute=self.settings.inbound_per_minute,
            inbound_burst=self.settings.inbound_burst,
            shutdown_grace_seconds=self.settings.shutdown_grace_seconds,
        )

    @property
    def receives_alone(self) -> bool:
        """Telegram serves one long poll per bot; a webhook posts to any worker."""
        return not self.webhook

    async def start(self) -> None:
        """Raise CannotServe if Telegram does not know the token; set the command menu."""
        try:
            me = await self.bot.get_me()
        except TelegramUnauthorizedError:
            raise TokenRejected("telegram.token: rejected by Telegram (check @BotFather)") from None
        logger.info("telegram.started bot=@%s mode=%s", me.username, self._mode)
        await self._set_commands()

    async def receive(self, store: Store) -> None:
        """Serve until cancelled; raise CannotServe if Telegram stops knowing the token or
        another process polls with it."""
        await (self._serve_webhook(store) if self.webhook else self._poll(store))

    def inbox_id(self, body: dict[str, Any]) -> str:
        return str(body["update_id"])

    def read(self, stored: InboxUpdate) -> Incoming | Aside:
        try:
            update = Update.model_validate(stored.body, context={"bot": self.bot})
            event = read_update(update, self.staff_chat_id)
        except ValueError:
            event = Ignored("unreadable")
        match event:
            case Incoming():
                return event
            case LeaveGroup(chat_id=chat_id):
                return Aside("leave_group", str(chat_id), event)
            case Ignored(reason=reason):
                return Aside(reason)

    async def set_aside(self, stored: InboxUpdate, aside: Aside) -> None:
        if isinstance(aside.event, LeaveGroup):
            chat_id = aside.event.chat_id
            logger.info("telegram.leaving_group chat=%s", chat_id)
            with suppress(TelegramAPIError):
                await self.bot.leave_chat(chat_id)
            return
        logger.info("telegram.ignored update=%s reason=%s", stored.update_id, aside.reason)
        await self._answer_button(stored, None)

    async def answered(self, stored: InboxUpdate, incoming: Incoming, notice: str | None) -> None:
        await self._answer_button(stored, notice)

    async def _answer_button(self, stored: InboxUpdate, notice: str | None) -> None:
        """Every button press gets its answer, or the customer's button keeps spinning."""
        query = stored.body.get("callback_query")
        if not isinstance(query, dict) or not isinstance(query.get("id"), str):
            return
        await answer_callback(self.bot, query["id"], notice)

    async def show_typing(self, chat_id: str) -> None:
        await show_typing(self.bot, chat_id)

    @property
    def _mode(self) -> str:
        return "webhook" if self.webhook else "polling"

    async def _set_commands(self) -> None:
        for language in ("", *SUPPORTED_LANGUAGES):
            _ = translator(language or "en")
            commands = [BotCommand(command=name, description=_(text)) for name, text in COMMANDS]
            await self.bot.set_my_commands(commands, language_code=language or None)

    async def _poll(self, store: Store) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        timeout = self.settings.poll_timeout_seconds
        offset: int | None = None
        failures = 0
        while True:
            request = GetRawUpdates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
            try:
                updates = await self.bot(request, request_timeout=timeout + 30)
            except TelegramUnauthorizedError:
                raise TokenRejected("telegram.token: rejected by Telegram") from None
            except TelegramConflictError:
                raise AnotherPoller(
                    "telegram: another process is polling with this token (Telegram answered "
                    "409 Conflict); run one poller per bot, or use --webhook for several"
                ) from None
            except TelegramAPIError as exc:
                failures += 1
                delay = POLL_RETRY.delay(failures)
                logger.warning(
                    "telegram.poll_failed attempt=%d retry_in=%.1fs reason=%s",
                    failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            if updates:
                # Stored before the next call's offset confirms them to Telegram.
                await store(updates)
                offset = int(updates[-1]["update_id"]) + 1

    async def _serve_webhook(self, store: Store) -> None:
        hook = self.settings.webhook
        assert hook.url is not None
        secret = webhook_secret(self.app_settings)
        web_app = web.Application()
        web_app.router.add_post(hook.path, self._webhook_handler(secret, store))
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, hook.listen_host, hook.listen_port, reuse_port=REUSE_PORT)
        await site.start()
        await self.bot.set_webhook(
            str(hook.url), secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        logger.info(
            "telegram.webhook_listening host=%s port=%d path=%s",
            hook.listen_host,
            hook.listen_port,
            hook.path,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    def _webhook_handler(
        self, secret: str, store: Store
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if not from_telegram(request.headers.get(SECRET_HEADER), secret):
                logger.warning("telegram.webhook_bad_secret remote=%s", request.remote)
                return web.Response(status=401)
            try:
                body = await request.json()
            except ValueError:
                return web.Response(status=400)
            if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
                return web.Response(status=400)
            # Stored before the 200: once Telegram has its answer it will not send it again.
            await store([body])
            return web.Response()

        return handle


async def show_typing(bot: Bot, chat_id: str) -> None:
    """ "typing…" in the chat; a failure is no reason to fail the turn."""
    with suppress(TelegramAPIError):
        await bot.send_chat_action(int(chat_id), ChatAction.TYPING)


async def answer_callback(bot: Bot, query_id: str, notice: str | None) -> None:
    """Answer a button press, retrying a few seconds at most: the spinner stops on its own."""
    failures = 0
    while True:
        try:
            await bot.answer_callback_query(query_id, text=notice)
            return
        except TelegramBadRequest as exc:
            # Typically "query is too old" after a restart: nothing left to answer.
            logger.info("telegram.callback_not_answered reason=%s", exc.message)
            return
        except (TelegramRetryAfter, TelegramNetworkError, TelegramServerError) as exc:
            failures += 1
            if CALLBACK_RETRY.gives_up(failures):
                logger.warning(
                    "telegram.callback_not_answered attempts=%d reason=%s",
                    failures,
                    exc.message,
                )
                return
            delay = CALLBACK_RETRY.delay(failures)
            if isinstance(exc, TelegramRetryAfter):
                delay = min(exc.retry_after, CALLBACK_RETRY.max_delay)
            await asyncio.sleep(delay)


@asynccontextmanager
async def open_channel(
    app: App, open_file: OpenFile, *, webhook: bool = False
) -> AsyncIterator[TelegramChannel]:
    """The channel `minerdesk run` serves (`bot.channels.CHANNELS`): long polling, or with
    `webhook` Telegram's webhook; its HTTP session closed after."""
    bot = make_bot(app.settings)
    try:
        yield TelegramChannel(app, bot, webhook=webhook, open_file=open_file)
    finally:
        await bot.session.close()
