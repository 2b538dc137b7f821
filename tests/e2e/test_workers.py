"""Several workers on one database, end to end: two real bot processes share a database
and the Bot API emulator, customers of many chats ask question after question, and the
worker doing the work is SIGKILLed mid-run. Every question must be answered, in order per
chat, nothing lost; the replies in flight at the kill may go out twice (counted); and the
survivor takes over polling and the timers (an order notice still goes out)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.chats import ChatKey, ConversationState
from domain.orders import OrderStatus
from domain.ownership import OrderLinked
from storage.open import open_storage
from tests.botprocess import BotProcess
from tests.e2e.conftest import Backend
from tests.emulator import BotApiEmulator, parse_html
from tests.factories import order

pytestmark = [pytest.mark.e2e, pytest.mark.model]

QUESTIONS = (
    "Why can't I receive the verification code when I register?",
    "How can I place an order?",
    "Can I get a discount?",
    "Can I pick-up the machine by myself?",
    "Can I visit your warehouse in person before placing an order?",
    "Will the price of miners fluctuate frequently?",
    "Can you fill in the declared amount according to my request?",
    "Can I pay for my order in instalments?",
    "Which coins can I pay with?",
    "Why can't I log in? I' ve already registered on the website.",
)
CHATS = tuple(range(6001, 6021))
# It asks each question once first, for the answers to expect; it also follows an order.
REFERENCE_CHAT = 6000
ORDER = "MD-7001"
# Killed once this share of the answers went out.
KILL_AFTER = 0.3
# A dead worker's claims and roles pass on within its lease and a renewal round.
FAILOVER_SECONDS = 60


def texts(emu: BotApiEmulator, chat: int) -> list[str]:
    return [str(message.get("text") or "") for message in emu.messages(chat)]


def without_repeats(replies: list[str]) -> list[str]:
    """The replies with a reply sent again right after itself counted once."""
    return [reply for i, reply in enumerate(replies) if i == 0 or reply != replies[i - 1]]


@pytest.fixture
def database(tmp_path: Path, backend: Backend) -> Iterator[str]:
    """The workers' one database: PostgreSQL, the backend for several workers, or a
    SQLite file they take turns writing."""
    with backend.database(tmp_path) as url:
        yield url


@pytest.fixture
def workers(
    emulator: BotApiEmulator, tmp_path: Path, shared_cache: Path, database: str
) -> Iterator[tuple[BotProcess, BotProcess]]:
    """Two bot processes on one database, not started yet."""
    pair = tuple(
        BotProcess(emulator, tmp_path / name, shared_cache, database)
        for name in ("first", "second")
    )
    for process in pair:
        process.data_dir.mkdir()
        process.env.update(
            # Customers here ask ten questions in a row, faster than the default pace.
            MINERDESK_TELEGRAM__INBOUND_BURST="100",
            MINERDESK_TELEGRAM__INBOUND_PER_MINUTE="6000",
        )
    yield pair[0], pair[1]
    for process in pair:
        if process.process is not None and process.process.poll() is None:
            process.kill()


def sent_but_not_marked(process: BotProcess, emu: BotApiEmulator) -> int:
    """Replies of a dead worker that the emulator took but the worker never marked sent:
    still in the outbox, and already the last message of their chat. Each will go again."""
    rows = process.query(
        "SELECT chat_id, body FROM outbox WHERE channel='telegram' AND failed_reason IS NULL"
    )
    return sum(
        1
        for chat_id, body in rows
        if int(str(chat_id)) in CHATS
        and texts(emu, int(str(chat_id)))[-1:] == [parse_html(json.loads(str(body))["text"])[0]]
    )


def link_order(database: str, status: OrderStatus | None = None) -> None:
    """Save the order (in `status`); the first time, link REFERENCE_CHAT to it as a
    customer who proved it is theirs would be."""

    async def save() -> None:
        async with open_storage(database) as storage:
            now = datetime.now(UTC)
            if status is None:
                await storage.save_order(order(ORDER), now)
                await storage.save(
                    ChatKey("telegram", str(REFERENCE_CHAT)),
                    ConversationState(),
                    "linked",
                    records=[OrderLinked(ORDER)],
                )
            else:
                await storage.save_order(order(ORDER, status=status), now)

    asyncio.run(save())


def customer(emu: BotApiEmulator, chat: int) -> None:
    """Ask every question, each once the answer to the one before came (or its time ran out:
    an answer lost would show in the counts)."""
    for asked, question in enumerate(QUESTIONS, start=1):
        emu.send_text(chat, question)
        # Counted without a reply sent twice, or its repeat would pass for the next answer.
        emu.wait_until(
            lambda asked=asked: len(without_repeats(texts(emu, chat))) >= asked,  # type: ignore[misc]
            timeout=FAILOVER_SECONDS + 60,
            what=f"answer {asked} in chat {chat}",
        )


def test_two_workers_on_one_database_survive_a_sigkill_mid_run(
    emulator: BotApiEmulator, workers: tuple[BotProcess, BotProcess], database: str
) -> None:
    link_order(database)
    first, second = workers
    first.start()
    second.start(wait=False)
    emulator.wait_until(
        lambda: "telegram.started" in second.log or second.process_exited(),
        timeout=second.start_timeout,
        what="the second worker to start",
    )
    assert "runtime.leader worker=" in first.log
    assert "runtime.poller channel=telegram worker=" in first.log
    expected: list[str] = []
    for asked, question in enumerate(QUESTIONS, start=1):
        emulator.send_text(REFERENCE_CHAT, question)
        emulator.wait_messages(REFERENCE_CHAT, asked)
        expected.append(texts(emulator, REFERENCE_CHAT)[-1])
    assert len(set(expected)) == len(QUESTIONS), "each question has an answer of its own"

    started = time.monotonic()
    with ThreadPoolExecutor(len(CHATS)) as pool:
        asking = [pool.submit(customer, emulator, chat) for chat in CHATS]
        total = len(CHATS) * len(QUESTIONS)
        emulator.wait_until(
            lambda: sum(len(emulator.messages(chat)) for chat in CHATS) >= total * KILL_AFTER,
            timeout=120,
            what="a third of the answers",
        )
        # The worker polling, leading and holding the chats' claims dies without a word.
        first.kill()
        killed_at = time.monotonic()
        # What the worker wrote before it died reaches the emulator; its claims and
        # the poller stay its own for a lease, so nobody sends in the meantime.
        time.sleep(1)
        in_flight = sent_but_not_marked(first, emulator)
        for done in asking:
            done.result()
    elapsed = time.monotonic() - started

    duplicates = 0
    for chat in CHATS:
        replies = texts(emulator, chat)
        assert without_repeats(replies) == expected, f"chat {chat}"
        duplicates += len(replies) - len(expected)
    # Only the replies in flight at the kill go twice: sent, and not yet marked so.
    assert duplicates == in_flight
    print(
        f"\nworkers on {database.split(':')[0]}: {len(CHATS)} chats x {len(QUESTIONS)} "
        f"questions in {elapsed:.1f} s, "
        f"killed after {killed_at - started:.1f} s with {in_flight} sent but not marked, "
        f"{duplicates} sent twice"
    )
    assert "runtime.leader worker=" in second.log
    assert "runtime.poller channel=telegram worker=" in second.log
    # The survivor runs the timers: a status change made now reaches the customer.
    link_order(database, OrderStatus.SHIPPED)
    emulator.wait_until(
        lambda: any(ORDER in text for text in texts(emulator, REFERENCE_CHAT)),
        timeout=FAILOVER_SECONDS,
        what="the order notice",
    )
    assert second.terminate() == 0
