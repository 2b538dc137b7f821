"""The embedded backend: one SQLite file through aiosqlite, with versioned migrations."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from storage.base import ChatKey, ConversationState, Record

logger = logging.getLogger(__name__)

# Append only: each string moves the schema one version up; never edit a shipped one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE conversations (
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        flow TEXT,
        step TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        language TEXT NOT NULL DEFAULT 'en',
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (channel, chat_id)
    );
    CREATE TABLE processed_updates (
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        update_id TEXT NOT NULL,
        processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (channel, update_id)
    );
    CREATE TABLE faq_feedback (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        helpful INTEGER NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    """,
]


class SqliteStorage:
    """Conversation state and FAQ feedback in a SQLite file (use `open`, or `async with`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # One connection serves every chat: a turn's writes must not interleave with another's.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteStorage:
        storage = cls(path)
        await storage.connect()
        return storage

    async def connect(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

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
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("storage is not open")
        return self._db

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        current = await self.schema_version()
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # executescript commits first, so each migration runs in its own transaction.
            await self.db.executescript(
                f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;"
            )
            logger.info("storage.migrated version=%d path=%s", version, self.path)

    async def load(self, key: ChatKey) -> ConversationState:
        async with self.db.execute(
            "SELECT flow, step, data, language FROM conversations WHERE channel=? AND chat_id=?",
            (key.channel, key.chat_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return ConversationState()
        return ConversationState(flow=row[0], step=row[1], data=json.loads(row[2]), language=row[3])

    async def is_processed(self, key: ChatKey, update_id: str) -> bool:
        async with self.db.execute(
            "SELECT 1 FROM processed_updates WHERE channel=? AND update_id=?",
            (key.channel, update_id),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def save(
        self,
        key: ChatKey,
        state: ConversationState,
        update_id: str | None,
        records: Sequence[Record] = (),
    ) -> None:
        async with self._write_lock:
            try:
                await self._write_turn(key, state, update_id, records)
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    async def _write_turn(
        self,
        key: ChatKey,
        state: ConversationState,
        update_id: str | None,
        records: Sequence[Record],
    ) -> None:
        await self.db.execute(
            """INSERT INTO conversations (channel, chat_id, flow, step, data, language)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (channel, chat_id) DO UPDATE SET flow=excluded.flow,
                 step=excluded.step, data=excluded.data, language=excluded.language,
                 updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
            (
                key.channel,
                key.chat_id,
                state.flow,
                state.step,
                json.dumps(state.data),
                state.language,
            ),
        )
        if update_id is not None:
            await self.db.execute(
                "INSERT OR IGNORE INTO processed_updates (channel, chat_id, update_id) "
                "VALUES (?, ?, ?)",
                (key.channel, key.chat_id, update_id),
            )
        for record in records:
            await self.db.execute(
                "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful) "
                "VALUES (?, ?, ?, ?)",
                (key.channel, key.chat_id, record.entry_id, int(record.helpful)),
            )

    async def feedback_counts(self) -> dict[str, tuple[int, int]]:
        async with self.db.execute(
            "SELECT entry_id, SUM(helpful), SUM(1 - helpful) FROM faq_feedback GROUP BY entry_id"
        ) as cursor:
            rows = await cursor.fetchall()
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}
