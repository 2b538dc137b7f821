"""Replies as WhatsApp messages, checked against Meta's limits as the emulator enforces them
(its validator, without a network)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from bot.channels.whatsapp_format import utf16_length
from bot.channels.whatsapp_render import (
    EMPTY_BODY,
    LIST_LABEL,
    FileMessage,
    Message,
    Part,
    Refused,
    render,
)
from handlers.messages import Button, Media, MediaKind, Reply
from tests.whatsapp_emulator import check_message

CUSTOMER = "15551234567"


def checked(parts: list[Part]) -> list[dict[str, Any]]:
    """The payloads, each valid for Meta (GraphError otherwise)."""
    payloads = []
    for part in parts:
        assert isinstance(part, Message), part
        check_message({"messaging_product": "whatsapp", "to": CUSTOMER, **part.payload})
        payloads.append(part.payload)
    return payloads


def buttons(*labels: str) -> tuple[tuple[Button, ...], ...]:
    return tuple((Button(label, f"p:{i}"),) for i, label in enumerate(labels))


def test_text_goes_as_converted_text_without_link_previews() -> None:
    [message] = checked(render(Reply(Markup("<b>Hi</b> there"))))
    assert message == {"type": "text", "text": {"body": "*Hi* there", "preview_url": False}}


def test_a_long_text_is_split_at_4096() -> None:
    paragraph = "<b>Shipping</b>: " + "a sentence about delivery times. " * 40
    parts = checked(render(Reply(Markup("\n\n".join([paragraph] * 8)))))
    assert len(parts) > 1
    assert all(utf16_length(p["text"]["body"]) <= 4096 for p in parts)


def test_up_to_three_buttons_are_reply_buttons() -> None:
    reply = Reply(Markup("Was this helpful?"), ((Button("👍", "fb:1"), Button("👎", "fb:0")),))
    [message] = checked(render(reply))
    interactive = message["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Was this helpful?"}
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "fb:1", "title": "👍"},
        {"id": "fb:0", "title": "👎"},
    ]


def test_button_titles_are_cut_to_20_and_kept_apart() -> None:
    reply = Reply(
        Markup("Choose"),
        buttons("🔧 Repair / second return", "🔧 Repair / second return request", "OK"),
    )
    [message] = checked(render(reply))
    titles = [b["reply"]["title"] for b in message["interactive"]["action"]["buttons"]]
    assert titles == ["🔧 Repair / second…", "🔧 Repair /… 2", "OK"]
    assert all(len(title) <= 20 for title in titles)


def test_four_to_ten_buttons_are_a_list_with_long_labels_continued_in_descriptions() -> None:
    labels = ["📦 Track my order", "🛡 Warranty check", "🔧 Repair / second return ticket"]
    labels += ["💬 Talk to a person about an order that has not arrived yet", "❓ FAQ"]
    [message] = checked(render(Reply(Markup("Main menu"), buttons(*labels))))
    interactive = message["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == LIST_LABEL
    rows = interactive["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows] == [f"p:{i}" for i in range(5)]
    assert rows[0] == {"id": "p:0", "title": "📦 Track my order"}
    assert rows[2] == {
        "id": "p:2",
        "title": "🔧 Repair / second…",
        "description": "…return ticket",
    }
    assert rows[3]["title"] == "💬 Talk to a person…"
    assert rows[3]["description"] == "…about an order that has not arrived yet"


def test_more_than_ten_buttons_are_several_lists() -> None:
    parts = checked(render(Reply(Markup("Pick a model"), buttons(*[f"S{i}" for i in range(23)]))))
    assert [len(p["interactive"]["action"]["sections"][0]["rows"]) for p in parts] == [10, 10, 3]
    assert [p["interactive"]["body"]["text"] for p in parts] == ["Pick a model", "(2/3)", "(3/3)"]


def test_a_text_too_long_for_an_interactive_body_goes_first() -> None:
    text = Markup("\n\n".join(["A paragraph about warranty terms and what voids them. " * 8] * 6))
    parts = checked(render(Reply(text, buttons("👍", "👎"))))
    assert [p["type"] for p in parts[:-1]] == ["text"] * (len(parts) - 1)
    assert parts[-1]["type"] == "interactive"
    assert 0 < utf16_length(parts[-1]["interactive"]["body"]["text"]) <= 1024


def test_buttons_alone_get_a_body() -> None:
    [message] = checked(render(Reply(Markup(""), buttons("Menu"))))
    assert message["interactive"]["body"]["text"] == EMPTY_BODY


def test_a_replacing_reply_is_a_new_message() -> None:
    original = render(Reply(Markup("Your order"), buttons("Back")))
    assert render(Reply(Markup("Your order"), buttons("Back"), replaces="wamid.old")) == original


def test_duplicate_payloads_are_sent_once() -> None:
    reply = Reply(Markup("x"), ((Button("A", "same"), Button("B", "same"), Button("C", "c")),))
    [message] = checked(render(reply))
    assert [b["reply"]["id"] for b in message["interactive"]["action"]["buttons"]] == ["same", "c"]


PHOTO = Media(MediaKind.PHOTO, "tg-photo-1", 1000, "image/jpeg", channel="telegram")
VIDEO = Media(MediaKind.VIDEO, "tg-video-1", 1000, "video/mp4", channel="telegram")
VOICE = Media(MediaKind.VOICE, "tg-voice-1", 1000, "audio/ogg", channel="telegram")


def test_files_go_one_by_one_with_the_text_as_first_caption() -> None:
    parts = render(Reply(Markup("<b>Board</b> photos"), album=(PHOTO, VIDEO)))
    assert parts == [FileMessage(PHOTO, "*Board* photos"), FileMessage(VIDEO, None)]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(Markup("With buttons"), buttons("OK"), album=(PHOTO, VIDEO)),
        Reply(Markup("x" * 1100), album=(PHOTO, VIDEO)),
        Reply(Markup("A voice note cannot carry it"), album=(VOICE, PHOTO)),
    ],
)
def test_text_that_cannot_be_a_caption_follows_the_files(reply: Reply) -> None:
    parts = render(reply)
    files = [p for p in parts if isinstance(p, FileMessage)]
    assert [f.caption for f in files] == [None, None]
    assert parts[: len(files)] == files
    checked(parts[len(files) :])
    assert parts[len(files) :] == render(Reply(reply.text, reply.buttons))


def test_locations_and_other_kinds_have_nothing_to_send() -> None:
    album = (Media(MediaKind.LOCATION), PHOTO, Media(MediaKind.OTHER))
    assert render(Reply(Markup("x"), album=album)) == [FileMessage(PHOTO, "x")]


def test_a_copy_sends_what_it_carries_or_is_refused() -> None:
    assert render(Reply(Markup("A rep wrote this"), copy_of=("-100", "7"))) == render(
        Reply(Markup("A rep wrote this"))
    )
    [refused] = render(Reply(Markup(""), copy_of=("-100", "7")))
    assert isinstance(refused, Refused)
    assert "cannot copy" in refused.reason


def test_nothing_to_say_sends_nothing() -> None:
    assert render(Reply(Markup("  "))) == []


# --- property: whatever a reply holds, Meta's limits hold ----------------------------------

_LABEL = st.text(min_size=0, max_size=60)
_PAYLOAD = st.text(min_size=1, max_size=64)
_ROWS = st.lists(
    st.lists(st.builds(Button, _LABEL, _PAYLOAD), min_size=1, max_size=4).map(tuple),
    max_size=6,
).map(tuple)
_TEXT = st.one_of(st.text(max_size=50), st.text(min_size=1000, max_size=5000), st.just("")).map(
    lambda text: Markup("<b>{}</b> {}").format(text[:20], text)
)


@given(_TEXT, _ROWS)
@settings(max_examples=150)
def test_every_rendered_message_is_within_metas_limits(text: Markup, rows: Any) -> None:
    parts = render(Reply(text, rows))
    checked(parts)
    sent_payloads = {
        b["reply"]["id"] if "reply" in b else b["id"]
        for p in parts
        if isinstance(p, Message) and p.payload["type"] == "interactive"
        for b in (
            p.payload["interactive"]["action"].get("buttons")
            or p.payload["interactive"]["action"]["sections"][0]["rows"]
        )
    }
    assert sent_payloads == {button.payload for row in rows for button in row}


def test_the_escape_helper_is_markupsafe() -> None:
    # A guard for the strategies above: labels are plain text, the text is Markup.
    assert escape("<b>") == Markup("&lt;b&gt;")
