"""An emulator of the WhatsApp Cloud API (Meta's Graph API), for end-to-end tests.

`WhatsAppEmulator` stands in for ``https://graph.facebook.com``: an aiohttp server on
127.0.0.1 with an OS-chosen port, in its own thread with its own event loop. The bot under
test talks real HTTP to it, exactly as to Meta, and receives real signed webhooks from it::

    with WhatsAppEmulator(app_secret="s3cret", access_token="EAAG-test") as emu:
        # the bot: api_base_url=emu.api_base_url, api_version=emu.api_version,
        #          phone_number_id=emu.phone_number_id, token, app secret, verify token
        emu.webhook_url = "http://127.0.0.1:8443/whatsapp/webhook"   # where the bot listens
        assert emu.verify("challenge-1") == (200, "challenge-1")     # GET handshake
        emu.send_text("15551234567", "hi", name="Alice")             # signed POST, like Meta
        [menu] = emu.wait_messages("15551234567", 1)                  # what the bot sent
        emu.press_button("15551234567", title="Track my order")       # a tap on that menu

Driving helpers (``send_*``, ``press_button``, ``choose_row``, ``redeliver``, ``post_raw``,
``verify``) are synchronous and return once the bot has answered the webhook POST, so a test
can check right away what the bot stored; they raise `WebhookRejected` when the bot answered
anything but 200 (``check=False`` allows it). Bodies are signed over the raw bytes
(``X-Hub-Signature-256: sha256=<HMAC-SHA256 with the app secret>``) with non-ASCII escaped,
as Meta sends them; `post_raw` sends any body with a wrong or no signature, `batch` puts
several messages in one notification, `set_last_inbound` moves a customer's clock back.
In an ``async`` test whose loop also runs the bot, call them (and the ``wait_*`` helpers)
through ``asyncio.to_thread``. All state sits behind one lock; readers return copies.

What is emulated, under ``{api_base_url}/{api_version}/`` with ``Authorization: Bearer``:

* ``POST {phone_number_id}/messages``: text, interactive ``button`` and ``list``,
  image/video/audio/document/sticker by uploaded ``id`` or by ``link``, ``template``, and the
  read receipt (``status: read``, optional ``typing_indicator``). Each accepted message gets a
  ``wamid.`` id; ``statuses`` webhooks (sent, delivered, read; ``auto_statuses``) follow
  asynchronously, ``status_delay`` apart: as with Meta, one may reach the bot before it has
  read the API's answer.
* ``POST {phone_number_id}/media`` (multipart), ``GET {media_id}``, ``DELETE {media_id}``,
  and the returned download ``url`` (bearer token required; expires like Meta's, 5 min).
* Meta's limits: text 4,096; interactive body 1,024, header and footer 60; 1-3 reply buttons,
  titles 1-20 and ids up to 256 characters, unique; lists with 1-10 sections and 1-10 rows in
  all, row titles 24, descriptions 72, ids 200, a list button label of 20; captions 1,024;
  media types and sizes (image 5 MB, video and audio 16 MB, document 100 MB, sticker 500 KB).
* The 24-hour customer-service window: a non-template message to a customer whose last
  message is older than 24 h (or who never wrote) fails with 131047. Meta accepts such a
  message (200 and a wamid) and then reports a ``failed`` status with 131047; that is the
  default here too. ``window_error="response"`` makes it a synchronous 400 instead.
* Templates must be registered (`register_template`; ``hello_world``/``en_US`` is, as in a
  new Meta account): otherwise 132001; a wrong body-parameter count is 132000.
* Errors in Meta's shape: ``{"error": {"message", "type", "code", "error_data":
  {"messaging_product", "details"}, "fbtrace_id"}}``; see `ERRORS` for codes, titles and
  HTTP statuses. Injected with `fail_next`: codes Meta reports synchronously (130429, 131056,
  131000, 131016, 1, 2, ...) answer the call; asynchronous ones (131047, 131026, ...) accept it
  and post a ``failed`` status.

Sources: Meta's Cloud API reference (messages, media, webhooks payloads, typing indicators,
error codes) and the public pywa project's webhook fixtures, read for shapes, not copied.

Limits, on purpose:

* ``details`` texts are the emulator's own wording; tests and the bot should key on ``code``.
* Meta's docs disagree over time on the HTTP status of 130429/131056 (400 in older tables,
  429 later); the emulator answers 429 and ``fail_next(..., http_status=400)`` gives the other.
* Links (``link`` media) are never fetched; media content is never decoded (no codec checks).
* Not modelled: other interactive types (CTA URL, flows, products, location requests),
  outbound reactions/locations/contacts, groups, calls, marketing messages, business-scoped
  user ids, conversation/pricing analytics, throughput or pair-rate limits by actual rate
  (inject them with `fail_next`), webhook retries over days (helpers post once; statuses are
  retried a few times), message edits (the Cloud API has none: unknown paths answer 400).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import BodyPartReader, ClientError, ClientSession, ClientTimeout, web

__all__ = [
    "ERRORS",
    "GraphError",
    "Media",
    "WebhookRejected",
    "WhatsAppEmulator",
    "sign",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
#: How a webhook POST is signed: True (correctly), None (no header) or the header's value.
Signature = bool | str | None

# ==================================================================== limits (Meta's)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_INTERACTIVE_BODY = 1024
MAX_HEADER_TEXT = 60
MAX_FOOTER = 60
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_SECTIONS = 10
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_SECTION_TITLE = 24
MAX_LIST_BUTTON = 20
#: The customer-service window: free-form messages only this long after the customer's last.
WINDOW_SECONDS = 24 * 3600
#: Meta's media download URLs stop working after five minutes.
MEDIA_URL_TTL = 300

MB = 1024 * 1024
_DOCUMENT_TYPES = frozenset(
    {
        "text/plain",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
#: Media kind -> (largest size in bytes, MIME types Meta accepts for it).
MEDIA_KINDS: dict[str, tuple[int, frozenset[str]]] = {
    "image": (5 * MB, frozenset({"image/jpeg", "image/png"})),
    "video": (16 * MB, frozenset({"video/mp4", "video/3gpp"})),
    "audio": (
        16 * MB,
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    ),
    "document": (100 * MB, _DOCUMENT_TYPES),
    # 100 KB for a static sticker, 500 KB for an animated one: an upload cannot tell which.
    "sticker": (500 * 1024, frozenset({"image/webp"})),
}
CAPTIONED = frozenset({"image", "video", "document"})
MESSAGE_TYPES = frozenset({"text", "interactive", "template", *MEDIA_KINDS})
STATUS_FLOW = ("sent", "delivered", "read")
ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def media_kind(mime_type: str) -> str | None:
    """The media kind Meta files a MIME type under (``None``: not a supported type).

    A parameter such as ``; codecs=opus`` is ignored; image/webp is a sticker.
    """
    base = mime_type.split(";")[0].strip().lower()
    for kind, (_, types) in MEDIA_KINDS.items():
        if base in types:
            return kind
    return None


# ==================================================================== errors


@dataclass(frozen=True, slots=True)
class _ErrorKind:
    title: str
    http_status: int
    details: str
    #: Meta reports it in a ``failed`` status webhook, not in the API response.
    asynchronous: bool = False


#: Error codes the emulator produces, with Meta's titles and HTTP statuses.
ERRORS: dict[int, _ErrorKind] = {
    1: _ErrorKind("An unknown error occurred", 500, "Possibly a temporary issue due to downtime."),
    2: _ErrorKind("Service temporarily unavailable", 503, "Temporary due to downtime or overload."),
    100: _ErrorKind("Invalid parameter", 400, "The request included invalid parameters."),
    190: _ErrorKind(
        "Invalid OAuth access token - Cannot parse access token", 401, "Access token invalid."
    ),
    2500: _ErrorKind("Unknown path components", 400, "The path is not a Graph API endpoint."),
    130429: _ErrorKind("Rate limit hit", 429, "Cloud API message throughput has been reached."),
    130472: _ErrorKind(
        "User's number is part of an experiment",
        400,
        "Failed to send message because this user's phone number is part of an experiment.",
        asynchronous=True,
    ),
    131000: _ErrorKind(
        "Something went wrong", 500, "Message failed to send due to an unknown error."
    ),
    131008: _ErrorKind("Required parameter is missing", 400, "A required parameter is missing."),
    131009: _ErrorKind("Parameter value is not valid", 400, "A parameter value is not valid."),
    131016: _ErrorKind("Service unavailable", 503, "A service is temporarily unavailable."),
    131026: _ErrorKind(
        "Message undeliverable",
        400,
        "Unable to deliver message: the recipient may not use WhatsApp, may not have accepted "
        "the terms of service, or uses an old WhatsApp version.",
        asynchronous=True,
    ),
    131047: _ErrorKind(
        "Re-engagement message",
        400,
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
        asynchronous=True,
    ),
    131049: _ErrorKind(
        "This message was not delivered to maintain healthy ecosystem engagement.",
        400,
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        asynchronous=True,
    ),
    131051: _ErrorKind("Unsupported message type", 400, "Message type is currently not supported."),
    131053: _ErrorKind(
        "Media upload error", 400, "Unable to upload the media used in the message."
    ),
    131056: _ErrorKind(
        "(Business Account, Consumer Account) pair rate limit hit",
        429,
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
    132000: _ErrorKind(
        "Number of parameters does not match the expected number of params",
        400,
        "The number of variable parameter values does not match the template.",
    ),
    132001: _ErrorKind(
        "Template name does not exist in the translation",
        404,
        "The template does not exist in the specified language or has not been approved.",
    ),
}


class GraphError(Exception):
    """A Graph API error: the JSON answer of a refused call, or a ``failed`` status."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        http_status: int | None = None,
        error_type: str = "OAuthException",
        subcode: int | None = None,
        message: str | None = None,
    ) -> None:
        kind = ERRORS.get(code, _ErrorKind(f"Error {code}", 400, f"Error {code}."))
        self.code = code
        self.title = kind.title
        self.details = details or kind.details
        self.http_status = http_status or kind.http_status
        self.error_type = error_type
        self.subcode = subcode
        # Graph prefixes the title with the code, except for token errors (190).
        self.message = message or (kind.title if code == 190 else f"(#{code}) {kind.title}")
        super().__init__(f"{self.message}: {self.details}")

    def body(self) -> JsonDict:
        """The synchronous answer, as Graph sends it."""
        error: JsonDict = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.http_status >= 500:
            error["is_transient"] = True
        return {"error": error}

    def webhook_error(self) -> JsonDict:
        """The same error inside a ``failed`` status (title and href, no type)."""
        return {
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details},
            "href": ERROR_DOCS,
        }


def _invalid(details: str) -> GraphError:
    return GraphError(131009, details)


def _missing(details: str) -> GraphError:
    return GraphError(131008, details)


def _no_object(verb: str, node: str) -> GraphError:
    """What Graph says for an id it does not know (or may not be used with this verb)."""
    return GraphError(
        100,
        f"Object with ID '{node}' does not exist",
        error_type="GraphMethodException",
        subcode=33,
        message=(
            f"Unsupported {verb} request. Object with ID '{node}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation."
        ),
    )


class WebhookRejected(AssertionError):
    """The bot answered a webhook POST with something other than 200."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        what = "no connection" if status == 0 else f"HTTP {status}"
        super().__init__(f"the bot's webhook answered {what}: {body[:300]!r}")


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: HMAC-SHA256 of the raw body."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# ==================================================================== validation
# Pure checks of a /messages body, in the order Meta applies its limits. Each raises a
# GraphError; the emulator itself checks what needs its state (media ids, templates).


def _text_field(value: Any, what: str, limit: int, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise _missing(f"{what} is required")
        return ""
    if not isinstance(value, str):
        raise GraphError(100, f"{what} must be a string")
    if len(value) > limit:
        raise GraphError(100, f"{what} must be at most {limit} characters long")
    return value


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if not isinstance(value, Mapping):
        raise _missing(f"{key} object is required for a message of type {key}")
    return value


def check_message(body: Mapping[str, Any]) -> str:
    """Validate a message (not a read receipt); returns its type."""
    if body.get("messaging_product") != "whatsapp":
        raise GraphError(100, "The parameter messaging_product is required and must be whatsapp")
    if not isinstance(body.get("to"), str) or not _wa_id(body["to"]):
        raise GraphError(100, "The parameter to is required (a phone number)")
    if body.get("recipient_type", "individual") != "individual":
        raise GraphError(131051, "only individual recipients are emulated")
    kind = body.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise GraphError(100, f"Param type must be one of {sorted(MESSAGE_TYPES)}")
    context = body.get("context")
    if context is not None and not (isinstance(context, Mapping) and context.get("message_id")):
        raise _missing("context.message_id is required when context is given")
    if kind == "text":
        _text_field(_object(body, "text").get("body"), "text['body']", MAX_TEXT)
    elif kind == "interactive":
        check_interactive(_object(body, "interactive"))
    elif kind == "template":
        template = _object(body, "template")
        _text_field(template.get("name"), "template['name']", 512)
        language = template.get("language")
        if not isinstance(language, Mapping) or not language.get("code"):
            raise _missing("template['language']['code'] is required")
        components = template.get("components", [])
        if not isinstance(components, list) or not all(
            isinstance(c, Mapping) and isinstance(c.get("parameters", []), list) for c in components
        ):
            raise GraphError(100, "template['components'] must be a list of objects")
    else:
        check_media_object(kind, _object(body, kind))
    return str(kind)


def check_interactive(interactive: Mapping[str, Any]) -> None:
    kind = interactive.get("type")
    if kind not in ("button", "list"):
        raise _invalid(f"interactive type {kind!r} is not emulated (only button and list)")
    body = interactive.get("body")
    if not isinstance(body, Mapping):
        raise _missing("interactive['body'] is required")
    _text_field(body.get("text"), "interactive['body']['text']", MAX_INTERACTIVE_BODY)
    header = interactive.get("header")
    if isinstance(header, Mapping) and header.get("type", "text") == "text":
        _text_field(header.get("text"), "interactive['header']['text']", MAX_HEADER_TEXT)
    footer = interactive.get("footer")
    if isinstance(footer, Mapping):
        _text_field(footer.get("text"), "interactive['footer']['text']", MAX_FOOTER)
    action = interactive.get("action")
    if not isinstance(action, Mapping):
        raise _missing("interactive['action'] is required")
    if kind == "button":
        check_buttons(action.get("buttons"))
    else:
        check_list(action)


def check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        count = len(buttons) if isinstance(buttons, list) else 0
        raise _invalid(
            f"Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: "
            f"{MAX_BUTTONS}, got {count}"
        )
    ids, titles = set(), set()
    for button in buttons:
        reply = button.get("reply") if isinstance(button, Mapping) else None
        if not isinstance(button, Mapping) or button.get("type") != "reply" or reply is None:
            raise _invalid("each button must be {'type': 'reply', 'reply': {id, title}}")
        title = reply.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= MAX_BUTTON_TITLE:
            raise _invalid(
                f"Button title length invalid. Min length: 1, Max length: {MAX_BUTTON_TITLE}: "
                f"{title!r}"
            )
        button_id = _text_field(reply.get("id"), "button id", MAX_BUTTON_ID)
        if button_id in ids or title in titles:
            raise _invalid("Button title and id must be unique within a message")
        ids.add(button_id)
        titles.add(title)


def check_list(action: Mapping[str, Any]) -> None:
    label = action.get("button")
    if not isinstance(label, str) or not 1 <= len(label) <= MAX_LIST_BUTTON:
        raise _invalid(f"Button label length invalid. Min length: 1, Max length: {MAX_LIST_BUTTON}")
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_SECTIONS:
        raise _invalid(f"Invalid sections count. Min: 1, Max: {MAX_SECTIONS}")
    rows = [row for section in sections for row in _section_rows(section, len(sections))]
    if not 1 <= len(rows) <= MAX_ROWS:
        raise _invalid(f"Total row count exceed max allowed count: {MAX_ROWS}, got {len(rows)}")
    ids = set()
    for row in rows:
        row_id = _text_field(row.get("id"), "row id", MAX_ROW_ID)
        title = row.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= MAX_ROW_TITLE:
            raise _invalid(
                f"Row title length invalid. Min length: 1, Max length: {MAX_ROW_TITLE}: {title!r}"
            )
        description = row.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_ROW_DESCRIPTION
        ):
            raise _invalid(f"Row description is too long. Max length is {MAX_ROW_DESCRIPTION}")
        if row_id in ids:
            raise _invalid(f"Row id must be unique: {row_id!r}")
        ids.add(row_id)


def _section_rows(section: Any, sections: int) -> list[Mapping[str, Any]]:
    if not isinstance(section, Mapping) or not isinstance(section.get("rows"), list):
        raise _missing("each section needs rows")
    # A title is required once there is more than one section.
    _text_field(section.get("title"), "section title", MAX_SECTION_TITLE, required=sections > 1)
    rows: list[Mapping[str, Any]] = section["rows"]
    if not all(isinstance(row, Mapping) for row in rows):
        raise _invalid("each row must be an object with id and title")
    return rows


def check_media_object(kind: str, media: Mapping[str, Any]) -> None:
    has_id, has_link = bool(media.get("id")), bool(media.get("link"))
    if has_id == has_link:
        raise GraphError(100, f"{kind} needs exactly one of id and link")
    if has_link and not str(media["link"]).startswith(("http://", "https://")):
        raise _invalid(f"{kind}['link'] must be an http(s) URL")
    if "caption" in media:
        if kind not in CAPTIONED:
            raise GraphError(100, f"{kind} messages take no caption")
        _text_field(media["caption"], f"{kind}['caption']", MAX_CAPTION, required=False)


def _wa_id(phone: str) -> str:
    """A WhatsApp id from a phone number as a bot may write it (+1 555-0100 -> 15550100)."""
    return re.sub(r"[^0-9]", "", phone)


# ==================================================================== state


@dataclass(slots=True)
class Media:
    """A media object: uploaded by the bot or sent by a customer."""

    id: str
    content: bytes = field(repr=False)
    mime_type: str
    filename: str | None = None
    #: Reported size; may exceed len(content) to fake a big file without allocating it.
    file_size: int = 0
    uploaded: bool = True

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(slots=True)
class Call:
    """One HTTP request the bot made, for diagnostics and assertions."""

    method: str
    path: str
    status: int = 0
    error_code: int | None = None


@dataclass(slots=True)
class Delivery:
    """One webhook POST attempt: ``kind`` is message, status, verify or raw."""

    kind: str
    ref: str
    status: int


@dataclass(slots=True)
class _Fault:
    endpoint: str
    code: int
    remaining: int
    http_status: int | None
    wa_id: str | None
    via: str


@dataclass(slots=True)
class _Inbound:
    """A customer's message and the notification bytes that carried it (for redelivery)."""

    wa_id: str
    message: JsonDict
    raw: bytes = b""


@dataclass(slots=True)
class _Outbound:
    """A message the bot sent, as the tests see it."""

    wa_id: str
    message: JsonDict
    #: The error that fails it (asynchronously), if any.
    failure: GraphError | None = None


FAULT_ENDPOINTS = frozenset({"messages", "read", "media", "media_url", "download"})


# ==================================================================== the emulator


class WhatsAppEmulator:
    """A WhatsApp Cloud API for tests; see the module docstring."""

    def __init__(
        self,
        app_secret: str = "test-app-secret",
        access_token: str = "EAAG-test-token",
        phone_number_id: str = "106540352242922",
        verify_token: str = "test-verify-token",
        *,
        api_version: str = "v21.0",
        display_phone_number: str = "15550001234",
        waba_id: str = "102290129340398",
        window_error: Literal["status", "response"] = "status",
        auto_statuses: Iterable[str] = STATUS_FLOW,
        status_delay: float = 0.02,
        webhook_timeout: float = 10.0,
        webhook_retries: int = 2,
        webhook_retry_delay: float = 0.1,
    ) -> None:
        self.app_secret = app_secret
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.verify_token = verify_token
        self.api_version = api_version
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.window_error = window_error
        #: The statuses posted for each accepted message, in order (a subset of STATUS_FLOW).
        self.auto_statuses = tuple(auto_statuses)
        self.status_delay = status_delay
        self.webhook_timeout = webhook_timeout
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        #: The bot's webhook, e.g. ``http://127.0.0.1:<port>/whatsapp/webhook``; set by the test.
        self.webhook_url: str | None = None
        #: Called with (wa_id, message) for each message the bot sends, read receipts aside,
        #: from the emulator's thread as the call arrives (the load benchmark times replies).
        self.on_message: Callable[[str, JsonDict], None] | None = None

        self._cond = threading.Condition(threading.RLock())
        self._version = 0
        self._ids = itertools.count(1)
        # Customers: wa_id -> (profile name, time of their last message or None).
        self._names: dict[str, str] = {}
        self._last_inbound: dict[str, float] = {}
        self._inbound: dict[str, _Inbound] = {}  # by wamid
        self._batch: list[str] | None = None  # wamids held back by batch()
        # What the bot did
        self._outbound: dict[str, _Outbound] = {}  # wamid -> message, in send order
        self._read_receipts: list[tuple[str, JsonDict]] = []
        self._media: dict[str, Media] = {}
        self._download_keys: dict[str, tuple[str, float]] = {}  # hash -> media id, expiry
        self._templates: dict[tuple[str, str], int] = {("hello_world", "en_US"): 0}
        self._statuses: list[JsonDict] = []
        self._deliveries: list[Delivery] = []
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []

        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self._status_queue: asyncio.Queue[tuple[str, JsonDict]] | None = None
        self._status_task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def api_base_url(self) -> str:
        """What the bot uses instead of ``https://graph.facebook.com``."""
        if not self._port:
            raise RuntimeError("the emulator has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def graph_url(self) -> str:
        """``{api_base_url}/{api_version}``, the prefix of every Graph call."""
        return f"{self.api_base_url}/{self.api_version}"

    def start(self) -> Self:
        """Serve in a thread of its own. After `stop`, starting again keeps state and port."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        ready = threading.Event()
        errors: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve, args=(ready, errors), name="whatsapp-emulator", daemon=True
        )
        thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("the WhatsApp emulator did not start within 10 s")
        if errors:
            thread.join()
            raise RuntimeError("the WhatsApp emulator failed to start") from errors[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving; statuses not yet posted are dropped."""
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except Exception as error:
            errors.append(error)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        # Room for a 100 MB document plus the multipart framing.
        app = web.Application(client_max_size=101 * MB, middlewares=[self._graph_errors])
        version = r"{version:v\d+\.\d+}"
        app.router.add_post(f"/{version}/{{node}}/messages", self._post_messages)
        app.router.add_post(f"/{version}/{{node}}/media", self._post_media)
        app.router.add_get(f"/{version}/{{node}}", self._get_media)
        app.router.add_delete(f"/{version}/{{node}}", self._delete_media)
        app.router.add_get("/whatsapp_business/attachments/", self._download)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._http = ClientSession(timeout=ClientTimeout(total=self.webhook_timeout))
        self._status_queue = asyncio.Queue()
        self._status_task = asyncio.create_task(self._post_statuses())

    async def _shutdown(self) -> None:
        task, self._status_task = self._status_task, None
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

    def _changed(self) -> None:
        """Record a state change (lock held) and wake the waiting test thread."""
        self._version += 1
        self._cond.notify_all()

    # ---------------------------------------------------------------- HTTP layer

    @web.middleware
    async def _graph_errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Check the token, log the call and turn GraphErrors into Graph's JSON answers."""
        call = Call(request.method, request.path)
        with self._cond:
            self._calls.append(call)
        try:
            if request.match_info.get("version") or request.path.startswith("/whatsapp_business"):
                self._check_token(request)
            response: web.StreamResponse = await handler(request)
        except GraphError as error:
            response = web.json_response(error.body(), status=error.http_status)
            call.error_code = error.code
        except Exception as error:  # an emulator bug: make it visible to the test
            log.exception("WhatsApp emulator failed on %s %s", request.method, request.path)
            bug = GraphError(1, f"emulator bug: {error!r}", http_status=500)
            response = web.json_response(bug.body(), status=500)
            call.error_code = bug.code
        with self._cond:
            call.status = response.status
            self._changed()
        return response

    def _check_token(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token, self.access_token):
            raise GraphError(190, "Missing or invalid bearer token")

    def _check_phone_number(self, request: web.Request) -> None:
        node = request.match_info["node"]
        if node != self.phone_number_id:
            raise _no_object(request.method.lower(), node)

    async def _unknown_path(self, request: web.Request) -> web.Response:
        raise GraphError(2500, f"Unknown path components: {request.path}")

    async def _json_body(self, request: web.Request) -> JsonDict:
        try:
            body = await request.json()
        except ValueError as error:
            raise GraphError(100, f"the body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise GraphError(100, "the body must be a JSON object")
        return body

    # ---------------------------------------------------------------- POST /messages

    async def _post_messages(self, request: web.Request) -> web.Response:
        self._check_phone_number(request)
        body = await self._json_body(request)
        if body.get("status") == "read":
            return web.json_response(self._mark_read(body))
        kind = check_message(body)
        wa_id = _wa_id(body["to"])
        with self._cond:
            self._check_references(kind, body)
            failure = self._take_fault("messages", wa_id)
            if failure is None and kind != "template" and not self._window_open(wa_id):
                failure = GraphError(131047)
                if self.window_error == "response":
                    raise failure
            wamid = self._new_wamid(wa_id)
            message = {**copy.deepcopy(body), "id": wamid, "timestamp": int(time.time())}
            message["status"] = "accepted"
            self._outbound[wamid] = _Outbound(wa_id, message, failure)
            self._changed()
        hook = self.on_message
        if hook is not None:
            hook(wa_id, message)
        self._queue_statuses(wamid, wa_id, failure)
        answer: JsonDict = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": wa_id}],
            "messages": [{"id": wamid}],
        }
        if kind == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return web.json_response(answer)

    def _mark_read(self, body: Mapping[str, Any]) -> JsonDict:
        """A read receipt (and typing indicator) for a message the customer sent."""
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required")
        indicator = body.get("typing_indicator")
        if indicator is not None and indicator != {"type": "text"}:
            raise _invalid("typing_indicator must be {'type': 'text'}")
        with self._cond:
            found = self._inbound.get(str(body.get("message_id")))
            if found is None:
                raise GraphError(100, f"Invalid message_id {body.get('message_id')!r}")
            self._take_fault("read", found.wa_id)
            self._read_receipts.append((found.wa_id, copy.deepcopy(dict(body))))
            self._changed()
        return {"success": True}

    def _check_references(self, kind: str, body: Mapping[str, Any]) -> None:
        """Checks that need state: media ids and templates (lock held)."""
        if kind in MEDIA_KINDS and body[kind].get("id"):
            media = self._media.get(str(body[kind]["id"]))
            if media is None:
                raise _invalid(f"Invalid media id {body[kind]['id']!r} for {kind}")
            if kind != "document" and media_kind(media.mime_type) != kind:
                raise _invalid(f"media {media.id} is {media.mime_type}, not a {kind}")
        if kind == "template":
            template = body["template"]
            key = (str(template["name"]), str(template["language"]["code"]))
            if key not in self._templates:
                raise GraphError(
                    132001, f"template name ({key[0]}) does not exist in {key[1]}", http_status=404
                )
            given = sum(
                len(component.get("parameters", []))
                for component in template.get("components", [])
                if component.get("type") == "body"
            )
            if given != self._templates[key]:
                raise GraphError(
                    132000,
                    f"body expects {self._templates[key]} parameter(s), {given} given",
                )

    def _window_open(self, wa_id: str) -> bool:
        last = self._last_inbound.get(wa_id)
        return last is not None and time.time() - last < WINDOW_SECONDS

    def _new_wamid(self, wa_id: str) -> str:
        raw = f"{wa_id}:{next(self._ids)}:{secrets.token_hex(6)}".encode()
        return "wamid." + base64.b64encode(raw).decode()

    def _take_fault(self, endpoint: str, wa_id: str | None) -> GraphError | None:
        """Consume an injected fault (lock held): raise it, or return it to fail later."""
        for fault in self._faults:
            if fault.endpoint != endpoint or (fault.wa_id and fault.wa_id != wa_id):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            error = GraphError(fault.code, http_status=fault.http_status)
            if fault.via == "response":
                raise error
            return error
        return None

    # ---------------------------------------------------------------- media

    async def _post_media(self, request: web.Request) -> web.Response:
        self._check_phone_number(request)
        if not request.content_type.startswith("multipart/"):
            raise GraphError(100, "upload media as multipart/form-data")
        fields: dict[str, str] = {}
        file: tuple[bytes, str, str | None] | None = None  # content, its type, name
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: Meta does not take one either
            if part.name == "file":
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                file = (bytes(await part.read()), content_type, part.filename)
            elif part.name:
                fields[part.name] = await part.text()
        if fields.get("messaging_product") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required")
        if file is None:
            raise _missing("The parameter file is required")
        if not fields.get("type"):
            raise _missing("The parameter type (the file's MIME type) is required")
        content, _, filename = file
        media = self._check_upload(content, fields["type"], filename)
        with self._cond:
            self._take_fault("media", None)
            self._media[media.id] = media
            self._changed()
        return web.json_response({"id": media.id})

    def _check_upload(self, content: bytes, mime_type: str, filename: str | None) -> Media:
        kind = media_kind(mime_type)
        if kind is None:
            raise GraphError(131053, f"Unsupported media type {mime_type!r}")
        limit = MEDIA_KINDS[kind][0]
        if len(content) > limit:
            raise GraphError(
                131053, f"{kind} of {len(content)} bytes exceeds the {limit} byte limit"
            )
        if not content:
            raise GraphError(131053, "the file is empty")
        return Media(self._new_media_id(), content, mime_type, filename, len(content))

    def _new_media_id(self) -> str:
        return str(1_000_000_000_000_000 + next(self._ids))

    def _media_or_error(self, request: web.Request) -> Media:
        node = request.match_info["node"]
        wanted_phone = request.query.get("phone_number_id")
        media = self._media.get(node)
        if media is None or (wanted_phone and wanted_phone != self.phone_number_id):
            raise _no_object(request.method.lower(), node)
        return media

    async def _get_media(self, request: web.Request) -> web.Response:
        """``GET /{media_id}``: the short-lived download URL and the file's facts."""
        with self._cond:
            media = self._media_or_error(request)
            self._take_fault("media_url", None)
            key = secrets.token_urlsafe(12)
            expires = time.time() + MEDIA_URL_TTL
            self._download_keys[key] = (media.id, expires)
        query = urllib.parse.urlencode({"mid": media.id, "ext": int(expires), "hash": key})
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.api_base_url}/whatsapp_business/attachments/?{query}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.file_size,
                "id": media.id,
            }
        )

    async def _delete_media(self, request: web.Request) -> web.Response:
        with self._cond:
            media = self._media_or_error(request)
            del self._media[media.id]
            self._changed()
        return web.json_response({"success": True})

    async def _download(self, request: web.Request) -> web.Response:
        """The URL from ``GET /{media_id}``: the bytes, with the bearer token, until it expires."""
        with self._cond:
            entry = self._download_keys.get(request.query.get("hash", ""))
            if entry is None or entry[0] != request.query.get("mid"):
                raise GraphError(100, "unknown download URL", http_status=404)
            if time.time() > entry[1]:
                raise GraphError(100, "the download URL has expired", http_status=404)
            media = self._media.get(entry[0])
            if media is None:
                raise GraphError(100, "the media was deleted", http_status=404)
            self._take_fault("download", None)
        return web.Response(body=media.content, content_type=media.mime_type.split(";")[0])

    # ---------------------------------------------------------------- status webhooks

    def _queue_statuses(self, wamid: str, wa_id: str, failure: GraphError | None) -> None:
        """Schedule the statuses Meta would post after accepting a message."""
        queue = self._status_queue
        assert queue is not None
        if failure is not None:
            queue.put_nowait((wamid, self._status(wamid, wa_id, "failed", failure)))
            return
        for status in self.auto_statuses:
            queue.put_nowait((wamid, self._status(wamid, wa_id, status, None)))

    def _status(self, wamid: str, wa_id: str, status: str, failure: GraphError | None) -> JsonDict:
        """One status object as Meta posts it (pricing simplified, no conversation object)."""
        message = self._outbound[wamid].message
        entry: JsonDict = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": wa_id,
        }
        if "biz_opaque_callback_data" in message:  # Meta echoes the bot's tracker
            entry["biz_opaque_callback_data"] = message["biz_opaque_callback_data"]
        if failure is not None:
            entry["errors"] = [failure.webhook_error()]
        else:
            template = message.get("type") == "template"
            entry["pricing"] = {
                "billable": template,
                "pricing_model": "PMP",
                "category": "utility" if template else "service",
                "type": "regular" if template else "free_customer_service",
            }
        return entry

    async def _post_statuses(self) -> None:
        """Post queued statuses one at a time, in order (Meta keeps no such promise)."""
        queue = self._status_queue
        assert queue is not None
        while True:
            wamid, status = await queue.get()
            try:
                await self._post_status(wamid, status)
            except Exception:  # an emulator bug: keep posting the others
                log.exception("WhatsApp emulator failed to post a status")

    async def _post_status(self, wamid: str, status: JsonDict) -> None:
        """Record one status on its message, then POST it (retried while the bot refuses)."""
        await asyncio.sleep(self.status_delay)
        with self._cond:
            self._statuses.append(status)
            outbound = self._outbound.get(wamid)
            if outbound is not None:
                outbound.message["status"] = status["status"]
                if "errors" in status:
                    outbound.message["errors"] = status["errors"]
            self._changed()
        raw = self._encode(self._envelope({"statuses": [status]}))
        for attempt in range(self.webhook_retries + 1):
            code = await self._post_async(raw)
            with self._cond:
                self._deliveries.append(Delivery("status", f"{wamid}:{status['status']}", code))
                self._changed()
            if code == 200 or self.webhook_url is None:
                break
            if attempt < self.webhook_retries:
                await asyncio.sleep(self.webhook_retry_delay)

    async def _post_async(self, raw: bytes) -> int:
        url, http = self.webhook_url, self._http
        if url is None or http is None:
            return 0
        try:
            async with http.post(url, data=raw, headers=self._headers(raw)) as response:
                await response.read()
                return response.status
        except (ClientError, TimeoutError, OSError):
            return 0

    # ---------------------------------------------------------------- webhook driver

    def _envelope(self, value: Mapping[str, Any]) -> JsonDict:
        """Meta's notification envelope around one ``value``."""
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_phone_number,
                                    "phone_number_id": self.phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    @staticmethod
    def _encode(envelope: Mapping[str, Any]) -> bytes:
        # Meta escapes non-ASCII as \\uXXXX: a bot must verify the raw bytes, not a re-dump.
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode()

    def sign(self, body: bytes) -> str:
        """The ``X-Hub-Signature-256`` header value for ``body`` with this app secret."""
        return sign(self.app_secret, body)

    def _headers(self, raw: bytes, signature: Signature = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is True:
            signature = self.sign(raw)
        if isinstance(signature, str):
            headers["X-Hub-Signature-256"] = signature
        return headers

    def _post(self, raw: bytes, signature: Signature = True) -> tuple[int, str]:
        """POST to the bot's webhook from the calling thread: (HTTP status, body)."""
        if self.webhook_url is None:
            raise RuntimeError("set emu.webhook_url to the bot's webhook first")
        request = urllib.request.Request(
            self.webhook_url, data=raw, headers=self._headers(raw, signature), method="POST"
        )
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error)

    def post_raw(
        self, body: bytes | Mapping[str, Any], signature: Signature = True
    ) -> tuple[int, str]:
        """POST any body (a mapping is encoded as Meta does) to the bot's webhook.

        ``signature``: ``True`` signs it right, ``None`` sends no header, a string is sent
        as the header's value (e.g. ``sign("another secret", body)`` or ``"sha256=00"``).

        Returns the bot's (HTTP status, body) without checking it.
        """
        raw = body if isinstance(body, bytes) else self._encode(body)
        status, text = self._post(raw, signature)
        with self._cond:
            self._deliveries.append(Delivery("raw", "", status))
            self._changed()
        return status, text

    def verify(
        self, challenge: str = "1158201444", token: str | None = None, mode: str = "subscribe"
    ) -> tuple[int, str]:
        """The subscription handshake: ``GET webhook_url?hub.mode=…&hub.verify_token=…``."""
        if self.webhook_url is None:
            raise RuntimeError("set emu.webhook_url to the bot's webhook first")
        query = urllib.parse.urlencode(
            {
                "hub.mode": mode,
                "hub.verify_token": self.verify_token if token is None else token,
                "hub.challenge": challenge,
            }
        )
        separator = "&" if "?" in self.webhook_url else "?"
        request = urllib.request.Request(f"{self.webhook_url}{separator}{query}", method="GET")
        status, text = self._open(request)
        with self._cond:
            self._deliveries.append(Delivery("verify", challenge, status))
            self._changed()
        return status, text

    def _inbound_message(
        self,
        wa_id: str,
        fields: Mapping[str, Any],
        *,
        name: str | None = None,
        context_message_id: str | None = None,
        check: bool = True,
    ) -> JsonDict:
        """A customer's message: record it, open the window, POST it signed; returns it."""
        wa_id = _wa_id(wa_id)
        with self._cond:
            if name is not None:
                self._names[wa_id] = name
            message: JsonDict = {
                "from": wa_id,
                "id": self._new_wamid(wa_id),
                "timestamp": str(int(time.time())),
                **copy.deepcopy(dict(fields)),
            }
            if context_message_id is not None:
                message["context"] = {"from": self.display_phone_number, "id": context_message_id}
            self._inbound[message["id"]] = _Inbound(wa_id, message)
            self._last_inbound[wa_id] = time.time()
            self._changed()
        if self._batch is not None:
            self._batch.append(message["id"])
        else:
            self._notify([message["id"]], check)
        return copy.deepcopy(message)

    def _notify(self, wamids: list[str], check: bool) -> None:
        """POST one notification carrying these customers' messages, signed."""
        with self._cond:
            found = [self._inbound[wamid] for wamid in wamids]
            customers = dict.fromkeys(item.wa_id for item in found)
            contacts = [
                {"profile": {"name": self._names.get(who, "Customer")}, "wa_id": who}
                for who in customers
            ]
            messages = [item.message for item in found]
            raw = self._encode(self._envelope({"contacts": contacts, "messages": messages}))
            for item in found:
                item.raw = raw
        self._deliver(",".join(wamids), raw, check)

    @contextlib.contextmanager
    def batch(self, *, check: bool = True) -> Iterator[None]:
        """Send the customers' messages written inside the block in one notification, as Meta
        may (``value.contacts`` and ``value.messages`` then hold several)."""
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        self._batch = []
        try:
            yield
            wamids = self._batch
        finally:
            self._batch = None
        if wamids:
            self._notify(wamids, check)

    def _deliver(self, ref: str, raw: bytes, check: bool) -> None:
        status, text = self._post(raw)
        with self._cond:
            self._deliveries.append(Delivery("message", ref, status))
            self._changed()
        if check and status != 200:
            raise WebhookRejected(status, text)

    def redeliver(self, message: Mapping[str, Any], *, check: bool = True) -> None:
        """POST the very same notification again (same wamid, same bytes), as Meta may."""
        with self._cond:
            found = self._inbound.get(str(message.get("id")))
        if found is None or not found.raw:
            raise KeyError(f"no delivered inbound message {message.get('id')!r} to redeliver")
        self._deliver(str(message["id"]), found.raw, check)

    # -- the customer's side: one helper per message type

    def send_text(
        self,
        wa_id: str,
        text: str,
        *,
        name: str | None = None,
        reply_to: str | None = None,
        check: bool = True,
    ) -> JsonDict:
        """The customer writes ``text`` (optionally replying to the bot's message ``reply_to``)."""
        return self._inbound_message(
            wa_id,
            {"type": "text", "text": {"body": text}},
            name=name,
            context_message_id=reply_to,
            check=check,
        )

    def press_button(
        self,
        wa_id: str,
        button_id: str | None = None,
        title: str | None = None,
        context_message_id: str | None = None,
        *,
        name: str | None = None,
        check: bool = True,
    ) -> JsonDict:
        """The customer taps a reply button, found by id or title in the bot's message
        ``context_message_id`` (default: its latest message with buttons to ``wa_id``)."""
        message = self._interactive_source(wa_id, "button", context_message_id)
        choice = self._pick(self.buttons(message), button_id, title, "button", message)
        reply = {"id": choice[0], "title": choice[1]}
        return self._inbound_message(
            wa_id,
            {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": reply}},
            name=name,
            context_message_id=message["id"],
            check=check,
        )

    def choose_row(
        self,
        wa_id: str,
        row_id: str | None = None,
        title: str | None = None,
        context_message_id: str | None = None,
        *,
        name: str | None = None,
        check: bool = True,
    ) -> JsonDict:
        """The customer picks a row of a list message (found as in `press_button`)."""
        message = self._interactive_source(wa_id, "list", context_message_id)
        choice = self._pick(self.rows(message), row_id, title, "row", message)
        reply = {"id": choice[0], "title": choice[1]}
        if choice[2]:
            reply["description"] = choice[2]
        return self._inbound_message(
            wa_id,
            {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}},
            name=name,
            context_message_id=message["id"],
            check=check,
        )

    def _interactive_source(self, wa_id: str, kind: str, wamid: str | None) -> JsonDict:
        candidates = [
            m
            for m in self.messages(wa_id)  # the customer never sees a failed one
            if m.get("type") == "interactive" and m["interactive"].get("type") == kind
        ]
        if wamid is not None:
            candidates = [m for m in candidates if m["id"] == wamid]
        if not candidates:
            where = f"message {wamid}" if wamid else f"any message to {wa_id}"
            raise LookupError(f"the bot sent no interactive {kind} in {where}")
        return candidates[-1]

    @staticmethod
    def _pick(
        options: Sequence[tuple[str, ...]],
        wanted_id: str | None,
        title: str | None,
        what: str,
        message: Mapping[str, Any],
    ) -> tuple[str, ...]:
        for option in options:
            if (wanted_id is None or option[0] == wanted_id) and (
                title is None or option[1] == title
            ):
                return option
        raise LookupError(
            f"no {what} with id={wanted_id!r} title={title!r} in {message['id']}: {options}"
        )

    def send_media(
        self,
        wa_id: str,
        kind: str,
        content: bytes,
        mime_type: str,
        *,
        caption: str | None = None,
        filename: str | None = None,
        file_size: int | None = None,
        extra: Mapping[str, Any] | None = None,
        name: str | None = None,
        check: bool = True,
    ) -> JsonDict:
        """The customer sends a file; it is registered so the bot can download it by id.

        ``file_size`` may exceed ``len(content)`` to fake a big file without allocating it.
        """
        if kind not in MEDIA_KINDS:
            raise ValueError(f"kind must be one of {sorted(MEDIA_KINDS)}")
        media = Media(
            self._new_media_id(),
            content,
            mime_type,
            filename,
            len(content) if file_size is None else file_size,
            uploaded=False,
        )
        with self._cond:
            self._media[media.id] = media
        sha = base64.b64encode(hashlib.sha256(content).digest()).decode()
        item: JsonDict = {"mime_type": mime_type, "sha256": sha, "id": media.id}
        if caption is not None:
            item["caption"] = caption
        if filename is not None:
            item["filename"] = filename
        item.update(extra or {})
        return self._inbound_message(wa_id, {"type": kind, kind: item}, name=name, check=check)

    def send_image(
        self, wa_id: str, content: bytes, mime_type: str = "image/jpeg", **kw: Any
    ) -> JsonDict:
        return self.send_media(wa_id, "image", content, mime_type, **kw)

    def send_video(
        self, wa_id: str, content: bytes, mime_type: str = "video/mp4", **kw: Any
    ) -> JsonDict:
        return self.send_media(wa_id, "video", content, mime_type, **kw)

    def send_document(
        self,
        wa_id: str,
        content: bytes,
        mime_type: str = "application/pdf",
        filename: str = "document.pdf",
        **kw: Any,
    ) -> JsonDict:
        return self.send_media(wa_id, "document", content, mime_type, filename=filename, **kw)

    def send_audio(
        self,
        wa_id: str,
        content: bytes,
        mime_type: str = "audio/ogg; codecs=opus",
        *,
        voice: bool = True,
        **kw: Any,
    ) -> JsonDict:
        return self.send_media(wa_id, "audio", content, mime_type, extra={"voice": voice}, **kw)

    def send_sticker(
        self,
        wa_id: str,
        content: bytes,
        mime_type: str = "image/webp",
        *,
        animated: bool = False,
        **kw: Any,
    ) -> JsonDict:
        extra = {"animated": animated}
        return self.send_media(wa_id, "sticker", content, mime_type, extra=extra, **kw)

    def send_location(
        self,
        wa_id: str,
        latitude: float,
        longitude: float,
        *,
        place: str | None = None,
        address: str | None = None,
        **kw: Any,
    ) -> JsonDict:
        location: JsonDict = {"latitude": latitude, "longitude": longitude}
        if place is not None:
            location["name"] = place
        if address is not None:
            location["address"] = address
        return self._inbound_message(wa_id, {"type": "location", "location": location}, **kw)

    def send_contacts(self, wa_id: str, contacts: Iterable[tuple[str, str]], **kw: Any) -> JsonDict:
        """The customer shares contact cards, given as (formatted name, phone) pairs."""
        cards = [
            {
                "name": {"formatted_name": full, "first_name": full.split()[0]},
                "phones": [{"phone": phone, "wa_id": _wa_id(phone), "type": "CELL"}],
            }
            for full, phone in contacts
        ]
        return self._inbound_message(wa_id, {"type": "contacts", "contacts": cards}, **kw)

    def send_reaction(self, wa_id: str, message_id: str, emoji: str = "👍", **kw: Any) -> JsonDict:
        """A reaction to the bot's message ``message_id``; ``emoji=""`` removes one."""
        reaction = {"message_id": message_id, "emoji": emoji}
        return self._inbound_message(wa_id, {"type": "reaction", "reaction": reaction}, **kw)

    def send_unsupported(self, wa_id: str, what: str = "poll", **kw: Any) -> JsonDict:
        """Something WhatsApp does not pass on (a poll, a view-once photo...)."""
        error = GraphError(131051).webhook_error()
        del error["href"]
        fields = {"type": "unsupported", "errors": [error], "unsupported": {"type": what}}
        return self._inbound_message(wa_id, fields, **kw)

    def send_raw_message(self, wa_id: str, fields: Mapping[str, Any], **kw: Any) -> JsonDict:
        """Any message object (``type`` and its payload); ``from``, ``id``, timestamp added."""
        return self._inbound_message(wa_id, fields, **kw)

    def set_last_inbound(self, wa_id: str, seconds_ago: float | None) -> None:
        """Move the customer's last message into the past (``None``: they never wrote)."""
        with self._cond:
            if seconds_ago is None:
                self._last_inbound.pop(_wa_id(wa_id), None)
            else:
                self._last_inbound[_wa_id(wa_id)] = time.time() - seconds_ago
            self._changed()

    def register_template(self, name: str, language: str = "en_US", body_params: int = 0) -> None:
        """An approved template the bot may send outside the window."""
        with self._cond:
            self._templates[(name, language)] = body_params

    def add_media(self, content: bytes, mime_type: str, filename: str | None = None) -> str:
        """Register media as if the bot had uploaded it; returns its id."""
        media = Media(self._new_media_id(), content, mime_type, filename, len(content))
        with self._cond:
            self._media[media.id] = media
            self._changed()
        return media.id

    # ---------------------------------------------------------------- error injection

    def fail_next(
        self,
        code: int,
        times: int = 1,
        *,
        http_status: int | None = None,
        wa_id: str | None = None,
        endpoint: str = "messages",
        via: Literal["response", "status"] | None = None,
    ) -> None:
        """Fail the next ``times`` otherwise-accepted calls to ``endpoint`` with ``code``.

        ``endpoint``: messages (sends), read (read receipts), media (uploads), media_url
        (``GET /{media_id}``) or download. ``via`` defaults to how Meta reports the code:
        the call's answer (130429, 131056, 5xx...) or a ``failed`` status (131047, 131026).
        ``http_status`` overrides the answer's status, e.g. 500 or 503. ``wa_id`` limits the
        fault to sends to one customer.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(FAULT_ENDPOINTS)}")
        if wa_id is not None and endpoint not in ("messages", "read"):
            raise ValueError("only messages and read receipts have a customer to match")
        kind = ERRORS.get(code)
        if via is None:
            via = "status" if kind is not None and kind.asynchronous else "response"
        if via == "status" and endpoint != "messages":
            raise ValueError("only message sends fail through a status")
        fault = _Fault(endpoint, code, times, http_status, _wa_id(wa_id) if wa_id else None, via)
        with self._cond:
            self._faults.append(fault)

    def pending_faults(self) -> int:
        with self._cond:
            return sum(fault.remaining for fault in self._faults)

    # ---------------------------------------------------------------- reading what happened

    def messages(self, wa_id: str, *, include_failed: bool = False) -> list[JsonDict]:
        """The bot's messages to a customer, in send order: the request body plus ``id``,
        ``timestamp`` and the latest ``status`` (and ``errors`` once failed). Messages bound
        to fail are left out unless ``include_failed``."""
        wa_id = _wa_id(wa_id)
        with self._cond:
            return [
                copy.deepcopy(out.message)
                for out in self._outbound.values()
                if out.wa_id == wa_id and (include_failed or out.failure is None)
            ]

    def wait_messages(self, wa_id: str, count: int, timeout: float = 15) -> list[JsonDict]:
        """Block until the bot has sent (at least) ``count`` messages to ``wa_id``."""

        def describe() -> str:
            got = self.messages(wa_id)
            summary = ", ".join(_summary(m) for m in got)
            return (
                f"expected {count} message(s) to {wa_id} in {timeout:g} s, "
                f"got {len(got)}: [{summary}]"
            )

        self._wait(lambda: len(self.messages(wa_id)) >= count, timeout, describe)
        return self.messages(wa_id)

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 15, what: str = "a condition"
    ) -> None:
        """Block until ``predicate()`` holds (re-checked on every change and every 50 ms)."""
        self._wait(predicate, timeout, lambda: f"timed out after {timeout:g} s waiting for {what}")

    def wait_status(self, wamid: str, status: str, timeout: float = 15) -> JsonDict:
        """Block until the emulator has posted ``status`` for ``wamid``; returns it."""

        def found() -> JsonDict | None:
            return next((s for s in self.statuses(wamid) if s["status"] == status), None)

        self._wait(lambda: found() is not None, timeout, lambda: f"no {status} status for {wamid}")
        result = found()
        assert result is not None
        return result

    def _wait(
        self, predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                version = self._version
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(describe() + self._diagnostics())
            with self._cond:
                if self._version == version:
                    self._cond.wait(min(remaining, 0.05))

    def _diagnostics(self) -> str:
        with self._cond:
            failed = [c for c in self._calls if c.status >= 400][-5:]
            rejected = [d for d in self._deliveries if d.status != 200][-5:]
        lines = []
        if failed:
            lines.append(
                "recent refused calls: "
                + "; ".join(f"{c.method} {c.path} -> {c.status} #{c.error_code}" for c in failed)
            )
        if rejected:
            lines.append(
                "webhook POSTs not answered 200: "
                + "; ".join(f"{d.kind} {d.ref} -> {d.status}" for d in rejected)
            )
        return "".join(f"\n  {line}" for line in lines)

    @staticmethod
    def buttons(message: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(id, title) of a message's reply buttons."""
        interactive = message.get("interactive") or {}
        if interactive.get("type") != "button":
            return []
        return [(b["reply"]["id"], b["reply"]["title"]) for b in interactive["action"]["buttons"]]

    @staticmethod
    def rows(message: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(id, title, description or "") of a list message's rows, across its sections."""
        interactive = message.get("interactive") or {}
        if interactive.get("type") != "list":
            return []
        return [
            (row["id"], row["title"], row.get("description", ""))
            for section in interactive["action"]["sections"]
            for row in section["rows"]
        ]

    @staticmethod
    def text(message: Mapping[str, Any]) -> str:
        """The words the customer sees: text body, interactive body, caption or template name."""
        kind = message.get("type", "text")
        payload = message.get(kind) or {}
        if kind == "text":
            return str(payload.get("body", ""))
        if kind == "interactive":
            return str(payload.get("body", {}).get("text", ""))
        if kind == "template":
            return str(payload.get("name", ""))
        return str(payload.get("caption", ""))

    @property
    def uploads(self) -> list[Media]:
        """Media the bot uploaded (or `add_media` registered), in order."""
        with self._cond:
            return [copy.copy(m) for m in self._media.values() if m.uploaded]

    def media(self, media_id: str) -> Media | None:
        with self._cond:
            found = self._media.get(media_id)
            return copy.copy(found) if found else None

    def read_receipts(self, wa_id: str | None = None) -> list[JsonDict]:
        """The bot's read receipts for a customer's messages, or everyone's (bodies as sent)."""
        wanted = None if wa_id is None else _wa_id(wa_id)
        with self._cond:
            return [
                copy.deepcopy(body) for who, body in self._read_receipts if wanted in (None, who)
            ]

    @property
    def templates_sent(self) -> list[JsonDict]:
        with self._cond:
            return [
                copy.deepcopy(out.message)
                for out in self._outbound.values()
                if out.message.get("type") == "template"
            ]

    def statuses(self, wamid: str | None = None) -> list[JsonDict]:
        """The status objects the emulator posted (or would have, with no webhook URL)."""
        with self._cond:
            return [copy.deepcopy(s) for s in self._statuses if wamid in (None, s["id"])]

    def inbound(self, wa_id: str | None = None) -> list[JsonDict]:
        """The customers' messages the emulator posted, in order."""
        with self._cond:
            return [
                copy.deepcopy(item.message)
                for item in self._inbound.values()
                if wa_id is None or item.wa_id == _wa_id(wa_id)
            ]

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook POST (or GET handshake) and the bot's HTTP status (0: no answer)."""
        with self._cond:
            return list(self._deliveries)

    def calls(self, path_suffix: str = "") -> list[Call]:
        """The bot's HTTP calls, optionally only those whose path ends with ``path_suffix``."""
        with self._cond:
            return [copy.copy(c) for c in self._calls if c.path.endswith(path_suffix)]


def _summary(message: Mapping[str, Any]) -> str:
    text = WhatsAppEmulator.text(message)
    return f"{message.get('type')}:{text[:40]!r}"
