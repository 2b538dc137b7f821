"""The embedded backend: one SQLite file through aiosqlite, with versioned migrations."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from storage.sql import SqlStorage
from storage.sql.database import Database
from storage.sql.handoffs import CHAT_LINES_KEPT
from storage.sqlite.connection import MIGRATIONS, SqliteDatabase, migrate, schema_version

__all__ = ["CHAT_LINES_KEPT", "MIGRATIONS", "DatabaseMissing", "SqliteStorage"]


class DatabaseMissing(FileNotFoundError):
    """No database file where one must already be; nothing was created."""


class SqliteStorage(SqlStorage):
    """Everything the bot stores, in a SQLite file (use `open`, or `async with`).

    `create=False` is for commands that only read: a mistyped path raises DatabaseMissing
    instead of starting an empty database there.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.create = create
        self._database: SqliteDatabase | None = None

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
        await migrate(connection, self.path)

    async def close(self) -> None:
        if self._database is not None:
            await self._database.connection.close()
            self._database = None

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
