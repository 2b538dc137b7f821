"""Reading notifications never fails, whatever JSON arrives (Hypothesis): Meta's shapes with
any values in them, and any JSON at all."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.whatsapp_read import (
    DeliveryStatus,
    Ignored,
    NotANotification,
    inbound_times,
    inbox_id,
    read,
    split_notification,
)
from handlers.messages import Incoming

PHONE_ID = "106540352242922"

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
# A value where Meta puts a string: usually one, sometimes anything.
_STR = st.one_of(st.text(max_size=30), st.from_regex(r"[0-9]{6,15}", fullmatch=True), _JSON)
_DIGITS = st.one_of(st.from_regex(r"[0-9]{6,15}", fullmatch=True), _STR)
_TYPES = [
    "text", "interactive", "button", "image", "video", "audio", "document", "sticker",
    "location", "contacts", "reaction", "unsupported", "order", "system", "request_welcome",
]  # fmt: skip
_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "id": _STR,
        "body": _STR,
        "caption": _STR,
        "mime_type": _STR,
        "filename": _STR,
        "voice": st.one_of(st.booleans(), _JSON),
        "file_size": st.one_of(st.integers(), _STR),
        "type": st.one_of(st.sampled_from(["button_reply", "list_reply", "nfm_reply"]), _STR),
        "button_reply": st.fixed_dictionaries({}, optional={"id": _STR, "title": _STR}) | _JSON,
        "list_reply": st.fixed_dictionaries({}, optional={"id": _STR, "title": _STR}) | _JSON,
        "text": _STR,
        "payload": _STR,
    },
)
_MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "from": _DIGITS,
        "id": _STR,
        "timestamp": _DIGITS,
        "type": st.one_of(st.sampled_from(_TYPES), _STR),
        "context": st.fixed_dictionaries({}, optional={"id": _STR, "from": _STR}) | _JSON,
        "group_id": _JSON,
        **{kind: st.one_of(_ITEM, _JSON) for kind in _TYPES},
    },
)
_CONTACT = st.fixed_dictionaries(
    {},
    optional={
        "wa_id": _DIGITS,
        "profile": st.fixed_dictionaries({}, optional={"name": _STR}) | _JSON,
    },
)
_ERROR = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(st.sampled_from([131047, 131026, 130429]), _JSON),
        "title": _STR,
        "message": _STR,
        "error_data": st.fixed_dictionaries({}, optional={"details": _STR}) | _JSON,
    },
)
_STATUS = st.fixed_dictionaries(
    {},
    optional={
        "id": _STR,
        "status": st.one_of(
            st.sampled_from(["sent", "delivered", "read", "failed", "played"]), _STR
        ),
        "timestamp": _DIGITS,
        "recipient_id": _DIGITS,
        "errors": st.lists(_ERROR, max_size=2) | _JSON,
    },
)
_VALUE = st.fixed_dictionaries(
    {},
    optional={
        "messaging_product": _STR,
        "metadata": st.fixed_dictionaries(
            {}, optional={"phone_number_id": st.one_of(st.just(PHONE_ID), _STR)}
        )
        | _JSON,
        "contacts": st.lists(st.one_of(_CONTACT, _JSON), max_size=3) | _JSON,
        "messages": st.lists(st.one_of(_MESSAGE, _JSON), max_size=3) | _JSON,
        "statuses": st.lists(st.one_of(_STATUS, _JSON), max_size=3) | _JSON,
        "errors": st.lists(st.one_of(_ERROR, _JSON), max_size=2) | _JSON,
    },
)
_CHANGE = st.fixed_dictionaries(
    {}, optional={"field": st.one_of(st.just("messages"), _STR), "value": _VALUE | _JSON}
)
_ENTRY = st.fixed_dictionaries(
    {}, optional={"id": _STR, "changes": st.lists(_CHANGE | _JSON, max_size=2) | _JSON}
)
_NOTIFICATION = st.fixed_dictionaries(
    {},
    optional={
        "object": st.one_of(st.just("whatsapp_business_account"), _STR),
        "entry": st.lists(_ENTRY | _JSON, max_size=2) | _JSON,
    },
)


def _check_event(body: Any) -> None:
    event = read(body)
    assert isinstance(event, Incoming | Ignored | DeliveryStatus)
    assert isinstance(inbox_id(body), str)
    assert inbox_id(body) == inbox_id(body)
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in inbound_times(body).items())
    if isinstance(event, Incoming):
        assert event.chat_id.isdigit()
        assert event.phone == "+" + event.chat_id
        assert event.update_id == event.message_id == inbox_id(body)
        assert event.text is None or isinstance(event.text, str)
        assert event.payload is None or event.payload != ""


@given(st.one_of(_NOTIFICATION, _JSON))
@settings(max_examples=400)
def test_any_notification_is_read_without_error(body: Any) -> None:
    _check_event(body)
    try:
        notification = split_notification(body, PHONE_ID)
    except NotANotification:
        return
    for item in notification.items:
        _check_event(item)
        # An item is a notification of the same shape: splitting it again keeps it whole.
        assert split_notification(item, PHONE_ID).items == [item]


@given(
    st.from_regex(r"[0-9]{6,15}", fullmatch=True),
    st.text(min_size=1, max_size=20),
    st.text(min_size=1),
    st.one_of(st.none(), st.text()),
)
@settings(max_examples=200)
def test_a_text_is_kept_as_written(sender: str, wamid: str, text: str, name: str | None) -> None:
    contacts = [] if name is None else [{"profile": {"name": name}, "wa_id": sender}]
    message = {"from": sender, "id": wamid, "type": "text", "text": {"body": text}}
    value = {"contacts": contacts, "messages": [message]}
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": value}]}],
    }
    event = read(body)
    assert isinstance(event, Incoming)
    assert (event.chat_id, event.text, event.update_id) == (sender, text, wamid)
    assert event.user_name == (name or None)
