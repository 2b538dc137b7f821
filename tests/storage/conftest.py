"""Every storage test runs on each backend: the contract is one, the implementations two."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.postgres import PostgresStorage
from storage.sql import SqlStorage
from storage.sqlite import SqliteStorage
from tests.pgserver import Databases

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def storage(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[SqlStorage]:
    """A fresh database per test: a SQLite file in the test's folder, or a new PostgreSQL
    database on the session's server."""
    if backend == "sqlite":
        async with SqliteStorage(tmp_path / "bot.db") as opened:
            yield opened
        return
    databases: Databases = request.getfixturevalue("postgres_databases")
    url = await databases.create()
    try:
        async with PostgresStorage(url) as opened:
            yield opened
    finally:
        await databases.drop(url)


@pytest.fixture
async def second(storage: SqlStorage) -> AsyncIterator[SqlStorage]:
    """Another process's view of the same database: its own connections (and locks)."""
    other: SqlStorage
    if isinstance(storage, SqliteStorage):
        other = SqliteStorage(storage.path)
    else:
        assert isinstance(storage, PostgresStorage)
        other = PostgresStorage(storage.url)
    async with other:
        yield other
