"""Everything that happens in the staff chat, sent to the flow it concerns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from domain.chats import ChatKey
from handlers import digest, faq_admin, handoff, tickets
from handlers.engine import StaffDesk, Turn
from handlers.messages import Incoming

STAFF_BUTTONS = {"ticket": tickets.staff_button}
# What the timer asks about: a reminder due, a digest due.
SYSTEM_EVENTS: dict[str, Callable[[Turn], Awaitable[None]]] = {
    handoff.REMIND_EVENT: handoff.remind,
    digest.DIGEST_EVENT: digest.post_digest,
}


def due_checks(desk: StaffDesk) -> list[str]:
    """The system events the staff chat's timer raises: reminders, and the daily digest
    when it is on; none without a staff chat."""
    if desk.chat is None:
        return []
    return [handoff.REMIND_EVENT] + ([digest.DIGEST_EVENT] if desk.digest_at is not None else [])


def system_event(staff_chat: ChatKey, event: str) -> Incoming:
    """What the runtime hands the engine for one of the application's own events."""
    return Incoming(staff_chat.channel, staff_chat.chat_id, "system", staff=True, system=event)


async def staff_event(turn: Turn, args: list[str]) -> None:
    """A rep's message or button press, or a system event: one of the timer's checks, the
    KB watcher's report, or the runtime's report of a reply it could not deliver."""
    incoming = turn.incoming
    if incoming.system is not None:
        await _system_event(turn, incoming.system)
        return
    if turn.key != turn.services.staff.chat:
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


async def _system_event(turn: Turn, event: str) -> None:
    if event in SYSTEM_EVENTS:
        await SYSTEM_EVENTS[event](turn)
    elif event.startswith(faq_admin.RELOADED):
        await faq_admin.post_reload_report(turn, event.removeprefix(faq_admin.RELOADED))
    elif event.startswith(handoff.UNDELIVERED):
        await handoff.report_undelivered(turn, event.removeprefix(handoff.UNDELIVERED))
