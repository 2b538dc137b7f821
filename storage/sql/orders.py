"""Orders, their serial-number index and history, the chats linked to them, the notices of
their status changes, and failed ownership checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.chats import ChatKey
from domain.orders import (
    Order,
    OrderStatus,
    StatusChange,
    order_from_trusted_record,
    order_to_record,
)
from domain.ownership import FailedOwnershipCheck, OrderLinked
from storage.base import QueuedMessage
from storage.orders import OrderNotice, SaveResult
from storage.sql.database import Reader, Repository, Row, Transaction
from storage.sql.queues import queue_reply
from storage.sql.times import now_timestamp, utc_timestamp


def _order_to_json(order: Order) -> str:
    """The order without its history (kept in order_history), as a JSON object."""
    body = order_to_record(order)
    del body["history"]
    # Sorted keys: an unchanged order serialises to the same text, which `save_order` compares.
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def _order_from_json(text: str, history: Iterable[StatusChange] = ()) -> Order:
    return replace(order_from_trusted_record(json.loads(text)), history=tuple(history))


async def write_link(tx: Transaction, key: ChatKey, record: OrderLinked) -> None:
    # The stored spelling of the number when the order is known, so links, history and
    # notices all name it the same way; linking again refreshes linked_at.
    await tx.execute(
        """INSERT INTO order_links (channel, chat_id, number)
           VALUES (?, ?, COALESCE((SELECT number FROM orders WHERE number=?), ?))
           ON CONFLICT (channel, chat_id, number) DO UPDATE SET linked_at=?""",
        (key.channel, key.chat_id, record.number, record.number, now_timestamp()),
    )


async def write_failed_check(tx: Transaction, key: ChatKey, record: FailedOwnershipCheck) -> None:
    await tx.execute(
        "INSERT INTO ownership_checks_failed (channel, chat_id, at, lookup) VALUES (?, ?, ?, ?)",
        (key.channel, key.chat_id, utc_timestamp(record.at), record.lookup.upper()),
    )


async def forget_checks_before(tx: Transaction, cutoff: str) -> None:
    """Drop failed ownership checks older than `cutoff` (a stored time)."""
    await tx.execute("DELETE FROM ownership_checks_failed WHERE at < ?", (cutoff,))


async def _index_serials(tx: Transaction, number: str, order: Order) -> None:
    """Make order_serials list exactly the serials the order's items carry now."""
    await tx.execute("DELETE FROM order_serials WHERE number=?", (number,))
    await tx.execute_many(
        "INSERT INTO order_serials (serial, number) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(serial, number) for item in order.items for serial in item.serials],
    )


async def _add_history(tx: Transaction, number: str, changes: Iterable[StatusChange]) -> None:
    await tx.execute_many(
        "INSERT INTO order_history (number, status, at) VALUES (?, ?, ?)",
        [(number, change.status.value, change.at.isoformat()) for change in changes],
    )


async def _insert_order(
    tx: Transaction, order: Order, body: str, at: datetime
) -> SaveResult | None:
    """Add the order with its history and serials; None when another transaction added
    one with that number first."""
    inserted = await tx.fetch_one(
        "INSERT INTO orders (number, body, status) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING number",
        (order.number, body, order.status.value),
    )
    if inserted is None:
        return None
    await _add_history(tx, order.number, order.history or (StatusChange(order.status, at),))
    await _index_serials(tx, order.number, order)
    return SaveResult(created=True, changed=True, previous_status=None)


async def _update_order(
    tx: Transaction, stored: Row, order: Order, body: str, at: datetime
) -> SaveResult:
    """Replace the `stored` row (number, body, status) by `order`; a new status goes to the
    history and to a notice for every chat linked to the order."""
    number, stored_body, stored_status = stored
    previous = OrderStatus(stored_status)
    if stored_body == body and previous == order.status:
        return SaveResult(created=False, changed=False, previous_status=previous)
    await tx.execute(
        "UPDATE orders SET body=?, status=?, updated_at=? WHERE number=?",
        (body, order.status.value, now_timestamp(), number),
    )
    await _index_serials(tx, number, order)
    if previous != order.status:
        await _add_history(tx, number, (StatusChange(order.status, at),))
        await tx.execute(
            """INSERT INTO order_notices (channel, chat_id, number, status)
               SELECT channel, chat_id, ?, ? FROM order_links WHERE number=?
               ORDER BY rowid""",
            (order.number, order.status.value, number),
        )
    return SaveResult(created=False, changed=True, previous_status=previous)


async def _orders(db: Reader, query: str, params: Sequence[Any]) -> list[Order]:
    """Orders from `query` (selecting number, body) in its order, each with its history."""
    rows = await db.fetch_all(query, params)
    if not rows:
        return []
    # History rows carry the number as stored in orders (save_order writes it so).
    histories: dict[str, list[StatusChange]] = {number: [] for number, _ in rows}
    for number, status, at in await db.fetch_all(
        "SELECT number, status, at FROM order_history "  # noqa: S608
        f"WHERE number IN (SELECT number FROM ({query}) AS listed) ORDER BY id",
        params,
    ):
        # An order saved since the first query is not in this listing.
        if number in histories:
            histories[number].append(StatusChange(OrderStatus(status), datetime.fromisoformat(at)))
    return [_order_from_json(body, histories[number]) for number, body in rows]


async def _take_notice(tx: Transaction, notice: OrderNotice) -> bool:
    """Delete the notice; False when it was already gone."""
    deleted = await tx.execute(
        "DELETE FROM order_notices WHERE id=? AND channel=?", (notice.id, notice.key.channel)
    )
    return deleted > 0


class OrderRepository(Repository):
    async def save_order(self, order: Order, at: datetime) -> SaveResult:
        """Insert or replace `order` by number (case-insensitive) and return what changed.

        The order's own `history` is only kept for a new order (an import with history);
        otherwise a new order starts with StatusChange(status, at), and a status change on a
        known one appends it and queues an OrderNotice for every chat linked to the order.
        """
        body = _order_to_json(order)
        select = "SELECT number, body, status FROM orders WHERE number=?"
        async with self.database.transaction() as tx:
            stored = await tx.fetch_locked(select, (order.number,))
            if not stored:
                created = await _insert_order(tx, order, body, at)
                if created is not None:
                    return created
                # Another import created it meanwhile: this one updates it.
                stored = await tx.fetch_locked(select, (order.number,))
            return await _update_order(tx, stored[0], order, body, at)

    async def order(self, number: str) -> Order | None:
        orders = await _orders(
            self.database, "SELECT number, body FROM orders WHERE number=?", (number,)
        )
        return orders[0] if orders else None

    async def orders_with_serial(self, serial: str) -> list[Order]:
        return await _orders(
            self.database,
            """SELECT o.number, o.body FROM order_serials s
               JOIN orders o ON o.number = s.number
               WHERE s.serial=? ORDER BY o.rowid""",
            (serial.strip(),),
        )

    async def linked_orders(self, key: ChatKey) -> list[Order]:
        return await _orders(
            self.database,
            """SELECT o.number, o.body FROM order_links l
               JOIN orders o ON o.number = l.number
               WHERE l.channel=? AND l.chat_id=?
               ORDER BY l.linked_at DESC, l.rowid DESC""",
            (key.channel, key.chat_id),
        )

    async def order_notices(self, channel: str) -> list[OrderNotice]:
        rows = await self.database.fetch_all(
            """SELECT n.id, n.chat_id, n.number, n.status, COALESCE(c.language, 'en')
               FROM order_notices n
               LEFT JOIN conversations c ON c.channel = n.channel AND c.chat_id = n.chat_id
               WHERE n.channel=? ORDER BY n.id""",
            (channel,),
        )
        return [
            OrderNotice(notice_id, ChatKey(channel, chat_id), number, OrderStatus(status), language)
            for notice_id, chat_id, number, status, language in rows
        ]

    async def deliver_notice(self, notice: OrderNotice, reply: dict[str, Any]) -> QueuedMessage:
        """Queue `reply` for the notice's chat in place of the notice.

        Raises LookupError when the notice is gone (already delivered), queueing nothing.
        """
        async with self.database.transaction() as tx:
            if not await _take_notice(tx, notice):
                raise LookupError(f"order notice {notice.id} is no longer pending")
            return await queue_reply(tx, notice.key, reply)

    async def drop_notice(self, notice: OrderNotice) -> None:
        """Forget the notice without telling the chat; a notice already gone is no error."""
        async with self.database.transaction() as tx:
            await _take_notice(tx, notice)

    async def failed_checks_since(
        self, since: datetime, key: ChatKey | None = None, lookup: str | None = None
    ) -> list[datetime]:
        """Times (UTC, to the millisecond) of failed ownership checks at or after `since`
        (tz-aware), oldest first: the chat's, the lookup's (any case), or all of them."""
        query = "SELECT at FROM ownership_checks_failed WHERE at >= ?"
        params: list[Any] = [utc_timestamp(since)]
        if key is not None:
            query += " AND channel=? AND chat_id=?"
            params += [key.channel, key.chat_id]
        if lookup is not None:
            query += " AND lookup=?"
            params.append(lookup.upper())
        rows = await self.database.fetch_all(query + " ORDER BY at, id", params)
        return [datetime.fromisoformat(at) for (at,) in rows]
