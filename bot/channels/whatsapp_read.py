"""What Meta's webhook notifications mean to the bot: pure functions from JSON to events.

A notification (`{"object": "whatsapp_business_account", "entry": [...]}`) may carry several
customers' messages and several delivery statuses. `split_notification` cuts it into one
notification per message or status, of the same shape, each stored in the inbox under
`inbox_id` (a message's `wamid`, so a re-delivered message is stored and handled once); `read`
turns one of them into an `Incoming`, a `DeliveryStatus` or `Ignored`, and never raises,
whatever the JSON holds.

WhatsApp has no albums: several photos are several messages. Every image, video and document
gets the chat's media group id (`album_group`), so the runtime gathers the files a customer
sends one after another, within its album window, into one message, as it does Telegram's
albums; a ticket's photo questions are then filled in order, with the same confirmation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.channels.whatsapp_errors import OUTSIDE_WINDOW, describe
from handlers.messages import Incoming, Media, MediaKind

CHANNEL = "whatsapp"
OBJECT = "whatsapp_business_account"
_MEDIA_KINDS = {
    "image": MediaKind.PHOTO,
    "video": MediaKind.VIDEO,
    "document": MediaKind.DOCUMENT,
    "audio": MediaKind.AUDIO,
    "sticker": MediaKind.STICKER,
}
# The files a customer sends one after another for a ticket; not voice notes or stickers.
_ALBUM_KINDS = frozenset({"image", "video", "document"})
# Messages that say nothing to answer: a reaction to one of ours, "the customer changed their
# number", the first opening of the chat.
_SILENT_TYPES = frozenset({"reaction", "system", "request_welcome"})


@dataclass(frozen=True)
class Ignored:
    """A notification the bot does not answer, with the reason for the log."""

    reason: str


class Status(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryStatus:
    """What became of a message the bot sent (`message_id` is its wamid)."""

    message_id: str
    status: Status
    recipient: str
    # Seconds since the epoch, on Meta's clock; 0 when missing.
    timestamp: int = 0
    error_code: int | None = None
    # Meta's title and details, for the failed message's record.
    error: str | None = None

    @property
    def outside_window(self) -> bool:
        """Failed because the 24-hour window had closed: a template may go instead."""
        return self.error_code == OUTSIDE_WINDOW


Event = Incoming | Ignored | DeliveryStatus


class NotANotification(ValueError):
    """The body is not a WhatsApp Business Account notification (or is malformed)."""


@dataclass(frozen=True)
class Notification:
    """A notification cut into items to store, and what it held that is not stored."""

    items: list[dict[str, Any]] = field(default_factory=list)
    # Fields other than "messages" (template reviews, account updates...) and other numbers.
    skipped: list[str] = field(default_factory=list)
    # Errors Meta reports about the webhook itself (`value.errors`): (code, title).
    errors: list[tuple[int | None, str]] = field(default_factory=list)


def split_notification(body: Any, phone_number_id: str | None) -> Notification:
    """One notification per message and per status, for this phone number; raises
    NotANotification when the body is not one."""
    if not isinstance(body, dict) or body.get("object") != OBJECT:
        raise NotANotification(f"object is not {OBJECT}")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise NotANotification("entry is not a list")
    found = Notification()
    for entry in entries:
        changes = entry.get("changes", []) if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise NotANotification("an entry has no list of changes")
        for change in changes:
            if not isinstance(change, dict):
                raise NotANotification("a change is not an object")
            _split_change(entry, change, phone_number_id, found)
    return found


def _split_change(
    entry: dict[str, Any], change: dict[str, Any], phone_number_id: str | None, found: Notification
) -> None:
    if change.get("field") != "messages":
        found.skipped.append(f"field:{_text(change.get('field')) or '?'}")
        return
    value = change.get("value")
    if not isinstance(value, dict):
        raise NotANotification("a change has no value")
    for key in ("messages", "statuses", "errors"):
        if not isinstance(value.get(key, []), list) or not all(
            isinstance(item, dict) for item in value.get(key, [])
        ):
            raise NotANotification(f"{key} is not a list of objects")
    metadata = value.get("metadata")
    number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    if phone_number_id is not None and str(number) != phone_number_id:
        found.skipped.append("other_phone_number")
        return
    contacts = _list(value.get("contacts"))
    for message in value.get("messages", []):
        sender = message.get("from")
        mine = [c for c in contacts if isinstance(c, dict) and c.get("wa_id") == sender]
        if not mine and len(contacts) == 1:
            mine = contacts  # a contact without its wa_id: the only sender there is
        found.items.append(_one(entry, value, {"contacts": mine, "messages": [message]}))
    for status in value.get("statuses", []):
        found.items.append(_one(entry, value, {"statuses": [status]}))
    for error in value.get("errors", []):
        code = error.get("code")
        found.errors.append((code if _is_int(code) else None, _text(error.get("title"))))


def _one(entry: dict[str, Any], value: dict[str, Any], items: dict[str, Any]) -> dict[str, Any]:
    """A notification of the same shape holding only `items`."""
    one = {"messaging_product": value.get("messaging_product", "whatsapp")}
    if "metadata" in value:
        one["metadata"] = value["metadata"]
    one.update(items)
    change = {"field": "messages", "value": one}
    return {"object": OBJECT, "entry": [{"id": entry.get("id"), "changes": [change]}]}


def inbox_id(body: Any) -> str:
    """The inbox id of a stored item: the message's wamid, `<wamid>:<status>` for a status,
    else a hash of the body (so the same bytes are still stored once)."""
    value = _value(body)
    message = _first(value.get("messages"))
    if message is not None and _text(message.get("id")):
        return _text(message.get("id"))
    status = _first(value.get("statuses"))
    if status is not None and _text(status.get("id")):
        return f"{_text(status.get('id'))}:{_text(status.get('status'))}"
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def inbound_times(body: Any) -> dict[str, int]:
    """When each customer in a notification last wrote (Meta's timestamps, seconds since the
    epoch): what opens their 24-hour window."""
    times: dict[str, int] = {}
    for message in _list(_value(body).get("messages")):
        if not isinstance(message, dict):
            continue
        sender, timestamp = _text(message.get("from")), _int(message.get("timestamp"))
        if sender and timestamp:
            times[sender] = max(times.get(sender, 0), timestamp)
    return times


def album_group(wa_id: str) -> str:
    """The media group id every file of a chat gets (see the module's docstring)."""
    return f"wa:{wa_id}"


def read(body: Any) -> Event:
    """What one stored notification means (its first message, else its first status)."""
    value = _value(body)
    message = _first(value.get("messages"))
    if message is not None:
        return _read_message(message, _list(value.get("contacts")))
    status = _first(value.get("statuses"))
    if status is not None:
        return _read_status(status)
    return Ignored("no_message_or_status")


def _read_message(message: Mapping[str, Any], contacts: list[Any]) -> Incoming | Ignored:
    wamid, sender, kind = (_text(message.get(k)) for k in ("id", "from", "type"))
    if not wamid:
        return Ignored("no_message_id")
    if not sender.isascii() or not sender.isdigit():
        # Business-scoped user ids without a phone number are not served yet.
        return Ignored("no_phone_number")
    if message.get("group_id") is not None:
        return Ignored("group_message")
    if kind in _SILENT_TYPES:
        return Ignored(kind)
    context = message.get("context")
    reply_to = (_text(context.get("id")) or None) if isinstance(context, dict) else None
    base = Incoming(
        channel=CHANNEL,
        chat_id=sender,
        user_id=sender,
        update_id=wamid,
        user_name=_profile_name(contacts, sender),
        message_id=wamid,
        reply_to=reply_to,
        phone=f"+{sender}",
    )
    item = message.get(kind)
    item = item if isinstance(item, dict) else {}
    if kind == "text":
        text = _text(item.get("body"))
        return _with(base, text=text) if text else Ignored("empty_text")
    if kind == "interactive":
        return _interactive(base, item)
    if kind == "button":
        # A quick-reply button of a template: the bot's templates have none, so it is text.
        text = _text(item.get("text"))
        return _with(base, text=text) if text else Ignored("empty_button")
    if kind in _MEDIA_KINDS:
        return _with(
            base, text=_text(item.get("caption")) or None, media=(_media(kind, item, sender),)
        )
    if kind == "location":
        return _with(base, media=(Media(MediaKind.LOCATION, channel=CHANNEL),))
    if kind == "contacts":
        return _with(base, media=(Media(MediaKind.CONTACT, channel=CHANNEL),))
    # "unsupported" (a poll, a view-once photo...), an order, or a type of tomorrow: the flows
    # answer what they can read.
    return _with(base, media=(Media(MediaKind.OTHER, channel=CHANNEL),))


def _with(base: Incoming, **changes: Any) -> Incoming:
    return replace(base, **changes)


def _interactive(base: Incoming, item: Mapping[str, Any]) -> Incoming | Ignored:
    kind = _text(item.get("type"))
    if kind not in ("button_reply", "list_reply"):
        return Ignored(f"interactive:{kind or '?'}")
    reply = item.get(kind)
    payload = _text(reply.get("id")) if isinstance(reply, dict) else ""
    return _with(base, payload=payload) if payload else Ignored("interactive_without_id")


def _media(kind: str, item: Mapping[str, Any], sender: str) -> Media:
    media_kind = _MEDIA_KINDS[kind]
    if kind == "audio" and item.get("voice") is True:
        media_kind = MediaKind.VOICE
    mime = _text(item.get("mime_type")).split(";")[0].strip().lower() or None
    size = _int(item.get("file_size")) or None  # Meta does not send it today
    return Media(
        media_kind,
        file_ref=_text(item.get("id")),
        size=size if size is not None and size > 0 else None,
        mime=mime,
        media_group_id=album_group(sender) if kind in _ALBUM_KINDS else None,
        file_name=_text(item.get("filename")) or None,
        channel=CHANNEL,
    )


def _profile_name(contacts: list[Any], sender: str) -> str | None:
    for contact in contacts:
        if isinstance(contact, dict) and contact.get("wa_id") in (sender, None):
            profile = contact.get("profile")
            name = _text(profile.get("name")) if isinstance(profile, dict) else ""
            if name:
                return name
    return None


def _read_status(status: Mapping[str, Any]) -> DeliveryStatus | Ignored:
    wamid, value = _text(status.get("id")), _text(status.get("status"))
    if not wamid:
        return Ignored("status_without_id")
    if value not in Status.__members__.values():
        return Ignored(f"status:{value or '?'}")
    code, error = None, None
    first = _first(status.get("errors"))
    if first is not None:
        code = first.get("code") if _is_int(first.get("code")) else None
        data = first.get("error_data")
        details = _text(data.get("details")) if isinstance(data, dict) else ""
        error = describe(code, _text(first.get("title")) or _text(first.get("message")), details)
    return DeliveryStatus(
        message_id=wamid,
        status=Status(value),
        recipient=_text(status.get("recipient_id")),
        timestamp=_int(status.get("timestamp")),
        error_code=code,
        error=error,
    )


# --- defensive access: the JSON may hold anything ---------------------------------------


def _value(body: Any) -> dict[str, Any]:
    """The `value` of the first change of the first entry, or {}."""
    if not isinstance(body, dict):
        return {}
    entry = _first(body.get("entry"))
    change = _first(entry.get("changes")) if entry is not None else None
    value = change.get("value") if change is not None else None
    return value if isinstance(value, dict) else {}


def _first(items: Any) -> dict[str, Any] | None:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return None


def _list(items: Any) -> list[Any]:
    return items if isinstance(items, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any) -> int:
    """A timestamp given as a number or a string of digits; 0 otherwise."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    return 0
