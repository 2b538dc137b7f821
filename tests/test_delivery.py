"""Delivery from the real SQLite outbox through a scripted channel: order, retries, give-up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.delivery import (
    Delivery,
    DeliveryError,
    RetryAfter,
    RetryPolicy,
    TemporaryFailure,
    Undeliverable,
)
from bot.serial import SerialQueues
from domain.chats import ChatKey, ConversationState
from domain.privacy import mask_phone
from storage.base import QueuedMessage
from storage.sqlite import SqliteStorage
from storage.workers import Claim

FAST = RetryPolicy(first_delay=0.01, max_delay=0.02, max_failures=3)


class ScriptedSender:
    """A channel whose sends fail as scripted per text; parts are the reply's lines."""

    def __init__(self, failures: dict[str, list[DeliveryError]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[tuple[str, str]] = []

    def parts(self, message: QueuedMessage) -> list[str]:
        return str(message.body["text"]).split("\n")

    async def send(self, key: ChatKey, part: Any) -> None:
        if self.failures.get(part):
            raise self.failures[part].pop(0)
        self.sent.append((key.chat_id, part))

    def is_group(self, chat_id: str) -> bool:
        return False


async def queue(storage: SqliteStorage, chat: str, *texts: str) -> list[QueuedMessage]:
    key = ChatKey("test", chat)
    return await storage.save(
        key, ConversationState(), None, replies=[(key, {"text": t}) for t in texts]
    )


def test_the_retry_policy_doubles_to_its_cap_with_jitter_then_gives_up() -> None:
    policy = RetryPolicy(first_delay=0.5, max_delay=30.0, max_failures=10)
    for failures, base in [(1, 0.5), (2, 1.0), (4, 4.0), (7, 30.0), (50, 30.0)]:
        delays = {policy.delay(failures) for _ in range(50)}
        assert all(0.8 * base <= delay <= 1.2 * base for delay in delays)
        assert len(delays) > 1  # callers that failed together spread out
    assert (policy.gives_up(9), policy.gives_up(10)) == (False, True)
    assert not RetryPolicy(max_failures=None).gives_up(10**6)


async def test_replies_arrive_in_order_through_rate_limits_and_errors(
    storage: SqliteStorage,
) -> None:
    sender = ScriptedSender(
        {"one": [RetryAfter(0.01), RetryAfter(0.01)], "two": [TemporaryFailure("502")]}
    )
    delivery = Delivery(storage, "test", sender, policy=FAST)
    for message in await queue(storage, "a", "one", "two", "three"):
        delivery.enqueue(message)
    await delivery.join()
    assert sender.sent == [("a", "one"), ("a", "two"), ("a", "three")]
    assert await storage.outbox("test") == []


async def test_an_undeliverable_reply_is_recorded_and_the_next_one_goes(
    storage: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    sender = ScriptedSender(
        {"blocked": [Undeliverable("Forbidden")], "flaky": [TemporaryFailure("x")] * 5}
    )
    delivery = Delivery(storage, "test", sender, policy=FAST)
    for message in await queue(storage, "a", "blocked", "flaky", "fine"):
        delivery.enqueue(message)
    await delivery.join()
    assert sender.sent == [("a", "fine")]
    assert "delivery.failed channel=test chat=a" in caplog.text
    assert "gave up after 3 attempts" in caplog.text
    failed = await storage.db.execute_fetchall("SELECT failed_reason FROM outbox ORDER BY id")
    assert [row[0] for row in failed] == ["Forbidden", "gave up after 3 attempts: x"]


async def test_logs_name_a_chat_as_the_channel_shows_it(
    storage: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    """A WhatsApp chat id is the customer's phone number: the runtime passes the masking."""
    phone = "447700900123"
    sender = ScriptedSender(
        {"blocked": [Undeliverable("Forbidden")], "flaky": [TemporaryFailure("x")]}
    )
    delivery = Delivery(
        storage, "test", sender, policy=FAST, shown=lambda key: mask_phone(key.chat_id)
    )
    for message in await queue(storage, phone, "blocked", "flaky"):
        delivery.enqueue(message)
    await delivery.join()
    assert "delivery.failed channel=test chat=••••••••0123" in caplog.text
    assert "delivery.retrying chat=••••••••0123" in caplog.text
    assert phone not in caplog.text


async def test_the_channel_hears_of_each_reply_given_up_on(storage: SqliteStorage) -> None:
    sender = ScriptedSender(
        {"blocked": [Undeliverable("Forbidden")], "flaky": [TemporaryFailure("x")] * 5}
    )
    given_up: list[tuple[str, str]] = []

    async def on_failed(message: QueuedMessage, reason: str) -> None:
        given_up.append((message.body["text"], reason))

    delivery = Delivery(storage, "test", sender, policy=FAST, on_failed=on_failed)
    for message in await queue(storage, "a", "blocked", "flaky", "fine"):
        delivery.enqueue(message)
    await delivery.join()
    assert given_up == [("blocked", "Forbidden"), ("flaky", "gave up after 3 attempts: x")]


async def test_a_restart_sends_what_was_left_and_only_the_missing_parts(
    storage: SqliteStorage,
) -> None:
    [long_reply] = await queue(storage, "a", "part 1\npart 2\npart 3")
    await storage.mark_progress(long_reply.id, 1)
    await queue(storage, "b", "for b")
    sender = ScriptedSender()
    delivery = Delivery(storage, "test", sender, policy=FAST)
    await delivery.start()
    await delivery.join()
    assert sorted(sender.sent) == [("a", "part 2"), ("a", "part 3"), ("b", "for b")]


async def test_stop_leaves_the_backlog_in_the_outbox(storage: SqliteStorage) -> None:
    sender = ScriptedSender({"stuck": [RetryAfter(60)]})
    delivery = Delivery(storage, "test", sender, policy=FAST)
    for message in await queue(storage, "a", "stuck"):
        delivery.enqueue(message)
    await delivery.stop(grace_seconds=0.05)
    assert [m.body["text"] for m in await storage.outbox("test")] == ["stuck"]


async def test_serial_queues_keep_order_per_key_and_run_keys_in_parallel() -> None:
    queues = SerialQueues("test")
    log: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False) -> Any:
        async def run() -> None:
            if wait:
                await gate.wait()
            log.append(name)

        return run

    queues.submit("slow", job("slow-1", wait=True))
    queues.submit("slow", job("slow-2"))
    queues.submit("fast", job("fast-1"))
    await asyncio.sleep(0.01)
    assert log == ["fast-1"]
    gate.set()
    await queues.join()
    assert log == ["fast-1", "slow-1", "slow-2"]
    assert queues.busy == 0


async def test_serial_queues_tell_how_many_jobs_wait_behind_the_running_one() -> None:
    queues = SerialQueues("test")
    gate = asyncio.Event()
    seen: list[int] = []

    async def job() -> None:
        seen.append(queues.waiting("a"))
        await gate.wait()

    for _ in range(3):
        queues.submit("a", job)
    await asyncio.sleep(0.01)
    assert (queues.waiting("a"), queues.waiting("b")) == (2, 0)
    gate.set()
    await queues.join()
    assert seen == [2, 1, 0]


async def test_take_sends_the_replies_claimed_with_their_turn_and_claims_the_rest(
    storage: SqliteStorage,
) -> None:
    sender = ScriptedSender()
    delivery = Delivery(storage, "test", sender, policy=FAST)
    other = ChatKey("test", "b")
    # Chat b's earlier reply is another worker's: its next one is left to that worker.
    [b1] = await queue(storage, "b", "b1")
    await storage.claim_outbox("test", "another", 30.0, only=[b1.id])
    claim = Claim(delivery.worker.id, 30.0, frozenset({"test"}))
    turn = await storage.save(
        ChatKey("test", "a"),
        ConversationState(),
        "1",
        replies=[(ChatKey("test", "a"), {"text": "a1"}), (other, {"text": "b2"})],
        claim=claim,
    )
    notice = await queue(storage, "c", "c1")  # queued outside a turn: claimed by take
    await delivery.take([*turn, *notice])
    await delivery.join()
    assert sender.sent == [("a", "a1"), ("c", "c1")]
    assert [message.body["text"] for message in await storage.outbox("test")] == ["b1", "b2"]
