"""Every row of one database into another, whatever their backends: how a shop moves from
SQLite to PostgreSQL (`minerdesk db copy`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from storage.sql import SqlStorage

BATCH_ROWS = 1000


@dataclass(frozen=True)
class Table:
    name: str
    # Every column, the same in each backend's schema; `rowid` keeps the arrival order of
    # the tables read by it (SQLite's implicit one, PostgreSQL's column of that name).
    columns: tuple[str, ...]
    # A unique order to read it in, so batches neither skip nor repeat rows.
    order: str


def _table(name: str, columns: str, order: str = "id") -> Table:
    return Table(name, tuple(column.strip() for column in columns.split(",")), order)


# Referenced tables before the ones referring to them.
TABLES = (
    _table(
        "conversations",
        "channel, chat_id, flow, step, data, language, updated_at, language_chosen",
        "channel, chat_id",
    ),
    _table("processed_updates", "channel, chat_id, update_id, processed_at", "channel, update_id"),
    _table(
        "inbox",
        "rowid, channel, update_id, body, received_at, chat_id, claimed_by, lease_until",
        "rowid",
    ),
    _table(
        "outbox",
        "id, channel, chat_id, body, parts_sent, failed_reason, created_at, claimed_by, "
        "lease_until",
    ),
    _table(
        "faq_questions",
        "id, channel, chat_id, language, question, decision, entry_id, confidence, asked_at",
    ),
    _table("faq_feedback", "id, channel, chat_id, entry_id, helpful, created_at, question_id"),
    _table(
        "faq_misses", "id, channel, chat_id, question, reason, entry_id, created_at, question_id"
    ),
    _table("staff_digests", "day, sent_at", "day"),
    _table("orders", "rowid, number, body, status, updated_at", "rowid"),
    _table("order_serials", "serial, number", "serial, number"),
    _table("order_history", "id, number, status, at"),
    _table("order_links", "rowid, channel, chat_id, number, linked_at", "rowid"),
    _table("order_notices", "id, channel, chat_id, number, status, created_at"),
    _table("ownership_checks_failed", "id, channel, chat_id, at, lookup"),
    _table(
        "handoffs",
        "id, channel, chat_id, status, reason, order_number, opened_at, claimed_by, "
        "claimed_by_name, first_staff_reply_at, last_customer_at, last_staff_at, "
        "waiting_since, reminded_at, closed_at, closed_by, rating, phone",
    ),
    _table(
        "staff_topics", "rowid, channel, chat_id, staff_channel, staff_chat_id, thread_id", "rowid"
    ),
    _table(
        "staff_relays",
        "channel, staff_chat_id, message_id, customer_channel, chat_id, created_at",
        "channel, staff_chat_id, message_id",
    ),
    _table("staff_notes", "id, handoff_id, author, text, at"),
    _table("chat_lines", "id, channel, chat_id, at, from_customer, text"),
    _table(
        "tickets",
        "rowid, id, channel, chat_id, kind, status, created_at, updated_at, submitted_at, "
        "revision, decided_by, staff_note",
        "rowid",
    ),
    _table("ticket_answers", "ticket_id, name, value", "ticket_id, name"),
    _table(
        "ticket_media",
        "rowid, ticket_id, name, position, kind, file_ref, size, mime, file_name, link, "
        "stored_path, created_at",
        "rowid",
    ),
    _table("ticket_events", "id, ticket_id, at, actor, action, detail"),
    _table("leases", "name, holder, expires_at", "name"),
)


class CopyRefused(Exception):
    """The copy cannot start (nothing was written) or its counts did not match."""


async def row_counts(storage: SqlStorage) -> dict[str, int]:
    """How many rows each table of TABLES holds."""
    counts = {}
    for table in TABLES:
        row = await storage.database.fetch_one(f"SELECT COUNT(*) FROM {table.name}")  # noqa: S608
        counts[table.name] = int(row[0]) if row else 0
    return counts


async def copy_rows(
    source: SqlStorage,
    target: SqlStorage,
    batch: int = BATCH_ROWS,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Copy every row of `source` into `target`, keeping ids, in one transaction (a failed
    copy leaves `target` as it was); returns the rows per table, counted again in both.

    Both must be at their latest schema, and `target` empty. Raises CopyRefused otherwise,
    or when the counts differ afterwards. `progress(table, rows)` hears of each table done.
    """
    for storage, role in ((source, "source"), (target, "target")):
        version, latest = await storage.schema_version(), len(storage.MIGRATIONS)
        if version != latest:
            raise CopyRefused(
                f"the {role} is at schema version {version}, not {latest}: upgrade it first"
            )
    held = {name: rows for name, rows in (await row_counts(target)).items() if rows}
    if held:
        raise CopyRefused(f"the target is not empty ({_listed(held)}): copy into an empty one")
    async with target.database.transaction() as tx:
        for table in TABLES:
            columns = ", ".join(table.columns)
            insert = (
                f"INSERT INTO {table.name} ({columns}) "  # noqa: S608
                f"VALUES ({', '.join('?' for _ in table.columns)})"
            )
            copied = 0
            while rows := await source.database.fetch_all(
                f"SELECT {columns} FROM {table.name} ORDER BY {table.order} "  # noqa: S608
                "LIMIT ? OFFSET ?",
                (batch, copied),
            ):
                await tx.execute_many(insert, rows)
                copied += len(rows)
            if progress is not None:
                progress(table.name, copied)
    await target.follow_copied_ids()
    expected, got = await row_counts(source), await row_counts(target)
    if expected != got:
        differ = {name: got[name] for name in expected if expected[name] != got[name]}
        raise CopyRefused(f"row counts differ after the copy: target has {_listed(differ)}")
    return got


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {rows}" for name, rows in counts.items())
