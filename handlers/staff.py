"""Everything that happens in the staff chat, sent to the flow it concerns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers import digest, faq_admin, handoff, tickets
from handlers.engine import Turn

STAFF_BUTTONS = {"ticket": tickets.staff_button}
# What the channel's timer asks about: a reminder due, a digest due.
SYSTEM_EVENTS: dict[str, Callable[[Turn], Awaitable[None]]] = {
    "handoff:remind": handoff.remind,
    digest.DIGEST_EVENT: digest.post_digest,
}


async def staff_event(turn: Turn, args: list[str]) -> None:
    """A rep's message or button press, or a system event: one of the timer's checks, the
    KB watcher's report, or the channel's report of a reply it could not deliver."""
    incoming = turn.incoming
    if incoming.payload in SYSTEM_EVENTS:
        await SYSTEM_EVENTS[incoming.payload](turn)
        return
    if incoming.payload is not None and incoming.payload.startswith(faq_admin.RELOADED):
        await faq_admin.post_reload_report(turn, incoming.payload.removeprefix(faq_admin.RELOADED))
        return
    if incoming.payload is not None and incoming.payload.startswith(handoff.UNDELIVERED):
        await handoff.report_undelivered(turn, incoming.payload.removeprefix(handoff.UNDELIVERED))
        return
    staff_chat = turn.services.staff.chat_id
    if staff_chat is None or incoming.chat_id != staff_chat:
        return
    if incoming.payload is not None:
        namespace, *rest = incoming.payload.split(":")
        if namespace in STAFF_BUTTONS:
            await STAFF_BUTTONS[namespace](turn, rest)
        else:
            turn.notice = "This button is not for this chat."
        return
    # A rep asked for the words of a ticket decision gets them before anything else.
    if await tickets.staff_reply(turn):
        return
    if await faq_admin.staff_command(turn):
        return
    await handoff.staff_message(turn)
