"""The embedded backend: one SQLite file through aiosqlite, with versioned migrations."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from domain.chats import ChatKey, ConversationState
from domain.faq_log import FaqStats, Feedback, LoggedMiss, Miss, QuestionAsked
from domain.handoffs import (
    HANDOFF_FIELDS,
    ChatLine,
    DigestSent,
    Handoff,
    HandoffOpened,
    HandoffStats,
    HandoffStatus,
    HandoffUpdate,
    Said,
    StaffNote,
)
from domain.orders import (
    Order,
    OrderStatus,
    StatusChange,
    order_from_trusted_record,
    order_to_record,
)
from domain.ownership import FailedOwnershipCheck, OrderLinked
from domain.tickets import (
    Ticket,
    TicketAnswered,
    TicketEvent,
    TicketKind,
    TicketMedia,
    TicketMediaSet,
    TicketOpened,
    TicketStatus,
    TicketStatusSet,
)
from storage.base import InboxUpdate, QueuedMessage, Record
from storage.orders import OrderNotice, SaveResult
from storage.tickets import MediaToStore

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
    """
    CREATE TABLE orders (
        number TEXT PRIMARY KEY COLLATE NOCASE,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE order_serials (
        serial TEXT NOT NULL COLLATE NOCASE,
        number TEXT NOT NULL COLLATE NOCASE REFERENCES orders (number) ON DELETE CASCADE,
        PRIMARY KEY (serial, number)
    );
    CREATE INDEX order_serials_number ON order_serials (number);
    CREATE TABLE order_history (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL COLLATE NOCASE,
        status TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX order_history_number ON order_history (number, id);
    CREATE TABLE order_links (
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        number TEXT NOT NULL COLLATE NOCASE,
        linked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (channel, chat_id, number)
    );
    CREATE INDEX order_links_number ON order_links (number);
    CREATE TABLE order_notices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        number TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX order_notices_pending ON order_notices (channel, id);
    CREATE TABLE ownership_checks_failed (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX ownership_checks_failed_chat ON ownership_checks_failed (channel, chat_id, at);
    """,
    """
    CREATE TABLE handoffs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        order_number TEXT,
        opened_at TEXT NOT NULL,
        claimed_by TEXT,
        claimed_by_name TEXT,
        first_staff_reply_at TEXT,
        last_customer_at TEXT,
        last_staff_at TEXT,
        waiting_since TEXT,
        reminded_at TEXT,
        closed_at TEXT,
        closed_by TEXT,
        rating INTEGER
    );
    -- At most one open handoff per customer; HandoffOpened relies on it.
    CREATE UNIQUE INDEX handoffs_one_open ON handoffs (channel, chat_id)
        WHERE status != 'closed';
    CREATE INDEX handoffs_open ON handoffs (opened_at, id) WHERE status != 'closed';
    CREATE INDEX handoffs_opened_at ON handoffs (opened_at);
    CREATE INDEX handoffs_chat ON handoffs (channel, chat_id);
    CREATE TABLE staff_topics (
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        staff_chat_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        PRIMARY KEY (channel, chat_id, staff_chat_id)
    );
    CREATE INDEX staff_topics_thread ON staff_topics (channel, staff_chat_id, thread_id);
    CREATE TABLE staff_relays (
        channel TEXT NOT NULL,
        staff_chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (channel, staff_chat_id, message_id)
    );
    CREATE INDEX staff_relays_age ON staff_relays (created_at);
    CREATE TABLE staff_notes (
        id INTEGER PRIMARY KEY,
        handoff_id INTEGER NOT NULL REFERENCES handoffs (id),
        author TEXT NOT NULL,
        text TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX staff_notes_handoff ON staff_notes (handoff_id, at);
    CREATE TABLE chat_lines (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        at TEXT NOT NULL,
        from_customer INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX chat_lines_chat ON chat_lines (channel, chat_id, id);
    CREATE INDEX chat_lines_age ON chat_lines (at);
    """,
    """
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        submitted_at TEXT,
        revision INTEGER NOT NULL DEFAULT 0,
        decided_by TEXT,
        staff_note TEXT
    );
    CREATE INDEX tickets_chat ON tickets (channel, chat_id, created_at);
    CREATE INDEX tickets_created_at ON tickets (created_at);
    CREATE TABLE ticket_answers (
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (ticket_id, name)
    );
    CREATE TABLE ticket_media (
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL,
        file_ref TEXT NOT NULL DEFAULT '',
        size INTEGER,
        mime TEXT,
        file_name TEXT,
        link TEXT,
        stored_path TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (ticket_id, name, position)
    );
    -- Files still to copy to disk; `media_to_store` repeats this WHERE to use it.
    CREATE INDEX ticket_media_to_store ON ticket_media (created_at)
        WHERE file_ref != '' AND link IS NULL AND stored_path IS NULL;
    CREATE TABLE ticket_events (
        id INTEGER PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);
    """,
    # The customer picked the language with /language: Telegram's language code no
    # longer overrides it.
    """
    ALTER TABLE conversations ADD COLUMN language_chosen INTEGER NOT NULL DEFAULT 0;
    """,
    """
    -- Every question the FAQ matcher sees, personal data masked; the turn chooses the id.
    CREATE TABLE faq_questions (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        language TEXT NOT NULL,
        question TEXT NOT NULL,
        decision TEXT NOT NULL,
        entry_id TEXT,
        confidence REAL NOT NULL,
        asked_at TEXT NOT NULL
    );
    CREATE INDEX faq_questions_asked_at ON faq_questions (asked_at);
    -- Misses and votes name the logged question; older rows have none. A miss keeps a copy
    -- of the question's text, as older ones hold theirs, so every miss reads on its own.
    ALTER TABLE faq_misses ADD COLUMN question_id TEXT REFERENCES faq_questions (id);
    ALTER TABLE faq_feedback ADD COLUMN question_id TEXT REFERENCES faq_questions (id);
    CREATE INDEX faq_misses_created_at ON faq_misses (created_at);
    CREATE INDEX faq_feedback_created_at ON faq_feedback (created_at);
    CREATE TABLE staff_digests (
        day TEXT PRIMARY KEY,
        sent_at TEXT NOT NULL
    );
    """,
]
# Misses kept before the question log have no language: every chat was in English then.
_LANGUAGE_BEFORE_THE_LOG = "en"
# An upper bound later than any stored time, for periods open at the end.
_END_OF_TIME = "9999-12-31T23:59:59.999Z"

# A transcript line longer than this is cut (the context card only needs the gist).
CHAT_LINE_MAX_CHARS = 500
# Transcript lines kept per chat; older ones are dropped as new ones come.
CHAT_LINES_KEPT = 50

_HANDOFF_COLUMNS = (
    "id, channel, chat_id, status, reason, opened_at, order_number, claimed_by, "
    "claimed_by_name, first_staff_reply_at, last_customer_at, last_staff_at, reminded_at, "
    "closed_at, closed_by, rating, waiting_since"
)

_TICKET_COLUMNS = (
    "id, channel, chat_id, kind, status, created_at, updated_at, submitted_at, revision, "
    "decided_by, staff_note"
)
_TICKET_MEDIA_COLUMNS = "kind, file_ref, size, mime, file_name, link, stored_path"

# The history's action for a change to each status (PENDING: "submitted" or "revised").
_STATUS_ACTIONS = {
    TicketStatus.NEEDS_INFO: "asked_for_more",
    TicketStatus.CONFIRMED: "confirmed",
    TicketStatus.REJECTED: "rejected",
    TicketStatus.CANCELLED: "cancelled",
    TicketStatus.DRAFT: "reopened",
}
# Staff decisions: they set decided_by and staff_note.
_DECISIONS = frozenset({TicketStatus.NEEDS_INFO, TicketStatus.CONFIRMED, TicketStatus.REJECTED})
# What answers, files and the opening are attributed to in a ticket's history.
_CUSTOMER = "customer"


def _utc_timestamp(moment: datetime) -> str:
    """`moment` (tz-aware) in the shape of strftime('%Y-%m-%dT%H:%M:%fZ', 'now').

    SQLite's '%f' keeps milliseconds ('SS.SSS'), so times written from Python keep them too
    and compare as strings with SQLite's own (column defaults, prune cutoffs).
    """
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a tz-aware one")
    utc = moment.astimezone(UTC)
    # Not %Y: glibc writes year 999 as "999", which compares after "2024".
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _period(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """Bounds for `column >= ? AND column < ?` on stored times; None leaves that end open."""
    start = "" if since is None else _utc_timestamp(since)
    return start, _END_OF_TIME if until is None else _utc_timestamp(until)


def _parse_timestamp(value: str) -> datetime:
    """A `_utc_timestamp` string back as a tz-aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)


def _optional_timestamp(value: str | None) -> datetime | None:
    return None if value is None else _parse_timestamp(value)


def _column_value(value: Any) -> Any:
    """A HandoffUpdate value as stored: datetimes as `_utc_timestamp`, enums by value."""
    if isinstance(value, datetime):
        return _utc_timestamp(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _handoff_from_row(row: Sequence[Any]) -> Handoff:
    """A Handoff from a row selecting `_HANDOFF_COLUMNS`."""
    return Handoff(
        id=row[0],
        key=ChatKey(row[1], row[2]),
        status=HandoffStatus(row[3]),
        reason=row[4],
        opened_at=_parse_timestamp(row[5]),
        order_number=row[6],
        claimed_by=row[7],
        claimed_by_name=row[8],
        first_staff_reply_at=_optional_timestamp(row[9]),
        last_customer_at=_optional_timestamp(row[10]),
        last_staff_at=_optional_timestamp(row[11]),
        reminded_at=_optional_timestamp(row[12]),
        closed_at=_optional_timestamp(row[13]),
        closed_by=row[14],
        rating=row[15],
        waiting_since=_optional_timestamp(row[16]),
    )


def _ticket_media_from_row(row: Sequence[Any]) -> TicketMedia:
    """A TicketMedia from a row selecting `_TICKET_MEDIA_COLUMNS`."""
    return TicketMedia(
        kind=row[0],
        file_ref=row[1],
        size=row[2],
        mime=row[3],
        file_name=row[4],
        link=row[5],
        stored_path=row[6],
    )


def _order_to_json(order: Order) -> str:
    """The order without its history (kept in order_history), as a JSON object."""
    body = order_to_record(order)
    del body["history"]
    # Sorted keys: an unchanged order serialises to the same text, which `save_order` compares.
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def _order_from_json(text: str, history: Iterable[StatusChange] = ()) -> Order:
    return replace(order_from_trusted_record(json.loads(text)), history=tuple(history))


class DatabaseMissing(FileNotFoundError):
    """No database file where one must already be; nothing was created."""


class SqliteStorage:
    """Conversation state and FAQ feedback in a SQLite file (use `open`, or `async with`).

    `create=False` is for commands that only read: a mistyped path raises DatabaseMissing
    instead of starting an empty database there.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.create = create
        self._db: aiosqlite.Connection | None = None
        # One connection serves every chat: a turn's writes must not interleave with another's.
        self._write_lock = asyncio.Lock()

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
            "SELECT flow, step, data, language, language_chosen FROM conversations "
            "WHERE channel=? AND chat_id=?",
            (key.channel, key.chat_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return ConversationState()
        return ConversationState(
            flow=row[0],
            step=row[1],
            data=json.loads(row[2]),
            language=row[3],
            language_chosen=bool(row[4]),
        )

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
        replies: Sequence[tuple[ChatKey, dict[str, Any]]] = (),
        also_processed: Sequence[str] = (),
    ) -> list[QueuedMessage]:
        processed = ([update_id] if update_id is not None else []) + list(also_processed)
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO conversations
                     (channel, chat_id, flow, step, data, language, language_chosen)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (channel, chat_id) DO UPDATE SET flow=excluded.flow,
                     step=excluded.step, data=excluded.data, language=excluded.language,
                     language_chosen=excluded.language_chosen,
                     updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
                (
                    key.channel,
                    key.chat_id,
                    state.flow,
                    state.step,
                    json.dumps(state.data),
                    state.language,
                    state.language_chosen,
                ),
            )
            for processed_id in processed:
                await db.execute(
                    "INSERT OR IGNORE INTO processed_updates (channel, chat_id, update_id) "
                    "VALUES (?, ?, ?)",
                    (key.channel, key.chat_id, processed_id),
                )
                await db.execute(
                    "DELETE FROM inbox WHERE channel=? AND update_id=?",
                    (key.channel, processed_id),
                )
            for record in records:
                await self._write_record(db, key, record)
            if any(isinstance(record, Said) for record in records):
                # Everything at or below the first id past the newest CHAT_LINES_KEPT goes.
                await db.execute(
                    """DELETE FROM chat_lines WHERE channel=? AND chat_id=? AND id <= (
                         SELECT id FROM chat_lines WHERE channel=? AND chat_id=?
                         ORDER BY id DESC LIMIT 1 OFFSET ?)""",
                    (key.channel, key.chat_id, key.channel, key.chat_id, CHAT_LINES_KEPT),
                )
            queued = []
            for destination, body in replies:
                cursor = await db.execute(
                    "INSERT INTO outbox (channel, chat_id, body) VALUES (?, ?, ?)",
                    (
                        destination.channel,
                        destination.chat_id,
                        json.dumps(body, ensure_ascii=False),
                    ),
                )
                assert cursor.lastrowid is not None
                queued.append(QueuedMessage(cursor.lastrowid, destination, body))
        return queued

    @staticmethod
    async def _write_record(db: aiosqlite.Connection, key: ChatKey, record: Record) -> None:
        match record:
            case QuestionAsked(question_id, question, language, decision, entry_id, score, at):
                await db.execute(
                    """INSERT INTO faq_questions (id, channel, chat_id, language, question,
                         decision, entry_id, confidence, asked_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        question_id,
                        key.channel,
                        key.chat_id,
                        language,
                        question,
                        decision,
                        entry_id,
                        score,
                        _utc_timestamp(at),
                    ),
                )
            case Feedback(entry_id, helpful, at, question_id):
                await db.execute(
                    "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful, question_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        key.channel,
                        key.chat_id,
                        entry_id,
                        int(helpful),
                        question_id,
                        _utc_timestamp(at),
                    ),
                )
            case Miss(question_id, reason, at, entry_id):
                cursor = await db.execute(
                    """INSERT INTO faq_misses (channel, chat_id, question, reason, entry_id,
                         question_id, created_at)
                       SELECT ?, ?, question, ?, ?, id, ? FROM faq_questions WHERE id=?""",
                    (key.channel, key.chat_id, reason, entry_id, _utc_timestamp(at), question_id),
                )
                if cursor.rowcount == 0:
                    # A flow's bug: fail the turn rather than keep a miss nobody can read.
                    raise ValueError(f"no logged question {question_id}")
            case DigestSent(day, at):
                await db.execute(
                    "INSERT INTO staff_digests (day, sent_at) VALUES (?, ?)",
                    (day.isoformat(), _utc_timestamp(at)),
                )
            case OrderLinked(number):
                # The stored spelling of the number when the order is known, so links, history
                # and notices all name it the same way; linking again refreshes linked_at.
                await db.execute(
                    """INSERT INTO order_links (channel, chat_id, number)
                       VALUES (?, ?, COALESCE((SELECT number FROM orders WHERE number=?), ?))
                       ON CONFLICT (channel, chat_id, number) DO UPDATE SET
                         linked_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
                    (key.channel, key.chat_id, number, number),
                )
            case FailedOwnershipCheck(at):
                await db.execute(
                    "INSERT INTO ownership_checks_failed (channel, chat_id, at) VALUES (?, ?, ?)",
                    (key.channel, key.chat_id, _utc_timestamp(at)),
                )
            case HandoffOpened(customer, reason, at, order_number):
                # The record names the customer (a staff turn may open one too); the partial
                # unique index makes a second open handoff for the same customer a no-op.
                await db.execute(
                    """INSERT INTO handoffs (channel, chat_id, status, reason, order_number,
                         opened_at, waiting_since)
                       VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT DO NOTHING""",
                    (
                        customer.channel,
                        customer.chat_id,
                        HandoffStatus.WAITING.value,
                        reason,
                        order_number,
                        _utc_timestamp(at),
                        # The customer waits for staff from the start.
                        _utc_timestamp(at),
                    ),
                )
            case HandoffUpdate(handoff_id, changes):
                await SqliteStorage._update_handoff(db, handoff_id, changes)
            case StaffNote(handoff_id, author, text, at):
                await db.execute(
                    "INSERT INTO staff_notes (handoff_id, author, text, at) VALUES (?, ?, ?, ?)",
                    (handoff_id, author, text, _utc_timestamp(at)),
                )
            case Said(from_customer, text, at):
                if len(text) > CHAT_LINE_MAX_CHARS:
                    text = text[: CHAT_LINE_MAX_CHARS - 1] + "…"
                await db.execute(
                    "INSERT INTO chat_lines (channel, chat_id, at, from_customer, text) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (key.channel, key.chat_id, _utc_timestamp(at), int(from_customer), text),
                )
            case TicketOpened() | TicketAnswered() | TicketMediaSet() | TicketStatusSet():
                await SqliteStorage._write_ticket_record(db, key, record)

    @staticmethod
    async def _write_ticket_record(
        db: aiosqlite.Connection,
        key: ChatKey,
        record: TicketOpened | TicketAnswered | TicketMediaSet | TicketStatusSet,
    ) -> None:
        """Apply a ticket record and add its line to the ticket's history.

        Raises ValueError when the ticket does not exist (or, for TicketOpened, already
        does): a flow's bug must fail its turn rather than leave orphan rows.
        """
        async with db.execute(
            "SELECT revision FROM tickets WHERE id=?", (record.ticket_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if isinstance(record, TicketOpened):
            if row is not None:
                raise ValueError(f"ticket {record.ticket_id} already exists")
        elif row is None:
            raise ValueError(f"no ticket {record.ticket_id}")
        at = _utc_timestamp(record.at)
        actor, detail = _CUSTOMER, ""
        match record:
            case TicketOpened(ticket_id, kind):
                await db.execute(
                    """INSERT INTO tickets (id, channel, chat_id, kind, status, created_at,
                         updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (
                        ticket_id,
                        key.channel,
                        key.chat_id,
                        kind.value,
                        TicketStatus.DRAFT.value,
                        at,
                        at,
                    ),
                )
                action = "opened"
            case TicketAnswered(ticket_id, name, value):
                if value is None:
                    await db.execute(
                        "DELETE FROM ticket_answers WHERE ticket_id=? AND name=?",
                        (ticket_id, name),
                    )
                else:
                    await db.execute(
                        """INSERT INTO ticket_answers (ticket_id, name, value) VALUES (?, ?, ?)
                           ON CONFLICT (ticket_id, name) DO UPDATE SET value=excluded.value""",
                        (ticket_id, name, value),
                    )
                await db.execute("UPDATE tickets SET updated_at=? WHERE id=?", (at, ticket_id))
                # Only the name: the answer itself may be personal data, kept in one place.
                action, detail = "answered", name
            case TicketMediaSet(ticket_id, name, media):
                await db.execute(
                    "DELETE FROM ticket_media WHERE ticket_id=? AND name=?", (ticket_id, name)
                )
                await db.executemany(
                    f"""INSERT INTO ticket_media (ticket_id, name, position,
                          {_TICKET_MEDIA_COLUMNS}, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",  # noqa: S608
                    [
                        (
                            ticket_id,
                            name,
                            position,
                            item.kind,
                            item.file_ref,
                            item.size,
                            item.mime,
                            item.file_name,
                            item.link,
                            item.stored_path,
                            at,
                        )
                        for position, item in enumerate(media)
                    ],
                )
                await db.execute("UPDATE tickets SET updated_at=? WHERE id=?", (at, ticket_id))
                action, detail = "media", f"{name}: {len(media)}"
            case TicketStatusSet(ticket_id, status, actor, _, detail):
                assert row is not None
                status = TicketStatus(status)
                if status is TicketStatus.PENDING:
                    await db.execute(
                        """UPDATE tickets SET status=?, updated_at=?,
                             submitted_at=COALESCE(submitted_at, ?), revision=revision + 1
                           WHERE id=?""",
                        (status.value, at, at, ticket_id),
                    )
                    action = "submitted" if row[0] == 0 else "revised"
                elif status in _DECISIONS:
                    await db.execute(
                        "UPDATE tickets SET status=?, updated_at=?, decided_by=?, staff_note=? "
                        "WHERE id=?",
                        # No message with the decision: no note (an older one is not the
                        # last decision's any more).
                        (status.value, at, actor, detail or None, ticket_id),
                    )
                    action = _STATUS_ACTIONS[status]
                else:
                    await db.execute(
                        "UPDATE tickets SET status=?, updated_at=? WHERE id=?",
                        (status.value, at, ticket_id),
                    )
                    action = _STATUS_ACTIONS[status]
        await db.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor, action, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (record.ticket_id, at, actor, action, detail),
        )

    @staticmethod
    async def _update_handoff(
        db: aiosqlite.Connection, handoff_id: int, changes: Mapping[str, Any]
    ) -> None:
        """Set the HANDOFF_FIELDS columns in `changes`; `first_staff_reply_at` only once.

        Raises ValueError for any other column name, writing nothing.
        """
        unknown = set(changes) - HANDOFF_FIELDS
        if unknown:
            raise ValueError(f"not handoff fields: {', '.join(sorted(unknown))}")
        if not changes:
            return
        names = sorted(changes)
        # Names are checked against HANDOFF_FIELDS above; only values are parameters.
        assignments = ", ".join(
            f"{name}=COALESCE({name}, ?)" if name == "first_staff_reply_at" else f"{name}=?"
            for name in names
        )
        await db.execute(
            f"UPDATE handoffs SET {assignments} WHERE id=?",  # noqa: S608
            (*(_column_value(changes[name]) for name in names), handoff_id),
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

    async def misses(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[LoggedMiss]:
        async with self.db.execute(
            """SELECT m.question, m.reason, m.entry_id, COALESCE(q.language, ?), m.channel,
                 m.chat_id, m.created_at, m.question_id
               FROM faq_misses m LEFT JOIN faq_questions q ON q.id = m.question_id
               WHERE m.created_at >= ? AND m.created_at < ? ORDER BY m.created_at, m.id""",
            (_LANGUAGE_BEFORE_THE_LOG, *_period(since, until)),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            LoggedMiss(
                question,
                reason,
                entry_id,
                language,
                ChatKey(channel, chat_id),
                _parse_timestamp(at),
                question_id,
            )
            for question, reason, entry_id, language, channel, chat_id, at, question_id in rows
        ]

    async def faq_stats(
        self, since: datetime, until: datetime | None = None, top: int = 10
    ) -> FaqStats:
        period = _period(since, until)
        decisions: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        async with self.db.execute(
            "SELECT decision, language, COUNT(*) FROM faq_questions "
            "WHERE asked_at >= ? AND asked_at < ? GROUP BY decision, language",
            period,
        ) as cursor:
            async for decision, language, count in cursor:
                decisions[decision] += count
                languages[language] += count
        async with self.db.execute(
            "SELECT entry_id, COUNT(*) FROM faq_questions "
            "WHERE asked_at >= ? AND asked_at < ? AND decision='answer' "
            "GROUP BY entry_id ORDER BY COUNT(*) DESC, entry_id LIMIT ?",
            (*period, top),
        ) as cursor:
            answered = [(entry_id, count) for entry_id, count in await cursor.fetchall()]
        async with self.db.execute(
            "SELECT entry_id, SUM(helpful), SUM(1 - helpful) FROM faq_feedback "
            "WHERE created_at >= ? AND created_at < ? GROUP BY entry_id",
            period,
        ) as cursor:
            votes = {row[0]: (int(row[1]), int(row[2])) for row in await cursor.fetchall()}
        # A question missed twice (suggested, then none of these) counts once.
        async with self.db.execute(
            """SELECT MIN(question), COUNT(DISTINCT COALESCE(question_id, 'row:' || id)) AS times
               FROM faq_misses WHERE created_at >= ? AND created_at < ?
               GROUP BY lower(question) ORDER BY times DESC, MIN(question) LIMIT ?""",
            (*period, top),
        ) as cursor:
            missed = [(question, times) for question, times in await cursor.fetchall()]
        return FaqStats(dict(decisions), dict(languages), answered, votes, missed)

    async def last_digest_day(self) -> date | None:
        async with self.db.execute("SELECT MAX(day) FROM staff_digests") as cursor:
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else date.fromisoformat(row[0])

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
            await db.execute(
                "DELETE FROM ownership_checks_failed WHERE at < "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (cutoff,),
            )
            # Handoffs, their notes and the customers' topics stay: stats and reuse need them.
            await db.execute(
                "DELETE FROM staff_relays WHERE created_at < "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (cutoff,),
            )
            await db.execute(
                "DELETE FROM chat_lines WHERE at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (cutoff,),
            )
            # Tickets, their answers, files and history stay: the service centre needs them.

    async def save_order(self, order: Order, at: datetime) -> SaveResult:
        """Insert or replace `order` by number (case-insensitive) and return what changed.

        The order's own `history` is only kept for a new order (an import with history);
        otherwise a new order starts with StatusChange(status, at), and a status change on a
        known one appends it and queues an OrderNotice for every chat linked to the order.
        """
        body = _order_to_json(order)
        async with self._transaction() as db:
            async with db.execute(
                "SELECT number, body, status FROM orders WHERE number=?", (order.number,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                number = order.number
                await db.execute(
                    "INSERT INTO orders (number, body, status) VALUES (?, ?, ?)",
                    (number, body, order.status.value),
                )
                history = order.history or (StatusChange(order.status, at),)
                await db.executemany(
                    "INSERT INTO order_history (number, status, at) VALUES (?, ?, ?)",
                    [(number, change.status.value, change.at.isoformat()) for change in history],
                )
                await self._index_serials(db, number, order)
                return SaveResult(created=True, changed=True, previous_status=None)

            number, stored_body, stored_status = row
            previous = OrderStatus(stored_status)
            if stored_body == body and previous == order.status:
                return SaveResult(created=False, changed=False, previous_status=previous)
            await db.execute(
                "UPDATE orders SET body=?, status=?, "
                "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE number=?",
                (body, order.status.value, number),
            )
            await self._index_serials(db, number, order)
            if previous != order.status:
                await db.execute(
                    "INSERT INTO order_history (number, status, at) VALUES (?, ?, ?)",
                    (number, order.status.value, at.isoformat()),
                )
                await db.execute(
                    """INSERT INTO order_notices (channel, chat_id, number, status)
                       SELECT channel, chat_id, ?, ? FROM order_links WHERE number=?
                       ORDER BY rowid""",
                    (order.number, order.status.value, number),
                )
            return SaveResult(created=False, changed=True, previous_status=previous)

    @staticmethod
    async def _index_serials(db: aiosqlite.Connection, number: str, order: Order) -> None:
        """Make order_serials list exactly the serials the order's items carry now."""
        await db.execute("DELETE FROM order_serials WHERE number=?", (number,))
        await db.executemany(
            "INSERT OR IGNORE INTO order_serials (serial, number) VALUES (?, ?)",
            [(serial, number) for item in order.items for serial in item.serials],
        )

    async def _orders(self, query: str, params: Sequence[Any]) -> list[Order]:
        """Orders from `query` (selecting number, body) in its order, each with its history."""
        async with self.db.execute(query, params) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return []
        numbers = [row[0] for row in rows]
        # History rows carry the number as stored in orders (save_order writes it so).
        histories: dict[str, list[StatusChange]] = {number: [] for number in numbers}
        async with self.db.execute(
            "SELECT number, status, at FROM order_history "
            "WHERE number IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(numbers),),
        ) as cursor:
            async for number, status, at in cursor:
                histories[number].append(
                    StatusChange(OrderStatus(status), datetime.fromisoformat(at))
                )
        return [_order_from_json(body, histories[number]) for number, body in rows]

    async def order(self, number: str) -> Order | None:
        orders = await self._orders("SELECT number, body FROM orders WHERE number=?", (number,))
        return orders[0] if orders else None

    async def orders_with_serial(self, serial: str) -> list[Order]:
        return await self._orders(
            """SELECT o.number, o.body FROM order_serials s
               JOIN orders o ON o.number = s.number
               WHERE s.serial=? ORDER BY o.rowid""",
            (serial.strip(),),
        )

    async def linked_orders(self, key: ChatKey) -> list[Order]:
        return await self._orders(
            """SELECT o.number, o.body FROM order_links l
               JOIN orders o ON o.number = l.number
               WHERE l.channel=? AND l.chat_id=?
               ORDER BY l.linked_at DESC, l.rowid DESC""",
            (key.channel, key.chat_id),
        )

    async def order_notices(self, channel: str) -> list[OrderNotice]:
        async with self.db.execute(
            """SELECT n.id, n.chat_id, n.number, n.status, COALESCE(c.language, 'en')
               FROM order_notices n
               LEFT JOIN conversations c ON c.channel = n.channel AND c.chat_id = n.chat_id
               WHERE n.channel=? ORDER BY n.id""",
            (channel,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            OrderNotice(row[0], ChatKey(channel, row[1]), row[2], OrderStatus(row[3]), row[4])
            for row in rows
        ]

    async def deliver_notice(self, notice: OrderNotice, reply: dict[str, Any]) -> QueuedMessage:
        """Queue `reply` for the notice's chat in place of the notice.

        Raises LookupError when the notice is gone (already delivered), queueing nothing.
        """
        key = notice.key
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM order_notices WHERE id=? AND channel=?", (notice.id, key.channel)
            )
            if cursor.rowcount == 0:
                raise LookupError(f"order notice {notice.id} is no longer pending")
            cursor = await db.execute(
                "INSERT INTO outbox (channel, chat_id, body) VALUES (?, ?, ?)",
                (key.channel, key.chat_id, json.dumps(reply, ensure_ascii=False)),
            )
            assert cursor.lastrowid is not None
            return QueuedMessage(cursor.lastrowid, key, reply)

    async def drop_notice(self, notice: OrderNotice) -> None:
        """Forget the notice without telling the chat; a notice already gone is no error."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM order_notices WHERE id=? AND channel=?",
                (notice.id, notice.key.channel),
            )

    async def failed_checks_since(self, key: ChatKey, since: datetime) -> list[datetime]:
        """Times (UTC, to the millisecond) of the chat's failed ownership checks at or after
        `since` (tz-aware), oldest first."""
        async with self.db.execute(
            "SELECT at FROM ownership_checks_failed WHERE channel=? AND chat_id=? AND at >= ? "
            "ORDER BY at, id",
            (key.channel, key.chat_id, _utc_timestamp(since)),
        ) as cursor:
            rows = await cursor.fetchall()
        return [datetime.fromisoformat(row[0]) for row in rows]

    async def open_handoff(self, key: ChatKey) -> Handoff | None:
        """The customer's open handoff (status waiting or active), if any."""
        async with self.db.execute(
            f"SELECT {_HANDOFF_COLUMNS} FROM handoffs "  # noqa: S608
            "WHERE channel=? AND chat_id=? AND status != 'closed'",
            (key.channel, key.chat_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _handoff_from_row(row)

    async def handoff(self, handoff_id: int) -> Handoff | None:
        """The handoff with that id, open or closed, if any."""
        async with self.db.execute(
            f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE id=?",  # noqa: S608
            (handoff_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _handoff_from_row(row)

    async def open_handoffs(self) -> list[Handoff]:
        """Every open handoff, oldest first (for reminders)."""
        async with self.db.execute(
            f"SELECT {_HANDOFF_COLUMNS} FROM handoffs "  # noqa: S608
            "WHERE status != 'closed' ORDER BY opened_at, id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_handoff_from_row(row) for row in rows]

    async def set_topic(self, customer: ChatKey, staff_chat_id: str, thread_id: str) -> None:
        """Remember the customer's topic in the staff chat (replacing an earlier one)."""
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO staff_topics (channel, chat_id, staff_chat_id, thread_id)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (channel, chat_id, staff_chat_id) DO UPDATE SET
                     thread_id=excluded.thread_id""",
                (customer.channel, customer.chat_id, staff_chat_id, thread_id),
            )

    async def topic_of(self, customer: ChatKey, staff_chat_id: str) -> str | None:
        """The thread id of the customer's topic in that staff chat, if one was made."""
        async with self.db.execute(
            "SELECT thread_id FROM staff_topics WHERE channel=? AND chat_id=? AND staff_chat_id=?",
            (customer.channel, customer.chat_id, staff_chat_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def customer_of_topic(self, staff: ChatKey, thread_id: str) -> ChatKey | None:
        """Whose topic this is; `staff` is the staff chat (same channel as the customer)."""
        async with self.db.execute(
            "SELECT chat_id FROM staff_topics "
            "WHERE channel=? AND staff_chat_id=? AND thread_id=? ORDER BY rowid DESC LIMIT 1",
            (staff.channel, staff.chat_id, thread_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else ChatKey(staff.channel, row[0])

    async def remember_relay(self, staff: ChatKey, message_id: str, customer: ChatKey) -> None:
        """A message the bot posted in the staff chat on behalf of this customer.

        Raises ValueError when the customer is on another channel than the staff chat (one
        channel column holds both).
        """
        if customer.channel != staff.channel:
            raise ValueError(
                f"relay across channels: staff on {staff.channel}, customer on {customer.channel}"
            )
        async with self._transaction() as db:
            await db.execute(
                """INSERT INTO staff_relays (channel, staff_chat_id, message_id, chat_id)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (channel, staff_chat_id, message_id) DO UPDATE SET
                     chat_id=excluded.chat_id,
                     created_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
                (staff.channel, staff.chat_id, message_id, customer.chat_id),
            )

    async def customer_of_relay(self, staff: ChatKey, message_id: str) -> ChatKey | None:
        """The customer a relayed staff-chat message speaks for, if it is remembered."""
        async with self.db.execute(
            "SELECT chat_id FROM staff_relays WHERE channel=? AND staff_chat_id=? AND message_id=?",
            (staff.channel, staff.chat_id, message_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else ChatKey(staff.channel, row[0])

    async def recent_lines(self, key: ChatKey, limit: int = 10) -> list[ChatLine]:
        """The chat's last `limit` transcript lines, oldest first."""
        async with self.db.execute(
            "SELECT at, from_customer, text FROM chat_lines WHERE channel=? AND chat_id=? "
            "ORDER BY id DESC LIMIT ?",
            (key.channel, key.chat_id, limit),
        ) as cursor:
            rows = list(await cursor.fetchall())
        return [
            ChatLine(_parse_timestamp(at), bool(mine), text) for at, mine, text in reversed(rows)
        ]

    async def notes(self, customer: ChatKey, limit: int = 5) -> list[StaffNote]:
        """The newest staff notes on this customer's handoffs, oldest first."""
        async with self.db.execute(
            """SELECT n.handoff_id, n.author, n.text, n.at FROM staff_notes n
               JOIN handoffs h ON h.id = n.handoff_id
               WHERE h.channel=? AND h.chat_id=?
               ORDER BY n.at DESC, n.id DESC LIMIT ?""",
            (customer.channel, customer.chat_id, limit),
        ) as cursor:
            rows = list(await cursor.fetchall())
        return [
            StaffNote(handoff_id, author, text, _parse_timestamp(at))
            for handoff_id, author, text, at in reversed(rows)
        ]

    async def handoff_stats(self, since: datetime, until: datetime | None = None) -> HandoffStats:
        """Figures for handoffs opened (and customer chats that wrote) at or after `since`
        and before `until` (tz-aware; None: up to now)."""
        period = _period(since, until)
        async with self.db.execute(
            "SELECT opened_at, first_staff_reply_at, rating FROM handoffs "
            "WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
            period,
        ) as cursor:
            rows = list(await cursor.fetchall())
        per_day: dict[str, int] = {}
        first_reply_seconds: list[float] = []
        ratings: list[int] = []
        for opened_at, first_reply_at, rating in rows:
            # Stored as UTC 'YYYY-MM-DDTHH:MM:SS.mmmZ': the first ten characters are the day.
            day = opened_at[:10]
            per_day[day] = per_day.get(day, 0) + 1
            if first_reply_at is not None:
                waited = _parse_timestamp(first_reply_at) - _parse_timestamp(opened_at)
                first_reply_seconds.append(waited.total_seconds())
            if rating is not None:
                ratings.append(rating)
        async with self.db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, chat_id FROM chat_lines "
            "WHERE from_customer=1 AND at >= ? AND at < ?)",
            period,
        ) as cursor:
            row = await cursor.fetchone()
        return HandoffStats(
            handoffs=len(rows),
            per_day=sorted(per_day.items()),
            conversations=int(row[0]) if row else 0,
            first_reply_seconds=first_reply_seconds,
            ratings=ratings,
        )

    async def _tickets(self, query: str, params: Sequence[Any]) -> list[Ticket]:
        """Tickets from `query` (selecting `_TICKET_COLUMNS`) in its order, each with its
        answers and files (one query each for all of them)."""
        async with self.db.execute(query, params) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return []
        ids = json.dumps([row[0] for row in rows])
        answers: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
        async with self.db.execute(
            "SELECT ticket_id, name, value FROM ticket_answers "
            "WHERE ticket_id IN (SELECT value FROM json_each(?)) ORDER BY ticket_id, name",
            (ids,),
        ) as cursor:
            async for ticket_id, name, value in cursor:
                answers[ticket_id][name] = value
        media: dict[str, dict[str, list[TicketMedia]]] = {row[0]: {} for row in rows}
        async with self.db.execute(
            f"SELECT ticket_id, name, {_TICKET_MEDIA_COLUMNS} FROM ticket_media "  # noqa: S608
            "WHERE ticket_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY ticket_id, name, position",
            (ids,),
        ) as cursor:
            async for media_row in cursor:
                files = media[media_row[0]].setdefault(media_row[1], [])
                files.append(_ticket_media_from_row(media_row[2:]))
        return [
            Ticket(
                id=row[0],
                key=ChatKey(row[1], row[2]),
                kind=TicketKind(row[3]),
                status=TicketStatus(row[4]),
                created_at=_parse_timestamp(row[5]),
                updated_at=_parse_timestamp(row[6]),
                answers=answers[row[0]],
                media={name: tuple(files) for name, files in media[row[0]].items()},
                submitted_at=_optional_timestamp(row[7]),
                revision=row[8],
                decided_by=row[9],
                staff_note=row[10],
            )
            for row in rows
        ]

    async def ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id (canonical form), or None."""
        tickets = await self._tickets(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id=?",  # noqa: S608
            (ticket_id,),
        )
        return tickets[0] if tickets else None

    async def tickets_of(self, key: ChatKey) -> list[Ticket]:
        """The chat's tickets, drafts included, newest first."""
        return await self._tickets(
            f"SELECT {_TICKET_COLUMNS} FROM tickets "  # noqa: S608
            "WHERE channel=? AND chat_id=? ORDER BY created_at DESC, rowid DESC",
            (key.channel, key.chat_id),
        )

    async def tickets(
        self, since: datetime | None = None, statuses: Sequence[TicketStatus] = ()
    ) -> list[Ticket]:
        """Tickets created at or after `since` (tz-aware; all when None) with one of these
        statuses (any when empty), oldest first."""
        conditions, params = [], []
        if since is not None:
            conditions.append("created_at >= ?")
            params.append(_utc_timestamp(since))
        if statuses:
            conditions.append("status IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([TicketStatus(status).value for status in statuses]))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        return await self._tickets(
            f"SELECT {_TICKET_COLUMNS} FROM tickets {where}"  # noqa: S608
            "ORDER BY created_at, rowid",
            params,
        )

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        async with self.db.execute(
            "SELECT at, actor, action, detail FROM ticket_events WHERE ticket_id=? ORDER BY id",
            (ticket_id,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            TicketEvent(_parse_timestamp(at), actor, action, detail)
            for at, actor, action, detail in rows
        ]

    async def media_to_store(
        self, channel: str, max_size: int, limit: int = 20
    ) -> list[MediaToStore]:
        """Files of the channel's tickets with a file id, no link and no copy on disk yet
        (nor marked skipped), whose size is unknown or at most `max_size` bytes, oldest
        first."""
        async with self.db.execute(
            f"SELECT ticket_id, name, position, {_TICKET_MEDIA_COLUMNS} "  # noqa: S608
            "FROM ticket_media "
            # The partial index ticket_media_to_store's condition, spelled the same.
            "WHERE file_ref != '' AND link IS NULL AND stored_path IS NULL "
            "AND (size IS NULL OR size <= ?) "
            "AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = ticket_id AND t.channel = ?) "
            "ORDER BY created_at, rowid LIMIT ?",
            (max_size, channel, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            MediaToStore(row[0], row[1], row[2], _ticket_media_from_row(row[3:])) for row in rows
        ]

    async def set_stored_path(self, item: MediaToStore, path: str) -> None:
        """Remember where the copy of that file was written; "" marks a file that will not
        be copied. A file since replaced by the customer (no such row) is no error."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ticket_media SET stored_path=? "
                "WHERE ticket_id=? AND name=? AND position=? AND file_ref=?",
                (path, item.ticket_id, item.name, item.position, item.media.file_ref),
            )
