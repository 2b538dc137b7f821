"""Proving a chat owns an order: the rules, and the records a check leaves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class OrderLinked:
    """The chat proved it owns this order (by its e-mail): later look-ups skip the check."""

    number: str


@dataclass(frozen=True)
class FailedOwnershipCheck:
    """A wrong order number or e-mail; too many in an hour lock the chat out for a while."""

    at: datetime


CHECK_WINDOW = timedelta(hours=1)


def minutes_until(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds() / 60))
