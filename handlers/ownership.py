"""Proving a chat owns an order, shared by order tracking and the ticket forms.

An order is found by its number or a machine's serial number and proved with the order's
e-mail address; a verified order is linked to the chat, so later look-ups skip the
question. An unknown order and a wrong e-mail count the same, and too many wrong answers
in an hour pause look-ups for the chat.
"""

from __future__ import annotations

import logging

from domain.orders import Order
from domain.ownership import (
    CHECK_WINDOW,
    FailedOwnershipCheck,
    OrderLinked,
    minutes_until,
)
from handlers.engine import Services, Turn

logger = logging.getLogger(__name__)


async def find_orders(services: Services, lookup: str) -> list[Order]:
    """Orders with this number, or with an item carrying this serial number."""
    found = await services.store.order(lookup)
    by_serial = await services.store.orders_with_serial(lookup)
    return ([found] if found else []) + [o for o in by_serial if found is None or o != found]


async def owned_orders(turn: Turn, lookup: str) -> list[Order]:
    """The orders `lookup` finds that this chat already proved it owns."""
    linked = {order.number for order in await turn.services.store.linked_orders(turn.key)}
    return [order for order in await find_orders(turn.services, lookup) if order.number in linked]


async def locked_out_minutes(turn: Turn) -> int | None:
    """Minutes until look-ups resume after too many wrong answers in an hour; None if open."""
    services = turn.services
    now = services.now()
    failures = await services.store.failed_checks_since(turn.key, now - CHECK_WINDOW)
    allowed = services.max_failed_checks_per_hour
    if len(failures) < allowed:
        return None
    logger.warning("orders.locked_out chat=%s", turn.key.chat_id)
    return minutes_until(failures[-allowed] + CHECK_WINDOW - now)


async def prove_with_email(turn: Turn, lookup: str, email: str) -> list[Order] | int:
    """The orders `lookup` finds whose e-mail is `email`, now linked to the chat; [] for a
    wrong answer (counted), or the minutes to wait when this answer used the last try."""
    services = turn.services
    owned = [
        order
        for order in await find_orders(services, lookup)
        if order.email.casefold() == email.strip().casefold()
    ]
    if owned:
        for order in owned:
            turn.records.append(OrderLinked(order.number))
            logger.info("orders.verified chat=%s order=%s", turn.key.chat_id, order.number)
        return owned
    turn.records.append(FailedOwnershipCheck(services.now()))
    failures = await services.store.failed_checks_since(turn.key, services.now() - CHECK_WINDOW)
    logger.info("orders.check_failed chat=%s failures=%d", turn.key.chat_id, len(failures) + 1)
    if len(failures) + 1 >= services.max_failed_checks_per_hour:
        return minutes_until(CHECK_WINDOW)
    return []
