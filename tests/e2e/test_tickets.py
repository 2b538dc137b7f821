"""Repair tickets and second returns end to end: a customer chat and a staff forum on the
Bot API emulator, the real bot between them, restarted in the middle of a ticket."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import BotProcess
from tests.e2e.test_handoff import ALWAYS_OPEN, FORUM, REP, texts, wait_text
from tests.e2e.test_orders import import_orders
from tests.emulator import BotApiEmulator
from tests.factories import repaired_order

pytestmark = [pytest.mark.e2e, pytest.mark.model]

CUSTOMER = 4001
TICKET_ID = re.compile(r"[RS]-[0-9A-Z]{4}-[0-9A-Z]{4}")


def start_with_staff_forum(bot: BotProcess, emu: BotApiEmulator) -> None:
    emu.add_forum(FORUM)
    emu.set_member(FORUM, REP, "member")
    bot.env.update(ALWAYS_OPEN, MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM))
    bot.start()


def answer(emu: BotApiEmulator, text: str, expect: str) -> None:
    """The customer types `text`; wait for a bot message containing `expect`."""
    count = len(emu.messages(CUSTOMER))
    emu.send_text(CUSTOMER, text)
    wait_new_text(emu, count, expect)


def press(emu: BotApiEmulator, button: str, expect: str) -> None:
    count = len(emu.messages(CUSTOMER))
    emu.press(CUSTOMER, button)
    wait_new_text(emu, count, expect)


def wait_new_text(emu: BotApiEmulator, count: int, expect: str) -> None:
    """A bot message containing `expect` among the messages after the first `count`
    (a pressed button's message is edited in place, so it is looked at too)."""
    emu.wait_until(
        lambda: any(expect in text for text in texts(emu, CUSTOMER)[max(0, count - 1) :]),
        what=f"{expect!r} from the bot",
    )


def staff_topic(emu: BotApiEmulator) -> int:
    emu.wait_until(lambda: len(emu.topics(FORUM)) == 1, what="the customer's topic")
    [thread] = emu.topics(FORUM)
    return thread


def card_with(emu: BotApiEmulator, thread: int, fragment: str) -> dict[str, Any]:
    wait_text(emu, FORUM, fragment, thread)
    return [m for m in emu.messages(FORUM, thread) if fragment in str(m.get("text", ""))][-1]


def rep_decides(
    emu: BotApiEmulator, card: dict[str, Any], thread: int, button: str, words: str
) -> None:
    """A rep presses a decision needing words, then types them; the customer gets them."""
    emu.press(FORUM, button, message=card, user_id=REP)
    wait_text(emu, FORUM, "as your next message", thread)
    count = len(emu.messages(CUSTOMER))
    emu.send_text(FORUM, words, user_id=REP, message_thread_id=thread)
    wait_new_text(emu, count, words)


def test_a_repair_ticket_across_a_restart_with_staff_asking_for_more(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    emu = emulator
    start_with_staff_forum(bot, emu)
    answer(emu, "/menu", "How can I help?")
    press(emu, "🔧 Repair / second return", "What do you need?")
    press(emu, "🔧 A repair: open a new ticket", "Which brand")
    press(emu, "Bitmain Antminer", "Which model")
    answer(emu, "S21 200T", "serial number (SN)")
    count = len(emu.messages(CUSTOMER))
    emu.send_media(CUSTOMER, "document", mime_type="application/pdf", file_name="invoice.pdf")
    wait_new_text(emu, count, "That is a PDF document")
    answer(emu, "JYZZB0UBDJBBJ0584", "order number")
    press(emu, "I don't have it", "Which part is faulty")
    press(emu, "🧮 A hash board", "Describe the fault")
    answer(emu, "One hash board shows 0 chips since yesterday", "Check 1 of 3")

    # A crash in the middle of the ticket: everything so far is in the database.
    bot.kill()
    bot.start()
    press(emu, "✅ Done, still not working", "Check 2 of 3")
    press(emu, "✅ Done, still not working", "Check 3 of 3")
    press(emu, "✅ Done, still not working", "photos (or a short video)")
    count = len(emu.messages(CUSTOMER))
    emu.send_album(CUSTOMER, ("photo", "photo"))
    wait_new_text(emu, count, "Got 2 so far")
    press(emu, "✅ Done", "warranty label")
    for question in ("taken apart", "voltage outside", "modified"):
        press(emu, "No", question)
    press(emu, "No", "please check")
    review = texts(emu, CUSTOMER)[-1]
    assert "JYZZB0UBDJBBJ0584" in review
    assert "customs costs, are paid by you" in review
    press(emu, "📨 Submit", "status pending")
    [ticket_id] = TICKET_ID.findall(texts(emu, CUSTOMER)[-1])

    thread = staff_topic(emu)
    card = card_with(emu, thread, f"Repair ticket {ticket_id}")
    assert "One hash board shows 0 chips" in card["text"]
    emu.wait_until(lambda: len(emu.calls("sendMediaGroup")) == 1, what="the files as an album")

    # Ask for more: the rep's next message in the topic reaches the customer.
    rep_decides(emu, card, thread, "❓ Ask for more", "Please tell us the exact model.")
    assert "needs more" in texts(emu, CUSTOMER)[-1]

    # The customer revises; staff get the revised card and confirm it.
    press(emu, "✏️ Update the ticket", "please check")
    press(emu, "✏️ Model", "Which model")
    answer(emu, "Antminer S21 Hyd 335T", "please check")
    press(emu, "📨 Send the changes", "pending again")
    revised = card_with(emu, thread, "Revised (Model)")
    assert "S21 Hyd 335T" in revised["text"]
    count = len(emu.messages(CUSTOMER))
    emu.press(FORUM, "✅ Confirm", message=revised, user_id=REP)
    wait_new_text(emu, count, "confirmed your repair ticket")
    rows = bot.query("SELECT status, revision, decided_by FROM tickets WHERE id = ?", ticket_id)
    assert rows == [("confirmed", 2, "Alice")]


def test_second_returns_refused_after_30_days_and_rejected_by_staff(
    bot: BotProcess, emulator: BotApiEmulator, tmp_path: Path
) -> None:
    emu = emulator
    orders = tmp_path / "orders.json"
    orders.write_text(
        json.dumps(
            [
                repaired_order("A-7001", "T-OLD1", "PSU", repaired_days_ago=45),
                repaired_order("A-7002", "T-NEW2", "PSU", repaired_days_ago=5),
            ]
        ),
        encoding="utf-8",
    )
    imported = import_orders(bot, orders)
    assert imported.returncode == 0, imported.stderr
    start_with_staff_forum(bot, emu)
    answer(emu, "/menu", "How can I help?")
    press(emu, "🔧 Repair / second return", "What do you need?")
    press(emu, "🔁 A second return: a repaired part failed again", "first repair ticket")
    answer(emu, "T-OLD1", "order number")
    answer(emu, "A-7001", "e-mail address")
    answer(emu, "buyer@example.com", "warranty ended on")
    assert "🔧 Open a repair ticket" in [
        label for label, _data in emu.buttons(emu.messages(CUSTOMER)[-1])
    ]

    answer(emu, "/menu", "How can I help?")
    press(emu, "🔧 Repair / second return", "What do you need?")
    press(emu, "🔁 A second return: a repaired part failed again", "first repair ticket")
    answer(emu, "T-NEW2", "order number")
    answer(emu, "A-7002", "e-mail address")
    answer(emu, "buyer@example.com", "Which item failed again")
    press(emu, "🔌 Power supply (PSU)", "SN) sticker")
    count = len(emu.messages(CUSTOMER))
    emu.send_media(CUSTOMER, "photo")
    wait_new_text(emu, count, "output voltage")
    count = len(emu.messages(CUSTOMER))
    emu.send_media(CUSTOMER, "video", file_size=30 * 1024 * 1024, mime_type="video/mp4")
    wait_new_text(emu, count, "send the link here")
    answer(emu, "https://drive.example.com/file/psu-voltage", "Check 1 of 3")
    for check in ("Check 2 of 3", "Check 3 of 3", "Which carrier"):
        press(emu, "✅ Done, still not working", check)
    answer(emu, "DHL", "tracking number")
    answer(emu, "JD014600001234", "How many")
    answer(emu, "1", "describe the defect")
    answer(emu, "Output is 9 V again", "full address")
    answer(emu, "Ivan Petrov, 1 Main St, Almaty 050000, Kazakhstan", "after-sales service terms")
    press(emu, "✅ I accept the terms", "please check")
    review = texts(emu, CUSTOMER)[-1]
    assert "Second repair" in review
    assert "covered until" in review
    press(emu, "📨 Submit", "status pending")
    [ticket_id] = TICKET_ID.findall(texts(emu, CUSTOMER)[-1])
    assert ticket_id.startswith("S-")

    thread = staff_topic(emu)
    card = card_with(emu, thread, f"Second return {ticket_id}")
    assert "https://drive.example.com/file/psu-voltage" in card["text"]
    # One file (the sticker photo; the video is a link) goes as a single photo.
    emu.wait_until(lambda: len(emu.calls("sendPhoto")) == 1, what="the sticker photo")
    rep_decides(emu, card, thread, "⛔ Reject", "The voltage is fine in the video.")
    assert "could not accept" in texts(emu, CUSTOMER)[-1]
    statuses = bot.query("SELECT id, status FROM tickets ORDER BY created_at")
    assert [status for _id, status in statuses] == ["cancelled", "rejected"]
