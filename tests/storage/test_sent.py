"""When each customer last wrote, and the messages sent with the statuses the messenger
reported: on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.chats import ChatKey, ConversationState
from domain.sent import SentStatus
from storage.sql import SqlStorage

KEY = ChatKey("whatsapp", "15551234567")
OTHER = ChatKey("whatsapp", "15557654321")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def test_the_last_inbound_time_is_kept_with_the_turn_and_never_goes_back(
    storage: SqlStorage, second: SqlStorage
) -> None:
    assert await storage.last_inbound(KEY) is None
    await storage.save(KEY, ConversationState(), "wamid.1", inbound_at=T0)
    # Meta delivering an older message late, and a staff turn (no inbound time).
    await storage.save(KEY, ConversationState(), "wamid.0", inbound_at=T0 - timedelta(hours=2))
    await storage.save(KEY, ConversationState("faq"), None)
    # Another process on the same database sees it.
    assert await second.last_inbound(KEY) == T0
    await second.save(KEY, ConversationState(), "wamid.2", inbound_at=T0 + timedelta(minutes=5))
    assert await storage.last_inbound(KEY) == T0 + timedelta(minutes=5)
    assert await storage.last_inbound(OTHER) is None


async def test_a_sent_message_keeps_its_reply_and_its_latest_status(storage: SqlStorage) -> None:
    [queued] = await storage.save(KEY, ConversationState(), None, replies=[(KEY, {"text": "hi"})])
    recorded = await storage.record_sent(queued, 0, "wamid.a")
    assert (recorded.outbox_id, recorded.part, recorded.body) == (queued.id, 0, {"text": "hi"})
    assert recorded.status is SentStatus.SENT
    await storage.mark_delivered(queued.id)
    # Out of order: read before delivered; delivered then changes nothing.
    read = await storage.record_status(KEY, "wamid.a", SentStatus.READ, T0)
    assert read is not None
    assert read.status is SentStatus.READ
    assert await storage.record_status(KEY, "wamid.a", SentStatus.DELIVERED, T0) is None
    [kept] = await storage.sent_messages(KEY)
    assert (kept.status, kept.status_at, kept.body) == (SentStatus.READ, T0, {"text": "hi"})


async def test_a_failure_is_kept_with_its_code_and_reported_once(storage: SqlStorage) -> None:
    [queued] = await storage.save(KEY, ConversationState(), None, replies=[(KEY, {"text": "hi"})])
    await storage.record_sent(queued, 0, "wamid.f")
    failed = await storage.record_status(
        KEY, "wamid.f", SentStatus.FAILED, T0, 131026, "Message undeliverable (#131026)"
    )
    assert failed is not None
    assert (failed.status, failed.error_code, failed.error) == (
        SentStatus.FAILED,
        131026,
        "Message undeliverable (#131026)",
    )
    assert failed.outbox_id == queued.id
    assert await storage.record_status(KEY, "wamid.f", SentStatus.FAILED, T0, 131026) is None
    assert await storage.record_status(KEY, "wamid.f", SentStatus.READ, T0) is None


async def test_a_status_before_its_send_is_kept_for_the_send_to_find(
    storage: SqlStorage, second: SqlStorage
) -> None:
    early = await storage.record_status(
        KEY, "wamid.e", SentStatus.FAILED, T0, 131047, "Re-engagement message (#131047)"
    )
    assert early is not None
    assert (early.outbox_id, early.body) == (None, None)
    [queued] = await second.save(KEY, ConversationState(), None, replies=[(KEY, {"text": "x"})])
    recorded = await second.record_sent(queued, 1, "wamid.e")
    assert (recorded.outbox_id, recorded.part, recorded.body) == (queued.id, 1, {"text": "x"})
    assert (recorded.status, recorded.error_code) == (SentStatus.FAILED, 131047)


async def test_prune_forgets_old_records_of_sent_messages(storage: SqlStorage) -> None:
    [queued] = await storage.save(KEY, ConversationState(), None, replies=[(KEY, {"text": "hi"})])
    await storage.record_sent(queued, 0, "wamid.old")
    async with storage.database.transaction() as tx:
        await tx.execute(
            "UPDATE sent_messages SET sent_at=? WHERE message_id=?",
            ("2020-01-01T00:00:00.000Z", "wamid.old"),
        )
    await storage.record_sent(queued, 1, "wamid.new")
    await storage.prune(older_than_days=30)
    assert [sent.message_id for sent in await storage.sent_messages(KEY)] == ["wamid.new"]
