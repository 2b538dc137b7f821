"""WhatsApp's 24-hour customer-service window: free-form messages only within 24 hours of the
customer's last message; after that only an approved template.

`decide` is pure: given when the customer last wrote, what the message is for and the
configured templates, it says whether to send the message as it is, as a template (with
its parameter), or to keep it and tell the staff. The caller asks it before sending, and
again with `last_inbound=None` when Meta refused a message with 131047 anyway (its clock
is the one that counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.channels.whatsapp_format import template_parameter
from bot.channels.whatsapp_render import Message
from bot.settings import WhatsAppTemplateSettings

WINDOW_SECONDS = 24 * 3600
# Meta's clock is not ours, and a message waits in the queue a little: this close to the
# end, the window counts as closed already.
WINDOW_MARGIN_SECONDS = 120
# A template's parameter may not be empty: a reply of files alone says so.
NO_TEXT = "📎"


class Purpose(StrEnum):
    """What a message to a customer is; the last two have templates (`whatsapp.templates`)."""

    ANSWER = "answer"  # the bot's answer in the customer's own turn
    ORDER_UPDATE = "order_update"  # a proactive order status notice
    STAFF_REPLY = "staff_reply"  # a rep's answer relayed to the customer


@dataclass(frozen=True)
class SendAsIs:
    """The window is open: send the message as it is."""


@dataclass(frozen=True)
class SendTemplate:
    """Send this approved template instead, its body's {{1}} being the message's text."""

    name: str
    language: str
    parameters: tuple[str, ...]

    def message(self) -> Message:
        return template_message(self.name, self.language, self.parameters)


@dataclass(frozen=True)
class KeepForStaff:
    """Nothing may go out: keep the message as undelivered and tell the staff why."""

    reason: str


Decision = SendAsIs | SendTemplate | KeepForStaff


def window_open(
    last_inbound: float | None, now: float, margin: float = WINDOW_MARGIN_SECONDS
) -> bool:
    """Whether a free-form message may go out at `now` (seconds since the epoch) to a
    customer who last wrote at `last_inbound` (None: never, or unknown)."""
    return last_inbound is not None and now - last_inbound < WINDOW_SECONDS - margin


def decide(
    purpose: Purpose,
    text: str,
    last_inbound: float | None,
    now: float,
    templates: Mapping[str, WhatsAppTemplateSettings],
    margin: float = WINDOW_MARGIN_SECONDS,
) -> Decision:
    """How to deliver a message of `purpose` whose text is `text` (Telegram HTML)."""
    if window_open(last_inbound, now, margin):
        return SendAsIs()
    if purpose is Purpose.ANSWER:
        return KeepForStaff(
            "outside WhatsApp's 24-hour window: the customer last wrote more than 24 hours ago"
        )
    template = templates.get(purpose.value)
    if template is None:
        return KeepForStaff(
            "outside WhatsApp's 24-hour window, and no template is configured for it "
            f"(whatsapp.templates.{purpose.value})"
        )
    parameter = template_parameter(text) or NO_TEXT
    return SendTemplate(template.name, template.language, (parameter,))


def template_message(name: str, language: str, parameters: tuple[str, ...]) -> Message:
    """A template message with these body parameters ({{1}}, {{2}}, ...)."""
    template: dict[str, object] = {"name": name, "language": {"code": language}}
    if parameters:
        body = [{"type": "text", "text": value} for value in parameters]
        template["components"] = [{"type": "body", "parameters": body}]
    return Message({"type": "template", "template": template})
