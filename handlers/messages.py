"""What flows receive and return, free of any messenger's types."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from markupsafe import Markup

from domain.chats import ChatKey


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
    """A file someone sent, referenced by its channel's own id (nothing re-uploaded while
    it stays on that channel)."""

    kind: MediaKind
    file_ref: str = ""
    size: int | None = None
    mime: str | None = None
    media_group_id: str | None = None
    file_name: str | None = None
    # The channel `file_ref` belongs to; "" (as in replies stored before channels said):
    # the channel of the chat it is sent to.
    channel: str = ""

    def on(self, channel: str) -> Media:
        """This file, naming `channel` as its own unless it names one already."""
        return self if self.channel else replace(self, channel=channel)


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
    # The customer's phone number (E.164), set only by a channel that verified it
    # (WhatsApp's wa_id); never from what the customer typed.
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
    """A message to send, as what it means; each channel renders it as its messenger can.

    `text` is `Markup` in the bot's HTML subset (`b i u s code pre a[href] blockquote`), so
    nothing reaches it unescaped: values go in with `Markup.format`, `+` or `Markup.join`,
    which escape any plain `str`. `buttons` are rows of choices (Telegram: an inline
    keyboard; a channel with fewer buttons shows a list).

    - `replaces`: the message whose button was pressed, for this reply to take its place
      (to drop buttons that were used); edited where the messenger can, else sent anew;
    - `to`: the chat to send to when it is not the turn's: the staff desk, or from the
      staff desk the customer, possibly on another channel;
    - `topic_of`: post in the staff desk's topic of this customer, opening it (named
      `open_topic`) first if there is none; messages sent this way are remembered, so a
      rep replying to one reaches the customer;
    - `copy_of`: (chat id, message id) of a message on the destination's own channel, to
      copy (or, to staff, forward) instead of `text`; a message crossing channels is
      passed on as `text` and `album` instead;
    - `album`: files to send, `text` being their caption; each names its channel, so a
      channel can fetch another's file and upload it.
    """

    text: Markup
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    replaces: str | None = None
    to: ChatKey | None = None
    topic_of: ChatKey | None = None
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
        for name in ("replaces", "open_topic"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        for name in ("to", "topic_of"):
            key = getattr(self, name)
            if key is not None:
                body[name] = [key.channel, key.chat_id]
        if self.copy_of is not None:
            body["copy_of"] = list(self.copy_of)
        if self.album:
            body["album"] = [
                [media.kind, media.file_ref, media.channel, media.mime, media.file_name]
                for media in self.album
            ]
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], channel: str = "") -> Reply:
        """The reply `to_json` wrote; `channel` is the channel of the chat it was queued
        for, which rows written before replies named channels meant."""
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
            # Before: `chat_id`, a chat on the same channel.
            to=_chat_key(body.get("to", body.get("chat_id")), channel),
            topic_of=_chat_key(body.get("topic_of"), channel),
            open_topic=body.get("open_topic"),
            copy_of=(str(copy_of[0]), str(copy_of[1])) if copy_of else None,
            album=tuple(_media(item, channel) for item in body.get("album", ())),
        )


def _chat_key(stored: list[str] | str | None, channel: str) -> ChatKey | None:
    """A stored [channel, chat id]; a bare chat id (written before) is on `channel`."""
    if stored is None:
        return None
    if isinstance(stored, str):
        return ChatKey(channel, stored)
    return ChatKey(str(stored[0]), str(stored[1]))


def _media(item: list[Any], channel: str) -> Media:
    """A stored [kind, file ref, channel, mime, file name]; before: [kind, file ref]."""
    kind, ref, *rest = item
    own, mime, name = (*rest, None, None, None)[:3]
    return Media(MediaKind(kind), ref, mime=mime, file_name=name, channel=own or channel)
