"""What several workers on one database rely on: each update processed once, a chat's
turns one at a time, claimed inbox and outbox rows, leases, one topic per customer. The
races run on two connections (`storage` and `second`), as two processes would."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime

import pytest

from domain.chats import ChatKey, ConversationState
from storage.base import AlreadyProcessed, InboxUpdate, QueuedMessage
from storage.sql import SqlStorage
from storage.workers import Claim
from tests.factories import order
from tests.storage import raw

KEY = ChatKey("telegram", "42")
OTHER = ChatKey("telegram", "43")
STAFF_CHAT = ChatKey("telegram", "-100")
LEASE = 30.0
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def queue(storage: SqlStorage, key: ChatKey, *texts: str) -> list[int]:
    """Queue replies for `key` as a turn would; their outbox ids."""
    update = f"{key.chat_id}:{texts[0]}"
    queued = await storage.save(
        key, ConversationState(), update, replies=[(key, {"t": t}) for t in texts]
    )
    return [message.id for message in queued]


def texts(claimed: Sequence[QueuedMessage]) -> list[str]:
    return [message.body["t"] for message in claimed]


async def test_an_update_is_saved_once_and_a_second_save_writes_nothing(
    storage: SqlStorage,
) -> None:
    await storage.save(KEY, ConversationState(flow="faq"), "7", replies=[(KEY, {"t": "a"})])
    with pytest.raises(AlreadyProcessed):
        await storage.save(KEY, ConversationState(flow="repair"), "7", replies=[(KEY, {"t": "b"})])
    assert (await storage.load(KEY)).flow == "faq"
    assert texts(await storage.outbox("telegram")) == ["a"]


async def test_two_processes_saving_one_update_process_it_once(
    storage: SqlStorage, second: SqlStorage
) -> None:
    async def turn(store: SqlStorage, text: str) -> str:
        try:
            await store.save(KEY, ConversationState(flow=text), "7", replies=[(KEY, {"t": text})])
        except AlreadyProcessed:
            return "duplicate"
        return "saved"

    for attempt in range(5):
        update = f"u{attempt}"
        outcomes = await asyncio.gather(
            *(
                store.save(KEY, ConversationState(), update, replies=[(KEY, {"t": update})])
                for store in (storage, second)
            ),
            return_exceptions=True,
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyProcessed", "list"]
    assert sorted(await asyncio.gather(turn(storage, "x"), turn(second, "y"))) == [
        "duplicate",
        "saved",
    ]
    assert len(await storage.outbox("telegram")) == 6


async def test_a_chat_lock_lets_one_turn_run_at_a_time_and_other_chats_through(
    storage: SqlStorage,
) -> None:
    log: list[str] = []

    async def turn(key: ChatKey, name: str) -> None:
        async with storage.chat_lock(key):
            log.append(f"{name} in")
            await asyncio.sleep(0.05)
            log.append(f"{name} out")

    await asyncio.gather(turn(KEY, "a"), turn(KEY, "b"), turn(OTHER, "c"))
    assert log.index("a out") < log.index("b in")
    assert log.index("c in") < log.index("a out")


@raw.postgres_only
async def test_a_chat_lock_holds_across_processes_and_dies_with_its_holder(
    storage: SqlStorage, second: SqlStorage
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with storage.chat_lock(KEY):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(first())
    await entered.wait()
    lock = second.chat_lock(KEY)
    waiting = asyncio.create_task(lock.__aenter__())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    async with second.chat_lock(OTHER):  # another chat is free meanwhile
        pass
    # The holder's process dies: the server drops its connection, and the lock with it.
    await second.database.fetch_all(
        "SELECT pg_terminate_backend(pid) FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted AND pid != pg_backend_pid()"
    )
    await asyncio.wait_for(waiting, timeout=10)
    await lock.__aexit__(None, None, None)
    release.set()
    with suppress(Exception):  # letting go on a dead connection fails; it is gone anyway
        await holder


@raw.postgres_only
async def test_a_chat_lock_given_up_while_waiting_leaves_the_chat_free(
    storage: SqlStorage, second: SqlStorage
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with storage.chat_lock(KEY):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiting = asyncio.create_task(second.chat_lock(KEY).__aenter__())
    await asyncio.sleep(0.3)
    waiting.cancel()  # a worker stopping while one of its turns waits for the chat
    with suppress(asyncio.CancelledError):
        await waiting
    release.set()
    await holder
    # Nobody holds the chat now, in either process's pooled connections.
    async with storage.chat_lock(KEY):
        pass
    assert (
        await second.database.fetch_all(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
        == []
    )


async def test_the_outbox_is_claimed_per_chat_in_order(
    storage: SqlStorage, second: SqlStorage
) -> None:
    first_ids = await queue(storage, KEY, "k1", "k2")
    await queue(storage, OTHER, "o1")

    assert texts(await storage.claim_outbox("telegram", "A", LEASE, limit=1)) == ["k1"]
    # The chat's next reply waits while A holds its first: B gets the other chat only.
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["o1"]
    assert await second.claim_outbox("telegram", "B", LEASE) == []
    # A, holding the chat, may take its next reply; once A is done, B may have the chat.
    await queue(storage, KEY, "k3")
    assert texts(await storage.claim_outbox("telegram", "A", LEASE, limit=1)) == ["k2"]
    for message_id in first_ids:
        await storage.mark_delivered(message_id)
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["k3"]


async def test_a_dead_workers_claims_pass_on_when_their_lease_runs_out(
    storage: SqlStorage, second: SqlStorage
) -> None:
    await queue(storage, KEY, "k1", "k2")
    assert texts(await storage.claim_outbox("telegram", "A", 0.2)) == ["k1", "k2"]
    assert await second.claim_outbox("telegram", "B", LEASE) == []
    await asyncio.sleep(0.3)
    claimed = await second.claim_outbox("telegram", "B", LEASE)
    assert (texts(claimed), claimed[0].key) == (["k1", "k2"], KEY)
    # B's progress on a long reply is kept for whoever sends the rest.
    await second.mark_progress(claimed[0].id, 2)
    await second.release_claims("B")
    [again, _] = await storage.claim_outbox("telegram", "A", LEASE)
    assert again.parts_sent == 2


async def test_renewed_claims_stay_and_released_ones_are_free_at_once(
    storage: SqlStorage, second: SqlStorage
) -> None:
    await queue(storage, KEY, "k1")
    await storage.receive([InboxUpdate("telegram", "9", {}, "42")])
    assert len(await storage.claim_outbox("telegram", "A", 0.3)) == 1
    assert len(await storage.claim_inbox("telegram", "A", 0.3)) == 1
    await asyncio.sleep(0.15)
    await storage.renew_claims("A", LEASE)
    await asyncio.sleep(0.25)
    assert await second.claim_outbox("telegram", "B", LEASE) == []
    assert await second.claim_inbox("telegram", "B", LEASE) == []
    await storage.release_claims("A")
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["k1"]
    assert [u.update_id for u in await second.claim_inbox("telegram", "B", LEASE)] == ["9"]


async def test_failed_replies_are_not_claimed_nor_hold_their_chat(storage: SqlStorage) -> None:
    first, _ = await queue(storage, KEY, "k1", "k2")
    assert len(await storage.claim_outbox("telegram", "A", LEASE, limit=1)) == 1
    await storage.mark_failed(first, "Forbidden")
    assert texts(await storage.claim_outbox("telegram", "B", LEASE)) == ["k2"]


async def test_workers_claiming_together_get_each_reply_once_and_chats_whole(
    storage: SqlStorage, second: SqlStorage
) -> None:
    for chat in range(8):
        await queue(storage, ChatKey("telegram", str(chat)), *(f"{chat}.{n}" for n in range(3)))
    workers = {"A": storage, "B": second, "C": storage}
    taken: dict[str, list[str]] = {worker: [] for worker in workers}

    async def work(worker: str) -> None:
        for _ in range(6):
            claimed = await workers[worker].claim_outbox("telegram", worker, LEASE, limit=4)
            taken[worker] += texts(claimed)
            await asyncio.sleep(0)

    await asyncio.gather(*(work(worker) for worker in workers))
    everything = [text for claimed in taken.values() for text in claimed]
    assert Counter(everything) == Counter(f"{c}.{n}" for c in range(8) for n in range(3))
    # Nothing was delivered, so a chat never changes hands: each is one worker's, in order.
    for worker, claimed in taken.items():
        chats = {text.split(".")[0] for text in claimed}
        for other, by_other in taken.items():
            assert other == worker or not chats & {text.split(".")[0] for text in by_other}
        for chat in chats:
            of_chat = [text for text in claimed if text.split(".")[0] == chat]
            assert of_chat == sorted(of_chat)


async def test_the_inbox_is_claimed_per_chat_and_left_by_processed_updates(
    storage: SqlStorage, second: SqlStorage
) -> None:
    await storage.receive(
        [
            InboxUpdate("telegram", "1", {"n": 1}, "42"),
            InboxUpdate("telegram", "2", {"n": 2}, "43"),
            InboxUpdate("telegram", "3", {"n": 3}, "42"),
            InboxUpdate("telegram", "4", {"n": 4}),
        ]
    )
    [first] = await storage.claim_inbox("telegram", "A", LEASE, limit=1)
    assert (first.update_id, first.chat_id, first.body) == ("1", "42", {"n": 1})
    # Chat 42 is A's while it holds update 1; an update of no known chat goes to anyone.
    assert [u.update_id for u in await second.claim_inbox("telegram", "B", LEASE)] == ["2", "4"]
    await storage.save(KEY, ConversationState(), "1")
    assert [u.update_id for u in await second.claim_inbox("telegram", "B", LEASE)] == ["3"]
    assert [u.update_id for u in await storage.inbox("telegram")] == ["2", "3", "4"]


async def test_a_worker_claims_what_it_stored_unless_its_chat_is_anothers(
    storage: SqlStorage, second: SqlStorage
) -> None:
    await storage.receive(
        [InboxUpdate("telegram", "1", {}, "42"), InboxUpdate("telegram", "2", {}, "43")]
    )
    assert [u.update_id for u in await second.claim_inbox("telegram", "B", LEASE, limit=1)] == ["1"]
    # A receives 3 and 4 (say from its webhook): 3's chat is B's, so B takes 3 after 1.
    received = [
        InboxUpdate("telegram", "3", {"n": 3}, "42"),
        InboxUpdate("telegram", "4", {}, "44"),
    ]
    mine = await storage.receive_claimed("telegram", received, "A", LEASE)
    assert mine == [received[1]]
    # An earlier update of the chat that nobody holds (2) goes first, with the later one.
    assert (
        await storage.receive_claimed(
            "telegram", [InboxUpdate("telegram", "5", {}, "43")], "A", LEASE
        )
        == []
    )
    assert [u.update_id for u in await second.claim_inbox("telegram", "B", LEASE)] == [
        "2",
        "3",
        "5",
    ]
    # Kept whether claimed or not, each once: a re-delivered update adds nothing.
    assert await storage.receive_claimed("telegram", received, "A", LEASE) == []
    assert [u.update_id for u in await storage.inbox("telegram")] == ["1", "2", "3", "4", "5"]
    assert (await storage.inbox("telegram"))[2].body == {"n": 3}


async def test_a_worker_claims_its_turns_replies_unless_the_chat_is_anothers(
    storage: SqlStorage, second: SqlStorage
) -> None:
    await queue(storage, KEY, "k1")
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["k1"]
    k2 = await queue(storage, KEY, "k2")
    o1 = await queue(storage, OTHER, "o1")
    assert texts(await storage.claim_outbox("telegram", "A", LEASE, only=k2 + o1)) == ["o1"]
    # B, still sending to the chat, takes its next reply in order.
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["k2"]


async def test_a_turn_claims_its_replies_as_it_queues_them_unless_the_chat_is_anothers(
    storage: SqlStorage, second: SqlStorage
) -> None:
    whatsapp = ChatKey("whatsapp", "15550001")
    claim = Claim("A", LEASE, frozenset({"telegram"}))
    queued = await storage.save(
        KEY,
        ConversationState(),
        "1",
        replies=[(KEY, {"t": "k1"}), (KEY, {"t": "k2"}), (whatsapp, {"t": "w1"})],
        claim=claim,
    )
    # The WhatsApp reply waits for a worker that sends on WhatsApp.
    assert [(m.body["t"], m.claimed) for m in queued] == [("k1", True), ("k2", True), ("w1", False)]
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == []
    assert texts(await second.claim_outbox("whatsapp", "B", LEASE)) == ["w1"]
    # B holds chat OTHER: A's next reply to it is left to B, in order after B's.
    await queue(second, OTHER, "o1")
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["o1"]
    queued = await storage.save(
        OTHER, ConversationState(), "2", replies=[(OTHER, {"t": "o2"})], claim=claim
    )
    assert [m.claimed for m in queued] == [False]
    assert texts(await second.claim_outbox("telegram", "B", LEASE)) == ["o2"]


async def test_a_lease_has_one_holder_until_it_runs_out_or_is_released(
    storage: SqlStorage, second: SqlStorage
) -> None:
    assert await storage.acquire_lease("timers", "A", 0.3)
    assert not await second.acquire_lease("timers", "B", LEASE)
    assert await storage.acquire_lease("timers", "A", 0.3)  # renewed
    assert await second.acquire_lease("digest", "B", LEASE)  # another lease
    await asyncio.sleep(0.4)
    assert await second.acquire_lease("timers", "B", LEASE)  # A died: taken over
    assert not await storage.acquire_lease("timers", "A", LEASE)
    await storage.release_lease("timers", "A")  # not A's: nothing happens
    assert not await storage.acquire_lease("timers", "A", LEASE)
    await second.release_lease("timers", "B")
    assert await storage.acquire_lease("timers", "A", LEASE)


async def test_of_workers_racing_for_a_lease_one_gets_it(
    storage: SqlStorage, second: SqlStorage
) -> None:
    for round_ in range(5):
        name = f"timers-{round_}"
        won = await asyncio.gather(
            *(
                store.acquire_lease(name, f"{store is storage}-{n}", LEASE)
                for n in range(3)
                for store in (storage, second)
            )
        )
        assert won.count(True) == 1


async def test_two_workers_opening_a_topic_at_once_keep_one(
    storage: SqlStorage, second: SqlStorage
) -> None:
    for n in range(5):
        customer = ChatKey("telegram", f"c{n}")
        kept = await asyncio.gather(
            storage.set_topic(customer, STAFF_CHAT, f"{n}01"),
            second.set_topic(customer, STAFF_CHAT, f"{n}02"),
        )
        assert kept[0] == kept[1] == await storage.topic_of(customer, STAFF_CHAT)
        assert await second.customer_of_topic(STAFF_CHAT, kept[0]) == customer


async def test_two_imports_of_a_new_order_at_once_create_it_once(
    storage: SqlStorage, second: SqlStorage
) -> None:
    for n in range(5):
        results = await asyncio.gather(
            storage.save_order(order(f"MD-{n}"), T0), second.save_order(order(f"md-{n}"), T0)
        )
        assert sorted(result.created for result in results) == [False, True]
        saved = await storage.order(f"MD-{n}")
        assert saved is not None
        assert len(saved.history) == 1
