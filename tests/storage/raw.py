"""SQL straight at a backend's database, for tests that set up or look at what the contract
does not show (old rows, row counts), on either backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import pytest

from storage.sql import SqlStorage

# What a statement the database refuses raises, on either backend.
DATABASE_ERRORS = (sqlite3.Error, asyncpg.PostgresError)
DUPLICATE_KEY_ERRORS = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)

# For tests of SQLite itself (its file format, its query plans): the one backend they run on.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


async def execute(storage: SqlStorage, sql: str, params: Sequence[Any] = ()) -> None:
    async with storage.database.transaction() as tx:
        await tx.execute(sql, params)


async def execute_many(storage: SqlStorage, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    async with storage.database.transaction() as tx:
        await tx.execute_many(sql, rows)


async def rows(storage: SqlStorage, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await storage.database.fetch_all(sql, params)]


async def count(storage: SqlStorage, table: str) -> int:
    [(number,)] = await rows(storage, f"SELECT COUNT(*) FROM {table}")
    return int(number)


# For what only a shared server does across connections (another process's lock).
postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)
