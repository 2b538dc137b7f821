"""The backend for several workers: PostgreSQL through asyncpg, with versioned migrations.

asyncpg rather than psycopg 3: the bot is async throughout, and asyncpg is native asyncio
with the binary protocol and prepared statements cached per connection, the fastest of the
two; its `$n` placeholders cost one cached rewrite of the repositories' `?`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from domain.chats import ChatKey
from storage.base import DatabaseMissing, StorageUnavailable
from storage.open import safe_url
from storage.postgres.connection import (
    MIGRATIONS,
    PostgresDatabase,
    keep_session,
    lock_key,
    migrate,
    schema_version,
    session_lock,
)
from storage.sql import SqlStorage
from storage.sql.database import Database
from storage.sql.locks import KeyedLocks

__all__ = ["MIGRATIONS", "PostgresStorage"]

# Connections for queries and transactions, and apart from them, connections that hold a
# chat's advisory lock while its turn runs: a turn holding the one must get the other.
POOL_SIZE = 10
CHAT_LOCK_POOL_SIZE = 20
CONNECT_TIMEOUT_SECONDS = 10


class PostgresStorage(SqlStorage):
    """Everything the bot stores, in a PostgreSQL database several processes share.

    The database must exist (`createdb`); the schema is created and upgraded by the
    migrations. The chat lock is an advisory lock held on a connection of its own, so it
    is let go when the process dies.
    """

    MIGRATIONS = MIGRATIONS

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.migrate = migrate
        self._database: PostgresDatabase | None = None
        self._lock_pool: asyncpg.Pool | None = None
        self._chat_locks = KeyedLocks()

    async def connect(self) -> None:
        pool = await self._pool(POOL_SIZE)
        self._database = PostgresDatabase(pool)
        self._lock_pool = await self._pool(CHAT_LOCK_POOL_SIZE, min_size=0)
        if self.migrate:
            await self.upgrade()

    async def _pool(self, max_size: int, min_size: int = 1) -> asyncpg.Pool:
        where = safe_url(self.url)
        try:
            return await asyncpg.create_pool(
                self.url,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT_SECONDS,
                reset=keep_session,
            )
        except asyncpg.InvalidCatalogNameError:
            raise DatabaseMissing(f"no database at {where} (create it with createdb)") from None
        except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError):
            raise StorageUnavailable(f"login refused at {where}") from None
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise StorageUnavailable(f"cannot connect to {where}: {reason}") from None

    async def close(self) -> None:
        for pool in (self._lock_pool, None if self._database is None else self._database.pool):
            if pool is not None:
                await pool.close()
        self._database = self._lock_pool = None

    @property
    def database(self) -> Database:
        return self._opened

    @property
    def _opened(self) -> PostgresDatabase:
        if self._database is None:
            raise RuntimeError("storage is not open")
        return self._database

    async def schema_version(self) -> int:
        async with self._opened.pool.acquire() as connection:
            return await schema_version(connection)

    async def upgrade(self) -> int:
        async with self._opened.pool.acquire() as connection:
            return await migrate(connection, safe_url(self.url))

    @asynccontextmanager
    async def chat_lock(self, key: ChatKey) -> AsyncIterator[None]:
        # This process's turns of the chat queue here, not each on a connection of its own.
        async with self._chat_locks.hold(key):
            assert self._lock_pool is not None, "storage is not open"
            lock = lock_key(f"chat:{key.channel}:{key.chat_id}")
            async with self._lock_pool.acquire() as connection, session_lock(connection, lock):
                yield

    async def follow_copied_ids(self) -> None:
        async with self.database.transaction() as tx:
            for table, column in await tx.fetch_all(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND is_identity = 'YES'"
            ):
                sequence = await tx.fetch_one(
                    "SELECT pg_get_serial_sequence(?, ?)", (table, column)
                )
                assert sequence is not None
                await tx.fetch_one(
                    f"SELECT setval(?, COALESCE(MAX({column}), 0) + 1, false) FROM {table}",  # noqa: S608
                    (sequence[0],),
                )

    def __repr__(self) -> str:
        return f"PostgresStorage({safe_url(self.url)!r})"
