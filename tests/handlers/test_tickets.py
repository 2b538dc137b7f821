"""Repair tickets and second returns through the engine, on a real SQLite file."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from domain.chats import ChatKey
from domain.orders import Condition, Order, OrderItem, OrderStatus, Repair
from domain.tickets import Ticket, TicketStatus
from faq.service import FaqService
from handlers.engine import Engine, Services, StaffDesk
from handlers.messages import Incoming, Media, MediaKind, Reply
from handlers.routes import build_router
from storage.sqlite import SqliteStorage
from tests.factories import Clock, message, order, press, said

pytestmark = pytest.mark.model

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
STAFF_CHAT = "-1001"
STAFF = ChatKey("test", STAFF_CHAT)
CUSTOMER = ChatKey("test", "1")
TICKET_ID = re.compile(r"[RS]-[0-9A-Z]{4}-[0-9A-Z]{4}")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def services(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> Services:
    return Services(faq_service, placeholders, storage, clock=clock, staff=StaffDesk(chat=STAFF))


@pytest.fixture
def engine(storage: SqliteStorage, services: Services) -> Engine:
    return Engine(storage, services, build_router())


async def last(engine: Engine, incoming: Incoming) -> Reply:
    return (await said(engine, incoming))[-1]


def photo(ref: str, group: str | None = None, size: int = 200_000) -> Media:
    return Media(MediaKind.PHOTO, ref, size, "image/jpeg", group)


def staff_press(
    payload: str, rep: str = "555", message_id: str = "900", thread: str | None = None
) -> Incoming:
    return Incoming(
        "test",
        STAFF_CHAT,
        rep,
        payload=payload,
        update_id=f"s{payload}{rep}{message_id}",
        user_name="Alice Rep",
        message_id=message_id,
        staff=True,
        thread_id=thread,
    )


def staff_says(text: str, rep: str = "555", thread: str | None = None) -> Incoming:
    return Incoming(
        "test",
        STAFF_CHAT,
        rep,
        text=text,
        update_id=f"t{text}{rep}{thread}",
        user_name="Alice Rep",
        staff=True,
        thread_id=thread,
    )


def to_customer(replies: list[Reply]) -> list[Reply]:
    return [r for r in replies if r.to == CUSTOMER]


async def start_repair(engine: Engine) -> Reply:
    await said(engine, press("flow:repair_ticket"))
    return await last(engine, press("ticket:new:repair"))


async def repair_up_to_review(engine: Engine) -> Reply:
    """A repair ticket answered in the simplest way; the review."""
    await start_repair(engine)
    await said(engine, press("form:answer:brand:bitmain"))
    await said(engine, message("Antminer S21 200T"))
    await said(engine, message("JYZZB0UBDJBBJ0584"))
    await said(engine, press("form:skip:order"))
    await said(engine, press("form:answer:part:hashboard"))
    await said(engine, message("One board shows 0 chips since yesterday"))
    for index in range(3):
        await said(engine, press(f"form:check:{index}:done"))
    await said(engine, message(media=(photo("ph-1", "g1"), photo("ph-2", "g1"))))
    await said(engine, press("form:done:fault_photos"))
    for name in ("label_removed", "disassembled", "wrong_voltage"):
        await said(engine, press(f"form:answer:{name}:no"))
    return await last(engine, press("form:answer:modified:no"))


async def the_ticket(storage: SqliteStorage) -> Ticket:
    [ticket] = await storage.tickets_of(CUSTOMER)
    return ticket


async def submitted_repair(engine: Engine, storage: SqliteStorage) -> Ticket:
    """A repair ticket answered in the simplest way and submitted."""
    await repair_up_to_review(engine)
    ticket = await the_ticket(storage)
    await said(engine, press(f"ticket:submit:{ticket.id}"))
    return ticket


async def test_a_repair_ticket_is_collected_reviewed_and_submitted_once(
    engine: Engine, storage: SqliteStorage
) -> None:
    review = await repair_up_to_review(engine)
    assert "please check" in review.text
    assert "Antminer S21 200T" in review.text
    assert "JYZZB0UBDJBBJ0584" in review.text
    assert "2 file(s)" in review.text
    assert "Without a verified order" in review.text
    assert "customs costs, are paid by you" in review.text
    edit_buttons = [b.payload for b in review.flat_buttons if b.payload.startswith("form:edit:")]
    assert "form:edit:model" in edit_buttons
    assert "form:edit:checks" not in edit_buttons
    ticket = await the_ticket(storage)
    assert ticket.status is TicketStatus.DRAFT
    assert ticket.answers["part"] == "hashboard"

    replies = await said(engine, press(f"ticket:submit:{ticket.id}"))
    [confirmation] = [r for r in replies if r.to is None]
    assert TICKET_ID.search(confirmation.text)
    assert ticket.id in confirmation.text
    assert "pending" in confirmation.text
    card, files = [r for r in replies if r.to == STAFF]
    assert card.topic_of == CUSTOMER
    assert "Repair ticket " + ticket.id in card.text
    assert "One board shows 0 chips" in card.text
    assert [b.payload for b in card.flat_buttons] == [
        f"ticket:confirm:{ticket.id}",
        f"ticket:more:{ticket.id}",
        f"ticket:reject:{ticket.id}",
    ]
    assert [(m.file_ref, m.channel) for m in files.album] == [("ph-1", "test"), ("ph-2", "test")]

    again = await engine.handle(press(f"ticket:submit:{ticket.id}"))
    assert again.notice
    assert "already sent" in again.notice
    assert not [r for r in again.replies if r.to == STAFF]
    submitted = await the_ticket(storage)
    assert submitted.status is TicketStatus.PENDING
    assert submitted.revision == 1


async def test_wrong_input_is_re_asked_and_nothing_is_lost(
    engine: Engine, storage: SqliteStorage
) -> None:
    await start_repair(engine)
    await said(engine, press("form:answer:brand:bitmain"))
    await said(engine, message("S19j Pro"))
    bad = await last(engine, message("my miner"))
    assert "serial number is 8 to 32" in bad.text
    pdf = Media(MediaKind.DOCUMENT, "doc-1", 5000, "application/pdf", None, "invoice.pdf")
    wrong = await said(engine, message(media=(pdf,)))
    assert "That is a PDF document" in wrong[0].text
    assert "kept" in wrong[0].text
    # A photo of the sticker stands for the serial number.
    await said(engine, message(media=(photo("sticker"),)))
    await said(engine, press("form:skip:order"))
    await said(engine, press("form:answer:part:psu"))
    long = await last(engine, message("x" * 10_000))
    assert "2000 characters at most" in long.text
    await said(engine, message("No power at all, fan does not spin"))
    asked = await last(engine, message("I did it all"))
    assert "press one of the buttons" in asked.text
    ticket = await the_ticket(storage)
    assert ticket.answers["model"] == "S19j Pro"
    assert ticket.answers["serial"] == "photo"
    assert [m.file_ref for m in ticket.media["serial"]] == ["sticker"]
    assert "symptoms" in ticket.answers


async def test_a_check_that_fixes_the_fault_ends_without_a_ticket(
    engine: Engine, storage: SqliteStorage
) -> None:
    await start_repair(engine)
    await said(engine, press("form:answer:brand:bitmain"))
    await said(engine, message("S21"))
    await said(engine, message("JYZZB0UBDJBBJ0584"))
    await said(engine, press("form:skip:order"))
    await said(engine, press("form:answer:part:fan"))
    await said(engine, message("Fan error on the page"))
    await said(engine, press("form:check:0:done"))
    # A double tap on the first check's button is stale: we are at the second check.
    stale = await engine.handle(press("form:check:0:done"))
    assert stale.notice
    done = await said(engine, press("form:check:1:fixed"))
    assert "No ticket is needed" in done[-1].text
    assert (await the_ticket(storage)).status is TicketStatus.CANCELLED
    assert (await storage.load(CUSTOMER)).flow is None


async def test_the_warranty_pre_check_uses_the_verified_order(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(order(status=OrderStatus.DELIVERED, shipped_on=date(2026, 10, 1)), NOW)
    await start_repair(engine)
    await said(engine, press("form:answer:brand:bitmain"))
    await said(engine, message("S21"))
    await said(engine, message("SN21A0001"))
    asked = await last(engine, message("A-1001"))
    assert "e-mail address" in asked.text
    verified = await said(engine, message("buyer@example.com"))
    assert any("Order A-1001 verified" in r.text for r in verified)
    await said(engine, press("form:answer:part:control_board"))
    await said(engine, message("It does not boot at all"))
    for index in range(3):
        await said(engine, press(f"form:check:{index}:done"))
    await said(engine, message(media=(photo("p"),)))
    await said(engine, press("form:done:fault_photos"))
    await said(engine, press("form:answer:label_removed:no"))
    await said(engine, press("form:answer:disassembled:yes"))
    await said(engine, press("form:answer:wrong_voltage:no"))
    review = await last(engine, press("form:answer:modified:no"))
    assert "In warranty until" in review.text
    assert "Opened by someone else" in review.text
    assert "voids the warranty" in review.text
    ticket = await the_ticket(storage)
    assert ticket.answers["order_verified"] == "yes"
    assert "buyer@example.com" not in ticket.answers.values()


def second_return_order(shipped_on: date) -> Order:
    repaired = OrderItem(
        "Bitmain",
        "Antminer S19",
        1,
        Condition.NEW,
        ("SN19A",),
        (Repair("hash board", shipped_on, ticket_id="T-5001"),),
    )
    return order(status=OrderStatus.DELIVERED, shipped_on=date(2026, 6, 1), items=(repaired,))


async def link_order(engine: Engine) -> None:
    await said(engine, press("flow:track_order"))
    await said(engine, message("A-1001"))
    await said(engine, message("buyer@example.com"))


async def test_a_second_return_past_30_days_is_refused_with_a_repair_ticket_offered(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(second_return_order(date(2026, 10, 1)), NOW)
    await link_order(engine)
    await said(engine, press("ticket:new:second_return"))
    refused = await last(engine, message("t-5001"))
    assert "ended on" in refused.text
    assert "ticket:new:repair" in [b.payload for b in refused.flat_buttons]
    [ticket] = await storage.tickets_of(CUSTOMER)
    assert ticket.status is TicketStatus.CANCELLED


async def test_a_second_return_of_a_hash_board_with_an_album(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(second_return_order(date(2026, 11, 10)), NOW)
    await link_order(engine)
    await said(engine, press("ticket:new:second_return"))
    item = await last(engine, message("T-5001"))
    assert "Which item" in item.text
    await said(engine, press("form:answer:item:hashboard"))
    album = (photo("front", "a"), photo("back", "a"), photo("screen", "a"))
    confirm = await last(engine, message(media=album))
    assert "front side" in confirm.text
    assert "back side" in confirm.text
    assert "the screenshot" in confirm.text
    checks = await last(engine, press("form:order:ok"))
    assert "Check 1 of 2" in checks.text
    ticket = await the_ticket(storage)
    assert [m.file_ref for m in ticket.media["board_photos"]] == ["front", "back"]
    assert [m.file_ref for m in ticket.media["screenshot"]] == ["screen"]
    await said(engine, press("form:check:0:done"))
    await said(engine, press("form:check:1:done"))
    await said(engine, message("DHL"))
    await said(engine, message("JD0146 0000 1234"))
    await said(engine, message("1"))
    await said(engine, message("The board is not detected again"))
    terms = await last(
        engine, message("Ivan Petrov, 1 Main St, Almaty 050000, Kazakhstan, +7 700 000")
    )
    assert "https://example.com/repair" in terms.text
    *accepted, review = await said(engine, press("form:answer:terms:accepted"))
    # The question's message, rewritten with the answer, still has the address filled in.
    [rewritten] = [r for r in accepted if r.replaces is not None]
    assert "https://example.com/repair" in rewritten.text
    assert "I accept the terms" in rewritten.text
    assert "Second repair" in review.text
    assert "covered until" in review.text
    assert "JD014600001234" in review.text


async def test_two_photos_at_once_can_be_swapped(engine: Engine, storage: SqliteStorage) -> None:
    await storage.save_order(second_return_order(date(2026, 11, 10)), NOW)
    await link_order(engine)
    await said(engine, press("ticket:new:second_return"))
    await said(engine, message("T-5001"))
    await said(engine, press("form:answer:item:hashboard"))
    confirm = await last(engine, message(media=(photo("b", "x"), photo("f", "x"))))
    assert "form:order:swap" in [b.payload for b in confirm.flat_buttons]
    screenshot = await last(engine, press("form:order:swap"))
    assert "screenshot" in screenshot.text
    ticket = await the_ticket(storage)
    assert [m.file_ref for m in ticket.media["board_photos"]] == ["f", "b"]


async def test_a_video_too_big_for_the_bot_is_asked_for_as_a_link(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(second_return_order(date(2026, 11, 10)), NOW)
    await link_order(engine)
    await said(engine, press("ticket:new:second_return"))
    await said(engine, message("T-5001"))
    await said(engine, press("form:answer:item:psu"))
    await said(engine, message(media=(photo("psu-sn"),)))
    big = Media(MediaKind.VIDEO, "vid", 30 * 1024 * 1024, "video/mp4")
    refused = await said(engine, message(media=(big,)))
    assert "30 MB" in refused[0].text
    assert "send the link" in refused[0].text
    checks = await last(engine, message("Here: https://drive.example.com/v/123 thanks"))
    assert "Check 1 of 3" in checks.text
    ticket = await the_ticket(storage)
    assert ticket.media["voltage_video"][0].link == "https://drive.example.com/v/123"


async def test_paused_with_cancel_and_resumed_after_a_restart(
    engine: Engine, storage: SqliteStorage, services: Services
) -> None:
    await start_repair(engine)
    await said(engine, press("form:answer:brand:avalon"))
    paused = await last(engine, message("/cancel"))
    assert "saved as a draft" in paused.text
    restarted = Engine(storage, services, build_router())
    listed = await last(restarted, message("/tickets"))
    [show] = [b.payload for b in listed.flat_buttons if b.payload.startswith("ticket:show:")]
    card = await last(restarted, press(show))
    assert "draft" in card.text
    [resume] = [b.payload for b in card.flat_buttons if b.payload.startswith("ticket:continue:")]
    asked = await last(restarted, press(resume))
    assert "Which model" in asked.text
    again = await said(restarted, press("ticket:new:repair"))
    assert "unfinished repair ticket" in again[-1].text


async def test_revision_after_submit_and_staff_decisions_reach_the_customer(
    engine: Engine, storage: SqliteStorage
) -> None:
    ticket = await submitted_repair(engine, storage)

    # The customer changes the model; staff see what changed.
    await said(engine, press(f"ticket:revise:{ticket.id}"))
    asked = await last(engine, press("form:edit:model"))
    assert "Which model" in asked.text
    review = await last(engine, message("Antminer S21 Hyd"))
    assert "Send the changes" in " ".join(b.label for b in review.flat_buttons)
    sent = await said(engine, press(f"ticket:submit:{ticket.id}"))
    [revised_card] = [r for r in sent if r.to == STAFF and r.buttons]
    assert "Revised (Model)" in revised_card.text
    assert "Antminer S21 Hyd" in revised_card.text
    assert (await the_ticket(storage)).revision == 2

    # Ask for more: the rep's next message goes to the customer.
    prompt = await said(engine, staff_press(f"ticket:more:{ticket.id}"))
    assert "next message" in prompt[0].text
    decided = await said(engine, staff_says("Please add a photo of the board's label."))
    [notice] = to_customer(decided)
    assert "needs more" in notice.text
    assert "photo of the board" in notice.text
    assert notice.flat_buttons[0].payload == f"ticket:revise:{ticket.id}"
    [card_edit] = [r for r in decided if r.replaces == "900"]
    assert "More asked by Alice Rep" in card_edit.text
    needs = await the_ticket(storage)
    assert needs.status is TicketStatus.NEEDS_INFO
    assert needs.decided_by == "Alice Rep"

    # Confirm; a second press (another rep) is told it is decided.
    confirmed = await said(engine, staff_press(f"ticket:confirm:{ticket.id}"))
    [notice] = to_customer(confirmed)
    assert "confirmed" in notice.text
    late = await engine.handle(staff_press(f"ticket:reject:{ticket.id}", rep="556"))
    assert late.notice == "Already confirmed by Alice Rep."
    # Confirmed tickets can no longer be changed.
    locked = await last(engine, press(f"ticket:revise:{ticket.id}"))
    assert "can no longer be changed" in locked.text
    events = [e.action for e in await storage.ticket_events(ticket.id)]
    assert events[-3:] == ["revised", "asked_for_more", "confirmed"]


async def test_reject_with_a_reason(engine: Engine, storage: SqliteStorage) -> None:
    ticket = await submitted_repair(engine, storage)
    await said(engine, staff_press(f"ticket:reject:{ticket.id}"))
    # Another rep's message is not taken as the reason.
    other = await said(engine, staff_says("who is on shift?", rep="777"))
    assert not to_customer(other)
    decided = await said(engine, staff_says("The label was removed."))
    [notice] = to_customer(decided)
    assert "could not accept" in notice.text
    assert "The label was removed." in notice.text
    assert (await the_ticket(storage)).status is TicketStatus.REJECTED


async def test_a_decision_note_goes_only_to_the_customer_of_the_cards_topic(
    engine: Engine, storage: SqliteStorage
) -> None:
    ticket = await submitted_repair(engine, storage)
    other = ChatKey("test", "2")
    await storage.set_topic(CUSTOMER, STAFF, "11")
    await storage.set_topic(other, STAFF, "22")
    await said(engine, staff_press(f"ticket:more:{ticket.id}", thread="11"))

    # The rep answers another customer in that customer's topic: not the note.
    elsewhere = await said(engine, staff_says("Your PSU ships tomorrow.", thread="22"))
    assert not to_customer(elsewhere)
    assert [r.topic_of for r in elsewhere] == [other]
    assert (await the_ticket(storage)).status is TicketStatus.PENDING

    decided = await said(engine, staff_says("Please add a photo of the label.", thread="11"))
    [notice] = to_customer(decided)
    assert "photo of the label" in notice.text
    assert (await the_ticket(storage)).status is TicketStatus.NEEDS_INFO


async def test_without_topics_a_reply_to_another_customer_is_not_the_note(
    engine: Engine, storage: SqliteStorage
) -> None:
    ticket = await submitted_repair(engine, storage)
    await storage.remember_relay(ChatKey("test", STAFF_CHAT), "700", ChatKey("test", "2"))
    await said(engine, staff_press(f"ticket:reject:{ticket.id}"))
    answer = staff_says("Your PSU ships tomorrow.")
    elsewhere = await said(engine, replace(answer, reply_to="700"))
    assert not to_customer(elsewhere)
    assert (await the_ticket(storage)).status is TicketStatus.PENDING
    decided = await said(engine, staff_says("The label was removed."))
    assert "The label was removed." in to_customer(decided)[0].text


async def test_forged_ticket_buttons_reveal_nothing(engine: Engine, storage: SqliteStorage) -> None:
    await repair_up_to_review(engine)
    ticket = await the_ticket(storage)
    for payload in (
        f"ticket:show:{ticket.id}",
        f"ticket:revise:{ticket.id}",
        f"ticket:submit:{ticket.id}",
    ):
        reply = await last(engine, press(payload, chat="2"))
        assert "no longer valid" in reply.text
    # A customer cannot press staff buttons, even with a real id.
    forged = await last(engine, press(f"ticket:confirm:{ticket.id}"))
    assert "no longer valid" in forged.text
    assert (await the_ticket(storage)).status is TicketStatus.DRAFT


async def test_a_rep_who_confirms_instead_is_not_asked_for_words_any_more(
    engine: Engine, storage: SqliteStorage
) -> None:
    ticket = await submitted_repair(engine, storage)
    await said(engine, staff_press(f"ticket:reject:{ticket.id}"))
    await said(engine, staff_press(f"ticket:confirm:{ticket.id}"))
    assert (await storage.load(ChatKey("test", STAFF_CHAT))).data["awaiting"] == {}


async def test_open_tickets_are_on_the_handoff_card(engine: Engine, storage: SqliteStorage) -> None:
    ticket = await submitted_repair(engine, storage)
    replies = await said(engine, press("flow:handoff"))
    [card] = [r for r in replies if r.to == STAFF]
    assert f"• {ticket.id}: repair, pending" in card.text


async def test_editing_photos_from_the_review_replaces_them(
    engine: Engine, storage: SqliteStorage
) -> None:
    await repair_up_to_review(engine)
    asked = await last(engine, press("form:edit:fault_photos"))
    assert "replace the ones you sent" in asked.text
    more = await last(engine, message(media=(photo("ph-new"),)))
    assert "Got 1 so far" in more.text
    review = await last(engine, press("form:done:fault_photos"))
    assert "please check" in review.text
    ticket = await the_ticket(storage)
    assert [m.file_ref for m in ticket.media["fault_photos"]] == ["ph-new"]
    assert ticket.answers["fault_photos"] == "1"
