"""A queued reply as WhatsApp messages, one Cloud API call each: pure, so every rule can be
tested without a network.

- Text: converted from Telegram HTML (`whatsapp_format`), in messages of at most 4,096.
- Buttons: up to 3 become reply buttons (titles cut to 20 with "…", ids the payloads);
  4 to 10 a list message (row titles 24, the rest of a label as the row's description 72);
  more, several lists of 10. Their text is the interactive body (1,024 at most): a longer
  text goes first as messages of its own, its last part carries the buttons.
- No edits: a reply that `replaces` a message is sent as a new one.
- Files: one message each (WhatsApp has no albums), the text as the first file's caption
  when it fits (1,024) and no buttons need it; files of another channel are uploaded when
  sent. WhatsApp cannot copy a message: a `copy_of` reply sends the text and files it
  carries, or is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.channels.whatsapp_format import (
    TEXT_LIMIT,
    converted_chunks,
    shorten,
    to_whatsapp,
    utf16_length,
)
from handlers.messages import Button, Media, MediaKind, Reply

BODY_LIMIT = 1024
CAPTION_LIMIT = 1024
MAX_BUTTONS = 3
BUTTON_TITLE = 20
MAX_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
LIST_BUTTON = 20
# The list message's button: WhatsApp shows it beside its own list icon. The reply does not
# say the chat's language, so the default says it without words.
LIST_LABEL = "☰"
# An interactive message needs a body; a reply of buttons alone gets this one.
EMPTY_BODY = "⬇️"
# Kinds a file message can carry; locations, contacts and the rest have nothing to send.
SENDABLE = frozenset(
    {
        MediaKind.PHOTO,
        MediaKind.VIDEO,
        MediaKind.DOCUMENT,
        MediaKind.VOICE,
        MediaKind.AUDIO,
        MediaKind.STICKER,
    }
)
CAPTIONED = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.DOCUMENT})


@dataclass(frozen=True)
class Message:
    """A message ready to send: its `type` and that type's object (`to` is added later)."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class FileMessage:
    """A file to send, uploaded first unless it is already WhatsApp's."""

    media: Media
    caption: str | None = None


@dataclass(frozen=True)
class Refused:
    """A reply WhatsApp cannot carry; sending it fails with the reason."""

    reason: str


Part = Message | FileMessage | Refused


def render(reply: Reply, list_label: str = LIST_LABEL) -> list[Part]:
    """The messages that deliver `reply`, in order."""
    files = [media for media in reply.album if media.kind in SENDABLE and media.file_ref]
    html = str(reply.text)
    buttons = reply.flat_buttons
    if reply.copy_of is not None and not files and not to_whatsapp(html):
        return [Refused("WhatsApp cannot copy a message, and this one carries no text or files")]
    if not files:
        return text_parts(html, buttons, list_label)
    caption = to_whatsapp(html) or None
    if caption is not None and (
        buttons or utf16_length(caption) > CAPTION_LIMIT or files[0].kind not in CAPTIONED
    ):
        caption = None
    parts: list[Part] = [FileMessage(m, caption if i == 0 else None) for i, m in enumerate(files)]
    if caption is None:
        parts += text_parts(html, buttons, list_label)
    return parts


def text_parts(html: str, buttons: list[Button], list_label: str = LIST_LABEL) -> list[Part]:
    """Text messages, the last one interactive when there are buttons."""
    pieces = converted_chunks(html, TEXT_LIMIT)
    if not buttons:
        return [text_message(text) for _, text in pieces]
    if pieces and utf16_length(pieces[-1][1]) > BODY_LIMIT:
        pieces = pieces[:-1] + converted_chunks(pieces[-1][0], BODY_LIMIT)
    body = pieces.pop()[1] if pieces else EMPTY_BODY
    parts: list[Part] = [text_message(text) for _, text in pieces]
    return parts + interactive_messages(body, buttons, list_label)


def text_message(text: str) -> Message:
    return Message({"type": "text", "text": {"body": text, "preview_url": False}})


def interactive_messages(body: str, buttons: list[Button], list_label: str) -> list[Part]:
    """Reply buttons for up to three; list messages of ten rows each for more."""
    buttons = list({button.payload: button for button in reversed(buttons)}.values())[::-1]
    if len(buttons) <= MAX_BUTTONS:
        return [Message(_interactive("button", body, {"buttons": _reply_buttons(buttons)}))]
    groups = [buttons[i : i + MAX_ROWS] for i in range(0, len(buttons), MAX_ROWS)]
    label = shorten(list_label.strip() or LIST_LABEL, LIST_BUTTON)
    parts: list[Part] = []
    for number, group in enumerate(groups, start=1):
        text = body if number == 1 else f"({number}/{len(groups)})"
        action = {"button": label, "sections": [{"rows": [_row(b) for b in group]}]}
        parts.append(Message(_interactive("list", text, action)))
    return parts


def _interactive(kind: str, body: str, action: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": body}, "action": action},
    }


def _reply_buttons(buttons: list[Button]) -> list[dict[str, Any]]:
    titles: set[str] = set()
    found = []
    for button in buttons:
        title = shorten(button.label.strip() or "•", BUTTON_TITLE)
        number = 2
        while title in titles:  # titles must differ within a message
            suffix = f" {number}"
            title = shorten(button.label.strip() or "•", BUTTON_TITLE - len(suffix)) + suffix
            number += 1
        titles.add(title)
        found.append({"type": "reply", "reply": {"id": button.payload, "title": title}})
    return found


def _row(button: Button) -> dict[str, str]:
    label = " ".join(button.label.split()) or "•"
    title = shorten(label, ROW_TITLE)
    row = {"id": button.payload, "title": title}
    if title != label:
        rest = label[len(title.removesuffix("…")) :].strip()
        row["description"] = shorten("…" + rest, ROW_DESCRIPTION)
    return row
