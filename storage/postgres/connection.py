"""PostgreSQL through asyncpg: the repositories' `Database` over a pool, the migrations, and
advisory-lock keys."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.sql.database import Row, Transaction
from storage.sql.migrations import Migrations

logger = logging.getLogger(__name__)

# A connection of its own, or one lent by a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

# Append only: each file moves the schema one version up; never edit a shipped one.
MIGRATIONS = Migrations("storage.postgres")

# A quoted string or identifier (left as it is), or a `?` placeholder.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


@lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """The repositories' `?` placeholders as asyncpg's `$1`, `$2`, ..."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _TOKEN.sub(number, sql)


def lock_key(name: str) -> int:
    """A name as the 64-bit key of a PostgreSQL advisory lock (stable across processes)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _changed(status: str) -> int:
    """Rows changed, from a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTransaction:
    """Reads and writes on the one connection a transaction runs on."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self.connection.fetchrow(numbered(sql), *params)
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(row) for row in await self.connection.fetch(numbered(sql), *params)]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _changed(await self.connection.execute(numbered(sql), *params))

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if batch:
            await self.connection.executemany(numbered(sql), batch)

    async def fetch_locked(
        self, sql: str, params: Sequence[Any] = (), *, skip_locked: bool = False
    ) -> list[Row]:
        return await self.fetch_all(
            f"{sql} FOR UPDATE{' SKIP LOCKED' if skip_locked else ''}", params
        )

    async def serialize(self, name: str) -> None:
        await self.connection.execute("SELECT pg_advisory_xact_lock($1)", lock_key(name))


class PostgresDatabase:
    """The repositories' `Database` over a pool: reads on any connection, each transaction
    on one of its own (READ COMMITTED, with row locks where a read decides a write)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self.pool.fetchrow(numbered(sql), *params)
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(row) for row in await self.pool.fetch(numbered(sql), *params)]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as connection, connection.transaction():
            yield PostgresTransaction(connection)

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _changed(await self.pool.execute(numbered(sql), *params))

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self.fetch_one(sql, params)


_SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def schema_version(connection: Connection) -> int:
    """How many migrations the database has had (0 before the first)."""
    if await connection.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def migrate(connection: Connection, where: str) -> int:
    """Apply the migrations the database has not had yet, each in its own transaction with
    its row in schema_migrations; returns the version reached. Processes starting together
    take turns on an advisory lock, so the second finds the work done."""
    async with session_lock(connection, lock_key("minerdesk:migrate")):
        await connection.execute(_SCHEMA_MIGRATIONS)
        current = await schema_version(connection)
        for version in range(current + 1, len(MIGRATIONS) + 1):
            async with connection.transaction():
                await connection.execute(MIGRATIONS[version - 1])
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    version,
                    MIGRATIONS.name(version),
                )
            logger.info("storage.migrated version=%d database=%s", version, where)
        return max(current, len(MIGRATIONS))


@asynccontextmanager
async def session_lock(connection: Connection, key: int) -> AsyncIterator[None]:
    """Hold an advisory lock on the connection's session for the block. Should taking or
    letting go of it fail (cancelled while waiting, the network gone), the session ends,
    which lets go of it too: the pools skip asyncpg's reset on release (`keep_session`)."""
    await _or_end_session(connection, "SELECT pg_advisory_lock($1)", key)
    try:
        yield
    finally:
        await _or_end_session(connection, "SELECT pg_advisory_unlock($1)", key)


async def _or_end_session(connection: Connection, sql: str, key: int) -> None:
    try:
        await connection.execute(sql, key)
    except BaseException:
        connection.terminate()
        raise


async def keep_session(connection: Connection) -> None:
    """The pools' reset on release: nothing. asyncpg's default (unlock all, close cursors,
    unlisten, reset settings) costs a round trip per query or transaction, and the bot
    leaves none of that behind: its session locks go through `session_lock`, and asyncpg rolls
    back a transaction left open before it calls this."""
