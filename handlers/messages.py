"""What flows receive and return, free of any messenger's types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"


@dataclass(frozen=True)
class Media:
    """A file the customer sent, referenced by the channel's own id (nothing re-uploaded)."""

    kind: MediaKind
    file_ref: str = ""
    size: int | None = None
    mime: str | None = None
    media_group_id: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One thing a customer did: a message, a command or a button press."""

    channel: str
    chat_id: str
    user_id: str
    text: str | None = None
    language: str | None = None
    media: tuple[Media, ...] = ()
    payload: str | None = None
    update_id: str | None = None
    user_name: str | None = None

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
    """A message to send: Telegram-style HTML text and rows of buttons."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)

    @property
    def flat_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]
