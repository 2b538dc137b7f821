"""Conversations handed to sales reps in the staff chat, and what storage keeps of them.

A handoff is open from the moment the customer is passed to staff until a rep closes it
(`/close`) or the customer leaves it (`/cancel`). While one is open the bot relays
instead of answering. The customer's topic in the staff chat outlives handoffs: the next
handoff of the same customer reuses it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.chats import ChatKey
from domain.handoffs import (
    ChatLine,
    Handoff,
    HandoffStats,
    StaffNote,
)


class HandoffStore(Protocol):
    async def open_handoff(self, key: ChatKey) -> Handoff | None:
        """The customer's open handoff (status waiting or active), if any."""
        ...

    async def handoff(self, handoff_id: int) -> Handoff | None: ...

    async def open_handoffs(self) -> list[Handoff]:
        """Every open handoff, oldest first (for reminders)."""
        ...

    async def set_topic(
        self, customer: ChatKey, staff: ChatKey, thread_id: str, replacing: str | None = None
    ) -> str:
        """Make `thread_id` the customer's topic in the staff chat if the customer has none
        there, or has `replacing` (a topic found deleted); one topic per customer, however
        many processes open one at once. The customer may write on another channel than the
        staff chat's. Returns the customer's topic afterwards: another writer's when one got
        there first (the caller's new topic is then surplus)."""
        ...

    async def topic_of(self, customer: ChatKey, staff: ChatKey) -> str | None:
        """The thread id of the customer's topic in that staff chat, if one was made."""
        ...

    async def customer_of_topic(self, staff: ChatKey, thread_id: str) -> ChatKey | None:
        """Whose topic this is: the customer, on their own channel."""
        ...

    async def remember_relay(self, staff: ChatKey, message_id: str, customer: ChatKey) -> None:
        """A message the bot posted in the staff chat on behalf of this customer; staff
        replying to it reach the customer (for staff chats without topics)."""
        ...

    async def customer_of_relay(self, staff: ChatKey, message_id: str) -> ChatKey | None:
        """The customer (on their own channel) a relayed staff-chat message speaks for."""
        ...

    async def recent_lines(self, key: ChatKey, limit: int = 10) -> list[ChatLine]:
        """The chat's last `limit` transcript lines, oldest first."""
        ...

    async def notes(self, customer: ChatKey, limit: int = 5) -> list[StaffNote]:
        """The newest staff notes on this customer's handoffs, oldest first."""
        ...

    async def handoff_stats(self, since: datetime, until: datetime | None = None) -> HandoffStats:
        """Figures for handoffs opened (and conversations active) at or after `since` and
        before `until` (None: up to now)."""
        ...
