"""Handoff end to end: a customer chat and a staff forum group on the Bot API emulator,
the real bot between them."""

from __future__ import annotations

import pytest

from tests.botprocess import BotProcess
from tests.emulator import BotApiEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

FORUM = -1001234567890
PLAIN_GROUP = -1009876543210
REP = 555
CUSTOMER = 3001
ALWAYS_OPEN = {
    "MINERDESK_HANDOFF__BUSINESS_HOURS__DAYS": '["mon","tue","wed","thu","fri","sat","sun"]',
    "MINERDESK_HANDOFF__BUSINESS_HOURS__OPENS": "00:00",
    "MINERDESK_HANDOFF__BUSINESS_HOURS__CLOSES": "23:59:59",
}


def start_with_staff_chat(bot: BotProcess, staff_chat: int) -> None:
    bot.env.update(ALWAYS_OPEN, MINERDESK_HANDOFF__STAFF_CHAT_ID=str(staff_chat))
    bot.start()


def texts(emu: BotApiEmulator, chat: int, thread: int | None = None) -> list[str]:
    return [str(m.get("text") or m.get("caption") or "") for m in emu.messages(chat, thread)]


def wait_text(emu: BotApiEmulator, chat: int, fragment: str, thread: int | None = None) -> None:
    emu.wait_until(
        lambda: any(fragment in text for text in texts(emu, chat, thread)),
        what=f"{fragment!r} in chat {chat}",
    )


def test_handoff_in_a_forum_topic(bot: BotProcess, emulator: BotApiEmulator) -> None:
    emu = emulator
    emu.add_forum(FORUM)
    emu.set_member(FORUM, REP, "member")
    start_with_staff_chat(bot, FORUM)

    emu.send_text(CUSTOMER, "How long does delivery take?", first_name="Alice")
    emu.wait_messages(CUSTOMER, 1)
    emu.send_text(CUSTOMER, "/menu")
    emu.wait_messages(CUSTOMER, 2)
    emu.press(CUSTOMER, "👤 Talk to a human")
    wait_text(emu, CUSTOMER, "passed our conversation to a sales rep")

    emu.wait_until(lambda: len(emu.topics(FORUM)) == 1, what="the customer's topic")
    [(thread, name)] = emu.topics(FORUM).items()
    assert name == "Alice @alice"
    wait_text(emu, FORUM, "Handoff", thread)
    [card] = texts(emu, FORUM, thread)
    assert "How long does delivery take?" in card
    assert "Alice (@alice)" in card

    # Customer -> topic, an album included; the bot says nothing itself.
    before = len(emu.messages(CUSTOMER))
    emu.send_text(CUSTOMER, "My hash board is dead")
    wait_text(emu, FORUM, "My hash board is dead", thread)
    emu.send_album(CUSTOMER, ("photo", "photo"), caption="front and back")
    emu.wait_until(
        lambda: sum("photo" in m for m in emu.messages(FORUM, thread)) == 2,
        what="the album in the topic",
    )
    assert len(emu.messages(CUSTOMER)) == before

    # Topic -> customer, as the company.
    emu.send_text(FORUM, "Hi Alice, please check the cable", user_id=REP, message_thread_id=thread)
    wait_text(emu, CUSTOMER, "Hi Alice, please check the cable")
    emu.send_album(FORUM, ("photo", "photo"), user_id=REP, message_thread_id=thread)
    emu.wait_until(
        lambda: sum("photo" in m for m in emu.messages(CUSTOMER)) == 2,
        what="the rep's album at the customer",
    )
    emu.send_text(
        FORUM, "/note asked for a replacement board", user_id=REP, message_thread_id=thread
    )
    wait_text(emu, FORUM, "Note saved", thread)
    assert not any("replacement board" in text for text in texts(emu, CUSTOMER))

    # A restart keeps the open handoff.
    bot.kill()
    bot.start()
    emu.send_text(CUSTOMER, "still there?")
    wait_text(emu, FORUM, "still there?", thread)

    emu.send_text(FORUM, "/claim", user_id=REP, message_thread_id=thread)
    wait_text(emu, CUSTOMER, "A sales rep has joined")
    emu.send_text(FORUM, "/close", user_id=REP, message_thread_id=thread)
    wait_text(emu, CUSTOMER, "How would you rate")
    emu.press(CUSTOMER, "4 ⭐")
    wait_text(emu, CUSTOMER, "Thank you for rating us ⭐⭐⭐⭐")
    emu.wait_until(
        lambda: bot.query("SELECT rating, status FROM handoffs") == [(4, "closed")],
        what="the rating stored",
    )

    # Back with the bot: staff commands mean nothing in a customer's chat.
    emu.send_text(CUSTOMER, "/claim")
    wait_text(emu, CUSTOMER, "I don't know that command")
    assert emu.unanswered_callbacks() == []


def test_without_topics_staff_answer_by_replying(bot: BotProcess, emulator: BotApiEmulator) -> None:
    emu = emulator
    emu.add_chat(PLAIN_GROUP, chat_type="supergroup", title="Sales")
    start_with_staff_chat(bot, PLAIN_GROUP)

    emu.send_text(CUSTOMER, "I want to talk to a human")
    wait_text(emu, CUSTOMER, "passed our conversation to a sales rep")
    wait_text(emu, PLAIN_GROUP, "Handoff")
    emu.send_text(CUSTOMER, "order A-1001 is late")
    wait_text(emu, PLAIN_GROUP, "order A-1001 is late")
    relayed = next(m for m in emu.messages(PLAIN_GROUP) if m.get("text") == "order A-1001 is late")

    emu.send_text(
        PLAIN_GROUP,
        "We are on it",
        user_id=REP,
        reply_to_message_id=int(relayed["message_id"]),
    )
    wait_text(emu, CUSTOMER, "We are on it")
    # Staff chatting without replying reach nobody.
    emu.send_text(PLAIN_GROUP, "coffee?", user_id=REP)
    emu.send_text(
        PLAIN_GROUP, "/close", user_id=REP, reply_to_message_id=int(relayed["message_id"])
    )
    wait_text(emu, CUSTOMER, "How would you rate")
    assert not any("coffee" in text for text in texts(emu, CUSTOMER))
    assert emu.topics(PLAIN_GROUP) == {}


def test_the_daily_digest_goes_to_the_staff_chat_once_across_a_restart(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    emulator.add_forum(FORUM)
    # Due at midnight: yesterday's digest is due as soon as the bot starts.
    bot.env["MINERDESK_HANDOFF__DIGEST_TIME"] = "00:00"
    start_with_staff_chat(bot, FORUM)
    wait_text(emulator, FORUM, "Daily digest")
    bot.wait_outbox_empty()
    assert bot.terminate() == 0
    start_with_staff_chat(bot, FORUM)
    # The first check runs before the bot asks for updates, so it has run by now.
    bot.wait_outbox_empty()
    [digest] = [text for text in texts(emulator, FORUM) if "Daily digest" in text]
    assert "No questions to the FAQ." in digest
    assert bot.query("SELECT COUNT(*) FROM staff_digests") == [(1,)]
