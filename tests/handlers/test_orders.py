"""Order tracking and the warranty check through the engine, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.channels.html_split import split_html
from domain.chats import ChatKey
from domain.order_feed import order_from_record
from domain.orders import Condition, OrderItem, OrderStatus, Repair, StatusChange
from domain.ownership import CheckLimits
from faq.service import FaqService
from handlers.engine import Engine, Services, StaffDesk
from handlers.messages import Incoming, Media, MediaKind, Reply
from handlers.routes import build_router
from storage.sqlite import SqliteStorage
from tests.factories import Clock, longest_record, message, order, press, said

pytestmark = pytest.mark.model

# Friday 20 November 2026, 10:00 UTC.
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def engine(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> Engine:
    services = Services(faq_service, placeholders, storage, clock=clock)
    return Engine(storage, services, build_router())


async def one(engine: Engine, incoming: Incoming) -> Reply:
    [reply] = await said(engine, incoming)
    return reply


def payloads(reply: Reply) -> list[str]:
    return [button.payload for button in reply.flat_buttons]


async def verify(engine: Engine, lookup: str, email: str, chat: str = "1") -> Reply:
    """Start tracking, give the order number (or SN) and the e-mail; the last reply."""
    await said(engine, press("flow:track_order", chat=chat))
    asked = await one(engine, message(lookup, chat=chat))
    assert "e-mail address" in asked.text
    return await one(engine, message(email, chat=chat))


async def test_tracking_asks_number_then_email_and_shows_the_card(
    engine: Engine, storage: SqliteStorage
) -> None:
    paid = order(status=OrderStatus.PAID, paid_on=date(2026, 11, 19))
    await storage.save_order(paid, NOW - timedelta(days=1))
    asked = await one(engine, press("flow:track_order"))
    assert "order number" in asked.text
    card = await verify(engine, "A-1001", "  Buyer@Example.COM ")
    assert "Order A-1001</b>: paid" in card.text
    assert "b***r@e***e.com" in card.text
    assert "buyer@example.com" not in card.text
    assert "1 × Bitmain Antminer S21 (new)" in card.text
    # Paid Thursday 19 Nov; 3 and 7 business days later, over a weekend.
    assert "between Tue, 24 Nov 2026 and Mon, 30 Nov 2026" in card.text
    assert (await storage.load(ChatKey("test", "1"))).flow is None


async def test_a_verified_order_is_linked_and_later_lookups_skip_the_question(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(order(), NOW)
    await verify(engine, "A-1001", "buyer@example.com")
    listed = await one(engine, message("/orders"))
    assert payloads(listed)[0] == "orders:track:A-1001"
    chooser = await one(engine, press("flow:track_order"))
    assert "orders:track:A-1001" in payloads(chooser)
    card = await one(engine, message("a-1001"))
    assert "Order A-1001</b>" in card.text
    pressed = await one(engine, press("orders:track:A-1001"))
    assert "Order A-1001</b>" in pressed.text


async def test_unknown_order_and_wrong_email_get_the_same_answer(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(order(), NOW)
    unknown = await verify(engine, "Z-9999", "buyer@example.com", chat="2")
    wrong_email = await verify(engine, "A-1001", "someone@example.com", chat="3")
    assert unknown.text == wrong_email.text
    assert "could not find" in unknown.text
    assert "A-1001" not in wrong_email.text


async def test_five_failed_checks_in_an_hour_pause_lookups(
    engine: Engine, storage: SqliteStorage, clock: Clock
) -> None:
    await storage.save_order(order(), NOW)
    for attempt in range(4):
        reply = await verify(engine, "A-1001", f"guess{attempt}@example.com")
        assert "could not find" in reply.text
    fifth = await verify(engine, "A-1001", "guess4@example.com")
    assert "paused" in fifth.text
    assert "60 minutes" in fifth.text
    # Even the right answer is refused during the cool-down.
    locked = await one(engine, press("flow:track_order"))
    assert "paused" in locked.text
    clock.now += timedelta(minutes=61)
    card = await verify(engine, "A-1001", "buyer@example.com")
    assert "Order A-1001</b>" in card.text


async def test_guesses_at_one_order_from_many_chats_pause_its_lookups_and_warn_staff(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> None:
    desk = StaffDesk(chat=ChatKey("test", "-100"))
    services = Services(faq_service, placeholders, storage, clock=clock, staff=desk)
    engine = Engine(storage, services, build_router())
    await storage.save_order(order(), NOW)
    # Two guesses from each of five fresh chats: under the per-chat limit every time.
    warnings = []
    for guess in range(10):
        chat = str(100 + guess // 2)
        await said(engine, press("flow:track_order", chat=chat))
        await said(engine, message("A-1001", chat=chat))
        replies = await said(engine, message(f"guess{guess}@example.com", chat=chat))
        warnings += [r for r in replies if r.to == ChatKey("test", "-100")]
    [warning] = warnings
    assert "<code>A-1001</code> failed 10 times" in warning.text
    # The owner, in a new chat, waits too: the order's look-ups are paused for the hour.
    await said(engine, press("flow:track_order", chat="200"))
    paused = await one(engine, message("A-1001", chat="200"))
    assert "paused" in paused.text
    # Another order is still looked up.
    await storage.save_order(order("B-2002"), NOW)
    other = await verify(engine, "B-2002", "buyer@example.com", chat="201")
    assert "Order B-2002</b>" in other.text
    clock.now += timedelta(minutes=61)
    card = await verify(engine, "A-1001", "buyer@example.com", chat="200")
    assert "Order A-1001</b>" in card.text


async def test_too_many_failed_checks_in_the_shop_pause_every_lookup(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> None:
    limits = CheckLimits(overall=3)
    services = Services(faq_service, placeholders, storage, clock=clock, check_limits=limits)
    engine = Engine(storage, services, build_router())
    await storage.save_order(order(), NOW)
    for guess in range(3):
        reply = await verify(engine, f"Z-{guess}", "a@example.com", chat=str(300 + guess))
        assert "could not find" in reply.text
    await said(engine, press("flow:track_order", chat="400"))
    assert "paused" in (await one(engine, press("flow:track_order", chat="400"))).text


async def test_a_forged_button_reveals_no_order(engine: Engine, storage: SqliteStorage) -> None:
    await storage.save_order(order(), NOW)
    for payload in ("orders:track:A-1001", "orders:warranty:A-1001", "orders:bogus"):
        reply = await one(engine, press(payload, chat="4"))
        assert "no longer valid" in reply.text
        assert "A-1001" not in reply.text


async def test_bad_input_in_the_flow_is_reasked_without_losing_the_step(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.save_order(order(), NOW)
    await said(engine, press("flow:track_order"))
    photo = Media(MediaKind.PHOTO, "file-1")
    assert "type it" in (await one(engine, message(None, media=(photo,)))).text
    assert "does not look like an order number" in (await one(engine, message("x" * 10_000))).text
    await said(engine, message("A-1001"))
    assert "does not look like an e-mail" in (await one(engine, message("not an email"))).text
    card = await one(engine, message("buyer@example.com"))
    assert "Order A-1001</b>" in card.text
    failures = await storage.failed_checks_since(NOW - timedelta(hours=1), ChatKey("test", "1"))
    assert list(failures) == []


async def test_cancel_leaves_the_flow(engine: Engine, storage: SqliteStorage) -> None:
    await said(engine, press("flow:track_order"))
    await said(engine, message("A-1001"))
    assert (await one(engine, message("/cancel"))).text.startswith("Cancelled")
    assert (await storage.load(ChatKey("test", "1"))).flow is None


async def test_shipped_order_expects_delivery_and_links_customs_questions(
    engine: Engine, storage: SqliteStorage, faq_service: FaqService
) -> None:
    shipped = order(
        status=OrderStatus.IN_CUSTOMS,
        carrier="DHL",
        tracking_number="JD0001",
        paid_on=date(2026, 11, 9),
        shipped_on=date(2026, 11, 16),
        tracking_updated_at=NOW - timedelta(days=1),
    )
    await storage.save_order(shipped, NOW - timedelta(days=1))
    card = await verify(engine, "A-1001", "buyer@example.com")
    assert "in customs clearance" in card.text
    assert "DHL, tracking number <code>JD0001</code>" in card.text
    # Mon 16 Nov + 5..10 business days.
    assert "between Mon, 23 Nov 2026 and Mon, 30 Nov 2026" in card.text
    assert "orders:customs" in payloads(card)
    customs = await one(engine, press("orders:customs"))
    customs_ids = {e.id for e in faq_service.kb.entries if e.category == "customs"}
    assert {p.removeprefix("faq:show:") for p in payloads(customs)} >= customs_ids


async def test_ddp_and_pre_order_expectations(engine: Engine, storage: SqliteStorage) -> None:
    ddp = order("D-1", status=OrderStatus.SHIPPED, ddp=True, shipped_on=date(2026, 11, 16))
    pre = order("P-1", status=OrderStatus.PRE_ORDER, expected_on=date(2027, 1, 15))
    for item in (ddp, pre):
        await storage.save_order(item, NOW)
    ddp_card = await verify(engine, "D-1", "buyer@example.com")
    assert "around Mon, 7 Dec 2026" in ddp_card.text
    assert "orders:customs" not in payloads(ddp_card)
    pre_card = await verify(engine, "P-1", "buyer@example.com")
    assert "manufacturer expects to ship on Fri, 15 Jan 2027" in pre_card.text


async def test_stale_tracking_apologises_and_offers_a_rep_with_the_order(
    engine: Engine, storage: SqliteStorage
) -> None:
    stuck = order(
        status=OrderStatus.IN_TRANSIT,
        shipped_on=date(2026, 11, 2),
        tracking_updated_at=NOW - timedelta(days=9),
    )
    await storage.save_order(stuck, NOW - timedelta(days=9))
    card = await verify(engine, "A-1001", "buyer@example.com")
    assert "no tracking update for 9 days" in card.text
    assert "flow:handoff:A-1001" in payloads(card)


async def test_warranty_by_serial_number(engine: Engine, storage: SqliteStorage) -> None:
    items = (
        OrderItem(
            "Bitmain",
            "Antminer S21",
            1,
            Condition.NEW,
            ("SN21A0001",),
            (Repair("hash board", date(2026, 11, 1), "HB77"),),
        ),
        OrderItem("MicroBT", "Whatsminer M60", 1, Condition.USED, ("WM600002",)),
    )
    delivered = order(
        status=OrderStatus.DELIVERED,
        items=items,
        shipped_on=date(2026, 9, 1),
        delivered_on=date(2026, 9, 10),
    )
    await storage.save_order(delivered, NOW)
    await said(engine, press("flow:warranty_check"))
    await said(engine, message("sn21a0001"))
    card = await one(engine, message("buyer@example.com"))
    # 1 Sep + 180 days = 28 Feb 2027; 100 days left on 20 Nov.
    assert "In warranty until Sun, 28 Feb 2027 (100 days left)" in card.text
    assert (
        "Repaired hash board (sent back Sun, 1 Nov 2026): covered until Tue, 1 Dec 2026"
        in card.text
    )
    assert "https://example.com/warranty/bitmain" in card.text
    assert "Whatsminer" not in card.text
    assert "flow:repair_ticket" in payloads(card)
    whole = await one(engine, press("orders:warranty:A-1001"))
    assert "Used and refurbished machines come without warranty" in whole.text
    assert "https://example.com/warranty/whatsminer" in whole.text


async def test_the_history_shows_what_happened(engine: Engine, storage: SqliteStorage) -> None:
    history = (
        StatusChange(OrderStatus.PAID, datetime(2026, 11, 2, 9, tzinfo=UTC)),
        StatusChange(OrderStatus.SHIPPED, datetime(2026, 11, 6, 9, tzinfo=UTC)),
    )
    shipped = order(status=OrderStatus.SHIPPED, shipped_on=date(2026, 11, 6), history=history)
    await storage.save_order(shipped, NOW)
    card = await verify(engine, "A-1001", "buyer@example.com")
    assert "• Mon, 2 Nov 2026: paid\n• Fri, 6 Nov 2026: shipped" in card.text


async def test_an_order_at_every_bound_shows_each_card_in_one_message(
    engine: Engine, storage: SqliteStorage
) -> None:
    longest = order_from_record(longest_record())
    await storage.save_order(longest, NOW)

    card = await verify(engine, longest.number, longest.email)
    warranty = await one(engine, press(f"orders:warranty:{longest.number}"))

    assert f"{longest.carrier}, tracking number <code>{longest.tracking_number}</code>" in card.text
    assert f"Repaired {longest.items[0].repairs[0].part}" in warranty.text
    assert len(split_html(card.text)) == len(split_html(warranty.text)) == 1
