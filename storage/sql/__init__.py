"""The storage contract (`storage.base.Storage`) in SQL that more than one backend can run.

Each repository implements one concern over `Repository.database` (see `database.py`);
`SqlStorage` is their sum, and a backend subclasses it to add the connection, the
migrations and the chat lock. The business rules stay in `domain/`: the SQL here reads
rows, applies them and writes the result.

What the SQL expects of a backend's schema, besides the tables of
`storage/sqlite/migrations/`: times as `times.utc_timestamp` text; a `rowid` that grows with
each insert on the tables ordered by arrival (inbox, orders, order_links, staff_topics,
tickets, ticket_media); order numbers and serials compared case-insensitively.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from domain.chats import ChatKey
from storage.sql import conversations, handoffs, orders, queues
from storage.sql.conversations import ConversationRepository
from storage.sql.faq_log import FaqLogRepository
from storage.sql.handoffs import HandoffRepository
from storage.sql.leases import LeaseRepository
from storage.sql.migrations import Migrations
from storage.sql.orders import OrderRepository
from storage.sql.queues import ClaimRepository, InboxRepository, OutboxRepository
from storage.sql.tickets import TicketRepository
from storage.sql.times import utc_timestamp


class SqlStorage(
    ConversationRepository,
    InboxRepository,
    OutboxRepository,
    FaqLogRepository,
    OrderRepository,
    HandoffRepository,
    TicketRepository,
    ClaimRepository,
    LeaseRepository,
):
    """Everything the bot stores, given a backend's `database`; open it with `async with`
    (or `connect`), which also brings the schema up to date unless told not to."""

    # The backend's migrations; the schema's version is how many of them were applied.
    MIGRATIONS: Migrations

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection (and apply the migrations not yet applied, when the
        backend was made with `migrate=True`). Raises DatabaseMissing or
        StorageUnavailable from `storage.base` when there is nothing to open."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def schema_version(self) -> int:
        """How many of MIGRATIONS the database has had."""

    @abstractmethod
    async def upgrade(self) -> int:
        """Apply the migrations the database has not had yet; returns its version now."""

    @abstractmethod
    def chat_lock(self, key: ChatKey) -> AbstractAsyncContextManager[None]: ...

    async def follow_copied_ids(self) -> None:
        """After rows were copied in with their ids: the ids of new rows come after them.
        Nothing to do where the database takes the next id from the rows it holds."""

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def prune(self, older_than_days: float) -> None:
        """Forget processed-update marks, failed replies, failed ownership checks, staff-chat
        relays and transcript lines older than that."""
        cutoff = utc_timestamp(datetime.now(UTC) - timedelta(days=older_than_days))
        async with self.database.transaction() as tx:
            await conversations.forget_processed_before(tx, cutoff)
            await queues.forget_failed_before(tx, cutoff)
            await orders.forget_checks_before(tx, cutoff)
            await handoffs.forget_before(tx, cutoff)
            # Tickets, their answers, files and history stay: the service centre needs them.
