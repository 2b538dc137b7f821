"""The schema's migrations: numbered files shipped as they are, and a file made at any
earlier version upgraded in place with every row it held."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

import storage.sqlite
from domain.chats import ChatKey, ConversationState
from domain.orders import OrderStatus, StatusChange, order_to_record
from storage.sql import SqlStorage
from storage.sqlite import MIGRATIONS, DatabaseMissing, SqliteStorage
from tests.factories import order

KEY = ChatKey("telegram", "42")
CHOSE = ChatKey("telegram", "43")
STAFF = ChatKey("telegram", "-100")
WHATSAPP = ChatKey("whatsapp", "15551234567")
FOLDER = Path(storage.sqlite.__file__).parent / "migrations"

# Append only: a new migration adds its file's hash here when it ships, and a shipped file
# is never edited (databases at its version already ran it): a change goes in a new file.
SHIPPED = {
    "0001_conversations_and_feedback.sql": (
        "b8b1b77f6b07c934588006c413be94851e95dd50a32a3e6f8010f58ae67d0468"
    ),
    "0002_inbox_outbox_and_misses.sql": (
        "217657b787a79c85cf768866a7ae8d6098ae5b30013203642fdbde34190e4e77"
    ),
    "0003_orders.sql": "77c2d30638a776a7cbbf242a03c303a7e9ce640412fc0aa3db15e7fd787701dd",
    "0004_handoffs.sql": "24cf568ff7224b7cd2d6efb06b269a3bb384b23f141baa87a5609f02113dabf3",
    "0005_tickets.sql": "a130105fed3f563a878af30586b930921c9914588d71c859c79124a45e093260",
    "0006_chosen_language.sql": (
        "10d382782d0eb1c239b17364fc04214218a000c0dd5906f92b8fb1b35aa41f96"
    ),
    "0007_faq_question_log.sql": (
        "e3f29a59726012b333922830d5c4422486e09aab763ac2a418f3a4d31df876be"
    ),
    "0008_failed_checks_by_lookup.sql": (
        "9544f1520b16b9e27b09ad05d377cbd6f74d2e0e62f85eb05af9136a4cccde8b"
    ),
    "0009_claims_and_leases.sql": (
        "638feacab173909988d082b0b765d7073dc7883f1f1f121d72b1f6779a977917"
    ),
    "0010_staff_desk_across_channels.sql": (
        "49ff439d94bc90ebca25c6b926426f86c7b68d7958436f36694c2ac9bf70f33a"
    ),
}

ORDER = order("MD-1001")
ORDER_BODY = json.dumps({k: v for k, v in order_to_record(ORDER).items() if k != "history"})
AT = "'2024-05-01T09:00:00.000Z'"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
PAID_AT_T0 = StatusChange(OrderStatus.PAID, datetime(2024, 5, 1, 9, 0, tzinfo=UTC))

# Rows a file at each version can hold, in the tables (or columns) that version added; a
# new migration adds its own here, so every later one is tested to keep them.
ROWS: dict[int, list[str]] = {
    1: [
        "INSERT INTO conversations (channel, chat_id, flow, data) "
        "VALUES ('telegram', '42', 'faq', '{\"asked\": 2}')",
        "INSERT INTO processed_updates (channel, chat_id, update_id) "
        "VALUES ('telegram', '42', '7')",
        "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful) "
        "VALUES ('telegram', '42', 'refunds', 1)",
    ],
    2: [
        "INSERT INTO inbox (channel, update_id, body) VALUES ('telegram', '9', '{}')",
        "INSERT INTO outbox (channel, chat_id, body) "
        "VALUES ('telegram', '42', '{\"text\": \"hi\"}')",
        "INSERT INTO faq_misses (channel, chat_id, question, reason) "
        "VALUES ('telegram', '42', 'do you sell hosting', 'fallback')",
    ],
    3: [
        f"INSERT INTO orders (number, body, status) VALUES ('MD-1001', '{ORDER_BODY}', 'paid')",
        "INSERT INTO order_serials (serial, number) VALUES ('SN21A0001', 'MD-1001')",
        f"INSERT INTO order_history (number, status, at) VALUES ('MD-1001', 'paid', {AT})",
        "INSERT INTO order_links (channel, chat_id, number) VALUES ('telegram', '42', 'MD-1001')",
        "INSERT INTO order_notices (channel, chat_id, number, status) "
        "VALUES ('telegram', '42', 'MD-1001', 'shipped')",
        f"INSERT INTO ownership_checks_failed (channel, chat_id, at) "
        f"VALUES ('telegram', '42', {AT})",
    ],
    4: [
        "INSERT INTO handoffs (channel, chat_id, status, reason, opened_at, waiting_since) "
        f"VALUES ('telegram', '42', 'waiting', 'asked', {AT}, {AT})",
        "INSERT INTO staff_topics (channel, chat_id, staff_chat_id, thread_id) "
        "VALUES ('telegram', '42', '-100', '5')",
        "INSERT INTO staff_relays (channel, staff_chat_id, message_id, chat_id) "
        "VALUES ('telegram', '-100', '77', '42')",
        f"INSERT INTO staff_notes (handoff_id, author, text, at) VALUES (1, 'Anna', 'vip', {AT})",
        "INSERT INTO chat_lines (channel, chat_id, at, from_customer, text) "
        f"VALUES ('telegram', '42', {AT}, 1, 'hello')",
    ],
    5: [
        "INSERT INTO tickets (id, channel, chat_id, kind, status, created_at, updated_at) "
        f"VALUES ('R-7KQ4-M2XP', 'telegram', '42', 'repair', 'draft', {AT}, {AT})",
        "INSERT INTO ticket_answers (ticket_id, name, value) "
        "VALUES ('R-7KQ4-M2XP', 'model', 'S19')",
        "INSERT INTO ticket_media (ticket_id, name, position, kind, file_ref, created_at) "
        f"VALUES ('R-7KQ4-M2XP', 'photos', 0, 'photo', 'AgAD-1', {AT})",
        "INSERT INTO ticket_events (ticket_id, at, actor, action) "
        f"VALUES ('R-7KQ4-M2XP', {AT}, 'customer', 'opened')",
    ],
    6: [
        "INSERT INTO conversations (channel, chat_id, language, language_chosen) "
        "VALUES ('telegram', '43', 'ru', 1)",
    ],
    7: [
        "INSERT INTO faq_questions (id, channel, chat_id, language, question, decision, "
        f"confidence, asked_at) VALUES ('q1', 'telegram', '42', 'en', 'hosting?', 'fallback', "
        f"0.2, {AT})",
        "INSERT INTO faq_misses (channel, chat_id, question, reason, question_id) "
        "VALUES ('telegram', '42', 'hosting?', 'fallback', 'q1')",
        f"INSERT INTO staff_digests (day, sent_at) VALUES ('2024-04-30', {AT})",
    ],
    8: [
        "INSERT INTO ownership_checks_failed (channel, chat_id, at, lookup) "
        f"VALUES ('telegram', '42', {AT}, 'MD-1001')",
    ],
    9: [
        "INSERT INTO leases (name, holder, expires_at) VALUES ('timers', 'w1', '9999-01-01')",
        "INSERT INTO inbox (channel, update_id, body, chat_id) "
        "VALUES ('telegram', '10', '{}', '42')",
    ],
    10: [
        "INSERT INTO staff_topics (channel, chat_id, staff_channel, staff_chat_id, thread_id) "
        "VALUES ('whatsapp', '15551234567', 'telegram', '-100', '6')",
        "INSERT INTO staff_relays (channel, staff_chat_id, message_id, customer_channel, "
        "chat_id) VALUES ('telegram', '-100', '78', 'whatsapp', '15551234567')",
        "INSERT INTO handoffs (channel, chat_id, status, reason, opened_at, phone) "
        f"VALUES ('whatsapp', '15551234567', 'waiting', 'asked', {AT}, '+15551234567')",
    ],
}


async def readable_rows(upgraded: SqlStorage) -> dict[int, bool]:
    """Whether the rows each version's ROWS added read back through the contract."""
    return {
        1: await upgraded.load(KEY) == ConversationState("faq", None, {"asked": 2}),
        2: [u.update_id for u in await upgraded.inbox("telegram")][:1] == ["9"],
        3: await upgraded.order("md-1001") == replace(ORDER, history=(PAID_AT_T0,)),
        4: await upgraded.open_handoff(KEY) is not None,
        5: [t.answers for t in await upgraded.tickets_of(KEY)] == [{"model": "S19"}],
        6: (await upgraded.load(CHOSE)).language_chosen,
        7: await upgraded.last_digest_day() == date(2024, 4, 30),
        8: len(await upgraded.failed_checks_since(LONG_AGO, lookup="md-1001")) == 1,
        9: not await upgraded.acquire_lease("timers", "w2", 10)
        and [u.chat_id for u in await upgraded.inbox("telegram")] == [None, "42"],
        10: await _across_channels(upgraded),
    }


async def _across_channels(upgraded: SqlStorage) -> bool:
    """Version 10's rows: a WhatsApp customer's topic and relay in the Telegram staff chat,
    and the phone number their handoff keeps."""
    handoff = await upgraded.open_handoff(WHATSAPP)
    return (
        await upgraded.customer_of_relay(STAFF, "78") == WHATSAPP
        and await upgraded.customer_of_topic(STAFF, "6") == WHATSAPP
        and handoff is not None
        and handoff.phone == "+15551234567"
    )


def file_at(path: Path, version: int) -> None:
    """A database file made by the first `version` migrations, holding their ROWS."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript("".join(MIGRATIONS[:version]) + f"; PRAGMA user_version = {version};")
        for added_by in range(1, version + 1):
            for insert in ROWS[added_by]:
                db.execute(insert)
        db.commit()


def every_row(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows, by column name, in rowid order."""
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name != 'sqlite_sequence'"
            )
        ]
        return {
            table: [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
            for table in tables
        }


def test_the_migrations_are_the_numbered_files_in_order() -> None:
    files = sorted(FOLDER.glob("*.sql"))
    assert [f.name[:5] for f in files] == [f"{n:04d}_" for n in range(1, len(files) + 1)]
    assert list(MIGRATIONS) == [f.read_text(encoding="utf-8") for f in files]


def test_no_shipped_migration_was_edited_or_removed() -> None:
    hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in FOLDER.glob("*.sql")}
    assert {name: hashes.get(name) for name in SHIPPED} == SHIPPED
    # New files come after the shipped ones.
    assert sorted(hashes)[: len(SHIPPED)] == sorted(SHIPPED)


def test_every_version_has_its_rows_for_the_upgrade_test() -> None:
    assert sorted(ROWS) == list(range(1, len(MIGRATIONS) + 1))


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
async def test_a_file_at_any_version_is_upgraded_with_its_rows(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / f"v{version}.db"
    file_at(path, version)
    before = every_row(path)

    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS)
        readable = await readable_rows(upgraded)
        if 4 <= version < 10:
            # Topics and relays of before: the staff chat and the customer on one channel.
            assert await upgraded.customer_of_topic(STAFF, "5") == KEY
            assert await upgraded.customer_of_relay(STAFF, "77") == KEY
            assert await upgraded.topic_of(KEY, STAFF) == "5"

    after = every_row(path)
    for table, rows in before.items():
        # Columns added later hold their defaults; the old ones keep every value.
        assert len(after[table]) == len(rows), table
        kept = [
            {column: new[column] for column in old}
            for new, old in zip(after[table], rows, strict=True)
        ]
        assert kept == rows, table
    assert readable == {added_by: added_by <= version for added_by in readable}


async def test_a_new_database_is_migrated_to_the_latest_version(storage: SqlStorage) -> None:
    assert await storage.schema_version() == len(storage.MIGRATIONS)


async def test_without_create_a_missing_file_is_refused_and_not_made(tmp_path: Path) -> None:
    mistyped, no_folder = tmp_path / "minerdsk.db", tmp_path / "nope" / "bot.db"
    for path in (mistyped, no_folder):
        with pytest.raises(DatabaseMissing, match=f"no database at {path}$"):
            await SqliteStorage.open(path, create=False)
    assert await asyncio.to_thread(os.listdir, tmp_path) == []
    await (await SqliteStorage.open(tmp_path / "bot.db")).close()
    async with SqliteStorage(tmp_path / "bot.db", create=False) as existing:
        assert await existing.schema_version() == len(MIGRATIONS)


async def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "bot.db") as first:
        await first.save(KEY, ConversationState(flow="faq"), "1")
    async with SqliteStorage(tmp_path / "bot.db") as second:
        assert await second.schema_version() == len(MIGRATIONS)
        assert (await second.load(KEY)).flow == "faq"


async def test_a_file_from_the_first_release_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        old.execute(
            "INSERT INTO conversations (channel, chat_id, flow) VALUES ('telegram', '42', 'faq')"
        )
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS)
        assert (await upgraded.load(KEY)).flow == "faq"
        assert await upgraded.outbox("telegram") == []
