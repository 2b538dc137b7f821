"""WhatsApp's 24-hour window as delivery applies it, and Meta's statuses kept against the
messages sent: the real `Delivery`, `WhatsAppSender` and `WindowGate` on a real SQLite file,
against the Cloud API emulator over real HTTP. No engine, no model."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from markupsafe import Markup

from bot.channels.whatsapp import WhatsAppChannel, WhatsAppSender
from bot.channels.whatsapp_api import GraphClient
from bot.channels.whatsapp_outbound import WindowGate
from bot.delivery import Delivery
from bot.runtime import Aside, Undelivered
from bot.settings import Settings, WhatsAppTemplateSettings
from domain.chats import ChatKey, ConversationState
from domain.sent import SentStatus
from handlers.messages import Purpose, Reply
from storage.base import InboxUpdate, QueuedMessage
from storage.sqlite import SqliteStorage
from tests.channels.test_whatsapp import settings_for
from tests.whatsapp_emulator import WhatsAppEmulator

CUSTOMER = "15551234567"
KEY = ChatKey("whatsapp", CUSTOMER)
TEMPLATES = {
    "order_update": WhatsAppTemplateSettings(name="order_update", language="en_US"),
}
drive = asyncio.to_thread


@pytest.fixture
def emu() -> Iterator[WhatsAppEmulator]:
    with WhatsAppEmulator(status_delay=0, webhook_retry_delay=0.01) as emulator:
        emulator.register_template("order_update", "en_US", body_params=1)
        yield emulator


@pytest.fixture
async def client(emu: WhatsAppEmulator) -> AsyncIterator[GraphClient]:
    graph = GraphClient(settings_for(emu))
    yield graph
    await graph.close()


class Failed:
    """Delivery's `on_failed` (the runtime's `report_undelivered`): who the staff hear of."""

    def __init__(self) -> None:
        self.reported: list[tuple[int, ChatKey, str]] = []

    async def __call__(self, message: QueuedMessage, reason: str) -> None:
        self.reported.append((message.id, message.key, reason))


class Courier:
    """A WhatsApp delivery as the runtime builds it, and what it reported."""

    def __init__(self, storage: SqliteStorage, client: GraphClient) -> None:
        self.storage = storage
        self.failed = Failed()
        self.delivery = Delivery(
            storage,
            "whatsapp",
            WhatsAppSender(client),
            on_failed=self.failed,
            gate=WindowGate(storage, TEMPLATES),
        )

    async def send(self, reply: Reply) -> QueuedMessage:
        """Queue a reply for the customer as a turn does, and deliver it."""
        [queued] = await self.storage.save(
            KEY, ConversationState(), None, replies=[(KEY, reply.to_json())]
        )
        self.delivery.enqueue(queued)
        await self.delivery.join()
        return queued

    async def failed_reason(self, message: QueuedMessage) -> str | None:
        row = await self.storage.database.fetch_one(
            "SELECT failed_reason FROM outbox WHERE id=?", (message.id,)
        )
        return None if row is None else row[0]


@pytest.fixture
def courier(storage: SqliteStorage, client: GraphClient) -> Courier:
    return Courier(storage, client)


async def wrote(storage: SqliteStorage, hours_ago: float) -> None:
    """The customer's last message, as a turn saves it: Meta's timestamp, `hours_ago`."""
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    await storage.save(KEY, ConversationState(), None, inbound_at=at)


NOTICE = Reply(Markup("🔔 <b>Order A-1001</b>: now shipped."), purpose=Purpose.ORDER_UPDATE)


async def test_within_the_window_a_reply_goes_as_it_is(
    emu: WhatsAppEmulator, storage: SqliteStorage, courier: Courier
) -> None:
    emu.set_last_inbound(CUSTOMER, 3600)
    await wrote(storage, 1)
    queued = await courier.send(NOTICE)
    [message] = await drive(emu.wait_messages, CUSTOMER, 1)
    assert message["type"] == "text"
    assert emu.text(message) == "🔔 *Order A-1001*: now shipped."
    assert await courier.failed_reason(queued) is None
    [sent] = await storage.sent_messages(KEY)
    assert (sent.message_id, sent.outbox_id, sent.body) == (message["id"], queued.id, queued.body)


async def test_after_the_window_an_order_notice_goes_as_its_template(
    emu: WhatsAppEmulator,
    storage: SqliteStorage,
    courier: Courier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.set_last_inbound(CUSTOMER, 25 * 3600)
    await wrote(storage, 25)
    caplog.set_level(logging.INFO)
    await courier.send(NOTICE)
    [message] = await drive(emu.wait_messages, CUSTOMER, 1)
    # As the Cloud API documents a template with one body parameter.
    assert message["type"] == "template"
    assert message["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "🔔 *Order A-1001*: now shipped."}],
            }
        ],
    }
    assert courier.failed.reported == []
    assert "whatsapp.template_sent chat=…4567" in caplog.text
    assert CUSTOMER not in caplog.text


async def test_after_the_window_without_a_template_the_reply_is_kept_and_the_staff_told(
    emu: WhatsAppEmulator, storage: SqliteStorage, courier: Courier
) -> None:
    emu.set_last_inbound(CUSTOMER, 30 * 3600)
    await wrote(storage, 30)
    rep = await courier.send(Reply(Markup("Sorry for the wait: it ships today"), to=KEY))
    rep_late = await courier.send(
        Reply(Markup("Here is the tracking link"), purpose=Purpose.STAFF_REPLY)
    )
    assert emu.messages(CUSTOMER, include_failed=True) == []
    for kept, why in ((rep, "24 hours ago"), (rep_late, "whatsapp.templates.staff_reply")):
        reason = await courier.failed_reason(kept)
        assert reason is not None
        assert why in reason
        assert (kept.id, KEY, reason) in courier.failed.reported


async def test_a_customer_who_never_wrote_gets_only_templates(
    emu: WhatsAppEmulator, courier: Courier
) -> None:
    queued = await courier.send(NOTICE)
    [message] = await drive(emu.wait_messages, CUSTOMER, 1)
    assert message["type"] == "template"
    assert await courier.failed_reason(queued) is None


async def test_when_meta_refuses_with_131047_the_template_goes_instead(
    storage: SqliteStorage,
) -> None:
    # Our clock says the window is open; Meta's says it closed, and answers 400 131047.
    await wrote(storage, 23.5)
    with WhatsAppEmulator(window_error="response", status_delay=0) as strict:
        strict.register_template("order_update", "en_US", body_params=1)
        strict.set_last_inbound(CUSTOMER, 24 * 3600 + 60)
        graph = GraphClient(settings_for(strict))
        try:
            courier = Courier(storage, graph)
            notice = await courier.send(NOTICE)
            answer = await courier.send(Reply(Markup("Our hours are 9 to 6")))
        finally:
            await graph.close()
        [message] = strict.messages(CUSTOMER)
    assert message["type"] == "template"
    assert await courier.failed_reason(notice) is None
    # An answer has no template: kept, the staff told why.
    [(message_id, _, reason)] = courier.failed.reported
    assert message_id == answer.id
    assert "24-hour window" in reason


async def test_a_failed_status_is_kept_and_reports_the_reply_once(
    emu: WhatsAppEmulator, storage: SqliteStorage, client: GraphClient
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    await wrote(storage, 0.01)
    settings = Settings().model_copy(update={"whatsapp": settings_for(emu)})
    channel = WhatsAppChannel(settings, storage, client)
    courier = Courier(storage, client)
    # Two parts, each failing later with 131026 (Meta accepts, then reports).
    emu.fail_next(131026, times=2, wa_id=CUSTOMER)
    long_reply = Reply(Markup("\n\n".join(["A paragraph about shipping. " * 80] * 2)))
    queued = await courier.send(long_reply)
    assert len(channel.sender.parts(queued)) == 2
    wamids = [sent.message_id for sent in await storage.sent_messages(KEY)]
    for wamid in wamids:
        await drive(emu.wait_status, wamid, "failed")
    statuses = [
        status
        for wamid in wamids
        for status in emu.statuses(wamid)
        if status["status"] in ("sent", "failed")
    ]
    told = [await channel.set_aside(*aside(channel, status)) for status in statuses]
    reported = [item for item in told if item is not None]
    assert len(reported) == 1
    [undelivered] = reported
    assert isinstance(undelivered, Undelivered)
    assert (undelivered.message.id, undelivered.message.key) == (queued.id, KEY)
    assert undelivered.message.body == queued.body
    assert "#131026" in undelivered.reason
    kept = await storage.sent_messages(KEY)
    assert [(s.status, s.error_code) for s in kept] == [(SentStatus.FAILED, 131026)] * 2
    # Meta posting the same status again tells nobody twice.
    assert await channel.set_aside(*aside(channel, statuses[-1])) is None


def aside(channel: WhatsAppChannel, status: dict[str, Any]) -> tuple[InboxUpdate, Aside]:
    """A status as the runtime hands it over: stored, then read."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [status]}}]}],
    }
    stored = InboxUpdate("whatsapp", channel.inbox_id(body), body)
    read = channel.read(stored)
    assert isinstance(read, Aside)
    return stored, read


async def test_a_status_of_a_message_not_recorded_yet_is_kept_for_its_send(
    storage: SqliteStorage,
) -> None:
    """Meta may post a status before it answers the call: the gate reports it then."""
    gate = WindowGate(storage, TEMPLATES, clock=time.time)
    [queued] = await storage.save(KEY, ConversationState(), None, replies=[(KEY, {"text": "x"})])
    overtaking = await storage.record_status(
        KEY, "wamid.early", SentStatus.FAILED, datetime.now(UTC), 131026, "Undeliverable (#131026)"
    )
    assert overtaking is not None
    assert overtaking.outbox_id is None
    assert await gate.sent(queued, 0, "wamid.early") == "Undeliverable (#131026)"
    assert await gate.sent(queued, 1, "wamid.fine") is None
