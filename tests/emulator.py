"""An emulator of the Telegram Bot API, for end-to-end tests and the load benchmark.

`BotApiEmulator` stands in for ``https://api.telegram.org``: an aiohttp server on 127.0.0.1
with an OS-chosen port, running in its own thread with its own event loop. The bot under test
(in this process or another one) talks real HTTP to it, exactly as to Telegram::

    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    bot = Bot(emu.token, session=session)

Tests play the users with plain synchronous calls and check what the bot did::

    with BotApiEmulator() as emu:
        ...                                      # start the bot against emu.base_url
        emu.send_text(42, "/start")              # queued for the bot's getUpdates (or webhook)
        [greeting] = emu.wait_messages(42, 1)    # blocks until the bot has answered
        emu.press(42, "Track my order")          # presses an inline button of its last message
        emu.wait_until(lambda: not emu.unanswered_callbacks(), what="callback answered")

Because the server has its own loop, the test thread may block in ``wait_*`` helpers while the
bot runs elsewhere. In an ``async`` test whose loop also runs the bot, do not call the blocking
helpers directly (they would freeze that loop): use ``await asyncio.to_thread(emu.wait_messages,
...)``. All state sits behind one lock; accessors return copies, except `sent_log`,
`on_message` and `calls()`, which hand out the emulator's own (never mutated) message dicts
for speed: treat them as read-only.

What is modelled (faithfully enough for aiogram): getUpdates with Telegram's offset, long-poll,
limit and allowed_updates semantics; webhooks (one update at a time, in order, retried until
HTTP 200, a method call in the webhook's answer is executed); messages, edits, deletions,
inline keyboards and callback queries; files (upload, file_id reuse, getFile, download);
albums; copy/forward; forum topics; chat members; bot commands; HTML parse_mode with
Telegram's own error messages; fault injection (`fail`) and stalls (`hold`).

Limits, on purpose:

* MarkdownV2/Markdown texts are stored as sent, without validation or entity extraction.
* Webhook URLs may be plain ``http://`` (Telegram demands HTTPS) so tests can use a local server.
* URLs given as files are never fetched (tests stay off the internet): they become fake files.
* ``local_mode=True`` writes files to a temporary folder and returns absolute ``file_path``
  values like a local Bot API server does; unlike the real one it still serves them over HTTP
  at ``/file/bot<token>/<file_path>``, so HTTP-downloading clients work in both modes.
* A file's ``file_size`` may be larger than its bytes (to fake a big file without allocating
  it); downloads return the bytes actually registered.
* Not modelled: inline mode, payments, polls, reactions, channels, privacy mode (every group
  message reaches the bot), service messages other than ``my_chat_member``, flood limits
  (use `fail`), ``inline_message_id`` edits, cross-chat replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import logging
import mimetypes
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import (
    BodyPartReader,
    ClientError,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    MultipartReader,
    web,
)

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "BotApiEmulator",
    "Call",
    "HtmlParseError",
    "Upload",
    "parse_html",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
Params = dict[str, Any]
Handler = Callable[[Params, float], Any]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_ALBUM_SIZE = 10
#: getFile refuses bigger files on the cloud Bot API (a local Bot API server has no limit).
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
#: The cloud Bot API takes uploads up to 50 MB; leave headroom for the multipart framing.
MAX_REQUEST_SIZE = 64 * 1024 * 1024
#: A user id for group messages when the test does not say who wrote them.
DEFAULT_GROUP_USER_ID = 1

UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
#: What Telegram sends when allowed_updates was never set (or set to []).
DEFAULT_ALLOWED_UPDATES = UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
FORUM_ICON_COLOR = 7322096


@dataclass(frozen=True, slots=True)
class _Kind:
    """How Telegram describes and stores one kind of file."""

    folder: str
    ext: str
    mime_type: str | None = None
    file_name: str | None = None
    captioned: bool = True


FILE_KINDS: dict[str, _Kind] = {
    "photo": _Kind("photos", ".jpg"),
    "video": _Kind("videos", ".mp4", "video/mp4", "video.mp4"),
    "document": _Kind("documents", ".pdf", "application/pdf", "document.pdf"),
    "voice": _Kind("voice", ".oga", "audio/ogg"),
    "audio": _Kind("music", ".mp3", "audio/mpeg", "audio.mp3"),
    "sticker": _Kind("stickers", ".webp", captioned=False),
    "video_note": _Kind("video_notes", ".mp4", captioned=False),
    "animation": _Kind("animations", ".mp4", "video/mp4", "animation.mp4"),
}
USER_MEDIA_KINDS = (*FILE_KINDS, "location", "contact")
SEND_FILE_METHODS = {
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendSticker": "sticker",
    "sendVideoNote": "video_note",
    "sendAnimation": "animation",
}
ALBUM_KINDS = ("photo", "video", "document", "audio")
#: The parts of a message that copyMessage/forwardMessage carry over.
CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    *FILE_KINDS,
    "location",
    "contact",
    "caption",
    "caption_entities",
    "has_media_spoiler",
)
BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# Form and query values always arrive as strings; these tables say how to read them back.
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "user_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "icon_color",
        "duration",
        "width",
        "height",
        "length",
        "max_connections",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "has_spoiler",
        "supports_streaming",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)
# Free text is never JSON-decoded, even when a user's message happens to look like JSON.
_TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "name",
        "description",
        "short_description",
        "title",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "file_id",
        "action",
        "language_code",
        "icon_custom_emoji_id",
        "inline_message_id",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
        "emoji",
    }
)
_INT_RE = re.compile(r"-?\d+")
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
_BOT_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


# --------------------------------------------------------------------------------------------
# Small public types
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    """One Bot API request as the emulator received it.

    ``params`` are decoded (ints, bools and JSON values restored; uploaded files as `Upload`).
    ``at`` is ``time.monotonic()`` at arrival. ``status`` is the HTTP status of the answer, 0
    while the request is still being handled (held, or long-polling); ``error`` the
    description of an error answer.
    """

    method: str
    params: Params
    at: float
    status: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status = error_code, as Telegram does."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JsonDict:
        body: JsonDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------
# HTML parse mode
# --------------------------------------------------------------------------------------------


class HtmlParseError(ValueError):
    """Text Telegram would refuse with "can't parse entities"; the message is Telegram's."""


_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_entity(match: re.Match[str]) -> str | None:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        # Only these four names are supported; anything else stays literal text.
        return _NAMED_ENTITIES.get(name)
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


def _unescape(value: str) -> str:
    return _HTML_ENTITY_RE.sub(lambda m: _decode_entity(m) or m.group(0), value)


def _utf16_len(text: str) -> int:
    # Entity offsets and lengths are in UTF-16 code units.
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


@dataclass(slots=True)
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int
    language: str | None = None


class _HtmlParser:
    """Telegram's HTML dialect, following the rules (and messages) of tdlib's parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.plain: list[str] = []
        self.utf16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JsonDict] = []

    def parse(self) -> tuple[str, list[JsonDict]]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "<":
                self._tag()
            elif char == "&":
                match = _HTML_ENTITY_RE.match(text, self.pos)
                decoded = _decode_entity(match) if match else None
                if match is not None and decoded is not None:
                    self._emit(decoded)
                    self.pos = match.end()
                else:
                    self._emit("&")
                    self.pos += 1
            else:
                end = len(text)
                for stop in ("<", "&"):
                    found = text.find(stop, self.pos)
                    if found != -1:
                        end = min(end, found)
                self._emit(text[self.pos : end])
                self.pos = end
        if self.stack:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        self.entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
        return "".join(self.plain), self.entities

    def _emit(self, chunk: str) -> None:
        self.plain.append(chunk)
        self.utf16 += _utf16_len(chunk)

    def _byte_offset(self, pos: int) -> int:
        return len(self.text[:pos].encode())

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _read_until_space_or_close(self, extra: str = "") -> str:
        start = self.pos
        text = self.text
        while (
            self.pos < len(text)
            and not text[self.pos].isspace()
            and text[self.pos] not in ">" + extra
        ):
            self.pos += 1
        return text[start : self.pos]

    def _tag(self) -> None:
        begin = self.pos
        self.pos += 1
        if self.text.startswith("/", self.pos):
            self.pos += 1
            self._end_tag(begin)
        else:
            self._start_tag(begin)

    def _start_tag(self, begin: int) -> None:
        name = self._read_until_space_or_close().lower()
        if self.pos >= len(self.text):
            raise HtmlParseError(f"Unclosed start tag at byte offset {self._byte_offset(begin)}")
        if name not in _TAG_ENTITY:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {self._byte_offset(begin)}'
            )
        attrs = self._attributes(name, begin)
        self.pos += 1  # the closing ">"
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self._byte_offset(begin)}'
            )
        self.stack.append(_OpenTag(name, attrs, self.utf16))

    def _attributes(self, tag: str, begin: int) -> dict[str, str]:
        text = self.text
        attrs: dict[str, str] = {}
        while True:
            self._skip_spaces()
            if self.pos >= len(text):
                raise HtmlParseError(
                    f"Unclosed start tag at byte offset {self._byte_offset(begin)}"
                )
            if text[self.pos] == ">":
                return attrs
            name = self._read_until_space_or_close("=").lower()
            if not name:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{self._byte_offset(begin)}"
                )
            self._skip_spaces()
            if self.pos >= len(text) or text[self.pos] != "=":
                if tag == "blockquote" and name == "expandable":
                    attrs[name] = ""
                    continue
                raise HtmlParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {self._byte_offset(begin)}"
                )
            self.pos += 1
            self._skip_spaces()
            if self.pos >= len(text):
                raise HtmlParseError(
                    f"Unclosed start tag at byte offset {self._byte_offset(begin)}"
                )
            quote = text[self.pos]
            if quote in "\"'":
                end = text.find(quote, self.pos + 1)
                if end == -1:
                    raise HtmlParseError(
                        f"Unclosed start tag at byte offset {self._byte_offset(begin)}"
                    )
                attrs[name] = _unescape(text[self.pos + 1 : end])
                self.pos = end + 1
            else:
                # An unquoted name token: letters, digits, periods and hyphens.
                start = self.pos
                while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in ".-"):
                    self.pos += 1
                if self.pos < len(text) and not (text[self.pos].isspace() or text[self.pos] == ">"):
                    raise HtmlParseError(
                        f"Unexpected end of name token at byte offset {self._byte_offset(start)}"
                    )
                attrs[name] = text[start : self.pos].lower()

    def _end_tag(self, begin: int) -> None:
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {self._byte_offset(begin)}")
        name = self._read_until_space_or_close().lower()
        self._skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] != ">":
            raise HtmlParseError(f"Unclosed end tag at byte offset {self._byte_offset(begin)}")
        self.pos += 1
        tag = self.stack.pop()
        if name and name != tag.name:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self._byte_offset(begin)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self._close(tag)

    def _close(self, tag: _OpenTag) -> None:
        length = self.utf16 - tag.offset
        kind = _TAG_ENTITY[tag.name]
        entity: JsonDict = {"type": kind, "offset": tag.offset, "length": length}
        if kind == "code":
            language = tag.attrs.get("class", "")
            parent = self.stack[-1] if self.stack else None
            # <pre><code class="language-x">...</code></pre> is one "pre" entity with a language.
            if parent is not None and parent.name == "pre" and parent.offset == tag.offset:
                if language.startswith("language-"):
                    parent.language = language.removeprefix("language-")
                return
        elif kind == "pre" and tag.language:
            entity["language"] = tag.language
        elif kind == "text_link":
            href = tag.attrs.get("href")
            if not href:
                return  # Telegram keeps the text and drops a link without a target
            entity["url"] = href
        elif kind == "custom_emoji":
            emoji_id = tag.attrs.get("emoji-id")
            if not emoji_id:
                return
            entity["custom_emoji_id"] = emoji_id
        elif kind == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
        if length > 0:
            self.entities.append(entity)


def parse_html(text: str) -> tuple[str, list[JsonDict]]:
    """Telegram's HTML parse mode: (plain text, entities), or `HtmlParseError`."""
    return _HtmlParser(text).parse()


# --------------------------------------------------------------------------------------------
# Request decoding
# --------------------------------------------------------------------------------------------


def _normalize_params(raw: Mapping[str, Any]) -> Params:
    """Give form/query strings back the types Telegram reads them as (idempotent for JSON)."""
    params: Params = {}
    for name, value in raw.items():
        if isinstance(value, str):
            if name in _INT_FIELDS and _INT_RE.fullmatch(value):
                value = int(value)
            elif name in _BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
            elif name not in _TEXT_FIELDS and value[:1] in ("{", "["):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        params[name] = value
    return params


async def _read_multipart(reader: MultipartReader) -> Params:
    params: Params = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            await part.release()
            continue
        if part.filename is not None:
            data = await part.read(decode=True)
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            params[part.name] = Upload(part.filename, content_type, bytes(data))
        else:
            params[part.name] = await part.text()
    return params


def _req_int(params: Params, name: str) -> int:
    value = _opt_int(params, name)
    if value is None:
        raise _bad(f"{name} is empty")
    return value


def _opt_int(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid {name} specified")
    return value


def _update_type(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _command_entities(text: str) -> list[JsonDict]:
    match = _COMMAND_RE.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group())}]


def _summary(message: Mapping[str, Any]) -> str:
    text = message.get("text") or message.get("caption")
    if text is None:
        kind = next((key for key in (*FILE_KINDS, "location", "contact") if key in message), "?")
        text = f"[{kind}]"
    text = str(text).replace("\n", " ")
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _json_error(status: int, description: str) -> web.Response:
    return web.json_response(ApiError(status, description).body(), status=status)


# --------------------------------------------------------------------------------------------
# Internal state records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _File:
    file_id: str
    unique_id: str
    kind: str
    path: str
    content: bytes
    size: int
    #: What a message carrying this file contains, e.g. {"photo": [PhotoSize, ...]}.
    message_fields: JsonDict = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Pending:
    update: JsonDict
    #: Re-delivered on purpose: survives offset confirmation until handed out once more.
    sticky: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass(slots=True)
class _Fault:
    method: str
    remaining: int
    error_code: int
    description: str
    retry_after: int | None
    chat_id: int | None

    def error(self) -> ApiError:
        # A fresh exception per failure: re-raising one instance would grow its traceback.
        return ApiError(self.error_code, self.description, self.retry_after)


@dataclass(slots=True)
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class _Topic:
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class BotApiEmulator:
    """A Telegram Bot API server for tests; see the module docstring."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        local_mode: bool = False,
        webhook_retry_delay: float = 0.2,
        webhook_timeout: float = 10.0,
        bot_first_name: str = "MinerDesk Test Bot",
        bot_username: str = "minerdesk_test_bot",
    ) -> None:
        bot_id, colon, _ = token.partition(":")
        if not colon or not bot_id.isdigit():
            raise ValueError(f"a bot token looks like '<bot id>:<secret>', got {token!r}")
        self.token = token
        self.local_mode = local_mode
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self.bot_id = int(bot_id)
        self.bot_user: JsonDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        #: Called in the server thread with each message the bot sends (read-only dict).
        self.on_message: Callable[[JsonDict], None] | None = None

        # One re-entrant lock guards all state; the condition wakes the test-thread waiters.
        self._cond = threading.Condition(threading.RLock())
        self._version = 0  # bumped on every change, so waiters never miss one

        # Updates
        self._next_update_id = 1
        self._queue: list[_Pending] = []
        self._dropped: list[JsonDict] = []
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0
        self._webhook: _Webhook | None = None
        self._webhook_attempts: list[tuple[int, int]] = []
        # Chats, users, messages
        self._chats: dict[int, JsonDict] = {}
        self._usernames: dict[str, int] = {}
        self._users: dict[int, JsonDict] = {}
        self._members: dict[tuple[int, int], str] = {}
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JsonDict] = {}
        self._bot_messages: dict[int, dict[int, JsonDict]] = {}
        self._reply_keyboards: dict[int, JsonDict] = {}
        self._topics: dict[int, dict[int, _Topic]] = {}
        self._media_group_seq = 0
        # Files
        self._files: dict[str, _File] = {}
        self._files_by_path: dict[str, _File] = {}
        self._file_seq = 0
        self._files_dir: Path | None = None
        # Bot-side records
        self._callbacks: dict[str, JsonDict] = {}
        self._callback_seq = 0
        self._callback_answers: dict[str, JsonDict] = {}
        self._chat_actions: dict[int, list[str]] = {}
        self._commands: dict[tuple[tuple[Any, ...], str], list[JsonDict]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._calls: list[Call] = []
        self._sent_log: list[tuple[float, int, JsonDict]] = []
        self._outbox: list[JsonDict] = []
        # Fault injection
        self._faults: list[_Fault] = []
        self._holds: dict[str, asyncio.Event] = {}
        self._held: dict[str, int] = {}

        # Server
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self._wake_event: asyncio.Event | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._closing = False
        self._startup_error: BaseException | None = None

        handlers: dict[str, Handler | None] = {
            "getMe": self._get_me,
            "getUpdates": None,  # asynchronous (long polling): see _execute
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": functools.partial(self._set_bot_text, "description"),
            "getMyDescription": functools.partial(self._get_bot_text, "description"),
            "setMyShortDescription": functools.partial(self._set_bot_text, "short_description"),
            "getMyShortDescription": functools.partial(self._get_bot_text, "short_description"),
            "setMyName": functools.partial(self._set_bot_text, "name"),
            "getMyName": functools.partial(self._get_bot_text, "name"),
            "getFile": self._get_file,
            "sendMediaGroup": self._send_media_group,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "createForumTopic": self._create_forum_topic,
            "editForumTopic": self._edit_forum_topic,
            "closeForumTopic": functools.partial(self._set_topic_closed, True),
            "reopenForumTopic": functools.partial(self._set_topic_closed, False),
            "deleteForumTopic": self._delete_forum_topic,
            "leaveChat": self._leave_chat,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
        }
        for method, kind in SEND_FILE_METHODS.items():
            handlers[method] = functools.partial(self._send_file, kind)
        # Telegram's method names are case-insensitive.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("the emulator has not been started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> Self:
        """Start serving. After `stop`, starting again keeps the state and the port."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._closing = False
        self._startup_error = None
        ready = threading.Event()
        thread = threading.Thread(
            target=self._serve, args=(ready,), name="bot-api-emulator", daemon=True
        )
        thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("the Bot API emulator did not start within 10 s")
        if self._startup_error is not None:
            thread.join()
            raise RuntimeError("the Bot API emulator failed to start") from self._startup_error
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving: pending long polls return, held calls are released."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=15)
            self._thread = None
            self._loop = None
            self._loop_thread_id = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        try:
            loop.run_until_complete(self._startup())
        except Exception as error:
            self._startup_error = error
            self._loop = None
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        self._wake_event = asyncio.Event()
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # A short shutdown timeout: stop() has already woken every long poll and held call.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._http = ClientSession()
        with self._cond:
            if self._webhook is not None:
                self._ensure_webhook_task()

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake()
        with self._cond:
            holds = list(self._holds.values())
            self._holds.clear()
        for event in holds:
            event.set()
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---------------------------------------------------------------- waking

    def _wake(self) -> None:
        """Wake every long poll and the webhook sender (server loop only)."""
        event = self._wake_event
        if event is not None:
            self._wake_event = asyncio.Event()
            event.set()

    def _wake_loop(self) -> None:
        """`_wake` from any thread."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread_id:
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self._wake)

    def _changed(self) -> None:
        """Record a state change (lock held) and wake the test-thread waiters."""
        self._version += 1
        self._cond.notify_all()

    # ---------------------------------------------------------------- HTTP layer

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            with self._cond:
                self._calls.append(Call(method, {}, time.monotonic(), 401, "Unauthorized"))
                self._changed()
            return _json_error(401, "Unauthorized")
        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError) as error:
            return _json_error(400, f"Bad Request: can't parse request: {error}")
        status, body = await self._execute(method, params, arrived)
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> Params:
        params: Params = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                params.update(body)
            elif content_type.startswith("multipart/"):
                params.update(await _read_multipart(await request.multipart()))
            else:
                form = await request.post()
                params.update({key: value for key, value in form.items() if isinstance(value, str)})
        return _normalize_params(params)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_error(401, "Unauthorized")
        with self._cond:
            file = self._files_by_path.get(request.match_info["path"])
        if file is None:
            return _json_error(404, "Not Found")
        content_type = mimetypes.guess_type(file.path)[0] or "application/octet-stream"
        return web.Response(body=file.content, content_type=content_type)

    async def _execute(self, method: str, params: Params, arrived: float) -> tuple[int, JsonDict]:
        """Run one Bot API method (from HTTP, or from a webhook's answer) and record it."""
        known = self._methods.get(method.lower())
        call = Call(known[0] if known else method, params, time.monotonic())
        with self._cond:
            self._calls.append(call)
        sent: list[JsonDict] = []
        body: JsonDict
        try:
            if known is None:
                raise ApiError(404, "Not Found: method not found")
            name, handler = known
            key = name.lower()
            await self._wait_if_held(key)
            self._inject_fault(key, params)
            if handler is None:
                result = await self._get_updates(params)
            else:
                with self._cond:
                    try:
                        result = handler(params, arrived)
                    finally:
                        sent, self._outbox = self._outbox, []
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            status, body = error.error_code, error.body()
            call.error = error.description
            sent = []
        except Exception as error:  # a bug in the emulator: make it visible to the test
            log.exception("Bot API emulator failed on %s", method)
            bug = ApiError(500, f"Internal Server Error: emulator bug: {error!r}")
            status, body = bug.error_code, bug.body()
            call.error = bug.description
            sent = []
        with self._cond:
            call.status = status
            self._changed()
        hook = self.on_message
        if hook is not None:
            for message in sent:
                try:
                    hook(message)
                except Exception:
                    log.exception("on_message hook failed")
        return status, body

    async def _wait_if_held(self, key: str) -> None:
        with self._cond:
            event = self._holds.get(key)
            if event is None:
                return
            self._held[key] = self._held.get(key, 0) + 1
            self._changed()
        try:
            await event.wait()
        finally:
            with self._cond:
                self._held[key] -= 1
                self._changed()
        if self._closing:
            # Released by stop(): the server went away mid-call, so the call must not happen.
            raise ApiError(502, "Bad Gateway")

    def _inject_fault(self, key: str, params: Params) -> None:
        with self._cond:
            for fault in self._faults:
                if fault.method != key:
                    continue
                if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                raise fault.error()

    # ---------------------------------------------------------------- updates

    def _queue_update(self, update: JsonDict, *, sticky: bool = False) -> JsonDict:
        """Queue an update for the bot (lock held); returns a copy for the test."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        # Telegram does not even create updates of types the bot did not ask for.
        if not sticky and _update_type(update) not in self._allowed_updates:
            self._dropped.append(update)
        else:
            self._queue.append(_Pending(update, sticky))
        self._changed()
        self._wake_loop()
        return copy.deepcopy(update)

    def _set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None or allowed == "":
            return  # not given: keep the previous setting, as Telegram does
        if not isinstance(allowed, list):
            raise _bad("can't parse allowed updates JSON object")
        wanted = frozenset(str(kind) for kind in allowed) & UPDATE_TYPES
        self._allowed_updates = wanted or DEFAULT_ALLOWED_UPDATES

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            # A negative offset keeps only the last -offset updates; the rest are forgotten.
            self._queue = self._queue[offset:]
        elif any(not p.sticky and p.update_id < offset for p in self._queue):
            self._queue = [p for p in self._queue if p.sticky or p.update_id >= offset]
        else:
            return
        self._changed()

    def _take(self, limit: int) -> list[JsonDict]:
        batch = self._queue[:limit]
        for pending in batch:
            pending.sticky = False
        return [pending.update for pending in batch]

    async def _get_updates(self, params: Params) -> list[JsonDict]:
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        timeout = max(_opt_int(params, "timeout") or 0, 0)
        offset = _opt_int(params, "offset")
        with self._cond:
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._set_allowed_updates(params.get("allowed_updates"))
            if offset is not None:
                self._confirm(offset)
            # Like Telegram, a new getUpdates terminates a still-waiting older one.
            self._poll_generation += 1
            generation = self._poll_generation
            batch = self._take(limit)
        self._wake()
        if batch or not timeout:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wake = self._wake_event
            with self._cond:
                if self._closing:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                batch = self._take(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or wake is None:
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), remaining)

    # ---------------------------------------------------------------- webhook

    def _ensure_webhook_task(self) -> None:
        if self._webhook_task is None or self._webhook_task.done():
            loop = self._loop
            assert loop is not None
            self._webhook_task = loop.create_task(self._deliver_webhook())

    async def _deliver_webhook(self) -> None:
        """Post pending updates one at a time, in order; an update is delivered on HTTP 200."""
        while not self._closing:
            wake = self._wake_event
            with self._cond:
                hook = self._webhook
                pending = self._queue[0] if self._queue else None
            if hook is None or wake is None:
                return
            if pending is None:
                await wake.wait()
                continue
            status, reply = await self._post_update(hook, pending)
            with self._cond:
                self._webhook_attempts.append((pending.update_id, status))
                if status == 200:
                    with contextlib.suppress(ValueError):
                        self._queue.remove(pending)
                else:
                    hook.last_error_date = int(time.time())
                self._changed()
            if status != 200:
                await asyncio.sleep(self.webhook_retry_delay)
            elif reply is not None:
                await self._execute(reply[0], reply[1], time.perf_counter())

    async def _post_update(
        self, hook: _Webhook, pending: _Pending
    ) -> tuple[int, tuple[str, Params] | None]:
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._http.post(
                hook.url,
                data=json.dumps(pending.update),
                headers=headers,
                timeout=ClientTimeout(total=self.webhook_timeout),
            ) as response:
                if response.status != 200:
                    hook.last_error_message = (
                        f"Wrong response from the webhook: {response.status} {response.reason}"
                    )
                    return response.status, None
                return 200, await self._webhook_reply(response)
        except (ClientError, TimeoutError, OSError) as error:
            hook.last_error_message = f"Connection error: {error}"
            return 0, None

    @staticmethod
    async def _webhook_reply(response: ClientResponse) -> tuple[str, Params] | None:
        """A Bot API call in the webhook's answer (JSON, or multipart as aiogram sends it)."""
        try:
            if response.content_type.startswith("multipart/"):
                raw = await _read_multipart(MultipartReader(response.headers, response.content))
            else:
                body = await response.read()
                raw = json.loads(body) if body.strip() else {}
        except (ValueError, ClientError):
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("method"), str):
            return None
        method = raw.pop("method")
        return method, _normalize_params(raw)

    def _set_webhook(self, p: Params, _: float) -> bool:
        url = p.get("url") or ""
        if not isinstance(url, str):
            raise _bad("invalid webhook URL specified")
        if not url:
            return self._delete_webhook(p, _)
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not (
            isinstance(secret, str) and _SECRET_TOKEN_RE.fullmatch(secret)
        ):
            raise _bad("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self._set_allowed_updates(p.get("allowed_updates"))
        allowed = p.get("allowed_updates")
        self._webhook = _Webhook(
            url=url,
            secret_token=secret,
            max_connections=_opt_int(p, "max_connections") or 40,
            allowed_updates=allowed if isinstance(allowed, list) else None,
        )
        self._ensure_webhook_task()
        self._wake()
        self._changed()
        return True

    def _delete_webhook(self, p: Params, _: float) -> bool:
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self._webhook = None
        self._wake()
        self._changed()
        return True

    def _get_webhook_info(self, _p: Params, _: float) -> JsonDict:
        info: JsonDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        hook = self._webhook
        if hook is not None:
            info["url"] = hook.url
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    # ---------------------------------------------------------------- chats and users

    @staticmethod
    def _default_chat_type(chat_id: int) -> str:
        if chat_id > 0:
            return "private"
        return "supergroup" if chat_id <= -1_000_000_000_000 else "group"

    def _ensure_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        title: str | None = None,
        user: JsonDict | None = None,
        *,
        is_forum: bool | None = None,
    ) -> JsonDict:
        existing = self._chats.get(chat_id)
        kind = chat_type or (existing["type"] if existing else self._default_chat_type(chat_id))
        chat: JsonDict
        if kind == "private":
            user = user or self._users.get(chat_id) or self._stub_user(chat_id)
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if user.get("username"):
                chat["username"] = user["username"]
        else:
            old_title = existing.get("title") if existing else None
            chat = {"id": chat_id, "type": kind, "title": title or old_title or "Group"}
            forum = (
                is_forum if is_forum is not None else bool(existing and existing.get("is_forum"))
            )
            if forum and kind == "supergroup":
                chat["is_forum"] = True
        if chat != existing:
            # Stored dicts are never mutated (they are shared with queued updates): replace.
            self._chats[chat_id] = chat
            if chat.get("username"):
                self._usernames[str(chat["username"]).lower()] = chat_id
        self._members.setdefault((chat_id, self.bot_id), "member")
        return self._chats[chat_id]

    @staticmethod
    def _stub_user(user_id: int) -> JsonDict:
        return {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}

    def _sender(
        self,
        chat_id: int,
        *,
        user_id: int | None,
        first_name: str,
        username: str | None,
        language_code: str | None,
        chat_type: str | None,
        chat_title: str | None,
    ) -> tuple[JsonDict, JsonDict]:
        existing = self._chats.get(chat_id)
        kind = chat_type or (existing["type"] if existing else self._default_chat_type(chat_id))
        if kind == "private":
            if user_id is not None and user_id != chat_id:
                raise ValueError("in a private chat the chat id is the user's id")
            user_id = chat_id
        elif user_id is None:
            user_id = DEFAULT_GROUP_USER_ID
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if self._users.get(user_id) != user:
            self._users[user_id] = user
            if username:
                self._usernames.setdefault(username.lower(), user_id)
        chat = self._ensure_chat(chat_id, kind, chat_title, user)
        self._members.setdefault((chat_id, user_id), "member")
        return chat, user

    def _chat(self, p: Params, name: str = "chat_id") -> JsonDict:
        ref = p.get(name)
        if ref is None or ref == "":
            raise _bad(f"{name} is empty")
        chat_id: int | None = None
        if isinstance(ref, str) and ref.startswith("@"):
            chat_id = self._usernames.get(ref[1:].lower())
        elif isinstance(ref, int) and not isinstance(ref, bool):
            chat_id = ref
        chat = self._chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _bot_status(self, chat_id: int) -> str:
        return self._members.get((chat_id, self.bot_id), "member")

    def _check_can_post(self, chat: JsonDict) -> None:
        status = self._bot_status(chat["id"])
        if chat["type"] == "private":
            if status == "kicked":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
        elif status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat['type']} chat")
        elif status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")

    def _user_object(self, user_id: int) -> JsonDict | None:
        if user_id == self.bot_id:
            return self.bot_user
        return self._users.get(user_id)

    @staticmethod
    def _member_object(status: str, user: JsonDict) -> JsonDict:
        member: JsonDict = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                    "can_send_welcome_messages": False,
                    "can_pin_messages": True,
                    "can_manage_topics": True,
                }
            )
        elif status == "restricted":
            member.update(
                {
                    "is_member": True,
                    "can_send_messages": False,
                    "can_send_audios": False,
                    "can_send_documents": False,
                    "can_send_photos": False,
                    "can_send_videos": False,
                    "can_send_video_notes": False,
                    "can_send_voice_notes": False,
                    "can_send_polls": False,
                    "can_send_other_messages": False,
                    "can_add_web_page_previews": False,
                    "can_react_to_messages": False,
                    "can_edit_tag": False,
                    "can_change_info": False,
                    "can_invite_users": False,
                    "can_pin_messages": False,
                    "can_manage_topics": False,
                    "until_date": 0,
                }
            )
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _my_chat_member_update(self, chat: JsonDict, by: JsonDict, old: str, new: str) -> JsonDict:
        return {
            "my_chat_member": {
                "chat": chat,
                "from": by,
                "date": int(time.time()),
                "old_chat_member": self._member_object(old, self.bot_user),
                "new_chat_member": self._member_object(new, self.bot_user),
            }
        }

    # ---------------------------------------------------------------- messages

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _user_message(
        self,
        chat: JsonDict,
        user: JsonDict,
        fields: JsonDict,
        *,
        thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        message: JsonDict = {
            "message_id": self._next_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to_message_id is not None:
            target = self._messages.get((chat["id"], reply_to_message_id))
            if target is None:
                raise ValueError(
                    f"no message {reply_to_message_id} in chat {chat['id']} to reply to"
                )
            message["reply_to_message"] = self._without_reply(target)
        message.update(fields)
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    @staticmethod
    def _without_reply(message: JsonDict) -> JsonDict:
        # Telegram never nests replies: a quoted message carries no reply_to_message of its own.
        return {key: value for key, value in message.items() if key != "reply_to_message"}

    def _store_bot_message(
        self,
        chat: JsonDict,
        thread_id: int | None,
        content: JsonDict,
        arrived: float,
        *,
        markup: JsonDict | None = None,
        keyboard: JsonDict | None = None,
        reply_to: JsonDict | None = None,
    ) -> JsonDict:
        chat_id = chat["id"]
        message: JsonDict = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        if markup is not None:
            message["reply_markup"] = markup
        if keyboard is not None:
            self._reply_keyboards[chat_id] = keyboard
        self._messages[(chat_id, message["message_id"])] = message
        self._bot_messages.setdefault(chat_id, {})[message["message_id"]] = message
        self._sent_log.append((arrived, chat_id, message))
        self._outbox.append(message)
        return message

    def _replace_bot_message(self, message: JsonDict) -> None:
        key = (message["chat"]["id"], message["message_id"])
        self._messages[key] = message
        self._bot_messages[key[0]][key[1]] = message

    def _prepare_send(self, p: Params) -> tuple[JsonDict, int | None, JsonDict | None]:
        chat = self._chat(p)
        self._check_can_post(chat)
        return chat, self._thread_id(chat, p), self._reply_to(chat, p)

    def _thread_id(self, chat: JsonDict, p: Params) -> int | None:
        thread_id = _opt_int(p, "message_thread_id")
        if thread_id is None or not chat.get("is_forum"):
            return None  # outside forums Telegram ignores the parameter
        topic = self._topics.get(chat["id"], {}).get(thread_id)
        if topic is None:
            raise _bad("message thread not found")
        if topic.closed and self._bot_status(chat["id"]) not in ("administrator", "creator"):
            raise _bad("TOPIC_CLOSED")
        return thread_id

    def _reply_to(self, chat: JsonDict, p: Params) -> JsonDict | None:
        parameters = p.get("reply_parameters")
        if isinstance(parameters, dict):
            message_id = parameters.get("message_id")
            allow_missing = bool(parameters.get("allow_sending_without_reply"))
        elif p.get("reply_to_message_id") is not None:
            message_id = _opt_int(p, "reply_to_message_id")
            allow_missing = bool(p.get("allow_sending_without_reply"))
        else:
            return None
        target = (
            self._messages.get((chat["id"], message_id)) if isinstance(message_id, int) else None
        )
        if target is None:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return self._without_reply(target)

    @staticmethod
    def _markup(p: Params) -> tuple[JsonDict | None, JsonDict | None]:
        """(inline keyboard for the message, reply keyboard for the chat) from reply_markup."""
        markup = p.get("reply_markup")
        if markup is None or markup == "":
            return None, None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "inline_keyboard" must be '
                    "an Array of Arrays"
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad(
                            'can\'t parse inline keyboard button: Field "text" must be of '
                            "type String"
                        )
                    data = button.get("callback_data")
                    if data is not None:
                        size = len(data.encode()) if isinstance(data, str) else 0
                        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                            raise _bad("BUTTON_DATA_INVALID")
                    elif not any(action in button for action in BUTTON_ACTIONS):
                        raise _bad(
                            "can't parse inline keyboard button: Text buttons are "
                            "unallowed in the inline keyboard"
                        )
            return {"inline_keyboard": rows}, None
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return None, markup
        raise _bad("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _formatted(p: Params, field_name: str, entities_field: str) -> tuple[str, list[JsonDict]]:
        raw = p.get(field_name)
        text = "" if raw is None else str(raw)
        parse_mode = p.get("parse_mode")
        if isinstance(parse_mode, str) and parse_mode:
            mode = parse_mode.lower()
            if mode == "html":
                try:
                    return parse_html(text)
                except HtmlParseError as error:
                    raise _bad(f"can't parse entities: {error}") from None
            if mode in ("markdown", "markdownv2"):
                return text, []
            raise _bad("unsupported parse_mode")
        entities = p.get(entities_field)
        return text, list(entities) if isinstance(entities, list) else []

    def _text(self, p: Params) -> JsonDict:
        text, entities = self._formatted(p, "text", "entities")
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        content: JsonDict = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    def _caption(self, p: Params) -> JsonDict:
        caption, entities = self._formatted(p, "caption", "caption_entities")
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        content: JsonDict = {}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return content

    # ---------------------------------------------------------------- files

    def _files_root(self) -> Path:
        if self._files_dir is None:
            self._files_dir = Path(tempfile.mkdtemp(prefix="bot-api-emulator-"))
            # Cleaned up with the emulator (or at exit), without TemporaryDirectory's warning.
            weakref.finalize(self, shutil.rmtree, self._files_dir, ignore_errors=True)
        return self._files_dir

    def _new_file(self, kind: str, content: bytes, size: int | None) -> _File:
        self._file_seq += 1
        number = self._file_seq
        info = FILE_KINDS[kind]
        path = f"{info.folder}/file_{number}{info.ext}"
        if self.local_mode:
            # Like a local Bot API server: an absolute path to a file that really exists.
            local = self._files_root() / path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(content)
            path = str(local)
        file = _File(
            file_id=f"emu-{kind}-{number}",
            unique_id=f"emu-u{number}",
            kind=kind,
            path=path,
            content=content,
            size=len(content) if size is None else size,
        )
        self._files[file.file_id] = file
        self._files_by_path[file.path] = file
        return file

    def _register_file(
        self,
        kind: str,
        content: bytes,
        *,
        size: int | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
    ) -> _File:
        info = FILE_KINDS[kind]
        file = self._new_file(kind, content, size)
        base: JsonDict = {
            "file_id": file.file_id,
            "file_unique_id": file.unique_id,
            "file_size": file.size,
        }
        mime_type = mime_type or info.mime_type
        file_name = file_name or info.file_name
        duration = duration or 5
        media: JsonDict
        if kind == "photo":
            # Telegram keeps several sizes of a photo, smallest first; each is its own file.
            thumb = self._new_file(kind, content, size)
            thumb_size = {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.unique_id,
                "file_size": thumb.size,
                "width": 320,
                "height": 240,
            }
            full_size = {**base, "width": width or 1280, "height": height or 960}
            thumb.message_fields = {"photo": [thumb_size]}
            file.message_fields = {"photo": [thumb_size, full_size]}
            return file
        if kind == "video":
            media = {**base, "width": width or 1280, "height": height or 720, "duration": duration}
        elif kind == "animation":
            media = {**base, "width": width or 480, "height": height or 270, "duration": duration}
        elif kind == "sticker":
            media = {
                **base,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        elif kind == "video_note":
            media = {**base, "length": width or 240, "duration": duration}
        elif kind in ("voice", "audio"):
            media = {**base, "duration": duration}
        else:
            media = dict(base)
        if info.mime_type is not None and mime_type:
            media["mime_type"] = mime_type
        if kind in ("video", "document", "audio", "animation") and file_name:
            media["file_name"] = file_name
        file.message_fields = {kind: media}
        if kind == "animation":
            # Telegram also describes an animation as a document, for older clients.
            document = {key: media[key] for key in ("file_id", "file_unique_id", "file_size")}
            document.update({key: media[key] for key in ("file_name", "mime_type") if key in media})
            file.message_fields["document"] = document
        return file

    def _input_file(self, p: Params, kind: str, ref: Any, *, missing: str | None = None) -> _File:
        """The file a send method refers to: an upload, a known file_id, or a URL."""
        if ref is None or ref == "":
            raise _bad(missing or f"there is no {kind} in the request")
        upload: Any = ref
        if isinstance(ref, str) and ref.startswith("attach://"):
            upload = p.get(ref.removeprefix("attach://"))
            if not isinstance(upload, Upload):
                raise _bad(missing or "wrong file identifier/HTTP URL specified")
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            # Never fetched: the emulator must not touch the network.
            name = ref.rstrip("/").rsplit("/", 1)[-1] or None
            return self._register_file(kind, ref.encode(), file_name=name)
        elif isinstance(ref, str):
            known = self._files.get(ref)
            if known is None:
                raise _bad("wrong file identifier/HTTP URL specified")
            if (known.kind == "photo") != (kind == "photo"):
                raise _bad("type of file mismatch")
            return known
        if not isinstance(upload, Upload):
            raise _bad("wrong file identifier/HTTP URL specified")
        if not upload.data:
            raise _bad("file must be non-empty")
        mime_type = upload.content_type
        if mime_type == "application/octet-stream":
            mime_type = mimetypes.guess_type(upload.filename)[0] or mime_type
        return self._register_file(
            kind,
            upload.data,
            mime_type=mime_type,
            file_name=upload.filename,
            width=_opt_int(p, "width"),
            height=_opt_int(p, "height"),
            duration=_opt_int(p, "duration"),
        )

    # ---------------------------------------------------------------- Bot API methods

    def _get_me(self, _p: Params, _: float) -> JsonDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, p: Params, arrived: float) -> JsonDict:
        chat, thread_id, reply_to = self._prepare_send(p)
        content = self._text(p)
        if isinstance(p.get("link_preview_options"), dict):
            content["link_preview_options"] = p["link_preview_options"]
        markup, keyboard = self._markup(p)
        return self._store_bot_message(
            chat, thread_id, content, arrived, markup=markup, keyboard=keyboard, reply_to=reply_to
        )

    def _send_file(self, kind: str, p: Params, arrived: float) -> JsonDict:
        chat, thread_id, reply_to = self._prepare_send(p)
        caption = self._caption(p) if FILE_KINDS[kind].captioned else {}
        markup, keyboard = self._markup(p)
        file = self._input_file(p, kind, p.get(kind))
        content = {**file.message_fields, **caption}
        if p.get("has_spoiler") and kind in ("photo", "video", "animation"):
            content["has_media_spoiler"] = True
        return self._store_bot_message(
            chat, thread_id, content, arrived, markup=markup, keyboard=keyboard, reply_to=reply_to
        )

    def _send_media_group(self, p: Params, arrived: float) -> list[JsonDict]:
        chat, thread_id, reply_to = self._prepare_send(p)
        media = p.get("media")
        if media is None or media == "":
            raise _bad('parameter "media" is required')
        if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
            raise _bad("can't parse media JSON object")
        if not media:
            raise _bad("there are no messages to send")
        if len(media) > MAX_ALBUM_SIZE:
            raise _bad("too many messages to send as an album")
        kinds = [str(item.get("type")) for item in media]
        for kind in kinds:
            if kind in FILE_KINDS and kind not in ALBUM_KINDS:
                raise _bad(
                    f"can't parse InputMedia: type \"{kind}\" can't be used in sendMediaGroup"
                )
            if kind not in ALBUM_KINDS:
                raise _bad(f'can\'t parse InputMedia: type "{kind}" is unsupported')
        for exclusive in ("document", "audio"):
            if exclusive in kinds and any(kind != exclusive for kind in kinds):
                raise _bad(f"{exclusive} can't be mixed with other media types")
        items = [
            (
                self._input_file(
                    p, kind, item.get("media"), missing="can't parse InputMedia: media not found"
                ),
                self._caption(item),
            )
            for kind, item in zip(kinds, media, strict=True)
        ]
        # Telegram takes a single item too and sends it as a plain message (no group id).
        group_id = self._new_media_group_id() if len(items) > 1 else None
        messages = []
        for file, caption in items:
            content = {**file.message_fields, **caption}
            if group_id is not None:
                content["media_group_id"] = group_id
            messages.append(
                self._store_bot_message(chat, thread_id, content, arrived, reply_to=reply_to)
            )
        return messages

    def _new_media_group_id(self) -> str:
        self._media_group_seq += 1
        return f"1300000000{self._media_group_seq:08d}"

    def _source_message(self, p: Params, verb: str) -> JsonDict:
        source_chat = self._chat(p, "from_chat_id")
        message = self._messages.get((source_chat["id"], _req_int(p, "message_id")))
        if message is None:
            raise _bad(f"message to {verb} not found")
        return message

    def _copy_message(self, p: Params, arrived: float) -> JsonDict:
        chat, thread_id, reply_to = self._prepare_send(p)
        source = self._source_message(p, "copy")
        content = {key: source[key] for key in CONTENT_KEYS if key in source}
        if not content:
            raise _bad("message can't be copied")
        if "caption" in p and "text" not in content:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(p))
        markup, keyboard = self._markup(p)
        message = self._store_bot_message(
            chat, thread_id, content, arrived, markup=markup, keyboard=keyboard, reply_to=reply_to
        )
        return {"message_id": message["message_id"]}

    def _forward_message(self, p: Params, arrived: float) -> JsonDict:
        chat = self._chat(p)
        self._check_can_post(chat)
        thread_id = self._thread_id(chat, p)
        source = self._source_message(p, "forward")
        content = {key: source[key] for key in CONTENT_KEYS if key in source}
        content["forward_origin"] = source.get("forward_origin") or {
            "type": "user",
            "date": source["date"],
            "sender_user": source["from"],
        }
        return self._store_bot_message(chat, thread_id, content, arrived)

    def _editable(self, p: Params) -> JsonDict:
        if p.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")  # inline messages are not modelled
        chat = self._chat(p)
        message_id = _req_int(p, "message_id")
        message = self._bot_messages.get(chat["id"], {}).get(message_id)
        if message is None:
            if (chat["id"], message_id) in self._messages:
                raise _bad("message can't be edited")
            raise _bad("message to edit not found")
        return message

    @staticmethod
    def _not_modified() -> ApiError:
        return _bad(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )

    def _edited(self, message: JsonDict, changes: JsonDict, markup: JsonDict | None) -> JsonDict:
        edited = {key: value for key, value in message.items() if key != "reply_markup"}
        for key, value in changes.items():
            if value is None:
                edited.pop(key, None)
            else:
                edited[key] = value
        edited["edit_date"] = int(time.time())
        if markup is not None:
            # Without reply_markup an edit removes the inline keyboard, as on Telegram.
            edited["reply_markup"] = markup
        self._replace_bot_message(edited)
        return edited

    def _edit_message_text(self, p: Params, _: float) -> JsonDict:
        message = self._editable(p)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        content = self._text(p)
        markup, keyboard = self._markup(p)
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        if (
            content["text"] == message["text"]
            and content.get("entities", []) == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise self._not_modified()
        changes = {"text": content["text"], "entities": content.get("entities")}
        if isinstance(p.get("link_preview_options"), dict):
            changes["link_preview_options"] = p["link_preview_options"]
        return self._edited(message, changes, markup)

    def _edit_message_caption(self, p: Params, _: float) -> JsonDict:
        message = self._editable(p)
        if "text" in message:
            raise _bad("there is no caption in the message to edit")
        caption = self._caption(p)
        markup, keyboard = self._markup(p)
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        if (
            caption.get("caption") == message.get("caption")
            and caption.get("caption_entities") == message.get("caption_entities")
            and markup == message.get("reply_markup")
        ):
            raise self._not_modified()
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
        }
        return self._edited(message, changes, markup)

    def _edit_message_reply_markup(self, p: Params, _: float) -> JsonDict:
        message = self._editable(p)
        markup, keyboard = self._markup(p)
        if keyboard is not None:
            raise _bad("inline keyboard expected")
        if markup == message.get("reply_markup"):
            raise self._not_modified()
        return self._edited(message, {}, markup)

    def _forget_message(self, chat_id: int, message_id: int) -> bool:
        found = self._messages.pop((chat_id, message_id), None) is not None
        self._bot_messages.get(chat_id, {}).pop(message_id, None)
        return found

    def _delete_message(self, p: Params, _: float) -> bool:
        chat = self._chat(p)
        if not self._forget_message(chat["id"], _req_int(p, "message_id")):
            raise _bad("message to delete not found")
        return True

    def _delete_messages(self, p: Params, _: float) -> bool:
        chat = self._chat(p)
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message_ids is empty")
        for message_id in ids:
            if isinstance(message_id, int):
                self._forget_message(chat["id"], message_id)
        return True

    def _answer_callback_query(self, p: Params, _: float) -> bool:
        query_id = p.get("callback_query_id")
        if query_id not in self._callbacks or query_id in self._callback_answers:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._callback_answers[str(query_id)] = {
            key: value for key, value in p.items() if key != "callback_query_id"
        }
        return True

    def _send_chat_action(self, p: Params, _: float) -> bool:
        chat = self._chat(p)
        self._check_can_post(chat)
        self._thread_id(chat, p)
        action = p.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._chat_actions.setdefault(chat["id"], []).append(str(action))
        return True

    @staticmethod
    def _scope_key(scope: Any) -> tuple[Any, ...]:
        if scope is None or scope == "":
            return ("default",)
        if isinstance(scope, str):
            scope = {"type": scope}
        if not isinstance(scope, Mapping) or scope.get("type") not in COMMAND_SCOPES:
            raise _bad("can't parse BotCommandScope JSON object")
        key: tuple[Any, ...] = (scope["type"],)
        for name in ("chat_id", "user_id"):
            if name in scope:
                value = scope[name]
                key += (
                    int(value) if isinstance(value, str) and _INT_RE.fullmatch(value) else value,
                )
        return key

    def _commands_key(self, p: Params) -> tuple[tuple[Any, ...], str]:
        return self._scope_key(p.get("scope")), str(p.get("language_code") or "")

    def _set_my_commands(self, p: Params, _: float) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse commands JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _BOT_COMMAND_RE.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(p)
        if commands:
            self._commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self._commands.pop(key, None)
        return True

    def _get_my_commands(self, p: Params, _: float) -> list[JsonDict]:
        return list(self._commands.get(self._commands_key(p), []))

    def _delete_my_commands(self, p: Params, _: float) -> bool:
        self._commands.pop(self._commands_key(p), None)
        return True

    def _set_bot_text(self, name: str, p: Params, _: float) -> bool:
        value = p.get(name)
        self._bot_texts[(name, str(p.get("language_code") or ""))] = str(value or "")
        return True

    def _get_bot_text(self, name: str, p: Params, _: float) -> JsonDict:
        value = self._bot_texts.get((name, str(p.get("language_code") or "")))
        if value is None:
            value = self.bot_user["first_name"] if name == "name" else ""
        return {name: value}

    def _get_file(self, p: Params, _: float) -> JsonDict:
        file = self._files.get(str(p.get("file_id") or ""))
        if file is None:
            raise _bad("invalid file_id")
        if file.size > MAX_DOWNLOAD_SIZE and not self.local_mode:
            raise _bad("file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.unique_id,
            "file_size": file.size,
            "file_path": file.path,
        }

    def _forum(self, p: Params) -> JsonDict:
        chat = self._chat(p)
        self._check_can_post(chat)
        if not chat.get("is_forum"):
            raise _bad("the chat is not a forum")
        return chat

    def _topic(self, p: Params) -> tuple[JsonDict, int, _Topic]:
        chat = self._forum(p)
        thread_id = _req_int(p, "message_thread_id")
        topic = self._topics.get(chat["id"], {}).get(thread_id)
        if topic is None:
            raise _bad("message thread not found")
        return chat, thread_id, topic

    def _create_forum_topic(self, p: Params, _: float) -> JsonDict:
        chat = self._forum(p)
        name = p.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("name is empty")
        if len(name) > 128:
            raise _bad("TOPIC_NAME_INVALID")
        # The topic's id is the id of its (service) creation message.
        thread_id = self._next_message_id(chat["id"])
        emoji = p.get("icon_custom_emoji_id") or None
        topic = _Topic(name, _opt_int(p, "icon_color") or FORUM_ICON_COLOR, emoji)
        self._topics.setdefault(chat["id"], {})[thread_id] = topic
        self._changed()
        result: JsonDict = {
            "message_thread_id": thread_id,
            "name": topic.name,
            "icon_color": topic.icon_color,
        }
        if emoji:
            result["icon_custom_emoji_id"] = emoji
        return result

    def _edit_forum_topic(self, p: Params, _: float) -> bool:
        _chat, _thread_id, topic = self._topic(p)
        name = p.get("name")
        if isinstance(name, str) and name:
            topic.name = name
        if "icon_custom_emoji_id" in p:
            topic.icon_custom_emoji_id = p["icon_custom_emoji_id"] or None
        return True

    def _set_topic_closed(self, closed: bool, p: Params, _: float) -> bool:
        _chat, _thread_id, topic = self._topic(p)
        if topic.closed == closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        return True

    def _delete_forum_topic(self, p: Params, _: float) -> bool:
        chat, thread_id, _topic = self._topic(p)
        del self._topics[chat["id"]][thread_id]
        for message in list(self._bot_messages.get(chat["id"], {}).values()):
            if message.get("message_thread_id") == thread_id:
                self._forget_message(chat["id"], message["message_id"])
        return True

    def _leave_chat(self, p: Params, _: float) -> bool:
        chat = self._chat(p)
        if chat["type"] == "private":
            raise _bad("chat member status can't be changed in private chats")
        self._check_can_post(chat)
        old = self._bot_status(chat["id"])
        self._members[(chat["id"], self.bot_id)] = "left"
        self._queue_update(self._my_chat_member_update(chat, self.bot_user, old, "left"))
        return True

    def _get_chat(self, p: Params, _: float) -> JsonDict:
        chat = self._chat(p)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(self, p: Params, _: float) -> JsonDict:
        chat = self._chat(p)
        user_id = _req_int(p, "user_id")
        status = self._members.get((chat["id"], user_id))
        user = self._user_object(user_id)
        if user is None:
            if status is None:
                raise _bad("user not found")
            user = self._stub_user(user_id)
        if status is None:
            is_self = chat["type"] == "private" and user_id == chat["id"]
            status = "member" if is_self else "left"
        return self._member_object(status, user)

    # ================================================================ test-facing API: users

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = "alice",
        language_code: str | None = "en",
        chat_type: str | None = None,
        chat_title: str | None = None,
        message_thread_id: int | None = None,
        forward_from_name: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """A user writes `text`; returns the queued ``message`` update.

        ``chat_type`` defaults to the chat's registered type, else to what the id implies
        (positive: private; below -10^12: supergroup; other negative: group). ``user_id``
        defaults to the chat id in private chats, to `DEFAULT_GROUP_USER_ID` elsewhere.
        """
        with self._cond:
            chat, user = self._sender(
                chat_id,
                user_id=user_id,
                first_name=first_name,
                username=username,
                language_code=language_code,
                chat_type=chat_type,
                chat_title=chat_title,
            )
            fields: JsonDict = {"text": text}
            entities = _command_entities(text)
            if entities:
                fields["entities"] = entities
            if forward_from_name is not None:
                fields["forward_origin"] = {
                    "type": "hidden_user",
                    "date": int(time.time()) - 60,
                    "sender_user_name": forward_from_name,
                }
            message = self._user_message(
                chat,
                user,
                fields,
                thread_id=message_thread_id,
                reply_to_message_id=reply_to_message_id,
            )
            return self._queue_update({"message": message})

    def send_media(
        self,
        chat_id: int,
        kind: str,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        content: bytes | None = None,
        user_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = "alice",
        language_code: str | None = "en",
        chat_type: str | None = None,
        chat_title: str | None = None,
        message_thread_id: int | None = None,
    ) -> JsonDict:
        """A user sends a photo, document, location... (see `USER_MEDIA_KINDS`).

        The file is registered and downloadable; ``file_size`` larger than ``content`` fakes
        a big file (getFile refuses more than 20 MB unless ``local_mode``).
        """
        if kind not in USER_MEDIA_KINDS:
            raise ValueError(f"kind must be one of {USER_MEDIA_KINDS}, got {kind!r}")
        with self._cond:
            chat, user = self._sender(
                chat_id,
                user_id=user_id,
                first_name=first_name,
                username=username,
                language_code=language_code,
                chat_type=chat_type,
                chat_title=chat_title,
            )
            fields: JsonDict
            if kind == "location":
                fields = {"location": {"latitude": 55.7558, "longitude": 37.6173}}
            elif kind == "contact":
                fields = {
                    "contact": {
                        "phone_number": "+15550100",
                        "first_name": user["first_name"],
                        "user_id": user["id"],
                    }
                }
            else:
                data = content if content is not None else f"{kind} from a user".encode() * 4
                file = self._register_file(
                    kind, data, size=file_size, mime_type=mime_type, file_name=file_name
                )
                fields = dict(file.message_fields)
                if caption and FILE_KINDS[kind].captioned:
                    fields["caption"] = caption
            if media_group_id is not None:
                fields["media_group_id"] = media_group_id
            message = self._user_message(chat, user, fields, thread_id=message_thread_id)
            return self._queue_update({"message": message})

    def send_album(
        self, chat_id: int, kinds: Sequence[str] = ("photo", "photo"), **kw: Any
    ) -> list[JsonDict]:
        """A user sends an album: one update per item, one shared media_group_id.

        Keyword arguments go to `send_media`; a ``caption`` goes on the first item only.
        """
        caption = kw.pop("caption", None)
        with self._cond:
            group_id = self._new_media_group_id()
            return [
                self.send_media(
                    chat_id,
                    kind,
                    media_group_id=group_id,
                    caption=caption if index == 0 else None,
                    **kw,
                )
                for index, kind in enumerate(kinds)
            ]

    def edit_text(self, chat_id: int, message_id: int, text: str) -> JsonDict:
        """A user edits their text message; returns the queued ``edited_message`` update."""
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None or message["from"].get("is_bot"):
                raise ValueError(f"no user message {message_id} in chat {chat_id}")
            edited = {key: value for key, value in message.items() if key != "entities"}
            edited["text"] = text
            edited["edit_date"] = int(time.time())
            entities = _command_entities(text)
            if entities:
                edited["entities"] = entities
            self._messages[(chat_id, message_id)] = edited
            return self._queue_update({"edited_message": edited})

    def press(
        self,
        chat_id: int,
        button: str,
        *,
        message: Mapping[str, Any] | None = None,
        user_id: int | None = None,
    ) -> JsonDict:
        """Press the inline button whose label or callback_data is `button`.

        On `message` (its current version), else on the newest bot message in the chat that
        has such a button. Returns the queued ``callback_query`` update.
        """
        with self._cond:
            chat_messages = self._bot_messages.get(chat_id, {})
            if message is not None:
                current = chat_messages.get(int(message["message_id"]))
                if current is None:
                    raise AssertionError(
                        f"message {message['message_id']} in chat {chat_id} is not (or no "
                        "longer) a bot message there"
                    )
                candidates = [current]
            else:
                candidates = list(reversed(chat_messages.values()))
            for candidate in candidates:
                for row in candidate.get("reply_markup", {}).get("inline_keyboard", []):
                    for key in row:
                        if button not in (key.get("text"), key.get("callback_data")):
                            continue
                        data = key.get("callback_data")
                        if data is None:
                            raise AssertionError(
                                f"button {button!r} is not a callback button: {key}"
                            )
                        return self._callback_update(candidate, data, user_id)
            available = [
                f"message {m['message_id']} ({_summary(m)}): {self.buttons(m)}"
                for m in candidates[:5]
                if m.get("reply_markup")
            ]
            raise AssertionError(
                f"no inline button {button!r} in chat {chat_id}; available: "
                + ("; ".join(available) or "none")
            )

    def press_data(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        user_id: int | None = None,
    ) -> JsonDict:
        """A callback_query with arbitrary (e.g. forged or stale) data on a bot message."""
        with self._cond:
            chat_messages = self._bot_messages.get(chat_id, {})
            if message_id is None:
                if not chat_messages:
                    raise AssertionError(f"the bot has no message in chat {chat_id}")
                message = next(reversed(chat_messages.values()))
            else:
                found = self._messages.get((chat_id, message_id))
                if found is None:
                    raise AssertionError(f"no message {message_id} in chat {chat_id}")
                message = found
            return self._callback_update(message, data, user_id)

    def _callback_update(self, message: JsonDict, data: str, user_id: int | None) -> JsonDict:
        chat = message["chat"]
        if user_id is None:
            user_id = chat["id"] if chat["type"] == "private" else DEFAULT_GROUP_USER_ID
        user = self._users.get(user_id) or self._stub_user(user_id)
        self._callback_seq += 1
        query_id = str(4_000_000_000_000_000 + self._callback_seq)
        query: JsonDict = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str(abs(chat["id"]) * 31 + 7),
            "data": data,
        }
        self._callbacks[query_id] = query
        return self._queue_update({"callback_query": query})

    def bot_added_to_group(
        self,
        chat_id: int,
        *,
        by_user_id: int = DEFAULT_GROUP_USER_ID,
        chat_type: str = "group",
        title: str = "Strangers",
    ) -> JsonDict:
        """Someone adds the bot to a group: a ``my_chat_member`` update (left -> member)."""
        with self._cond:
            old = "kicked" if self._members.get((chat_id, self.bot_id)) == "kicked" else "left"
            chat = self._ensure_chat(chat_id, chat_type, title)
            self._members[(chat_id, self.bot_id)] = "member"
            by = self._users.get(by_user_id) or self._stub_user(by_user_id)
            self._members.setdefault((chat_id, by_user_id), "member")
            return self._queue_update(self._my_chat_member_update(chat, by, old, "member"))

    def block(self, chat_id: int) -> JsonDict:
        """The user blocks the bot: sends to that private chat now fail with 403."""
        with self._cond:
            chat = self._ensure_chat(chat_id, "private")
            old = self._bot_status(chat_id)
            self._members[(chat_id, self.bot_id)] = "kicked"
            by = self._users.get(chat_id) or self._stub_user(chat_id)
            return self._queue_update(self._my_chat_member_update(chat, by, old, "kicked"))

    def add_chat(
        self, chat_id: int, *, chat_type: str | None = None, title: str | None = None
    ) -> JsonDict:
        """Register a chat the bot is a member of, without any update."""
        with self._cond:
            return copy.deepcopy(self._ensure_chat(chat_id, chat_type, title))

    def add_forum(self, chat_id: int, title: str = "Staff") -> JsonDict:
        """Register a forum supergroup where the bot is an administrator."""
        with self._cond:
            chat = self._ensure_chat(chat_id, "supergroup", title, is_forum=True)
            if self._members.get((chat_id, self.bot_id)) == "member":
                self._members[(chat_id, self.bot_id)] = "administrator"
            self._changed()
            return copy.deepcopy(chat)

    def set_member(self, chat_id: int, user_id: int, status: str = "member") -> None:
        """Set what getChatMember answers (``user_id == emu.bot_id`` sets the bot's own status:
        "left"/"kicked" make sends to the chat fail with 403)."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {sorted(MEMBER_STATUSES)}, got {status!r}")
        with self._cond:
            if chat_id not in self._chats:
                self._ensure_chat(chat_id)
            if self._user_object(user_id) is None:
                self._users[user_id] = self._stub_user(user_id)
            self._members[(chat_id, user_id)] = status
            self._changed()

    def push_update(self, update: Mapping[str, Any]) -> JsonDict:
        """Queue a raw update (an update_id is assigned when missing)."""
        with self._cond:
            return self._queue_update(copy.deepcopy(dict(update)))

    def redeliver(self, update: Mapping[str, Any]) -> None:
        """Queue the very same update (same update_id) again, even if it was confirmed."""
        if "update_id" not in update:
            raise ValueError("redeliver() needs an update with its update_id")
        with self._cond:
            self._queue_update(copy.deepcopy(dict(update)), sticky=True)

    # ================================================================ test-facing API: bot

    def messages(self, chat_id: int, thread_id: int | None = None) -> list[JsonDict]:
        """The bot's messages in a chat, in send order, as they are now (edits applied,
        deleted ones gone). ``thread_id=None`` means all threads."""
        with self._cond:
            return copy.deepcopy(self._messages_in(chat_id, thread_id))

    def _messages_in(self, chat_id: int, thread_id: int | None) -> list[JsonDict]:
        found = list(self._bot_messages.get(chat_id, {}).values())
        if thread_id is None:
            return found
        return [m for m in found if m.get("message_thread_id") == thread_id]

    def get_message(self, chat_id: int, message_id: int) -> JsonDict | None:
        """Any message the emulator knows (a user's or the bot's), as it is now."""
        with self._cond:
            return copy.deepcopy(self._messages.get((chat_id, message_id)))

    def reply_keyboard(self, chat_id: int) -> JsonDict | None:
        """The last non-inline reply_markup (keyboard, remove_keyboard, force_reply) sent."""
        with self._cond:
            return copy.deepcopy(self._reply_keyboards.get(chat_id))

    def wait_messages(
        self, chat_id: int, count: int, timeout: float = 15, thread_id: int | None = None
    ) -> list[JsonDict]:
        """Block until the bot has (at least) `count` messages in the chat; return them all."""

        def describe() -> str:
            got = self._messages_in(chat_id, thread_id)
            where = f"chat {chat_id}" + (f" thread {thread_id}" if thread_id is not None else "")
            return (
                f"expected at least {count} bot message(s) in {where} within {timeout:g} s, "
                f"got {len(got)}: [{', '.join(_summary(m) for m in got)}]"
            )

        self._wait(lambda: len(self._messages_in(chat_id, thread_id)) >= count, timeout, describe)
        return self.messages(chat_id, thread_id)

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 15, what: str = "a condition"
    ) -> None:
        """Block until `predicate()` is true (re-checked on every emulator change, and at
        least every 50 ms for outside state)."""
        self._wait(predicate, timeout, lambda: f"timed out after {timeout:g} s waiting for {what}")

    def _wait(
        self, predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                version = self._version
            # Evaluated without the lock, so a predicate may do anything (even wait itself).
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with self._cond:
                    raise AssertionError(describe() + self._diagnostics())
            with self._cond:
                if self._version == version:
                    self._cond.wait(min(remaining, 0.05))

    def _diagnostics(self) -> str:
        lines = []
        if not self._calls:
            lines.append("the bot has made no Bot API call at all")
        failed = [call for call in self._calls if call.status not in (0, 200)][-5:]
        if failed:
            lines.append(
                "recent failed calls: "
                + "; ".join(f"{c.method} -> {c.status} {c.error}" for c in failed)
            )
        if self._queue:
            lines.append(f"{len(self._queue)} update(s) not yet confirmed/delivered")
        if self._dropped:
            kinds = sorted({_update_type(update) for update in self._dropped})
            lines.append(
                f"{len(self._dropped)} update(s) of types {kinds} dropped: not in the bot's "
                f"allowed_updates {sorted(self._allowed_updates)}"
            )
        held = {method: n for method, n in self._held.items() if n}
        if held:
            lines.append(f"calls held: {held}")
        return "".join(f"\n  {line}" for line in lines)

    def calls(self, method: str | None = None) -> list[Call]:
        """Bot API calls in arrival order, optionally of one method (case-insensitive)."""
        with self._cond:
            if method is None:
                return list(self._calls)
            wanted = method.lower()
            return [call for call in self._calls if call.method.lower() == wanted]

    @staticmethod
    def buttons(message: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(label, callback_data) of a message's inline keyboard; URL buttons give the URL."""
        markup = message.get("reply_markup") or {}
        return [
            (button["text"], button.get("callback_data") or button.get("url") or "")
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]

    @property
    def callback_answers(self) -> dict[str, JsonDict]:
        """answerCallbackQuery parameters by callback query id."""
        with self._cond:
            return copy.deepcopy(self._callback_answers)

    def unanswered_callbacks(self) -> list[str]:
        with self._cond:
            return [qid for qid in self._callbacks if qid not in self._callback_answers]

    def chat_actions(self, chat_id: int) -> list[str]:
        with self._cond:
            return list(self._chat_actions.get(chat_id, []))

    def my_commands(
        self, scope: str | Mapping[str, Any] = "default", language_code: str = ""
    ) -> list[JsonDict]:
        with self._cond:
            return copy.deepcopy(self._commands.get((self._scope_key(scope), language_code), []))

    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot (offset), or not yet delivered to the webhook."""
        with self._cond:
            return len(self._queue)

    @property
    def dropped_updates(self) -> list[JsonDict]:
        """Updates never queued because their type was not in the bot's allowed_updates."""
        with self._cond:
            return copy.deepcopy(self._dropped)

    @property
    def webhook(self) -> JsonDict | None:
        with self._cond:
            hook = self._webhook
            if hook is None:
                return None
            return {
                "url": hook.url,
                "secret_token": hook.secret_token,
                "max_connections": hook.max_connections,
                "allowed_updates": hook.allowed_updates,
                "last_error_message": hook.last_error_message,
            }

    @property
    def webhook_attempts(self) -> list[tuple[int, int]]:
        """(update_id, HTTP status) per delivery attempt; status 0 is a connection error."""
        with self._cond:
            return list(self._webhook_attempts)

    def topics(self, chat_id: int) -> dict[int, str]:
        with self._cond:
            return {tid: topic.name for tid, topic in self._topics.get(chat_id, {}).items()}

    def closed_topics(self, chat_id: int) -> set[int]:
        with self._cond:
            return {tid for tid, topic in self._topics.get(chat_id, {}).items() if topic.closed}

    @property
    def sent_log(self) -> list[tuple[float, int, JsonDict]]:
        """(time.perf_counter() at the request's arrival, chat_id, message) per sent message."""
        with self._cond:
            return list(self._sent_log)

    # ================================================================ fault injection

    def _method_key(self, method: str) -> str:
        key = method.lower()
        if key not in self._methods:
            raise ValueError(
                f"unknown Bot API method {method!r}; known: "
                + ", ".join(sorted(name for name, _ in self._methods.values()))
            )
        return key

    def fail(
        self,
        method: str,
        times: int = 1,
        *,
        error_code: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next `times` calls of `method` (for `chat_id` only, if given) fail.

        ``retry_after`` is only sent with 429 (aiogram would otherwise turn any error carrying
        it into TelegramRetryAfter).
        """
        key = self._method_key(method)
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                try:
                    description = HTTPStatus(error_code).phrase
                except ValueError:
                    description = f"Error {error_code}"
        retry = retry_after if error_code == 429 else None
        with self._cond:
            self._faults.append(_Fault(key, times, error_code, description, retry, chat_id))

    def hold(self, method: str) -> None:
        """Calls of `method` block (server side) until `release`."""
        key = self._method_key(method)
        with self._cond:
            self._holds.setdefault(key, asyncio.Event())

    def release(self, method: str) -> None:
        key = self._method_key(method)
        with self._cond:
            event = self._holds.pop(key, None)
        if event is None:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread_id:
            loop.call_soon_threadsafe(event.set)
        else:
            event.set()

    def held(self, method: str) -> int:
        """How many calls of `method` are blocked by `hold` right now."""
        key = self._method_key(method)
        with self._cond:
            return self._held.get(key, 0)
