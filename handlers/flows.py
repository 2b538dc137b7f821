"""Starting a conversation flow by its action name (the KB's `action`, or a button)."""

from __future__ import annotations

from faq.schema import Action
from handlers import handoff, orders, tickets
from handlers.engine import Handler, Turn
from handlers.menu import stale_button

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
    await FLOWS[action](turn, args[1:])
