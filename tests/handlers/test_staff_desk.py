"""The staff desk is a chat of its own channel: a WhatsApp customer handed over to reps in
the Telegram staff supergroup, through the engine on a real SQLite file. Replies name the
chat they go to, so the outbox holds the staff chat's on Telegram's channel and the
customer's on WhatsApp's, for each channel's delivery."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.chats import ChatKey
from domain.tickets import TicketStatus
from faq.service import FaqService
from handlers.engine import Engine, Services, StaffDesk
from handlers.handoff import REMIND_EVENT, undelivered_event
from handlers.messages import Incoming, Media, MediaKind, Reply
from handlers.routes import build_router
from handlers.staff import system_event
from storage.base import QueuedMessage
from storage.sqlite import SqliteStorage
from tests.factories import Clock, message, press, said

pytestmark = pytest.mark.model

PHONE = "447700900123"
CUSTOMER = ChatKey("whatsapp", PHONE)
STAFF = ChatKey("telegram", "-1001")
# Monday 23 November 2026, 10:00 UTC: business hours (Mon-Fri 09-18 UTC).
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def engine(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> Engine:
    services = Services(
        faq_service,
        placeholders,
        storage,
        staff=StaffDesk(chat=STAFF, remind_after_minutes=10),
        clock=clock,
        phone_channels=frozenset({"whatsapp"}),
    )
    return Engine(storage, services, build_router())


def on_whatsapp(incoming: Incoming, name: str | None = None) -> Incoming:
    """What the WhatsApp channel hands the engine: the chat id is the customer's number,
    which WhatsApp verified."""
    return replace(
        incoming,
        channel="whatsapp",
        chat_id=PHONE,
        user_id=PHONE,
        user_name=name,
        phone=f"+{PHONE}",
        media=tuple(replace(media, channel="whatsapp") for media in incoming.media),
    )


def rep(
    text: str | None = None,
    message_id: str = "900",
    payload: str | None = None,
    thread: str | None = "500",
    media: tuple[Media, ...] = (),
) -> Incoming:
    """Bob's message or button press in the customer's topic of the Telegram staff chat."""
    return Incoming(
        "telegram",
        STAFF.chat_id,
        "77",
        text=text,
        payload=payload,
        media=media,
        user_name="Bob Rep",
        message_id=message_id,
        staff=True,
        thread_id=thread,
        update_id=f"s{message_id}{text}{payload}",
    )


async def queued(engine: Engine, incoming: Incoming) -> list[QueuedMessage]:
    return (await engine.handle(incoming)).queued


def replies(messages: list[QueuedMessage], to: ChatKey) -> list[Reply]:
    """The replies queued for the chat `to`, as its channel's delivery reads them."""
    return [Reply.from_json(m.body, m.key.channel) for m in messages if m.key == to]


async def handed_over(engine: Engine, storage: SqliteStorage) -> None:
    await said(engine, on_whatsapp(press("flow:handoff"), name="Alice Buyer"))
    # What the Telegram sender does when it posts the card: open the customer's topic.
    await storage.set_topic(CUSTOMER, STAFF, "500")


async def test_the_handoff_opens_a_topic_in_the_telegram_staff_chat_with_the_phone_masked(
    engine: Engine, storage: SqliteStorage
) -> None:
    await said(engine, on_whatsapp(message("How long does delivery take?")))
    sent = await queued(engine, on_whatsapp(press("flow:handoff"), name="Alice Buyer"))

    assert {m.key for m in sent} == {CUSTOMER, STAFF}
    [told] = replies(sent, CUSTOMER)
    assert "passed our conversation to a sales rep" in told.text
    [card] = replies(sent, STAFF)
    assert (card.to, card.topic_of, card.open_topic) == (STAFF, CUSTOMER, "Alice Buyer · whatsapp")
    assert "Customer: Alice Buyer, id ••••••••0123, whatsapp" in card.text
    assert "Phone: +••••••••0123 (verified by whatsapp; /phone shows it)" in card.text
    assert PHONE not in card.text
    assert "👤 How long does delivery take?" in card.text
    # Each channel's delivery finds its own: the card on Telegram, the answer on WhatsApp.
    assert [m.key for m in await storage.outbox("telegram")] == [STAFF]
    assert {m.key for m in await storage.outbox("whatsapp")} == {CUSTOMER}
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert handoff.phone == f"+{PHONE}"


async def test_a_customer_without_a_name_has_a_topic_named_by_the_masked_number(
    engine: Engine,
) -> None:
    [card] = replies(await queued(engine, on_whatsapp(press("flow:handoff"))), STAFF)
    assert card.open_topic == "••••••••0123 · whatsapp"


async def test_messages_are_relayed_both_ways_across_the_channels(
    engine: Engine, storage: SqliteStorage
) -> None:
    await handed_over(engine, storage)

    # WhatsApp cannot be copied from on Telegram: the text goes, and files name WhatsApp.
    [relay] = replies(await queued(engine, on_whatsapp(message("Where is my miner?"))), STAFF)
    assert (relay.topic_of, relay.copy_of, relay.text) == (CUSTOMER, None, "Where is my miner?")
    photo = on_whatsapp(message("the <board>", media=(Media(MediaKind.PHOTO, "wa-photo-1"),)))
    [album] = replies(await queued(engine, photo), STAFF)
    assert album.text == "the &lt;board&gt;"
    assert [(m.file_ref, m.channel) for m in album.album] == [("wa-photo-1", "whatsapp")]
    place = on_whatsapp(message(media=(Media(MediaKind.LOCATION),)))
    [shown] = replies(await queued(engine, place), STAFF)
    assert "cannot be shown here (location)" in shown.text

    # The rep's answer goes to WhatsApp as its text, not as a Telegram copy.
    sent = await queued(engine, rep("Hello, checking your order & serial"))
    assert [m.key for m in sent] == [CUSTOMER]
    [answer] = replies(sent, CUSTOMER)
    assert (answer.copy_of, answer.text) == (None, "Hello, checking your order &amp; serial")
    rep_photo = Media(MediaKind.PHOTO, "tg-photo-1")
    [files] = replies(await queued(engine, rep("label", "901", media=(rep_photo,))), CUSTOMER)
    assert [(m.file_ref, m.channel) for m in files.album] == [("tg-photo-1", "telegram")]
    contact = await queued(engine, rep(message_id="902", media=(Media(MediaKind.CONTACT),)))
    [refused] = replies(contact, STAFF)
    assert "Not sent: only text, photos, videos and files reach a whatsapp customer" in (
        refused.text
    )
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert handoff.first_staff_reply_at == MONDAY


async def test_phone_claim_close_and_the_rating_from_whatsapp(
    engine: Engine, storage: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers")
    await handed_over(engine, storage)

    [phone] = replies(await queued(engine, rep("/phone", "909")), STAFF)
    assert (phone.topic_of, phone.text) == (CUSTOMER, f"📞 +{PHONE}")
    claimed = await queued(engine, rep("/claim", "910"))
    assert "Bob Rep took this conversation" in replies(claimed, STAFF)[0].text
    assert "A sales rep has joined" in replies(claimed, CUSTOMER)[0].text
    closed = await queued(engine, rep("/close", "911"))
    assert "Closed by Bob Rep" in replies(closed, STAFF)[0].text
    [prompt] = replies(closed, CUSTOMER)
    assert [b.label for b in prompt.flat_buttons] == [f"{n} ⭐" for n in range(1, 6)]
    assert await storage.open_handoff(CUSTOMER) is None

    [thanks] = await said(engine, on_whatsapp(press(prompt.flat_buttons[3].payload)))
    assert "⭐⭐⭐⭐" in thanks.text
    stats = await storage.handoff_stats(MONDAY - timedelta(days=1))
    assert list(stats.by_channel["whatsapp"].ratings) == [4]
    assert stats.by_channel["whatsapp"].first_reply_seconds == []
    assert (stats.by_channel["whatsapp"].handoffs, stats.handoffs) == (1, 1)
    # The handoff's log lines, /phone's too, show the number masked.
    assert "handoff.phone_shown chat=••••••••0123 by=77" in caplog.text
    assert PHONE not in caplog.text


async def test_reminders_and_undelivered_replies_reach_the_customers_topic(
    engine: Engine, storage: SqliteStorage, clock: Clock
) -> None:
    await handed_over(engine, storage)
    clock.now = MONDAY + timedelta(minutes=11)
    [reminder] = replies(await queued(engine, system_event(STAFF, REMIND_EVENT)), STAFF)
    assert (reminder.topic_of, "waiting 11 minutes" in reminder.text) == (CUSTOMER, True)

    outside = undelivered_event(CUSTOMER, "outside WhatsApp's 24-hour window")
    [report] = replies(await queued(engine, system_event(STAFF, outside)), STAFF)
    assert report.topic_of == CUSTOMER
    assert report.text == (
        "⚠️ Could not deliver to the customer: outside WhatsApp&#39;s 24-hour window"
    )
    # A Telegram customer with the same number is someone else, with no handoff.
    other = undelivered_event(ChatKey("telegram", PHONE), "blocked")
    assert await said(engine, system_event(STAFF, other)) == []


async def repair_ticket_submitted(engine: Engine, storage: SqliteStorage) -> list[QueuedMessage]:
    """A repair ticket answered in the simplest way on WhatsApp and submitted; what the
    submission queued."""

    async def customer(incoming: Incoming) -> None:
        await said(engine, on_whatsapp(incoming))

    await customer(press("flow:repair_ticket"))
    await customer(press("ticket:new:repair"))
    await customer(press("form:answer:brand:bitmain"))
    await customer(message("Antminer S21 200T"))
    await customer(message("JYZZB0UBDJBBJ0584"))
    await customer(press("form:skip:order"))
    await customer(press("form:answer:part:hashboard"))
    await customer(message("One board shows 0 chips since yesterday"))
    for index in range(3):
        await customer(press(f"form:check:{index}:done"))
    photos = tuple(
        Media(MediaKind.PHOTO, ref, 200_000, "image/jpeg", "g1") for ref in ("wa-1", "wa-2")
    )
    await customer(message(media=photos))
    await customer(press("form:done:fault_photos"))
    for name in ("label_removed", "disassembled", "wrong_voltage", "modified"):
        await customer(press(f"form:answer:{name}:no"))
    [ticket] = await storage.tickets_of(CUSTOMER)
    return await queued(engine, on_whatsapp(press(f"ticket:submit:{ticket.id}")))


async def test_a_ticket_card_in_the_staff_chat_and_its_decisions_reach_whatsapp(
    engine: Engine, storage: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers")
    sent = await repair_ticket_submitted(engine, storage)
    # The ticket's log lines name the chat by its masked number, as every flow's do.
    assert "ticket.submitted chat=••••••••0123" in caplog.text
    assert PHONE not in caplog.text
    [ticket] = await storage.tickets_of(CUSTOMER)
    [confirmation] = replies(sent, CUSTOMER)
    assert ticket.id in confirmation.text
    card, files = replies(sent, STAFF)
    assert card.topic_of == CUSTOMER
    assert "Customer: –, id ••••••••0123 (whatsapp)" in card.text
    assert PHONE not in card.text
    assert [b.payload for b in card.flat_buttons] == [
        f"ticket:confirm:{ticket.id}",
        f"ticket:more:{ticket.id}",
        f"ticket:reject:{ticket.id}",
    ]
    assert [(m.file_ref, m.channel) for m in files.album] == [
        ("wa-1", "whatsapp"),
        ("wa-2", "whatsapp"),
    ]
    await storage.set_topic(CUSTOMER, STAFF, "500")

    # Ask for more: Bob's next message in the topic goes to the customer on WhatsApp.
    asked = await queued(engine, rep(payload=f"ticket:more:{ticket.id}", message_id="930"))
    assert "next message" in replies(asked, STAFF)[0].text
    decided = await queued(engine, rep("Please add a photo of the label.", "931"))
    [notice] = replies(decided, CUSTOMER)
    assert "photo of the label" in notice.text
    assert notice.flat_buttons[0].payload == f"ticket:revise:{ticket.id}"
    assert (await storage.ticket(ticket.id) or ticket).status is TicketStatus.NEEDS_INFO

    confirmed = await queued(engine, rep(payload=f"ticket:confirm:{ticket.id}", message_id="932"))
    [notice] = replies(confirmed, CUSTOMER)
    assert "confirmed" in notice.text
    decided_ticket = await storage.ticket(ticket.id)
    assert decided_ticket is not None
    assert (decided_ticket.status, decided_ticket.decided_by) == (
        TicketStatus.CONFIRMED,
        "Bob Rep",
    )
