"""The Telegram transport under awkward input, end to end: captions Telegram cannot parse,
replies that cannot be delivered, albums without end and a chat that floods the bot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botprocess import BotProcess
from tests.e2e.conftest import Backend, launched
from tests.e2e.test_handoff import ALWAYS_OPEN, FORUM, REP, texts, wait_text
from tests.emulator import BotApiEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

INBOUND_BURST = 5
# One message every 10 s past the burst: slow enough to see the rest wait in the inbox.
INBOUND_PER_MINUTE = 6


@pytest.fixture(scope="module")
def desk_bot(
    shared_emulator: BotApiEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
    backend: Backend,
) -> Iterator[BotProcess]:
    """One bot with a staff forum and a tight inbound pace, for tests that each use their
    own customer chat."""
    shared_emulator.add_forum(FORUM)
    shared_emulator.set_member(FORUM, REP, "member")
    data = tmp_path_factory.mktemp("limits-bot") / "data"
    with launched(shared_emulator, data, shared_cache, backend) as process:
        process.env.update(
            ALWAYS_OPEN,
            MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM),
            MINERDESK_TELEGRAM__INBOUND_BURST=str(INBOUND_BURST),
            MINERDESK_TELEGRAM__INBOUND_PER_MINUTE=str(INBOUND_PER_MINUTE),
        )
        process.start()
        yield process


def hand_over(emu: BotApiEmulator, customer: int) -> int:
    """The customer asks for a person; returns the thread of their staff topic."""
    emu.send_text(customer, "/menu", first_name=f"Customer {customer}")
    emu.wait_messages(customer, 1)
    emu.press(customer, "👤 Talk to a human")
    wait_text(emu, customer, "passed our conversation to a sales rep")
    emu.wait_until(
        lambda: any(name.startswith(f"Customer {customer}") for name in emu.topics(FORUM).values()),
        what="the customer's topic",
    )
    [thread] = [
        t for t, name in emu.topics(FORUM).items() if name.startswith(f"Customer {customer}")
    ]
    wait_text(emu, FORUM, "Handoff", thread)
    return thread


def photos_with_caption(emu: BotApiEmulator, chat: int, thread: int | None = None) -> list[str]:
    return [str(m.get("caption")) for m in emu.messages(chat, thread) if "photo" in m]


def test_an_album_whose_caption_has_a_less_than_sign_goes_both_ways(
    desk_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, customer = shared_emulator, 4001
    thread = hand_over(emu, customer)
    emu.send_album(customer, ("photo", "photo"), caption="hashrate 1 < 2 <3 on board 2")
    emu.wait_until(
        lambda: len(photos_with_caption(emu, FORUM, thread)) == 2, what="the album in the topic"
    )
    assert photos_with_caption(emu, FORUM, thread)[0] == "hashrate 1 < 2 <3 on board 2"

    emu.send_album(
        FORUM, ("photo", "photo"), user_id=REP, message_thread_id=thread, caption="fan < 3000 rpm"
    )
    emu.wait_until(lambda: len(photos_with_caption(emu, customer)) == 2, what="the rep's album")
    assert photos_with_caption(emu, customer)[0] == "fan < 3000 rpm"
    assert "delivery.failed" not in desk_bot.log


def test_a_reply_the_customer_never_got_is_reported_in_their_topic(
    desk_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, customer = shared_emulator, 4002
    thread = hand_over(emu, customer)
    emu.block(customer)
    emu.send_text(FORUM, "Hi, please check the cable", user_id=REP, message_thread_id=thread)
    wait_text(emu, FORUM, "Could not deliver to the customer", thread)
    assert texts(emu, FORUM, thread)[-1] == (
        "⚠️ Could not deliver to the customer: Forbidden: bot was blocked by the user"
    )


def test_twelve_items_under_one_album_id_are_two_messages(
    desk_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, customer = shared_emulator, 4003
    for _ in range(12):
        emu.send_media(customer, "photo", media_group_id="same-id-again-and-again")
    # Ten make one message; the two after them the next: one answer each.
    replies = emu.wait_messages(customer, 2)
    assert all("I can only read text messages" in m["text"] for m in replies)
    emu.wait_until(
        lambda: (
            desk_bot.query("SELECT update_id FROM inbox") == []
            and desk_bot.query("SELECT id FROM outbox WHERE chat_id = ?", str(customer)) == []
        ),
        what="every item handled and every answer sent",
    )
    assert len(emu.messages(customer)) == 2


def test_a_flood_from_one_chat_waits_its_turn_and_nothing_is_lost(
    desk_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, flood, other = shared_emulator, 4004, 4005
    for _ in range(INBOUND_BURST + 3):
        emu.send_text(flood, "/help")

    def inbox() -> int:
        return len(desk_bot.query("SELECT update_id FROM inbox"))

    # The burst is answered at once; the rest is kept, not dropped, and waits its turn.
    emu.wait_messages(flood, INBOUND_BURST)
    emu.wait_until(lambda: inbox() == 3, what="three updates kept in the inbox")
    emu.send_text(other, "/help")
    emu.wait_messages(other, 1)
    assert len(emu.messages(flood)) < INBOUND_BURST + 3
    assert inbox() >= 2
    # ... and gets its answer later.
    emu.wait_messages(flood, INBOUND_BURST + 1, timeout=60)
    assert f"telegram.inbound_paced chat={flood}" in desk_bot.log
