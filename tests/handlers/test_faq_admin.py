"""The KB from the staff chat: reload reports, and the admins' /reload and /faq_test, through
the engine on a real SQLite file with the real model."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from markupsafe import escape

from domain.chats import ChatKey
from faq.loader import Problem
from faq.service import FaqService, ReloadReport
from handlers.engine import Engine, Services, StaffDesk
from handlers.faq_admin import MAX_PROBLEMS_SHOWN, reloaded_event, report_text
from handlers.i18n import translator
from handlers.messages import Incoming
from handlers.routes import build_router
from handlers.staff import system_event
from storage.sqlite import SqliteStorage
from tests.factories import message, said

STAFF = "-1001"
ADMIN = "77"
REP = "88"
CUSTOMER = ChatKey("test", "1")
_ = translator("en")
_update_ids = itertools.count(1)


def staff_says(text: str, user: str = ADMIN, thread: str | None = None) -> Incoming:
    return Incoming(
        channel="test",
        chat_id=STAFF,
        user_id=user,
        text=text,
        user_name="Bob Rep",
        message_id=str(next(_update_ids)),
        staff=True,
        thread_id=thread,
        update_id=f"staff-{next(_update_ids)}",
    )


def make_engine(storage: SqliteStorage, faq: FaqService, placeholders: dict[str, str]) -> Engine:
    desk = StaffDesk(chat=ChatKey("test", STAFF), admin_ids=frozenset({ADMIN}))
    return Engine(storage, Services(faq, placeholders, storage, staff=desk), build_router())


async def one_text(engine: Engine, incoming: Incoming) -> str:
    [reply] = await said(engine, incoming)
    return reply.text


ALTERNATES_ERROR = Problem(
    Path("payment.yaml"),
    71,
    "entries.3.alternates: List should have at least 6 items after validation, not 2",
)


def test_an_accepted_edit_is_reported_with_the_files_it_changed() -> None:
    report = ReloadReport(
        4, True, 67, 0.43, added=("hours.yaml",), changed=("payment.yaml",), warnings=2
    )
    assert report_text(_, report).splitlines() == [
        "✅ <b>FAQ updated</b>: 67 entries answering now (read in 0.4 s).",
        "Changed: <code>payment.yaml</code>",
        "Added: <code>hours.yaml</code>",
        "Warnings: 2 (<code>minerdesk faq validate</code> shows them).",
    ]


def test_a_reload_with_nothing_changed_says_so() -> None:
    report = ReloadReport(1, True, 66, 1.26)
    assert report_text(_, report) == (
        "✅ <b>FAQ reloaded</b>, no file changed: 66 entries answering (read in 1.3 s)."
    )


def test_a_rejection_names_file_line_and_problem_and_the_version_still_serving() -> None:
    html_problem = Problem(
        Path("faq x/contact.yaml"), 9, "answer: Telegram does not support <div>", "error"
    )
    unreadable = Problem(Path("shop.yaml"), 0, "cannot read: permission denied")
    report = ReloadReport(
        2,
        False,
        66,
        0.2,
        changed=("payment.yaml",),
        problems=(ALTERNATES_ERROR, html_problem, unreadable),
    )
    assert report_text(_, report).splitlines() == [
        "❌ <b>FAQ edit rejected</b>: the previous version keeps answering (66 entries).",
        "Changed: <code>payment.yaml</code>",
        "Problems to fix: 3",
        "• <code>payment.yaml</code> line 71: entries.3.alternates: List should have at least "
        "6 items after validation, not 2",
        "• <code>faq x/contact.yaml</code> line 9: answer: Telegram does not support &lt;div&gt;",
        "• <code>shop.yaml</code>: cannot read: permission denied",
        "Fix and save: the bot reads the files again as soon as they change.",
    ]


def test_a_long_list_of_problems_is_capped() -> None:
    problems = tuple(Problem(Path("payment.yaml"), line, "oops") for line in range(1, 26))
    text = report_text(_, ReloadReport(1, False, 66, 0.1, problems=problems))
    shown = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(shown) == MAX_PROBLEMS_SHOWN
    assert shown[-1] == f"• <code>payment.yaml</code> line {MAX_PROBLEMS_SHOWN}: oops"
    assert "Problems to fix: 25" in text
    assert "…and 5 more (<code>minerdesk faq validate</code> lists them all)." in text


@pytest.fixture
def engine(storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]) -> Engine:
    return make_engine(storage, faq_service, placeholders)


@pytest.mark.model
async def test_an_admin_reloads_the_kb_and_is_told_how_it_went(
    storage: SqliteStorage, editable_faq: FaqService, placeholders: dict[str, str]
) -> None:
    engine = make_engine(storage, editable_faq, placeholders)
    entries = len(editable_faq.kb.entries)
    text = await one_text(engine, staff_says("/reload@minerdesk_bot"))
    assert text.startswith(f"✅ <b>FAQ reloaded</b>, no file changed: {entries} entries")

    payment = editable_faq.kb_path / "payment.yaml"
    good = payment.read_text(encoding="utf-8")
    edited = good.replace("full payment is required", "full payment is always required")
    payment.write_text(edited, encoding="utf-8")
    text = await one_text(engine, staff_says("/reload"))
    assert text.startswith(f"✅ <b>FAQ updated</b>: {entries} entries answering now")
    assert "Changed: <code>payment.yaml</code>" in text
    assert "always required" in (await said(engine, message("can i pay in parts")))[0].text

    broken = edited.replace("  - id: instalments", "  - id: instalments\n    oops: 1")
    payment.write_text(broken)
    line = broken.splitlines().index("    oops: 1") + 1
    text = await one_text(engine, staff_says("/reload"))
    assert text.startswith("❌ <b>FAQ edit rejected</b>: the previous version keeps answering")
    assert f"• <code>payment.yaml</code> line {line}: entries.3.oops: unknown key" in text
    assert "always required" in (await said(engine, message("can i pay in parts")))[0].text


@pytest.mark.model
async def test_the_watchers_report_is_posted_unless_a_newer_one_superseded_it(
    storage: SqliteStorage, editable_faq: FaqService, placeholders: dict[str, str]
) -> None:
    engine = make_engine(storage, editable_faq, placeholders)
    first, second = editable_faq.reload(), editable_faq.reload()

    def event(report: ReloadReport) -> Incoming:
        return system_event(ChatKey("test", STAFF), reloaded_event(report))

    assert await said(engine, event(first)) == []
    assert await one_text(engine, event(second)) == report_text(_, second)


@pytest.mark.model
async def test_others_in_the_staff_chat_are_refused(
    engine: Engine, faq_service: FaqService
) -> None:
    before = faq_service.last_report
    assert await one_text(engine, staff_says("/reload", user=REP)) == (
        "Only staff admins can use /reload. Admins are listed by Telegram user id in "
        "handoff.admin_ids (config.yaml); yours is 88."
    )
    assert faq_service.last_report is before
    refusal = await one_text(engine, staff_says("/faq_test@minerdesk_bot payment", user=REP))
    assert refusal.startswith("Only staff admins can use /faq_test.")


@pytest.mark.model
@pytest.mark.parametrize("text", ["/reload", "/reload@minerdesk_bot", "/faq_test payment"])
async def test_customers_never_learn_of_the_staff_commands(engine: Engine, text: str) -> None:
    assert await one_text(engine, message(text)) == (
        "I don't know that command. Send /help to see what I can do."
    )


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "decision", "best"),
    [
        ("how long does delivery take", "answer", "delivery_time"),
        ("payment", "suggest", "payment_methods"),
        ("recommend me a good pizza place", "fallback", None),
    ],
)
async def test_faq_test_shows_the_decision_its_figures_and_the_top_three(
    engine: Engine, faq_service: FaqService, question: str, decision: str, best: str | None
) -> None:
    lines = (await one_text(engine, staff_says(f"/faq_test {question}"))).splitlines()
    result = faq_service.ask(question)
    match, thresholds = result.match, result.thresholds
    assert lines[0] == f"🔎 <b>FAQ test</b>: <i>{question}</i>"
    assert lines[1].startswith(f"Decision: <b>{decision}</b>: ")
    assert lines[2] == (
        f"Confidence {match.confidence:.2f}; answers at {thresholds.answer:.2f} or more."
    )
    top = sum(c.score for c in match.candidates)
    assert lines[3] == (
        f"The top 3 scores add up to {top:.2f}; below {thresholds.suggest:.2f} the bot falls "
        "back, else it suggests."
    )
    ranked = lines[4:]
    assert len(ranked) == 3
    for rank, (line, candidate) in enumerate(zip(ranked, match.candidates, strict=True), 1):
        entry = faq_service.kb.by_id[candidate.entry_id]
        question = escape(entry.question)
        assert line == f"{rank}. <code>{entry.id}</code> {candidate.score:.3f}: {question}"
    if best is not None:
        assert ranked[0].startswith(f"1. <code>{best}</code>")


@pytest.mark.model
async def test_faq_test_names_the_off_topic_question_that_stopped_an_answer(
    engine: Engine, faq_service: FaqService
) -> None:
    question = "how much is one bitcoin worth now"
    off_topic = faq_service.ask(question).match.off_topic
    assert off_topic in faq_service.kb.off_topic
    lines = (await one_text(engine, staff_says(f"/faq_test {question}"))).splitlines()
    assert lines[1].startswith("Decision: <b>fallback</b>")
    assert lines[2] == (
        f"Off-topic: nearest to <i>{escape(off_topic)}</i> in the KB's off-topic questions."
    )
    assert lines[3].startswith("Confidence 0.00;")


@pytest.mark.model
async def test_faq_test_without_a_question(engine: Engine) -> None:
    for bare in ("/faq_test", "/faq_test@minerdesk_bot   "):
        usage = await one_text(engine, staff_says(bare))
        assert usage.startswith("Usage: /faq_test TEXT")
    lines = (await one_text(engine, staff_says("/faq_test <?!>"))).splitlines()
    assert lines[0] == "🔎 <b>FAQ test</b>: <i>&lt;?!&gt;</i>"
    assert lines[1].startswith("Decision: <b>fallback</b>")
    assert lines[2:] == ["Nothing to match: the text has no words."]


@pytest.mark.model
async def test_a_command_in_a_customers_topic_is_answered_in_that_topic(
    engine: Engine, storage: SqliteStorage
) -> None:
    await storage.set_topic(CUSTOMER, ChatKey("test", STAFF), "500")
    [reply] = await said(engine, staff_says("/faq_test payment", thread="500"))
    assert (reply.to, reply.topic_of) == (ChatKey("test", STAFF), CUSTOMER)
    assert reply.text.startswith("🔎 <b>FAQ test</b>")
