"""The daily digest in the staff chat: due once a day, never twice, not skipped after a
restart; figures of the company's day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.chats import ChatKey
from domain.faq_log import Feedback
from domain.handoffs import HandoffOpened
from faq.service import FaqService
from handlers.digest import DIGEST_EVENT, MAX_CATCH_UP_DAYS, days_due
from handlers.engine import Engine, Services, StaffDesk
from handlers.routes import build_router
from handlers.staff import system_event
from storage.sqlite import SqliteStorage
from tests.factories import Clock, Turns

NINE = time(9, 0)
TUESDAY = date(2026, 11, 24)
STAFF = "-1001"
HONG_KONG = ZoneInfo("Asia/Hong_Kong")
CHECK = system_event(ChatKey("test", STAFF), DIGEST_EVENT)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), HONG_KONG)


@pytest.mark.parametrize(
    ("now", "last", "due"),
    [
        # The first digest ever: the next one due, not a backlog.
        (local(TUESDAY, 8, 59), None, []),
        (local(TUESDAY, 9, 0), None, [date(2026, 11, 23)]),
        # Monday's digest went out this morning; Tuesday's is due tomorrow at nine.
        (local(TUESDAY, 23, 59), date(2026, 11, 23), []),
        (local(TUESDAY, 8, 0), date(2026, 11, 22), []),
        # Down at nine, back at eleven: sent late, not skipped.
        (local(TUESDAY, 11, 0), date(2026, 11, 22), [date(2026, 11, 23)]),
        # Down for three days: each missed day follows.
        (local(TUESDAY, 9, 30), date(2026, 11, 20), [date(2026, 11, 21 + n) for n in range(3)]),
    ],
)
def test_days_due(now: datetime, last: date | None, due: list[date]) -> None:
    assert days_due(now, NINE, last) == due


def test_after_a_long_outage_only_the_last_week_follows() -> None:
    due = days_due(local(TUESDAY, 10), NINE, date(2026, 10, 1))
    assert due == [TUESDAY - timedelta(days=n) for n in range(MAX_CATCH_UP_DAYS, 0, -1)]


def make_engine(
    storage: SqliteStorage, faq: FaqService, clock: Clock, digest_at: time | None = NINE
) -> Engine:
    desk = StaffDesk(chat=ChatKey("test", STAFF), digest_at=digest_at)
    services = Services(faq, {}, storage, zone=HONG_KONG, staff=desk, clock=clock)
    return Engine(storage, services, build_router())


async def seed_monday(turn: Turns) -> None:
    """Monday 23 November in Hong Kong (UTC+8): four questions, two votes, a handoff; one
    question late on Sunday and one early on Tuesday, which Monday's digest leaves out."""
    monday = date(2026, 11, 23)
    customer, other = ChatKey("test", "1"), ChatKey("test", "2")
    await turn.asked(customer, "how do I pay", at=local(monday, 0, 5))
    await turn.asked(customer, "refund?", at=local(monday, 12))
    await turn.asked(other, "do you <b>host</b> miners?", "fallback", at=local(monday, 13))
    await turn.asked(other, "payment", "suggested", "none_of_these", at=local(monday, 23, 59))
    await turn(customer, Feedback("payment_methods", True, local(monday, 12)))
    await turn(customer, Feedback("refund_policy", False, local(monday, 12)))
    await turn(other, HandoffOpened(other, "fallbacks", local(monday, 13)))
    await turn.asked(customer, "sunday question", "fallback", at=local(monday, 0) - timedelta(1))
    await turn.asked(customer, "tuesday question", "fallback", at=local(TUESDAY, 0, 1))


@pytest.mark.model
async def test_the_digest_is_posted_once_a_day_and_never_twice(
    storage: SqliteStorage, turn: Turns, faq_service: FaqService
) -> None:
    await seed_monday(turn)
    clock = Clock(local(TUESDAY, 8, 59))
    engine = make_engine(storage, faq_service, clock)
    assert (await engine.handle(CHECK)).queued == []

    clock.now = local(TUESDAY, 9, 1)
    [posted] = (await engine.handle(CHECK)).queued
    assert posted.key == ChatKey("test", STAFF)
    assert posted.body["text"].splitlines() == [
        "📊 <b>Daily digest: Mon, 23 Nov 2026</b>",
        "Questions to the FAQ: 4 (answered 50%, suggestions 25%, fallbacks 25%)",
        "Votes on answers: 👍 1 · 👎 1",
        "Handoffs to the team: 1",
        "",
        "Missed most:",
        "1× do you &lt;b&gt;host&lt;/b&gt; miners?",
        "1× payment",
        "<code>minerdesk faq gaps</code> drafts KB entries from what was missed.",
    ]
    assert (await engine.handle(CHECK)).queued == []
    # A restart: a new engine on the same database posts nothing more today.
    clock.now = local(TUESDAY, 18)
    assert (await make_engine(storage, faq_service, clock).handle(CHECK)).queued == []

    clock.now = local(TUESDAY + timedelta(days=1), 9)
    [tuesday] = (await engine.handle(CHECK)).queued
    assert "Daily digest: Tue, 24 Nov 2026" in tuesday.body["text"]
    assert (
        "Questions to the FAQ: 1 (answered 0%, suggestions 0%, fallbacks 100%)"
        in (tuesday.body["text"])
    )
    # Down from Wednesday night to Saturday morning: Wednesday, Thursday, Friday follow.
    clock.now = local(TUESDAY + timedelta(days=4), 10)
    caught_up = (await engine.handle(CHECK)).queued
    assert [m.body["text"].splitlines()[0] for m in caught_up] == [
        f"📊 <b>Daily digest: {day} Nov 2026</b>" for day in ("Wed, 25", "Thu, 26", "Fri, 27")
    ]
    assert all("No questions to the FAQ." in m.body["text"] for m in caught_up)
    assert await storage.last_digest_day() == date(2026, 11, 27)


@pytest.mark.model
async def test_no_digest_unless_it_is_set(storage: SqliteStorage, faq_service: FaqService) -> None:
    engine = make_engine(storage, faq_service, Clock(local(TUESDAY, 10)), digest_at=None)
    assert (await engine.handle(CHECK)).queued == []
    assert await storage.last_digest_day() is None
