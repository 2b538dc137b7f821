"""What flows receive and return, free of any messenger's types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    """A message to send: Telegram-style HTML text and rows of buttons.

    With `replaces` set, the reply takes the place of that earlier bot message (for example
    to drop buttons that were used) instead of arriving as a new one.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    replaces: str | None = None

    @property
    def flat_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the outbox; `from_json` reads it back."""
        body: dict[str, Any] = {"text": self.text}
        if self.buttons:
            body["buttons"] = [[[b.label, b.payload] for b in row] for row in self.buttons]
        if self.replaces is not None:
            body["replaces"] = self.replaces
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Reply:
        rows = tuple(
            tuple(Button(label, payload) for label, payload in row)
            for row in body.get("buttons", ())
        )
        return cls(body["text"], rows, body.get("replaces"))
