"""One SQLite file through aiosqlite: the repositories' `Database`, and the migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.sql.database import Row, Transaction
from storage.sql.migrations import Migrations

logger = logging.getLogger(__name__)


class SqliteDatabase:
    """The repositories' `Database` over one connection, which serves every chat."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        # One connection: a turn's writes must not interleave with another's.
        self._write_lock = asyncio.Lock()
        # Transactions line up here first, so a single write (a reply marked sent) waits
        # for the transaction running only, not for every turn queued behind it: a reply
        # accepted but not yet marked is what a crash would send again.
        self._transactions_waiting = asyncio.Lock()

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.connection.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.connection.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.connection.execute(sql, params) as cursor:
            changed: int = cursor.rowcount
            return changed

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.connection.executemany(sql, rows)

    async def fetch_locked(
        self, sql: str, params: Sequence[Any] = (), *, skip_locked: bool = False
    ) -> list[Row]:
        await self._write_from_here()
        return await self.fetch_all(sql, params)

    async def serialize(self, name: str) -> None:
        await self._write_from_here()

    async def _write_from_here(self) -> None:
        """Take the file's write lock now, not at the first write: what is read next cannot
        change before the transaction's writes (another connection waits, up to its busy
        timeout). One lock for the whole file serves every name and row."""
        if not self.connection.in_transaction:
            await self.connection.execute("BEGIN IMMEDIATE")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._transactions_waiting, self._committed() as tx:
            yield tx

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._committed() as tx:
            return await tx.execute(sql, params)

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._committed() as tx:
            return await tx.fetch_one(sql, params)

    @asynccontextmanager
    async def _committed(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            try:
                yield self
            except BaseException:
                await self.connection.rollback()
                raise
            await self.connection.commit()


# Append only: each file moves the schema one version up; never edit a shipped one.
MIGRATIONS = Migrations("storage.sqlite")


async def schema_version(connection: aiosqlite.Connection) -> int:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(connection: aiosqlite.Connection, path: Path) -> None:
    """Apply the migrations the file has not had yet (`PRAGMA user_version` counts them)."""
    current = await schema_version(connection)
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript commits first, so each migration runs in its own transaction.
        await connection.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
        logger.info("storage.migrated version=%d path=%s", version, path)
