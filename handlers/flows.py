"""Starting a conversation flow by its action name; flows not built yet say so honestly."""

from __future__ import annotations

from faq.schema import Action
from handlers import handoff, orders, tickets
from handlers.engine import Handler, Turn
from handlers.faq import entry_button
from handlers.menu import menu_button, stale_button

FLOWS: dict[Action, Handler] = {
    Action.TRACK_ORDER: orders.start_tracking,
    Action.WARRANTY_CHECK: orders.start_warranty_check,
    Action.HANDOFF: handoff.start_handoff,
    Action.REPAIR_TICKET: tickets.start,
}


async def start_flow(turn: Turn, args: list[str]) -> None:
    """`flow:<action>[:<context>]`, e.g. `flow:handoff:A-1001` from an order's card."""
    try:
        action = Action(args[0]) if 1 <= len(args) <= 2 else None
    except ValueError:
        action = None
    if action is None:
        await stale_button(turn, args)
        return
    if action in FLOWS:
        await FLOWS[action](turn, args[1:])
        return
    turn.state.reset()
    _ = turn._
    # Until the flow exists, point at what the knowledge base already says about it.
    entries = [e for e in turn.services.faq.kb.entries if e.action is action][:4]
    email = turn.services.contacts.get("support_email", "")
    turn.say(
        _(
            "This part of the chat is not available yet. Until it is, these answers may help, "
            "or write to us at {email}."
        ).format(email=email),
        *[[entry_button(turn, entry)] for entry in entries],
        [menu_button(turn)],
    )
