"""The few calls the repositories make of a backend: reads, and writes inside a transaction.

The repositories' SQL takes `?` parameters and keeps to what SQLite (3.35 or later) and
PostgreSQL both run; a backend's adapter turns `?` into its driver's placeholders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

# One result row, its columns in the order the query selects them.
Row = Sequence[Any]


class Reader(Protocol):
    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The query's first row, or None when it has none."""
        ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of the query, in its order."""
        ...


class Transaction(Reader, Protocol):
    """Reads and writes that commit together, or not at all."""

    async def fetch_locked(
        self, sql: str, params: Sequence[Any] = (), *, skip_locked: bool = False
    ) -> list[Row]:
        """Every row of the query (a SELECT on one table), locked until the transaction
        ends against other transactions that would write them; with `skip_locked`, rows
        another transaction holds are left out instead of waited for. For a read whose
        result decides the write."""
        ...

    async def serialize(self, name: str) -> None:
        """Wait until no other transaction holds `name`, then hold it until this one ends:
        for writes whose rule spans rows no lock covers (a claim reads every chat's rows)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        ...


class Database(Reader, Protocol):
    """A backend's connection: reads anywhere, writes inside `transaction()`, or one
    statement alone with `write`."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Writes inside commit together when the block ends, or roll back if it raises;
        one writer at a time where the backend needs that."""
        ...

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement, committed on its own (PostgreSQL: one round trip where a
        transaction takes three); returns how many rows it changed."""
        ...

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """`write` for a statement with RETURNING: the row it returns, if any."""
        ...


class Repository(ABC):
    """A part of the storage contract in SQL; the backend it is mixed into connects it."""

    @property
    @abstractmethod
    def database(self) -> Database:
        """The open connection. Raises RuntimeError when the storage is not open."""
