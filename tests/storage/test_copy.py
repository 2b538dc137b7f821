"""`db copy`: every table and column of either backend, a SQLite shop moved to PostgreSQL
and back reading the same through the contract, and the copies it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.chats import ChatKey, ConversationState
from domain.handoffs import HandoffOpened, Said, StaffNote
from domain.tickets import TicketAnswered, TicketKind, TicketMediaSet, TicketOpened
from storage.base import InboxUpdate
from storage.copy import TABLES, CopyRefused, copy_rows, row_counts
from storage.postgres import PostgresStorage
from storage.sql import SqlStorage
from storage.sqlite import MIGRATIONS, SqliteStorage
from tests.factories import Turns, order
from tests.pgserver import Databases
from tests.storage import raw
from tests.storage.test_migrations import CHOSE, KEY, file_at, readable_rows
from tests.storage.test_tickets import PHOTO_A, PHOTO_B

STAFF = ChatKey("telegram", "-100")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def _columns(storage: SqlStorage, table: str) -> set[str]:
    if isinstance(storage, SqliteStorage):
        names = {row[1] for row in await raw.rows(storage, f"PRAGMA table_info({table})")}
        return names | {"rowid"}  # every table has SQLite's implicit one
    return {
        name
        for (name,) in await raw.rows(
            storage,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    }


async def test_the_copy_knows_every_table_and_column(storage: SqlStorage) -> None:
    if isinstance(storage, SqliteStorage):
        query = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    tables = {name for (name,) in await raw.rows(storage, query)} - {"schema_migrations"}
    assert [table.name for table in TABLES] == sorted(tables, key=TABLES_ORDER.index)
    for table in TABLES:
        columns = await _columns(storage, table.name)
        assert set(table.columns) <= columns, table.name
        assert columns - set(table.columns) <= {"rowid"}, table.name


TABLES_ORDER = [table.name for table in TABLES]


async def fill_a_shop(shop: SqliteStorage) -> None:
    """Beside the migrations' rows, a turn's worth of each record through the contract."""
    turn = Turns(shop)
    await shop.save_order(order("MD-2002"), T0)
    await turn(KEY, HandoffOpened(ChatKey("telegram", "44"), "asked", T0))
    await turn(STAFF, StaffNote(1, "Anna", "call back", T0), Said(True, "привет 你好", T0))
    await turn(
        CHOSE,
        TicketOpened("R-AAAA-BBBB", TicketKind.REPAIR, T0),
        TicketAnswered("R-AAAA-BBBB", "model", "S21", T0),
        TicketMediaSet("R-AAAA-BBBB", "photos", (PHOTO_A, PHOTO_B), T0),
    )
    await shop.receive([InboxUpdate("telegram", "11", {"deep": {"a": [1]}}, "45")])
    await shop.claim_outbox("telegram", "w1", 30)
    await shop.set_topic(ChatKey("telegram", "44"), STAFF, "9")
    await shop.acquire_lease("digest", "w1", 30)


async def everything(storage: SqlStorage) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in the copy's order."""
    return {
        table.name: await raw.rows(
            storage,
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {table.order}",
        )
        for table in TABLES
    }


async def read_back(storage: SqlStorage) -> list[Any]:
    """What the contract reads of a_shop's rows."""
    return [
        await readable_rows(storage),
        await storage.load(KEY),
        await storage.order("md-2002"),
        await storage.orders_with_serial("sn21a0001"),
        await storage.linked_orders(KEY),
        await storage.open_handoffs(),
        await storage.notes(ChatKey("telegram", "44")),
        await storage.recent_lines(STAFF),
        await storage.tickets_of(CHOSE),
        await storage.ticket_events("R-AAAA-BBBB"),
        await storage.inbox("telegram"),
        await storage.outbox("telegram"),
        await storage.order_notices("telegram"),
        await storage.misses(),
        await storage.feedback_counts(),
        await storage.faq_stats(datetime(2000, 1, 1, tzinfo=UTC)),
        await storage.handoff_stats(datetime(2000, 1, 1, tzinfo=UTC)),
        await storage.customer_of_topic(STAFF, "9"),
        await storage.last_digest_day(),
    ]


@pytest.mark.postgres
async def test_a_sqlite_shop_moves_to_postgresql_and_back_without_losing_a_row(
    tmp_path: Path, postgres_databases: Databases
) -> None:
    url = await postgres_databases.create()
    file_at(tmp_path / "shop.db", len(MIGRATIONS))
    try:
        async with SqliteStorage(tmp_path / "shop.db") as shop, PostgresStorage(url) as moved:
            await fill_a_shop(shop)
            rows, expected = await everything(shop), await read_back(shop)
            assert all(rows.values()), [name for name, held in rows.items() if not held]

            counts = await copy_rows(shop, moved, batch=2)

            assert counts == {name: len(held) for name, held in rows.items()}
            assert await everything(moved) == rows
            assert await read_back(moved) == expected
            # New rows take ids after the copied ones.
            [queued] = await moved.save(KEY, ConversationState(), "new", replies=[(KEY, {})])
            assert queued.id > max(row[0] for row in rows["outbox"])
            async with SqliteStorage(tmp_path / "back.db") as back:
                await copy_rows(moved, back)
                assert await everything(back) == await everything(moved)
    finally:
        await postgres_databases.drop(url)


async def test_a_copy_into_a_database_with_rows_is_refused(
    storage: SqlStorage, tmp_path: Path
) -> None:
    await storage.acquire_lease("timers", "w1", 30)
    async with SqliteStorage(tmp_path / "source.db") as source:
        await source.save(KEY, ConversationState(), "1")
        with pytest.raises(CopyRefused, match=r"^the target is not empty \(leases: 1\)"):
            await copy_rows(source, storage)
    assert await row_counts(storage) == {
        table.name: int(table.name == "leases") for table in TABLES
    }


async def test_a_source_at_an_older_schema_is_refused(storage: SqlStorage, tmp_path: Path) -> None:
    file_at(tmp_path / "old.db", 3)
    async with SqliteStorage(tmp_path / "old.db", migrate=False) as old:
        with pytest.raises(
            CopyRefused, match=f"source is at schema version 3, not {len(MIGRATIONS)}"
        ):
            await copy_rows(old, storage)
