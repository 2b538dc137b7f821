"""Proving a chat owns an order, shared by order tracking and the ticket forms.

An order is found by its number or a machine's serial number and proved with the order's
e-mail address; a verified order is linked to the chat, so later look-ups skip the
question. An unknown order and a wrong e-mail count the same, and too many wrong answers
in an hour pause look-ups: in the chat, of the order number from any chat, or in the shop
(`CheckLimits`); the staff chat is told when one order's look-ups keep failing.
"""

from __future__ import annotations

import logging

from markupsafe import Markup

from domain.orders import Order
from domain.ownership import (
    CHECK_WINDOW,
    FailedOwnershipCheck,
    OrderLinked,
    minutes_until,
    pause,
)
from handlers.engine import Services, Turn
from handlers.messages import Reply

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


async def locked_out_minutes(turn: Turn, lookup: str | None = None) -> int | None:
    """Minutes until look-ups resume after too many wrong answers in an hour, from this
    chat, for this order or serial number (from any chat), or in the whole shop; None
    while none of the limits is reached."""
    services = turn.services
    store, limits, now = services.store, services.check_limits, services.now()
    since = now - CHECK_WINDOW
    counted = [
        (await store.failed_checks_since(since, key=turn.key), limits.per_chat),
        (await store.failed_checks_since(since), limits.overall),
    ]
    if lookup is not None:
        counted.append((await store.failed_checks_since(since, lookup=lookup), limits.per_lookup))
    waits = [wait for times, limit in counted if (wait := pause(times, limit, now)) is not None]
    if not waits:
        return None
    logger.warning("orders.locked_out chat=%s", turn.shown_chat_id)
    return minutes_until(max(waits))


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
            logger.info("orders.verified chat=%s order=%s", turn.shown_chat_id, order.number)
        return owned
    now = services.now()
    turn.records.append(FailedOwnershipCheck(now, lookup.upper()))
    store, limits, since = services.store, services.check_limits, now - CHECK_WINDOW
    in_chat = len(await store.failed_checks_since(since, key=turn.key)) + 1
    of_lookup = len(await store.failed_checks_since(since, lookup=lookup)) + 1
    logger.info("orders.check_failed chat=%s failures=%d", turn.shown_chat_id, in_chat)
    if of_lookup == limits.per_lookup:
        _warn_staff_of_probing(turn, lookup.upper(), of_lookup)
    if in_chat >= limits.per_chat or of_lookup >= limits.per_lookup:
        return minutes_until(CHECK_WINDOW)
    return []


def _warn_staff_of_probing(turn: Turn, lookup: str, failures: int) -> None:
    """Someone may be guessing the e-mail of an order: tell the staff once an hour."""
    logger.warning("orders.probed lookup=%s failures=%d", lookup, failures)
    staff_chat = turn.services.staff.chat
    if staff_chat is None:
        return
    turn.replies.append(
        Reply(
            Markup(
                "⚠️ Look-ups of <code>{lookup}</code> failed {failures} times in the last hour, "
                "from any chats: someone may be guessing its e-mail. Look-ups of it are paused "
                "for an hour; the customer can still reach a rep."
            ).format(lookup=lookup, failures=failures),
            to=staff_chat,
        )
    )
