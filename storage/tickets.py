"""Repair and second-return tickets, and what storage must keep of them.

A ticket is stored from its first answer on, as a draft; every answer, every file and
every change of status is written in the same transaction as the conversation turn that
produced it, so a restart at any step resumes where the customer was. A ticket has one
item (a machine or a part, with a quantity): the service centre's follow-up tickets are
per item too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.chats import ChatKey
from domain.tickets import (
    Ticket,
    TicketEvent,
    TicketMedia,
    TicketStatus,
)


@dataclass(frozen=True)
class MediaToStore:
    """A ticket file not yet copied to disk (for `media.store_path`)."""

    ticket_id: str
    name: str
    position: int
    media: TicketMedia


class TicketStore(Protocol):
    async def ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id (canonical form), or None."""
        ...

    async def tickets_of(self, key: ChatKey) -> list[Ticket]:
        """The chat's tickets, drafts included, newest first."""
        ...

    async def tickets(
        self, since: datetime | None = None, statuses: Sequence[TicketStatus] = ()
    ) -> list[Ticket]:
        """Tickets created since then (all when None) with one of these statuses (any when
        empty), oldest first: what `minerdesk tickets export` writes."""
        ...

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        ...

    async def media_to_store(
        self, channel: str, max_size: int, limit: int = 20
    ) -> list[MediaToStore]:
        """Files of this channel's tickets with a file id and no copy on disk yet, whose
        size is unknown or at most `max_size` bytes, oldest first."""
        ...

    async def set_stored_path(self, item: MediaToStore, path: str) -> None:
        """Remember where the copy of that file was written; "" marks a file that will not
        be copied (too big once downloaded, or gone), so it is not tried again. A file the
        customer replaced meanwhile is left alone."""
        ...
