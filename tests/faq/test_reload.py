"""The KB is refreshed while serving: valid edits are picked up, invalid ones rejected."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import bundled_kb_path
from faq.encoder import Encoder
from faq.matcher import Decision
from faq.service import FaqService, watch_kb

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
async def watched(
    tmp_path: Path, encoder: Encoder, placeholders: dict[str, str]
) -> AsyncIterator[FaqService]:
    kb = tmp_path / "kb"
    shutil.copytree(bundled_kb_path(), kb)
    service = FaqService(kb, placeholders, encoder)
    watcher = asyncio.create_task(watch_kb(service, interval=0.2))
    yield service
    watcher.cancel()
    service.close()


async def answered_with(service: FaqService, question: str, entry_id: str) -> bool:
    result = await service.ask_async(question)
    return (
        result.decision is Decision.ANSWER
        and result.entry is not None
        and result.entry.id == entry_id
    )


async def wait_until_answered(service: FaqService, question: str, entry_id: str) -> None:
    """Polls: the watcher has no event to wait on, it polls the files itself."""
    async with asyncio.timeout(10):
        while not await answered_with(service, question, entry_id):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_a_saved_edit_is_served_without_a_restart(watched: FaqService) -> None:
    contact = watched.kb_path / "contact.yaml"
    contact.write_text(contact.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")
    await wait_until_answered(watched, "What are your opening hours?", "opening_hours")


async def test_an_invalid_edit_keeps_the_last_good_kb(
    watched: FaqService, caplog: pytest.LogCaptureFixture
) -> None:
    payment = watched.kb_path / "payment.yaml"
    good = payment.read_text(encoding="utf-8")
    payment.write_text(
        good.replace("  - id: instalments", "  - id: instalments\n    oops: 1"), encoding="utf-8"
    )
    async with asyncio.timeout(10):
        while "faq.reload_rejected" not in caplog.text:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert "payment.yaml" in caplog.text
    assert "unknown key" in caplog.text
    assert await answered_with(watched, "Can I pay for my order in instalments?", "instalments")
    contact = watched.kb_path / "contact.yaml"
    payment.write_text(good, encoding="utf-8")
    contact.write_text(contact.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")
    await wait_until_answered(watched, "What are your opening hours?", "opening_hours")
