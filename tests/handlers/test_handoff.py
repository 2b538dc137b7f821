"""Handoff to sales reps through the engine, on a real SQLite file; the staff chat's
topics are made by the Telegram sender, so tests record them as it would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.chats import ChatKey
from domain.handoffs import HandoffStatus
from domain.ownership import OrderLinked
from faq.service import FaqService
from handlers.engine import Engine, Services, StaffDesk
from handlers.handoff import REMIND_EVENT, asks_for_human, undelivered_event
from handlers.messages import Incoming, Media, MediaKind, Reply
from handlers.routes import build_router
from handlers.staff import system_event
from storage.sqlite import SqliteStorage
from tests.factories import Clock, Turns, message, order, press, said

pytestmark = pytest.mark.model

STAFF = "-1001"
STAFF_KEY = ChatKey("test", STAFF)
CUSTOMER = ChatKey("test", "1")
# Monday 23 November 2026, 10:00 UTC: business hours (Mon-Fri 09-18 UTC).
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


def make_engine(
    storage: SqliteStorage,
    faq: FaqService,
    placeholders: dict[str, str],
    clock: Clock,
    staff_chat: str | None = STAFF,
) -> Engine:
    desk = StaffDesk(
        chat=None if staff_chat is None else ChatKey("test", staff_chat), remind_after_minutes=10
    )
    services = Services(faq, placeholders, storage, staff=desk, clock=clock)
    return Engine(storage, services, build_router())


@pytest.fixture
def engine(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], clock: Clock
) -> Engine:
    return make_engine(storage, faq_service, placeholders, clock)


def staff_says(
    text: str | None,
    thread: str | None = "500",
    reply_to: str | None = None,
    message_id: str = "900",
    media: tuple[Media, ...] = (),
) -> Incoming:
    return Incoming(
        channel="test",
        chat_id=STAFF,
        user_id="77",
        text=text,
        media=media,
        user_name="Bob Rep",
        message_id=message_id,
        staff=True,
        thread_id=thread,
        reply_to=reply_to,
        update_id=f"s{message_id}{text}",
    )


async def open_by_button(engine: Engine, storage: SqliteStorage) -> list[Reply]:
    replies = await said(engine, press("flow:handoff"))
    # What the Telegram sender does when it posts the card: open the customer's topic.
    await storage.set_topic(CUSTOMER, STAFF_KEY, "500")
    return replies


def to_customer(replies: list[Reply]) -> list[Reply]:
    return [r for r in replies if r.to in (None, CUSTOMER)]


def to_staff(replies: list[Reply]) -> list[Reply]:
    return [r for r in replies if r.to == STAFF_KEY]


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "speak with a sales rep please",
        "operator",
        "real person",
        "позовите менеджера",
        "转人工",
    ],
)
def test_asking_for_a_person_in_words(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize(
    "text",
    ["Can I pick up the machine in person?", "Is the S21 a good miner?", "how do I pay"],
)
def test_questions_are_not_requests_for_a_person(text: str) -> None:
    assert not asks_for_human(text)


async def test_the_button_opens_a_handoff_with_a_context_card_in_a_topic(
    engine: Engine, storage: SqliteStorage
) -> None:
    await said(engine, message("How long does delivery take?"))
    replies = await said(
        engine,
        Incoming(
            "test",
            "1",
            "1",
            payload="flow:handoff",
            update_id="h1",
            user_name="Alice Buyer",
            username="alice",
            message_id="3",
        ),
    )
    [told] = to_customer(replies)
    assert "passed our conversation to a sales rep" in told.text
    assert "within 15 minutes" in told.text
    [card] = to_staff(replies)
    assert (card.topic_of, card.open_topic) == (CUSTOMER, "Alice Buyer @alice")
    assert "asked for a person" in card.text
    assert "Alice Buyer (@alice)" in card.text
    assert "👤 How long does delivery take?" in card.text
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert (handoff.status, handoff.reason, handoff.waiting_since) == (
        HandoffStatus.WAITING,
        "asked",
        MONDAY,
    )


async def test_outside_business_hours_the_customer_is_told_when(
    engine: Engine, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 21, 12, tzinfo=UTC)  # Saturday
    [told, _card] = await said(engine, press("flow:handoff"))
    assert "offline now" in told.text
    assert "Mon, 23 Nov 2026 at 09:00" in told.text


async def test_asking_in_words_and_two_misses_in_a_row_hand_over(engine: Engine) -> None:
    [told, card] = await said(engine, message("I want to talk to a human", chat="2"))
    assert "sales rep" in told.text
    assert "in words" in card.text
    first = await said(engine, message("asdkjh qwpoeiu zxmcnb", chat="3"))
    assert [r.to for r in first] == [None]
    second = await said(engine, message("lkjqwe poiuyt mnbvcx", chat="3"))
    assert "passing you to a person" in second[0].text
    assert "could not answer twice" in to_staff(second)[0].text


async def test_while_open_the_customer_is_relayed_not_answered(
    engine: Engine, storage: SqliteStorage
) -> None:
    await open_by_button(engine, storage)
    for incoming in (
        message("Where is my miner?"),
        message("/start"),
        Incoming(
            "test", "1", "1", media=(Media(MediaKind.VOICE, "v1"),), message_id="8", update_id="v8"
        ),
    ):
        [relay] = await said(engine, incoming)
        assert relay.to == STAFF_KEY
        assert relay.topic_of == CUSTOMER
    photos = (
        Media(MediaKind.PHOTO, "p1", media_group_id="g"),
        Media(MediaKind.PHOTO, "p2", media_group_id="g"),
    )
    [album] = await said(
        engine,
        Incoming("test", "1", "1", text="both sides", media=photos, message_id="9", update_id="a9"),
    )
    assert [m.file_ref for m in album.album] == ["p1", "p2"]
    assert album.text == "both sides"
    pressed = await engine.handle(press("menu:show"))
    assert pressed.replies == []
    assert "talking with our team" in (pressed.notice or "")


async def test_staff_answers_reach_the_customer_as_copies(
    engine: Engine, storage: SqliteStorage
) -> None:
    await open_by_button(engine, storage)
    [copy] = await said(engine, staff_says("Hello, I'm checking your order"))
    assert (copy.to, copy.copy_of) == (CUSTOMER, (STAFF, "900"))
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert (handoff.status, handoff.first_staff_reply_at, handoff.waiting_since) == (
        HandoffStatus.ACTIVE,
        MONDAY,
        None,
    )
    photos = (Media(MediaKind.PHOTO, "p1"), Media(MediaKind.PHOTO, "p2"))
    [album] = await said(engine, staff_says("photos", message_id="901", media=photos))
    assert (album.to, album.album) == (CUSTOMER, tuple(m.on("test") for m in photos))
    # Staff talking in the general thread reach nobody.
    assert await said(engine, staff_says("lunch?", thread=None, message_id="902")) == []


async def test_a_reply_the_customer_never_got_is_reported_in_their_topic(
    engine: Engine, storage: SqliteStorage
) -> None:
    def system(event: str) -> Incoming:
        return system_event(STAFF_KEY, event)

    blocked = undelivered_event(CUSTOMER, "Forbidden: bot was <blocked> by the user")
    assert await said(engine, system(blocked)) == []  # no handoff: nobody waits
    await open_by_button(engine, storage)
    [report] = await said(engine, system(blocked))
    assert (report.to, report.topic_of) == (STAFF_KEY, CUSTOMER)
    assert report.text == (
        "⚠️ Could not deliver to the customer: Forbidden: bot was &lt;blocked&gt; by the user"
    )


async def test_claim_note_close_and_rating(engine: Engine, storage: SqliteStorage) -> None:
    await open_by_button(engine, storage)
    claimed = await said(engine, staff_says("/claim", message_id="910"))
    assert "Bob Rep took this conversation" in to_staff(claimed)[0].text
    assert "A sales rep has joined" in to_customer(claimed)[0].text
    noted = await said(engine, staff_says("/note wants a discount on 10 units", message_id="911"))
    assert [r.to for r in noted] == [STAFF_KEY]
    assert [n.text for n in await storage.notes(CUSTOMER)] == ["wants a discount on 10 units"]
    closed = await said(engine, staff_says("/close", message_id="912"))
    assert "Closed by Bob Rep" in to_staff(closed)[0].text
    [rating_prompt] = to_customer(closed)
    assert [b.label for b in rating_prompt.flat_buttons] == [f"{n} ⭐" for n in range(1, 6)]
    assert await storage.open_handoff(CUSTOMER) is None
    # The bot answers again, and the customer rates once.
    answer = await said(engine, message("Can I pay for my order in instalments?"))
    assert "deposit" in answer[0].text
    thanks = await said(engine, press(rating_prompt.flat_buttons[4].payload))
    assert "⭐⭐⭐⭐⭐" in thanks[0].text
    stats = await storage.handoff_stats(MONDAY - timedelta(days=1))
    assert list(stats.ratings) == [5]
    forged = await said(engine, press(rating_prompt.flat_buttons[0].payload, chat="9"))
    assert "no longer valid" in forged[0].text
    late = await said(engine, staff_says("are you there?", message_id="913"))
    assert "Not sent" in late[0].text
    assert late[0].to == STAFF_KEY


async def test_cancel_ends_the_handoff_for_the_customer(
    engine: Engine, storage: SqliteStorage
) -> None:
    await open_by_button(engine, storage)
    replies = await said(engine, message("/cancel"))
    assert "back with the bot" in to_customer(replies)[0].text
    assert "left the conversation" in to_staff(replies)[0].text
    assert await storage.open_handoff(CUSTOMER) is None


async def test_without_topics_staff_answer_by_replying(
    engine: Engine, storage: SqliteStorage
) -> None:
    await said(engine, press("flow:handoff"))
    [_relay] = await said(engine, message("my PSU is dead"))
    # The sender remembers what it posted for the customer (here: message 42).
    await storage.remember_relay(STAFF_KEY, "42", CUSTOMER)
    [copy] = await said(engine, staff_says("Send a video please", thread=None, reply_to="42"))
    assert copy.to == CUSTOMER


async def test_staff_commands_only_in_a_customer_thread_and_not_for_customers(
    engine: Engine, storage: SqliteStorage
) -> None:
    [usage] = await said(engine, staff_says("/claim", thread=None))
    assert "customer's topic" in usage.text
    [unknown] = await said(engine, message("/claim", chat="5"))
    assert "don't know that command" in unknown.text


async def test_reminders_in_business_hours_only(
    engine: Engine, storage: SqliteStorage, clock: Clock
) -> None:
    await open_by_button(engine, storage)
    check = system_event(STAFF_KEY, REMIND_EVENT)
    clock.now = MONDAY + timedelta(minutes=9)
    assert await said(engine, check) == []
    clock.now = MONDAY + timedelta(minutes=11)
    [reminder] = await said(engine, check)
    assert (reminder.to, reminder.topic_of) == (STAFF_KEY, CUSTOMER)
    assert "waiting 11 minutes" in reminder.text
    assert await said(engine, check) == []
    clock.now = MONDAY + timedelta(minutes=22)
    assert len(await said(engine, check)) == 1
    # Monday 17:55: the customer waits; by Tuesday 09:04 only 9 business minutes passed.
    await said(engine, staff_says("on it", message_id="920"))
    clock.now = MONDAY.replace(hour=17, minute=55)
    await said(engine, message("hello?"))
    clock.now = MONDAY.replace(hour=9, minute=4) + timedelta(days=1)
    assert await said(engine, check) == []


async def test_without_a_staff_chat_customers_get_the_email(
    storage: SqliteStorage,
    faq_service: FaqService,
    placeholders: dict[str, str],
    clock: Clock,
) -> None:
    engine = make_engine(storage, faq_service, placeholders, clock, staff_chat=None)
    [reply] = await said(engine, press("flow:handoff"))
    assert "support@example.com" in reply.text
    assert await storage.open_handoff(CUSTOMER) is None


async def test_an_order_the_chat_never_verified_stays_off_the_card(
    engine: Engine, storage: SqliteStorage, turn: Turns
) -> None:
    await storage.save_order(order("A-1001"), MONDAY)
    await storage.save_order(order("A-2002", email="other@example.com"), MONDAY)
    await turn(CUSTOMER, OrderLinked("A-1001"))

    forged = to_staff(await said(engine, press("flow:handoff:A-2002")))
    assert "A-2002" not in forged[0].text
    handoff = await storage.open_handoff(CUSTOMER)
    assert handoff is not None
    assert (handoff.reason, handoff.order_number) == ("asked", None)
    await storage.set_topic(CUSTOMER, STAFF_KEY, "500")
    await said(engine, staff_says("/close"))

    [_, card] = await said(engine, press("flow:handoff:A-1001"))
    assert "question about order A-1001" in card.text
    reopened = await storage.open_handoff(CUSTOMER)
    assert reopened is not None
    assert (reopened.reason, reopened.order_number) == ("order", "A-1001")


@pytest.mark.parametrize(
    "payload", [REMIND_EVENT, "handoff:remind", "kb_reloaded:1", "handoff:undelivered:1:x"]
)
async def test_a_rep_cannot_fire_system_events_with_a_forged_button(
    engine: Engine, storage: SqliteStorage, clock: Clock, payload: str
) -> None:
    await open_by_button(engine, storage)
    clock.now = MONDAY + timedelta(minutes=30)
    forged = await engine.handle(
        Incoming("test", STAFF, "77", payload=payload, update_id=f"f{payload}", staff=True)
    )
    assert forged.queued == []
    assert forged.notice == "This button is not for this chat."
    # The real timer still reminds.
    [reminder] = await said(engine, system_event(STAFF_KEY, REMIND_EVENT))
    assert "waiting 30 minutes" in reminder.text
