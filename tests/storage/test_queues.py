"""The inbox and the outbox, on each backend."""

from __future__ import annotations

import asyncio

from domain.chats import ChatKey, ConversationState
from storage.base import InboxUpdate
from storage.sql import SqlStorage

KEY = ChatKey("telegram", "42")


def update(update_id: str) -> InboxUpdate:
    return InboxUpdate("telegram", update_id, {"update_id": int(update_id)})


async def test_the_inbox_keeps_each_update_once_in_arrival_order(storage: SqlStorage) -> None:
    await storage.receive([update("7"), update("5")])
    await storage.receive([update("5"), update("9")])
    assert [u.update_id for u in await storage.inbox("telegram")] == ["7", "5", "9"]
    assert await storage.inbox("console") == []


async def test_processing_or_discarding_takes_an_update_out_of_the_inbox(
    storage: SqlStorage,
) -> None:
    await storage.receive([update("1"), update("2"), update("3")])
    await storage.save(KEY, ConversationState(), "1")
    await storage.discard("telegram", "3")
    assert [u.update_id for u in await storage.inbox("telegram")] == ["2"]


async def test_replies_go_to_their_own_chats_and_merged_updates_count_as_processed(
    storage: SqlStorage,
) -> None:
    staff = ChatKey(KEY.channel, "-100")
    await storage.receive([InboxUpdate(KEY.channel, u, {}) for u in ("5", "6", "7")])
    queued = await storage.save(
        KEY,
        ConversationState(),
        "5",
        replies=[(KEY, {"text": "to you"}), (staff, {"text": "to staff"})],
        also_processed=["6"],
    )
    assert [(m.key, m.body["text"]) for m in queued] == [(KEY, "to you"), (staff, "to staff")]
    assert [await storage.is_processed(KEY, u) for u in ("5", "6", "7")] == [True, True, False]
    assert [u.update_id for u in await storage.inbox(KEY.channel)] == ["7"]


async def test_replies_wait_in_the_outbox_until_delivered_or_failed(
    storage: SqlStorage,
) -> None:
    bodies = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    queued = await storage.save(KEY, ConversationState(), "1", replies=[(KEY, b) for b in bodies])
    assert [m.body for m in queued] == bodies
    first, second, third = queued
    await storage.mark_delivered(first.id)
    await storage.mark_progress(second.id, 2)
    await storage.mark_failed(third.id, "Forbidden: bot was blocked by the user")
    [left] = await storage.outbox("telegram")
    assert (left.id, left.key, left.body, left.parts_sent) == (second.id, KEY, {"text": "two"}, 2)


async def test_a_reply_is_marked_sent_without_waiting_for_every_turn_queued(
    storage: SqlStorage,
) -> None:
    """A reply accepted but not yet marked is what a crash sends again: the mark goes
    before turns still waiting to be saved (SQLite's one connection takes them in turn)."""
    [reply] = await storage.save(KEY, ConversationState(), "1", replies=[(KEY, {"text": "hi"})])
    done: list[str] = []
    saving = asyncio.Event()

    async def turn(name: str) -> None:
        async with storage.database.transaction() as tx:
            await tx.fetch_one("SELECT 1")
            await saving.wait()
        done.append(name)

    async def mark() -> None:
        await storage.mark_delivered(reply.id)
        done.append("marked")

    turns = [asyncio.create_task(turn(name)) for name in ("first", "second", "third")]
    await asyncio.sleep(0.05)  # the first is saving; on SQLite the others wait their turn
    marking = asyncio.create_task(mark())
    await asyncio.sleep(0.05)
    saving.set()
    await asyncio.gather(*turns, marking)
    # On SQLite only the first turn, under way, goes before it.
    assert done.index("marked") < min(done.index("second"), done.index("third")), done
    assert await storage.outbox("telegram") == []
