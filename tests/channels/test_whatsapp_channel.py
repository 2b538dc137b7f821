"""`WhatsAppChannel`, the runtime's adapter made of the WhatsApp parts, against the Cloud API
emulator over real HTTP, in process: no engine, no model."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from markupsafe import Markup

from bot.channels.whatsapp import WhatsAppChannel
from bot.channels.whatsapp_read import DeliveryStatus, Status
from bot.runtime import Aside, CannotServe, Pace
from bot.settings import Settings
from bot.workers import REUSE_PORT
from domain.chats import ChatKey
from handlers.messages import Incoming, Reply
from storage.base import InboxUpdate, QueuedMessage
from storage.sqlite import SqliteStorage
from tests.channels.test_whatsapp import settings_for
from tests.whatsapp_emulator import WhatsAppEmulator

CUSTOMER = "15551234567"
JsonDict = dict[str, Any]
drive = asyncio.to_thread


@pytest.fixture
def emu() -> Iterator[WhatsAppEmulator]:
    with WhatsAppEmulator(status_delay=0, webhook_retry_delay=0.01) as emulator:
        yield emulator


@pytest.fixture
async def channel(emu: WhatsAppEmulator, storage: SqliteStorage) -> AsyncIterator[WhatsAppChannel]:
    settings = Settings().model_copy(update={"whatsapp": settings_for(emu)})
    channel = WhatsAppChannel(settings, storage)
    yield channel
    await channel.close()


class Received:
    """The runtime's `store`: keeps the items as the inbox would."""

    def __init__(self, channel: WhatsAppChannel) -> None:
        self.channel = channel
        self.items: list[InboxUpdate] = []
        self.arrived = asyncio.Event()

    async def __call__(self, bodies: Any) -> None:
        for body in bodies:
            self.items.append(InboxUpdate("whatsapp", self.channel.inbox_id(body), body))
        self.arrived.set()


async def listening(channel: WhatsAppChannel) -> int:
    """The port the channel's webhook listens on, once it does."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        if channel.webhook is not None and channel.webhook.port:
            return channel.webhook.port
    raise AssertionError("the webhook did not start")


@pytest.fixture
async def received(emu: WhatsAppEmulator, channel: WhatsAppChannel) -> AsyncIterator[Received]:
    store = Received(channel)
    receiving = asyncio.create_task(channel.receive(store))
    port = await listening(channel)
    emu.webhook_url = f"http://127.0.0.1:{port}/whatsapp/webhook"
    yield store
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving


async def test_a_message_is_an_incoming_and_answered_marks_it_read_without_typing(
    emu: WhatsAppEmulator, channel: WhatsAppChannel, received: Received
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "where is my order?"))
    [stored] = received.items
    incoming = channel.read(stored)
    assert isinstance(incoming, Incoming)
    assert (incoming.channel, incoming.chat_id, incoming.text) == (
        "whatsapp",
        CUSTOMER,
        "where is my order?",
    )
    assert stored.update_id == incoming.update_id
    await channel.show_typing(CUSTOMER)
    await channel.answered(stored, incoming, None)
    receipts = emu.read_receipts(CUSTOMER)
    assert [r.get("typing_indicator") for r in receipts] == [{"type": "text"}, None]
    assert {r["message_id"] for r in receipts} == {stored.update_id}


async def test_statuses_and_ignored_items_are_set_aside_a_failure_logged_masked(
    emu: WhatsAppEmulator,
    channel: WhatsAppChannel,
    received: Received,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "hi"))
    emu.fail_next(131026)  # undeliverable, reported by a failed status
    message = QueuedMessage(1, ChatKey("whatsapp", CUSTOMER), Reply(Markup("hello")).to_json())
    for part in channel.sender.parts(message):
        await channel.sender.send(message.key, part)
    emu.wait_until(lambda: any(s.get("status") == "failed" for s in emu.statuses()))
    await asyncio.sleep(0.2)
    asides = [(item, channel.read(item)) for item in received.items[1:]]
    assert asides
    assert all(isinstance(aside, Aside) for _, aside in asides)
    failed = [
        (item, aside)
        for item, aside in asides
        if isinstance(aside, Aside)
        and isinstance(aside.event, DeliveryStatus)
        and aside.event.status is Status.FAILED
    ]
    assert failed
    caplog.set_level(logging.INFO)
    for item, aside in asides:
        assert isinstance(aside, Aside)
        await channel.set_aside(item, aside)
    assert "whatsapp.message_failed chat=" in caplog.text
    assert CUSTOMER not in caplog.text


async def test_pace_is_whatsapps_own(emu: WhatsAppEmulator, storage: SqliteStorage) -> None:
    paced = settings_for(emu).model_copy(
        update={
            "messages_per_second": 5.0,
            "inbound_per_minute": 12.0,
            "inbound_burst": 3,
            "shutdown_grace_seconds": 4.0,
        }
    )
    channel = WhatsAppChannel(Settings().model_copy(update={"whatsapp": paced}), storage)
    assert channel.pace == Pace(5.0, 12.0, 3, 4.0)
    default = WhatsAppChannel(Settings(), storage, client=channel.client)
    # Below the Cloud API's 80 a second, and not Telegram's 30.
    assert default.pace.messages_per_second == 20.0
    await channel.close()


def on_port(emu: WhatsAppEmulator, storage: SqliteStorage, port: int) -> WhatsAppChannel:
    hook = settings_for(emu).webhook.model_copy(update={"listen_port": port})
    whatsapp = settings_for(emu).model_copy(update={"webhook": hook})
    return WhatsAppChannel(Settings().model_copy(update={"whatsapp": whatsapp}), storage)


async def test_a_port_another_program_holds_is_one_line(
    emu: WhatsAppEmulator, storage: SqliteStorage
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        channel = on_port(emu, storage, other.getsockname()[1])
        with pytest.raises(CannotServe, match=r"whatsapp\.webhook: cannot listen on 127\.0\.0\.1"):
            await channel.receive(Received(channel))
        await channel.close()


@pytest.mark.skipif(not REUSE_PORT, reason="SO_REUSEPORT is Linux's")
async def test_workers_on_one_machine_listen_on_one_port(
    emu: WhatsAppEmulator, storage: SqliteStorage
) -> None:
    first = on_port(emu, storage, 0)
    receiving = [asyncio.create_task(first.receive(Received(first)))]
    port = await listening(first)
    second = on_port(emu, storage, port)
    receiving.append(asyncio.create_task(second.receive(Received(second))))
    assert await listening(second) == port
    for task in receiving:
        task.cancel()
    await asyncio.gather(*receiving, return_exceptions=True)
    await first.close()
    await second.close()
