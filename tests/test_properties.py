"""Properties over arbitrary input (Hypothesis): escaping gives back the text written (on
its own and on a card the shop's data fills), the HTML splitter keeps every chunk valid
for Telegram, and the update parser never fails.

Profiles (tests/conftest.py): derandomized in CI, so a run there is reproducible.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram.types import ChatMemberAdministrator, Update
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from bot.channels.console import to_plain_text
from bot.channels.html_split import TELEGRAM_LIMIT, split_html
from bot.channels.telegram import Event, Ignored, LeaveGroup, read_update
from domain.orders import Condition, OrderItem, OrderRules, OrderStatus, Repair
from handlers.i18n import translator
from handlers.messages import Incoming, Reply
from handlers.warranty import warranty_card
from tests.factories import Shown, order
from tests.test_html_split import check, utf16, visible

# --- escaping ---------------------------------------------------------------------------


@given(st.text())
@settings(max_examples=300)
def test_any_text_put_into_markup_reads_back_as_written(text: str) -> None:
    sent = Reply.from_json(Reply(Markup("<b>{}</b>").format(text)).to_json()).text
    shown = Shown(sent)
    assert shown.problems == []
    assert shown.tags == {"<b>": 1, "</b>": 1}
    assert shown.visible == text
    # The console shows it as written too.
    assert to_plain_text(sent) == text


@given(st.lists(st.one_of(st.text(), st.text().map(escape)), max_size=8))
@settings(max_examples=200)
def test_joining_escapes_text_and_keeps_markup(parts: list[str]) -> None:
    joined = Markup("<i>{}</i>").format(Markup("\n").join(parts))
    assert Shown(joined).tags == {"<i>": 1, "</i>": 1}
    assert Shown(joined).visible == "\n".join(
        Shown(part).visible if isinstance(part, Markup) else part for part in parts
    )


def _warranty_card(brand: str, model: str, serial: str, part: str) -> str:
    repair = Repair(part, date(2026, 11, 10))
    item = OrderItem(brand, model, 1, Condition.NEW, (serial,), (repair,))
    shipped = order(status=OrderStatus.DELIVERED, items=(item,), shipped_on=date(2026, 11, 1))
    return warranty_card(translator("en"), "en", shipped, date(2026, 11, 20), OrderRules(), {})


@given(st.text(), st.text(), st.text(), st.text())
@settings(max_examples=200)
def test_the_shops_fields_read_as_written_on_the_warranty_card(
    brand: str, model: str, serial: str, part: str
) -> None:
    card = Shown(_warranty_card(brand, model, serial, part))
    assert card.problems == []
    assert card.tags == Shown(_warranty_card("b", "m", "s", "p")).tags
    for value in (f"{brand} {model}", serial, part):
        assert value in card.visible


# --- the HTML splitter ------------------------------------------------------------------

ELEMENTS = ["b", "i", "u", "s", "code", "pre", "blockquote"]


def _element(tag: str, href: str, inner: list[str]) -> str:
    opening = Markup('<a href="{}">').format(href) if tag == "a" else f"<{tag}>"
    return f"{opening}{''.join(inner)}</{tag}>"


# Escaped arbitrary text, now and then a long run, inside well-nested Telegram elements.
_TEXT = st.one_of(st.text(max_size=40), st.text(min_size=500, max_size=3000)).map(
    lambda text: str(escape(text))
)
_HTML = st.recursive(
    _TEXT,
    lambda inner: st.builds(
        _element, st.sampled_from([*ELEMENTS, "a"]), st.text(max_size=30), st.lists(inner)
    ),
    max_leaves=12,
)
_DOCUMENT = st.lists(_HTML, max_size=12).map("".join)


@given(_DOCUMENT, st.one_of(st.just(TELEGRAM_LIMIT), st.integers(2, 300)))
@settings(max_examples=150)
def test_split_chunks_are_valid_telegram_html_and_lose_only_break_whitespace(
    text: str, limit: int
) -> None:
    chunks = split_html(text, limit)
    shown = visible(text)
    if not shown.strip():
        assert chunks == []
    elif utf16(shown) <= limit:
        assert chunks == [text]
    else:
        # Within the limit, balanced, no stray "<" or "&", nothing lost but whitespace.
        check(text, chunks, limit)
    for chunk in chunks:
        assert Shown(chunk).problems == []


# --- the update parser ------------------------------------------------------------------

STAFF_CHAT = -1001
_ID = st.integers(1, 2**40)
_USER = st.fixed_dictionaries(
    {"id": _ID, "is_bot": st.booleans(), "first_name": st.text()},
    optional={
        "last_name": st.text(),
        "username": st.text(max_size=40),
        "language_code": st.text(max_size=12),
    },
)
_CHAT = st.fixed_dictionaries(
    {
        "id": st.sampled_from([501, STAFF_CHAT, -100777]),
        "type": st.sampled_from(["private", "group", "supergroup", "channel"]),
    },
    optional={"title": st.text(), "is_forum": st.booleans()},
)
_FILE = {"file_id": st.text(min_size=1, max_size=20), "file_unique_id": st.text(max_size=20)}
_PHOTO = st.fixed_dictionaries({**_FILE, "width": st.integers(1, 5000), "height": _ID})
_DOCUMENT_FILE = st.fixed_dictionaries(
    _FILE, optional={"file_name": st.text(), "mime_type": st.text(), "file_size": _ID}
)
_MESSAGE_FIELDS = {
    "message_id": st.integers(1, 2**31),
    # 0 is how Telegram marks a message it can no longer show (InaccessibleMessage).
    "date": st.one_of(st.just(0), st.integers(1, 2**31)),
    "chat": _CHAT,
}
_MESSAGE_OPTIONAL = {
    "from": _USER,
    "sender_chat": _CHAT,
    "author_signature": st.text(),
    "text": st.text(),
    "caption": st.text(),
    "media_group_id": st.text(max_size=20),
    "message_thread_id": _ID,
    "is_topic_message": st.booleans(),
    "photo": st.lists(_PHOTO, max_size=3),
    "document": _DOCUMENT_FILE,
    "location": st.fixed_dictionaries(
        {"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)}
    ),
}
_REPLIED = st.fixed_dictionaries(_MESSAGE_FIELDS, optional=_MESSAGE_OPTIONAL)
_MESSAGE = st.fixed_dictionaries(
    _MESSAGE_FIELDS, optional={**_MESSAGE_OPTIONAL, "reply_to_message": _REPLIED}
)
_CALLBACK = st.fixed_dictionaries(
    {"id": st.text(max_size=20), "from": _USER, "chat_instance": st.text(max_size=20)},
    optional={"data": st.text(max_size=64), "message": _MESSAGE},
)
_MEMBER = st.fixed_dictionaries(
    {"status": st.sampled_from(["member", "left"]), "user": _USER}
) | st.fixed_dictionaries(
    {
        "status": st.just("administrator"),
        "user": _USER,
        # The rights this aiogram version requires of an administrator.
        **{
            name: st.booleans()
            for name, field in ChatMemberAdministrator.model_fields.items()
            if field.is_required() and field.annotation is bool
        },
    }
)
_CHAT_MEMBER_UPDATED = st.fixed_dictionaries(
    {
        "chat": _CHAT,
        "from": _USER,
        "date": st.integers(1, 2**31),
        "old_chat_member": _MEMBER,
        "new_chat_member": _MEMBER,
    }
)
_UPDATE = st.fixed_dictionaries(
    {"update_id": st.integers(0, 2**31)},
    optional={
        "message": _MESSAGE,
        "edited_message": _MESSAGE,
        "callback_query": _CALLBACK,
        "my_chat_member": _CHAT_MEMBER_UPDATED,
    },
)


@given(_UPDATE, st.sampled_from([None, STAFF_CHAT]))
@settings(max_examples=300)
def test_any_update_is_read_without_error_and_its_text_kept_verbatim(
    body: dict[str, Any], staff_chat: int | None
) -> None:
    update = Update.model_validate(body)
    event: Event = read_update(update, staff_chat)
    assert isinstance(event, Incoming | Ignored | LeaveGroup)
    message = update.message
    if isinstance(event, Incoming) and message is not None:
        # Text is kept as written: escaping happens when a reply is built, not here.
        assert event.text == (message.text if message.text is not None else message.caption)
