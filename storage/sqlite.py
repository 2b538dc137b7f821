"""The embedded backend: one SQLite file through aiosqlite, with versioned migrations."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from storage.base import (
    ChatKey,
    ConversationState,
    Feedback,
    InboxUpdate,
    Miss,
    QueuedMessage,
    Record,
)

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
    """
    CREATE TABLE inbox (
        channel TEXT NOT NULL,
        update_id TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (channel, update_id)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        body TEXT NOT NULL,
        parts_sent INTEGER NOT NULL DEFAULT 0,
        failed_reason TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX outbox_pending ON outbox (channel, id) WHERE failed_reason IS NULL;
    CREATE TABLE faq_misses (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        question TEXT NOT NULL,
        reason TEXT NOT NULL,
        entry_id TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX processed_updates_age ON processed_updates (processed_at);
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

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Writes inside commit together or not at all; one writer at a time."""
        async with self._write_lock:
            try:
                yield self.db
            except BaseException:
                await self.db.rollback()
                raise
            await self.db.commit()

    async def save(
        self,
        key: ChatKey,
        state: ConversationState,
        update_id: str | None,
        records: Sequence[Record] = (),
        replies: Sequence[dict[str, Any]] = (),
    ) -> list[QueuedMessage]:
        async with self._transaction() as db:
            await db.execute(
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
                await db.execute(
                    "INSERT OR IGNORE INTO processed_updates (channel, chat_id, update_id) "
                    "VALUES (?, ?, ?)",
                    (key.channel, key.chat_id, update_id),
                )
                await db.execute(
                    "DELETE FROM inbox WHERE channel=? AND update_id=?", (key.channel, update_id)
                )
            for record in records:
                await self._write_record(db, key, record)
            queued = []
            for body in replies:
                cursor = await db.execute(
                    "INSERT INTO outbox (channel, chat_id, body) VALUES (?, ?, ?)",
                    (key.channel, key.chat_id, json.dumps(body, ensure_ascii=False)),
                )
                assert cursor.lastrowid is not None
                queued.append(QueuedMessage(cursor.lastrowid, key, body))
        return queued

    @staticmethod
    async def _write_record(db: aiosqlite.Connection, key: ChatKey, record: Record) -> None:
        match record:
            case Feedback(entry_id, helpful):
                await db.execute(
                    "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful) "
                    "VALUES (?, ?, ?, ?)",
                    (key.channel, key.chat_id, entry_id, int(helpful)),
                )
            case Miss(question, reason, entry_id):
                await db.execute(
                    "INSERT INTO faq_misses (channel, chat_id, question, reason, entry_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (key.channel, key.chat_id, question, reason, entry_id),
                )

    async def receive(self, updates: Sequence[InboxUpdate]) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO inbox (channel, update_id, body) VALUES (?, ?, ?)",
                [(u.channel, u.update_id, json.dumps(u.body)) for u in updates],
            )

    async def inbox(self, channel: str) -> list[InboxUpdate]:
        async with self.db.execute(
            # A new row's rowid is above every row present: arrival order.
            "SELECT update_id, body FROM inbox WHERE channel=? ORDER BY rowid",
            (channel,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [InboxUpdate(channel, row[0], json.loads(row[1])) for row in rows]

    async def discard(self, channel: str, update_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM inbox WHERE channel=? AND update_id=?", (channel, update_id)
            )

    async def outbox(self, channel: str) -> list[QueuedMessage]:
        async with self.db.execute(
            "SELECT id, chat_id, body, parts_sent FROM outbox "
            "WHERE channel=? AND failed_reason IS NULL ORDER BY id",
            (channel,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            QueuedMessage(row[0], ChatKey(channel, row[1]), json.loads(row[2]), row[3])
            for row in rows
        ]

    async def mark_progress(self, message_id: int, parts_sent: int) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE outbox SET parts_sent=? WHERE id=?", (parts_sent, message_id))

    async def mark_delivered(self, message_id: int) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM outbox WHERE id=?", (message_id,))

    async def mark_failed(self, message_id: int, reason: str) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE outbox SET failed_reason=? WHERE id=?", (reason, message_id))

    async def feedback_counts(self) -> dict[str, tuple[int, int]]:
        async with self.db.execute(
            "SELECT entry_id, SUM(helpful), SUM(1 - helpful) FROM faq_feedback GROUP BY entry_id"
        ) as cursor:
            rows = await cursor.fetchall()
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    async def misses(self, limit: int = 100) -> list[tuple[str, Miss]]:
        async with self.db.execute(
            "SELECT created_at, question, reason, entry_id FROM faq_misses "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [(row[0], Miss(row[1], row[2], row[3])) for row in rows]

    async def prune(self, older_than_days: float) -> None:
        cutoff = f"-{older_than_days} days"
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM processed_updates WHERE processed_at < "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (cutoff,),
            )
            await db.execute(
                "DELETE FROM outbox WHERE failed_reason IS NOT NULL AND created_at < "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (cutoff,),
            )
