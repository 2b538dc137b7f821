"""Flows through the engine with the real FAQ and a real SQLite file; no messenger involved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faq.service import FaqService
from handlers.engine import Engine, Services
from handlers.messages import Media, MediaKind, Reply
from handlers.routes import build_router
from storage.base import ChatKey
from storage.sqlite import SqliteStorage
from tests.factories import message, press

pytestmark = pytest.mark.model


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with SqliteStorage(tmp_path / "bot.db") as opened:
        yield opened


@pytest.fixture
def engine(storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]) -> Engine:
    return Engine(storage, Services(faq_service, placeholders), build_router())


def payloads(reply: Reply) -> list[str]:
    return [button.payload for button in reply.flat_buttons]


async def test_start_greets_with_the_main_menu(engine: Engine) -> None:
    [reply] = await engine.handle(message("/start"))
    assert "Apexto" in reply.text
    assert payloads(reply) == [
        "menu:ask",
        "flow:track_order",
        "flow:warranty_check",
        "flow:repair_ticket",
        "flow:handoff",
    ]


async def test_a_question_gets_its_answer_with_related_and_feedback_buttons(
    engine: Engine, faq_service: FaqService
) -> None:
    [reply] = await engine.handle(message("Can I pay for my order in instalments?"))
    entry = faq_service.kb.by_id["instalments"]
    assert reply.text == entry.answer
    buttons = payloads(reply)
    assert [f"faq:show:{related}" for related in entry.related[:3]] == [
        b for b in buttons if b.startswith("faq:show:")
    ]
    assert buttons[-2:] == ["faq:fb:instalments:1", "faq:fb:instalments:0"]


async def test_feedback_is_stored(engine: Engine, storage: SqliteStorage) -> None:
    [reply] = await engine.handle(press("faq:fb:instalments:0"))
    assert "flow:handoff" in payloads(reply)
    await engine.handle(press("faq:fb:instalments:1", chat="2"))
    assert await storage.feedback_counts() == {"instalments": (1, 1)}


async def test_an_unrelated_question_falls_back_honestly(engine: Engine) -> None:
    [reply] = await engine.handle(message("what is the capital of australia"))
    assert "don't know" in reply.text
    assert "flow:handoff" in payloads(reply)


async def test_a_related_button_shows_that_entry(engine: Engine, faq_service: FaqService) -> None:
    [reply] = await engine.handle(press("faq:show:payment_methods"))
    assert reply.text == faq_service.kb.by_id["payment_methods"].answer


@pytest.mark.parametrize(
    "payload",
    [
        "faq:show:no_such_entry",
        "faq:fb:instalments:7",
        "bogus",
        "menu:hack",
        "flow:teleport",
        "faq",
        "",
    ],
)
async def test_forged_or_stale_buttons_get_the_menu(engine: Engine, payload: str) -> None:
    [reply] = await engine.handle(press(payload))
    assert "no longer valid" in reply.text
    assert "menu:ask" in payloads(reply)


async def test_the_same_update_twice_is_answered_once(engine: Engine) -> None:
    first = await engine.handle(message("/start", update_id="555"))
    again = await engine.handle(message("/start", update_id="555"))
    assert len(first) == 1
    assert again == []


async def test_media_outside_a_flow_asks_for_text(engine: Engine) -> None:
    photo = Media(MediaKind.PHOTO, file_ref="abc")
    [reply] = await engine.handle(message(media=(photo,)))
    assert "only read text" in reply.text


async def test_unknown_command_and_cancel_with_nothing_to_cancel(engine: Engine) -> None:
    [unknown] = await engine.handle(message("/frobnicate"))
    assert "/help" in unknown.text
    [cancel] = await engine.handle(message("/cancel"))
    assert "nothing to cancel" in cancel.text


async def test_state_survives_a_new_engine(
    storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str], tmp_path: Path
) -> None:
    key = ChatKey("test", "9")
    state = await storage.load(key)
    state.flow, state.step = "repair", "waiting_for_serial"
    await storage.save(key, state, None)
    async with SqliteStorage(tmp_path / "bot.db") as reopened:
        engine = Engine(reopened, Services(faq_service, placeholders), build_router())
        [reply] = await engine.handle(message("/cancel", chat="9"))
        assert reply.text.startswith("Cancelled")
        assert (await reopened.load(key)).flow is None


async def test_one_chat_in_order_while_others_run_in_parallel(engine: Engine) -> None:
    questions = ["/start", "How can I track my package?", "/help", "Can I get a discount?"]
    results = await asyncio.gather(
        *[engine.handle(message(q, chat="a")) for q in questions],
        *[engine.handle(message(q, chat="b")) for q in questions],
    )
    assert all(len(replies) == 1 for replies in results)
    assert [r[0].text for r in results[:4]] == [r[0].text for r in results[4:]]
