"""Tickets as a CSV file for the service centre (`minerdesk tickets export`)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from domain.tickets import Ticket, TicketMedia

FIXED_COLUMNS = (
    "id",
    "kind",
    "status",
    "channel",
    "chat_id",
    "created_at",
    "submitted_at",
    "revision",
    "decided_by",
    "staff_note",
)
MEDIA_PREFIX = "media:"
# Between the files of one media question in its cell.
FILE_SEPARATOR = " | "
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_tickets_csv(
    tickets: Sequence[Ticket], out: TextIO, answer_order: Sequence[str] = ()
) -> int:
    """Write a header and one row per ticket to `out`; return the number of rows.

    Answer columns are the names in `answer_order` (always, in that order), then any other
    answer names the tickets have, alphabetically; then one `media:<name>` column per
    media question. Times are ISO 8601 UTC; cells a spreadsheet would run as a formula get
    a leading apostrophe, since customers type the answers.
    """
    answer_names = list(dict.fromkeys(answer_order))
    known = set(answer_names)
    answer_names += sorted({name for t in tickets for name in t.answers} - known)
    media_names = sorted({name for t in tickets for name in t.media})
    writer = csv.writer(out)
    writer.writerow(
        _safe(column)
        for column in (*FIXED_COLUMNS, *answer_names, *(MEDIA_PREFIX + n for n in media_names))
    )
    for ticket in tickets:
        cells = [
            ticket.id,
            ticket.kind.value,
            ticket.status.value,
            ticket.key.channel,
            ticket.key.chat_id,
            _timestamp(ticket.created_at),
            _timestamp(ticket.submitted_at),
            str(ticket.revision),
            ticket.decided_by or "",
            ticket.staff_note or "",
            *(ticket.answers.get(name, "") for name in answer_names),
            *(
                FILE_SEPARATOR.join(_file_cell(item) for item in ticket.media.get(name, ()))
                for name in media_names
            ),
        ]
        writer.writerow(_safe(cell) for cell in cells)
    return len(tickets)


def _timestamp(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _file_cell(media: TicketMedia) -> str:
    """The copy on disk, else the link, else what the channel knows it by."""
    # stored_path "" marks a file that was not copied: fall through to its reference.
    return media.stored_path or media.link or f"{media.kind}:{media.file_ref}"


def _safe(cell: str) -> str:
    """The cell as text a spreadsheet shows, never runs."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
