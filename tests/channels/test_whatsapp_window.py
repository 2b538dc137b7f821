"""The 24-hour customer-service window: send as is, as a template, or keep it for the staff."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp_window import (
    NO_TEXT,
    WINDOW_MARGIN_SECONDS,
    WINDOW_SECONDS,
    KeepForStaff,
    Purpose,
    SendAsIs,
    SendTemplate,
    decide,
    template_message,
    window_open,
)
from bot.settings import WhatsAppTemplateSettings
from tests.whatsapp_emulator import check_message

NOW = 1_800_000_000.0
HOUR = 3600.0
TEMPLATES = {
    "order_update": WhatsAppTemplateSettings(name="order_update", language="en_US"),
    "staff_reply": WhatsAppTemplateSettings(name="support_reply", language="ru"),
}


@pytest.mark.parametrize(
    ("last_inbound", "expected"),
    [
        (NOW - 60, True),
        (NOW - 23 * HOUR, True),
        (NOW - WINDOW_SECONDS + WINDOW_MARGIN_SECONDS + 1, True),
        # The last two minutes count as closed: Meta's clock decides, and a send takes time.
        (NOW - WINDOW_SECONDS + WINDOW_MARGIN_SECONDS, False),
        (NOW - WINDOW_SECONDS, False),
        (NOW - 30 * 24 * HOUR, False),
        (None, False),
    ],
)
def test_the_window(last_inbound: float | None, expected: bool) -> None:
    assert window_open(last_inbound, NOW) is expected


@pytest.mark.parametrize("purpose", list(Purpose))
def test_inside_the_window_everything_goes_as_it_is(purpose: Purpose) -> None:
    assert decide(purpose, "<b>Hi</b>", NOW - HOUR, NOW, TEMPLATES) == SendAsIs()
    assert decide(purpose, "<b>Hi</b>", NOW - HOUR, NOW, {}) == SendAsIs()


def test_outside_it_order_notices_and_staff_replies_go_as_their_templates() -> None:
    notice = "<b>Order A-1001</b>\nShipped with DHL, tracking JD014600."
    assert decide(Purpose.ORDER_UPDATE, notice, NOW - 25 * HOUR, NOW, TEMPLATES) == SendTemplate(
        "order_update", "en_US", ("*Order A-1001* · Shipped with DHL, tracking JD014600.",)
    )
    reply = decide(Purpose.STAFF_REPLY, "Your board is fixed.", None, NOW, TEMPLATES)
    assert reply == SendTemplate("support_reply", "ru", ("Your board is fixed.",))


def test_without_a_template_the_message_is_kept_and_the_staff_told_why() -> None:
    decision = decide(Purpose.STAFF_REPLY, "Late answer", NOW - 2 * 24 * HOUR, NOW, {})
    assert isinstance(decision, KeepForStaff)
    assert "24-hour window" in decision.reason
    assert "whatsapp.templates.staff_reply" in decision.reason


def test_an_ordinary_answer_outside_the_window_is_kept() -> None:
    # Only a very late answer (a backlog of a day) meets a closed window; no template fits.
    decision = decide(Purpose.ANSWER, "Here is the FAQ", NOW - 25 * HOUR, NOW, TEMPLATES)
    assert isinstance(decision, KeepForStaff)


def test_a_template_parameter_is_never_empty() -> None:
    decision = decide(Purpose.STAFF_REPLY, "", None, NOW, TEMPLATES)
    assert isinstance(decision, SendTemplate)
    assert decision.parameters == (NO_TEXT,)


def test_template_messages_are_valid_for_meta() -> None:
    decision = decide(Purpose.ORDER_UPDATE, "x" * 5000, None, NOW, TEMPLATES)
    assert isinstance(decision, SendTemplate)
    payload = decision.message().payload
    check_message({"messaging_product": "whatsapp", "to": "15551234567", **payload})
    [parameter] = payload["template"]["components"][0]["parameters"]
    assert len(parameter["text"]) <= 900
    assert template_message("hello_world", "en_US", ()).payload == {
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    }
