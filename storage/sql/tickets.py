"""Repair and second-return tickets: their answers, files and history, and the files still
to copy to disk.

The rules of a change (what a submission or a staff decision sets, which history line each
record adds) live in `domain.tickets`; here the ticket's row is read, the rule applied and
the result written back, in the turn's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.chats import ChatKey
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
    history_line,
    with_status,
)
from storage.sql.database import Reader, Repository, Row, Transaction
from storage.sql.times import (
    optional_timestamp,
    optional_utc_timestamp,
    parse_timestamp,
    utc_timestamp,
)
from storage.tickets import MediaToStore

_TICKET_COLUMNS = (
    "id, channel, chat_id, kind, status, created_at, updated_at, submitted_at, revision, "
    "decided_by, staff_note"
)
_TICKET_MEDIA_COLUMNS = "kind, file_ref, size, mime, file_name, link, stored_path"


def _ticket_from_row(
    row: Row,
    answers: dict[str, str] | None = None,
    media: dict[str, list[TicketMedia]] | None = None,
) -> Ticket:
    """A Ticket from a row selecting `_TICKET_COLUMNS`, with these answers and files."""
    return Ticket(
        id=row[0],
        key=ChatKey(row[1], row[2]),
        kind=TicketKind(row[3]),
        status=TicketStatus(row[4]),
        created_at=parse_timestamp(row[5]),
        updated_at=parse_timestamp(row[6]),
        answers=answers or {},
        media={name: tuple(files) for name, files in (media or {}).items()},
        submitted_at=optional_timestamp(row[7]),
        revision=row[8],
        decided_by=row[9],
        staff_note=row[10],
    )


def _media_from_row(row: Row) -> TicketMedia:
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


async def _stored(tx: Transaction, ticket_id: str) -> Ticket | None:
    """The ticket's own row (no answers nor files: the rules need none), locked for the
    change the caller derives from it."""
    rows = await tx.fetch_locked(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id=?",  # noqa: S608
        (ticket_id,),
    )
    return _ticket_from_row(rows[0]) if rows else None


async def _existing(tx: Transaction, ticket_id: str) -> Ticket:
    """The ticket's own row. Raises ValueError when there is no such ticket: a flow's bug
    must fail its turn rather than leave orphan rows."""
    ticket = await _stored(tx, ticket_id)
    if ticket is None:
        raise ValueError(f"no ticket {ticket_id}")
    return ticket


async def _add_history(tx: Transaction, ticket_id: str, event: TicketEvent) -> None:
    await tx.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
        (ticket_id, utc_timestamp(event.at), event.actor, event.action, event.detail),
    )


async def _touch(tx: Transaction, ticket_id: str, at: datetime) -> None:
    await tx.execute("UPDATE tickets SET updated_at=? WHERE id=?", (utc_timestamp(at), ticket_id))


async def write_opened(tx: Transaction, key: ChatKey, record: TicketOpened) -> None:
    """A new draft. Raises ValueError when a ticket with that id exists."""
    if await _stored(tx, record.ticket_id) is not None:
        raise ValueError(f"ticket {record.ticket_id} already exists")
    at = utc_timestamp(record.at)
    await tx.execute(
        "INSERT INTO tickets (id, channel, chat_id, kind, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.ticket_id,
            key.channel,
            key.chat_id,
            record.kind.value,
            TicketStatus.DRAFT.value,
            at,
            at,
        ),
    )
    await _add_history(tx, record.ticket_id, history_line(record, revision=0))


async def write_answer(tx: Transaction, key: ChatKey, record: TicketAnswered) -> None:
    """Set or (value None) remove one answer. Raises ValueError for an unknown ticket."""
    ticket = await _existing(tx, record.ticket_id)
    if record.value is None:
        await tx.execute(
            "DELETE FROM ticket_answers WHERE ticket_id=? AND name=?",
            (record.ticket_id, record.name),
        )
    else:
        await tx.execute(
            """INSERT INTO ticket_answers (ticket_id, name, value) VALUES (?, ?, ?)
               ON CONFLICT (ticket_id, name) DO UPDATE SET value=excluded.value""",
            (record.ticket_id, record.name, record.value),
        )
    await _touch(tx, record.ticket_id, record.at)
    await _add_history(tx, record.ticket_id, history_line(record, ticket.revision))


async def write_media(tx: Transaction, key: ChatKey, record: TicketMediaSet) -> None:
    """Replace the files of one question. Raises ValueError for an unknown ticket."""
    ticket = await _existing(tx, record.ticket_id)
    await tx.execute(
        "DELETE FROM ticket_media WHERE ticket_id=? AND name=?", (record.ticket_id, record.name)
    )
    at = utc_timestamp(record.at)
    await tx.execute_many(
        f"""INSERT INTO ticket_media (ticket_id, name, position, {_TICKET_MEDIA_COLUMNS},
              created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",  # noqa: S608
        [
            (
                record.ticket_id,
                record.name,
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
            for position, item in enumerate(record.media)
        ],
    )
    await _touch(tx, record.ticket_id, record.at)
    await _add_history(tx, record.ticket_id, history_line(record, ticket.revision))


async def write_status(tx: Transaction, key: ChatKey, record: TicketStatusSet) -> None:
    """Apply `with_status` to the stored ticket. Raises ValueError for an unknown ticket."""
    ticket = await _existing(tx, record.ticket_id)
    changed = with_status(ticket, record)
    await tx.execute(
        "UPDATE tickets SET status=?, updated_at=?, submitted_at=?, revision=?, decided_by=?, "
        "staff_note=? WHERE id=?",
        (
            changed.status.value,
            utc_timestamp(changed.updated_at),
            optional_utc_timestamp(changed.submitted_at),
            changed.revision,
            changed.decided_by,
            changed.staff_note,
            record.ticket_id,
        ),
    )
    await _add_history(tx, record.ticket_id, history_line(record, ticket.revision))


async def _tickets(db: Reader, where: str, params: Sequence[Any]) -> list[Ticket]:
    """Tickets selected by `where` (a WHERE and ORDER BY on the tickets table) in its order,
    each with its answers and files: one query for each of the three."""
    query = f"SELECT {_TICKET_COLUMNS} FROM tickets {where}"  # noqa: S608
    rows = await db.fetch_all(query, params)
    if not rows:
        return []
    listed = f"SELECT id FROM ({query}) AS listed"  # noqa: S608
    answers: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
    media: dict[str, dict[str, list[TicketMedia]]] = {row[0]: {} for row in rows}
    for ticket_id, name, value in await db.fetch_all(
        f"SELECT ticket_id, name, value FROM ticket_answers WHERE ticket_id IN ({listed}) "  # noqa: S608
        "ORDER BY ticket_id, name",
        params,
    ):
        # A ticket saved since the first query is not in this listing.
        if ticket_id in answers:
            answers[ticket_id][name] = value
    for media_row in await db.fetch_all(
        f"SELECT ticket_id, name, {_TICKET_MEDIA_COLUMNS} FROM ticket_media "  # noqa: S608
        f"WHERE ticket_id IN ({listed}) ORDER BY ticket_id, name, position",
        params,
    ):
        if media_row[0] in media:
            media[media_row[0]].setdefault(media_row[1], []).append(_media_from_row(media_row[2:]))
    return [_ticket_from_row(row, answers[row[0]], media[row[0]]) for row in rows]


class TicketRepository(Repository):
    async def ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id (canonical form), or None."""
        tickets = await _tickets(self.database, "WHERE id=?", (ticket_id,))
        return tickets[0] if tickets else None

    async def tickets_of(self, key: ChatKey) -> list[Ticket]:
        """The chat's tickets, drafts included, newest first."""
        return await _tickets(
            self.database,
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
            params.append(utc_timestamp(since))
        if statuses:
            conditions.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(TicketStatus(status).value for status in statuses)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        return await _tickets(self.database, f"{where}ORDER BY created_at, rowid", params)

    async def ticket_events(self, ticket_id: str) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        rows = await self.database.fetch_all(
            "SELECT at, actor, action, detail FROM ticket_events WHERE ticket_id=? ORDER BY id",
            (ticket_id,),
        )
        return [
            TicketEvent(parse_timestamp(at), actor, action, detail)
            for at, actor, action, detail in rows
        ]

    async def media_to_store(
        self, channel: str, max_size: int, limit: int = 20
    ) -> list[MediaToStore]:
        """Files of the channel's tickets with a file id, no link and no copy on disk yet
        (nor marked skipped), whose size is unknown or at most `max_size` bytes, oldest
        first."""
        rows = await self.database.fetch_all(
            f"SELECT ticket_id, name, position, {_TICKET_MEDIA_COLUMNS} "  # noqa: S608
            "FROM ticket_media "
            # The partial index ticket_media_to_store's condition, spelled the same.
            "WHERE file_ref != '' AND link IS NULL AND stored_path IS NULL "
            "AND (size IS NULL OR size <= ?) "
            "AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = ticket_id AND t.channel = ?) "
            "ORDER BY created_at, rowid LIMIT ?",
            (max_size, channel, limit),
        )
        return [MediaToStore(row[0], row[1], row[2], _media_from_row(row[3:])) for row in rows]

    async def set_stored_path(self, item: MediaToStore, path: str) -> None:
        """Remember where the copy of that file was written; "" marks a file that will not
        be copied. A file since replaced by the customer (no such row) is no error."""
        async with self.database.transaction() as tx:
            await tx.execute(
                "UPDATE ticket_media SET stored_path=? "
                "WHERE ticket_id=? AND name=? AND position=? AND file_ref=?",
                (path, item.ticket_id, item.name, item.position, item.media.file_ref),
            )
