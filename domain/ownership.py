"""Proving a chat owns an order: the rules, and the records a check leaves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.identifiers import e164_phone
from domain.orders import Order


@dataclass(frozen=True)
class OrderLinked:
    """The chat proved it owns this order (by its e-mail, or by its verified phone number):
    later look-ups skip the check."""

    number: str


@dataclass(frozen=True)
class FailedOwnershipCheck:
    """A wrong order number or e-mail, counted against the chat, the code it tried and the
    shop as a whole (see CheckLimits)."""

    at: datetime
    # The order number or serial number tried, upper-cased.
    lookup: str = ""


CHECK_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class CheckLimits:
    """Failed ownership checks an hour that pause look-ups: in one chat; of one order or
    serial number from any chats (a new account buys no new guesses at the same order);
    and in the whole shop, against guessing many orders from many accounts."""

    per_chat: int = 5
    per_lookup: int = 10
    overall: int = 100


def pause(failures: Sequence[datetime], limit: int, now: datetime) -> timedelta | None:
    """How long look-ups stay paused when `failures` (the last hour's, oldest first) reached
    `limit`: until the oldest failure that counts leaves the hour. None: not paused."""
    if len(failures) < limit:
        return None
    return failures[-limit] + CHECK_WINDOW - now


def minutes_until(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds() / 60))


def on_phone(order: Order, verified_phone: str | None) -> bool:
    """Whether the order's phone number is the chat's, as its channel verified it (a
    WhatsApp number): whoever holds that SIM holds the order. Numbers that cannot be read
    in E.164 never match."""
    if verified_phone is None or order.phone is None:
        return False
    chat = e164_phone(verified_phone)
    return chat is not None and chat == e164_phone(order.phone)
