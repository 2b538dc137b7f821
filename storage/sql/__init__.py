"""The storage contract (`storage.base.Storage`) in SQL that more than one backend can run.

Each repository implements one concern over `Repository.database` (see `database.py`);
`SqlStorage` is their sum, and a backend subclasses it to add the connection. The business
rules stay in `domain/`: the SQL here reads rows, applies them and writes the result.

What the SQL expects of a backend's schema, besides the tables of
`storage/sqlite/migrations/`: times as `times.utc_timestamp` text; a `rowid` that grows with
each insert on the tables ordered by arrival (inbox, orders, order_links, staff_topics,
tickets, ticket_media); order numbers and serials compared case-insensitively.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.sql import conversations, handoffs, orders, queues
from storage.sql.conversations import ConversationRepository
from storage.sql.faq_log import FaqLogRepository
from storage.sql.handoffs import HandoffRepository
from storage.sql.orders import OrderRepository
from storage.sql.queues import InboxRepository, OutboxRepository
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
):
    """Everything the bot stores, given a backend's `database`."""

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
