"""PostgreSQL's migrations: numbered files shipped as they are, a database at any earlier
version upgraded in place with every row it held, and processes starting together
migrating once."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import storage.postgres
from storage.postgres import MIGRATIONS, PostgresStorage
from storage.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tests.pgserver import Databases
from tests.storage import test_migrations as sqlite_migrations

FOLDER = Path(storage.postgres.__file__).parent / "migrations"

# Append only, as SQLite's SHIPPED: a shipped file is never edited.
SHIPPED = {
    "0001_schema.sql": "a36daef23f1b4a2c9ea432c71a0cf1e2544803c0ffc841750c3c947ab5679cc2",
    "0002_claims_and_leases.sql": (
        "87bf0819f892260dc16af9736c874cb6aaee1faa7d8aee85813f2539f18402ee"
    ),
    "0003_staff_desk_across_channels.sql": (
        "a1aae0187b5b3813a02aab5f1c5920206bcd653ec354ec5c2c272d75cd7f9e89"
    ),
}

# The SQLite versions whose schema each PostgreSQL version reaches: 0001 is SQLite's
# 0001-0008 in one step, as no PostgreSQL database predates it.
SQLITE_VERSIONS = {1: range(1, 9), 2: range(9, 10), 3: range(10, 11)}


def test_the_migrations_are_the_numbered_files_in_order() -> None:
    files = sorted(FOLDER.glob("*.sql"))
    assert [f.name[:5] for f in files] == [f"{n:04d}_" for n in range(1, len(files) + 1)]
    assert list(MIGRATIONS) == [f.read_text(encoding="utf-8") for f in files]


def test_no_shipped_migration_was_edited_or_removed() -> None:
    hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in FOLDER.glob("*.sql")}
    assert {name: hashes.get(name) for name in SHIPPED} == SHIPPED
    assert sorted(hashes)[: len(SHIPPED)] == sorted(SHIPPED)


def test_each_version_reaches_a_sqlite_version_and_the_last_reaches_the_last() -> None:
    assert sorted(SQLITE_VERSIONS) == list(range(1, len(MIGRATIONS) + 1))
    reached = [v for versions in SQLITE_VERSIONS.values() for v in versions]
    assert reached == list(range(1, len(SQLITE_MIGRATIONS) + 1))


async def _every_row(connection: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    tables = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename != 'schema_migrations'"
    )
    return {
        table: [dict(row) for row in await connection.fetch(f"SELECT * FROM {table} ORDER BY 1")]
        for (table,) in tables
    }


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
async def test_a_database_at_any_version_is_upgraded_with_its_rows(
    postgres_databases: Databases, version: int
) -> None:
    url = await postgres_databases.create(migrated=False)
    try:
        connection = await asyncpg.connect(url)
        try:
            async with PostgresStorage(url, migrate=False) as at_nothing:
                assert await at_nothing.schema_version() == 0
            # The runner's own bookkeeping, then the first `version` scripts with their rows.
            await connection.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for applied in range(1, version + 1):
                await connection.execute(MIGRATIONS[applied - 1])
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    applied,
                    MIGRATIONS.name(applied),
                )
                for sqlite_version in SQLITE_VERSIONS[applied]:
                    for insert in sqlite_migrations.ROWS[sqlite_version]:
                        await connection.execute(insert)
            before = await _every_row(connection)

            async with PostgresStorage(url) as upgraded:
                assert await upgraded.schema_version() == len(MIGRATIONS)
                readable = await sqlite_migrations.readable_rows(upgraded)
                if version < 3:
                    # Topics and relays of before: the staff chat and the customer on one
                    # channel.
                    staff, key = sqlite_migrations.STAFF, sqlite_migrations.KEY
                    assert await upgraded.customer_of_topic(staff, "5") == key
                    assert await upgraded.customer_of_relay(staff, "77") == key
                    assert await upgraded.topic_of(key, staff) == "5"

            after = await _every_row(connection)
        finally:
            await connection.close()
        for table, rows in before.items():
            assert len(after[table]) == len(rows), table
            kept = [
                {column: new[column] for column in old}
                for new, old in zip(after[table], rows, strict=True)
            ]
            assert kept == rows, table
        reached = max(SQLITE_VERSIONS[version])
        assert readable == {added_by: added_by <= reached for added_by in readable}
    finally:
        await postgres_databases.drop(url)


async def test_processes_starting_together_migrate_once(postgres_databases: Databases) -> None:
    url = await postgres_databases.create(migrated=False)
    try:
        opened = [PostgresStorage(url) for _ in range(3)]
        await asyncio.gather(*(storage.connect() for storage in opened))
        try:
            for storage in opened:
                assert await storage.schema_version() == len(MIGRATIONS)
            [(applied,)] = await opened[0].database.fetch_all(
                "SELECT COUNT(*) FROM schema_migrations"
            )
            assert applied == len(MIGRATIONS)
        finally:
            for storage in opened:
                await storage.close()
    finally:
        await postgres_databases.drop(url)
