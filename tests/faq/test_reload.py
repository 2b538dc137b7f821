"""The KB is refreshed while serving: valid edits are picked up, invalid ones rejected,
and every attempt is reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faq.matcher import Decision
from faq.service import FaqService, ReloadReport, watch_kb
from tests.kb_edits import RELOAD_TIMEOUT, cut_alternates

pytestmark = pytest.mark.model

NEW_ENTRY = """
  - id: opening_hours
    category: contact
    question: What are your opening hours?
    alternates:
      - when are you open
      - opening times
      - what time do you open
      - are you open on sunday
      - office hours?
      - business hours of your shop
    answer: We are open Monday to Friday.
"""


@pytest.fixture
def reports() -> list[ReloadReport]:
    return []


@pytest.fixture
async def watched(
    editable_faq: FaqService, reports: list[ReloadReport]
) -> AsyncIterator[FaqService]:
    watcher = asyncio.create_task(watch_kb(editable_faq, interval=0.2, on_report=reports.append))
    yield editable_faq
    watcher.cancel()


def edit(path: Path, old: str, new: str) -> str:
    """Replace `old` (which must be there) in the file; returns the new text."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


async def answered_with(service: FaqService, question: str, entry_id: str) -> bool:
    result = await service.ask_async(question)
    return (
        result.decision is Decision.ANSWER
        and result.entry is not None
        and result.entry.id == entry_id
    )


async def wait_until_answered(service: FaqService, question: str, entry_id: str) -> None:
    """Polls: the watcher has no event to wait on, it polls the files itself."""
    async with asyncio.timeout(RELOAD_TIMEOUT):
        while not await answered_with(service, question, entry_id):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_a_saved_edit_is_served_without_a_restart(watched: FaqService) -> None:
    contact = watched.kb_path / "contact.yaml"
    contact.write_text(contact.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")
    await wait_until_answered(watched, "What are your opening hours?", "opening_hours")


async def test_an_invalid_edit_keeps_the_last_good_kb(
    watched: FaqService, reports: list[ReloadReport], caplog: pytest.LogCaptureFixture
) -> None:
    payment = watched.kb_path / "payment.yaml"
    good = payment.read_text(encoding="utf-8")
    payment.write_text(
        good.replace("  - id: instalments", "  - id: instalments\n    oops: 1"), encoding="utf-8"
    )
    async with asyncio.timeout(RELOAD_TIMEOUT):
        while "faq.reload_rejected" not in caplog.text:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert "payment.yaml" in caplog.text
    assert "unknown key" in caplog.text
    assert await answered_with(watched, "Can I pay for my order in instalments?", "instalments")
    # The rejected version is not tried again while the files stand still.
    await asyncio.sleep(0.6)
    [rejected] = reports
    assert not rejected.accepted
    oops = line_of(payment.read_text(encoding="utf-8"), "oops: 1")
    assert (str(rejected.problems[0].path), rejected.problems[0].line) == ("payment.yaml", oops)
    contact = watched.kb_path / "contact.yaml"
    payment.write_text(good, encoding="utf-8")
    contact.write_text(contact.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")
    await wait_until_answered(watched, "What are your opening hours?", "opening_hours")
    # The two files may be picked up together or one by one.
    fixes = reports[1:]
    assert all(report.accepted for report in fixes)
    assert {name for report in fixes for name in report.changed} == {
        "contact.yaml",
        "payment.yaml",
    }


def test_a_report_names_the_files_added_changed_and_removed(editable_faq: FaqService) -> None:
    entries = len(editable_faq.kb.entries)
    kb = editable_faq.kb_path
    edit(kb / "payment.yaml", "full payment is required", "full payment is always required")
    (kb / "hours.yaml").write_text("entries:" + NEW_ENTRY, encoding="utf-8")

    report = editable_faq.reload()
    assert report.accepted
    assert (report.added, report.changed, report.removed) == (
        ("hours.yaml",),
        ("payment.yaml",),
        (),
    )
    assert report.entries == entries + 1
    assert report.warnings == 1  # the new entry has no Russian or Chinese translation yet
    assert report.seconds > 0
    answer = editable_faq.ask("can i pay in parts").entry
    assert answer is not None
    assert "always required" in answer.answer

    (kb / "hours.yaml").unlink()
    assert editable_faq.reload().removed == ("hours.yaml",)
    # Forced with nothing changed: re-read all the same, and said so.
    unchanged = editable_faq.reload()
    assert unchanged.accepted
    assert not unchanged.files_changed
    assert [r.attempt for r in (report, unchanged)] == [1, 3]
    assert editable_faq.last_report == unchanged


def test_a_rejected_reload_locates_its_problems_and_keeps_serving(editable_faq: FaqService) -> None:
    kb = editable_faq.kb_path
    line = cut_alternates(kb / "payment.yaml", "instalments")

    report = editable_faq.reload()
    assert not report.accepted
    assert report.changed == ("payment.yaml",)
    first, *knock_on = report.problems
    assert (str(first.path), first.line) == ("payment.yaml", line)
    assert "at least 6 items" in first.message
    # payment.yaml is refused whole, so the entries of other files lose related entries.
    assert ("shipping.yaml", "related: no entry has the id 'instalments'") in [
        (str(p.path), p.message) for p in knock_on
    ]
    assert report.entries == len(editable_faq.kb.entries)
    assert editable_faq.ask("Can I pay for my order in instalments?").entry is not None


def test_problems_name_files_relative_to_the_kb_folder(editable_faq: FaqService) -> None:
    kb = editable_faq.kb_path
    duplicate = NEW_ENTRY.replace("id: opening_hours", "id: instalments")
    (kb / "shop_hours.yaml").write_text("entries:" + duplicate, encoding="utf-8")

    [problem] = editable_faq.reload().problems
    assert (str(problem.path), problem.line) == ("shop_hours.yaml", 2)
    assert "first defined at payment.yaml:" in problem.message
    assert str(kb) not in problem.message


def test_a_broken_yaml_file_is_reported_with_its_line(editable_faq: FaqService) -> None:
    broken = "question: Can I talk to a person: now?"
    text = edit(editable_faq.kb_path / "contact.yaml", "question: Can I talk to a person?", broken)

    problem = editable_faq.reload().problems[0]
    assert (str(problem.path), problem.line) == ("contact.yaml", line_of(text, broken))
    assert "not valid YAML" in problem.message
