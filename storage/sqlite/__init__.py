"""The embedded backend: one SQLite file through aiosqlite, with versioned migrations."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiosqlite

from domain.chats import ChatKey
from storage.base import DatabaseMissing
from storage.sql import SqlStorage
from storage.sql.database import Database
from storage.sql.handoffs import CHAT_LINES_KEPT
from storage.sql.locks import KeyedLocks
from storage.sqlite.connection import MIGRATIONS, SqliteDatabase, migrate, schema_version

__all__ = ["CHAT_LINES_KEPT", "MIGRATIONS", "DatabaseMissing", "SqliteStorage"]


class SqliteStorage(SqlStorage):
    """Everything the bot stores, in a SQLite file (use `open`, or `async with`).

    `create=False` is for commands that only read: a mistyped path raises DatabaseMissing
    instead of starting an empty database there. One process uses the file, so the chat
    lock is that process's own.
    """

    MIGRATIONS = MIGRATIONS

    def __init__(self, path: Path, *, create: bool = True, migrate: bool = True) -> None:
        self.path = path
        self.create = create
        self.migrate = migrate
        self._database: SqliteDatabase | None = None
        self._chat_locks = KeyedLocks()

    @classmethod
    async def open(cls, path: Path, *, create: bool = True) -> SqliteStorage:
        storage = cls(path, create=create)
        await storage.connect()
        return storage

    async def connect(self) -> None:
        if str(self.path) != ":memory:":
            if self.create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.is_file():
                raise DatabaseMissing(f"no database at {self.path}")
        connection = await aiosqlite.connect(self.path)
        self._database = SqliteDatabase(connection)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        if self.migrate:
            await self.upgrade()

    async def close(self) -> None:
        if self._database is not None:
            await self._database.connection.close()
            self._database = None

    @property
    def database(self) -> Database:
        return self._opened

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection itself, for tests and tools that look at the file directly."""
        return self._opened.connection

    @property
    def _opened(self) -> SqliteDatabase:
        if self._database is None:
            raise RuntimeError("storage is not open")
        return self._database

    async def schema_version(self) -> int:
        return await schema_version(self.db)

    async def upgrade(self) -> int:
        await migrate(self.db, self.path)
        return await self.schema_version()

    def chat_lock(self, key: ChatKey) -> AbstractAsyncContextManager[None]:
        return self._chat_locks.hold(key)
