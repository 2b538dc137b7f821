"""What flows receive and return, free of any messenger's types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from markupsafe import Markup


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    # Anything else a messenger can carry (polls, dice, games): flows never ask for it.
    OTHER = "other"


@dataclass(frozen=True)
class Media:
    """A file the customer sent, referenced by the channel's own id (nothing re-uploaded)."""

    kind: MediaKind
    file_ref: str = ""
    size: int | None = None
    mime: str | None = None
    media_group_id: str | None = None
    file_name: str | None = None
    channel: str = ""


@dataclass(frozen=True)
class Incoming:
    """One thing a customer did: a message, a command or a button press.

    `message_id` is the customer's message, or for a button press the bot message the
    button is on (so a reply can replace it).
    """

    channel: str
    chat_id: str
    user_id: str
    text: str | None = None
    language: str | None = None
    media: tuple[Media, ...] = ()
    payload: str | None = None
    update_id: str | None = None
    user_name: str | None = None
    message_id: str | None = None
    username: str | None = None
    # From the staff chat (sales reps), not from a customer.
    staff: bool = False
    # The forum topic the message was posted in, and the message it replies to.
    thread_id: str | None = None
    reply_to: str | None = None
    # An album arrives as one update per item; the channel merges them into one Incoming
    # and these are the other items' update ids.
    merged_update_ids: tuple[str, ...] = ()
    # An event the application raises itself (a timer's check, the KB watcher's report).
    # Channels never set it from what a messenger delivers, so nobody can forge one the
    # way a button's payload can be forged.
    system: str | None = None
    phone: str | None = None

    @property
    def update_ids(self) -> tuple[str, ...]:
        return ((self.update_id,) if self.update_id else ()) + self.merged_update_ids

    @property
    def command(self) -> str | None:
        """`start` for "/start" or "/start@SomeBot args"; None for plain text."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text[1:].split(maxsplit=1)[0] if len(self.text) > 1 else ""
        return word.split("@", 1)[0].lower() or None


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """A message to send: Telegram-style HTML text and rows of buttons (plain text).

    `text` is `Markup`, so nothing reaches it unescaped: values go in with
    `Markup.format`, `+` or `Markup.join`, which escape any plain `str`.

    With `replaces` set, the reply takes the place of that earlier bot message (for example
    to drop buttons that were used) instead of arriving as a new one. The other fields
    serve the relay between customers and staff:

    - `chat_id`: send to this chat (same channel) instead of the one the turn is about;
    - `topic_of`: post in the staff chat's topic of this customer's chat, creating the topic
      (named `open_topic`) first if it has none; messages sent this way are remembered, so
      a rep replying to one reaches the customer;
    - `copy_of`: (chat id, message id) of a message to copy (or, to staff, forward) instead
      of `text`;
    - `album`: files to send as one album, `text` being its caption.
    """

    text: Markup
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    replaces: str | None = None
    chat_id: str | None = None
    topic_of: str | None = None
    open_topic: str | None = None
    copy_of: tuple[str, str] | None = None
    album: tuple[Media, ...] = ()

    @property
    def flat_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the outbox; `from_json` reads it back."""
        body: dict[str, Any] = {"text": str(self.text)}
        if self.buttons:
            body["buttons"] = [[[b.label, b.payload] for b in row] for row in self.buttons]
        for name in ("replaces", "chat_id", "topic_of", "open_topic"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        if self.copy_of is not None:
            body["copy_of"] = list(self.copy_of)
        if self.album:
            body["album"] = [[media.kind, media.file_ref] for media in self.album]
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Reply:
        rows = tuple(
            tuple(Button(label, payload) for label, payload in row)
            for row in body.get("buttons", ())
        )
        copy_of = body.get("copy_of")
        return cls(
            # Written by `to_json` from a reply we made: markup already.
            Markup(body["text"]),  # noqa: S704
            rows,
            replaces=body.get("replaces"),
            chat_id=body.get("chat_id"),
            topic_of=body.get("topic_of"),
            open_topic=body.get("open_topic"),
            copy_of=(str(copy_of[0]), str(copy_of[1])) if copy_of else None,
            album=tuple(Media(MediaKind(kind), ref) for kind, ref in body.get("album", ())),
        )
