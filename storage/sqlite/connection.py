"""One SQLite file through aiosqlite: the repositories' `Database`, and the migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, overload

import aiosqlite

from storage.sql.database import Row, Transaction

logger = logging.getLogger(__name__)


class SqliteDatabase:
    """The repositories' `Database` over one connection, which serves every chat."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        # One connection: a turn's writes must not interleave with another's.
        self._write_lock = asyncio.Lock()

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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            try:
                yield self
            except BaseException:
                await self.connection.rollback()
                raise
            await self.connection.commit()


class Migrations(Sequence[str]):
    """A schema's migration scripts, `migrations/NNNN_<what>.sql` in `package`, in order:
    version N is the first N applied. Read on first use, not at import."""

    def __init__(self, package: str) -> None:
        self.package = package

    @cached_property
    def _scripts(self) -> tuple[str, ...]:
        folder = resources.files(self.package).joinpath("migrations")
        files = sorted(
            (item for item in folder.iterdir() if item.name.endswith(".sql")),
            key=lambda item: item.name,
        )
        for version, item in enumerate(files, start=1):
            # A gap or a repeated number would shift every later version.
            if not item.name.startswith(f"{version:04d}_"):
                raise RuntimeError(f"migration {item.name} should be number {version:04d}")
        return tuple(item.read_text(encoding="utf-8") for item in files)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._scripts[index]

    def __len__(self) -> int:
        return len(self._scripts)


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
