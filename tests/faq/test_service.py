"""Questions asked at once are answered in batches, exactly as if asked one by one."""

from __future__ import annotations

import asyncio

import pytest

from faq.service import FaqService

pytestmark = pytest.mark.model

QUESTIONS = [
    "How long does delivery take?",
    "Can I pay with USDT?",
    "",
    "what is the capital of australia",
    "my hash board stopped hashing",
    "?!",
    "Do you ship to Russia?",
]


async def test_concurrent_questions_get_the_answers_they_would_get_alone(
    faq_service: FaqService, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = [faq_service.ask(question) for question in QUESTIONS]
    batches: list[int] = []
    ask_many = faq_service.ask_many

    def counting(texts: list[str]) -> object:
        batches.append(len(texts))
        return ask_many(texts)

    monkeypatch.setattr(faq_service, "ask_many", counting)
    together = await asyncio.gather(*[faq_service.ask_async(q) for q in QUESTIONS])
    assert [r.as_json() for r in together] == [r.as_json() for r in alone]
    assert sum(batches) == len(QUESTIONS)
    assert len(batches) < len(QUESTIONS)  # the ones that waited went in one batch


async def test_a_failing_batch_fails_its_askers_and_the_next_batch_runs(
    faq_service: FaqService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask_many = faq_service.ask_many

    def fail_on_boom(texts: list[str]) -> object:
        if "boom" in texts:
            raise RuntimeError("model crashed")
        return ask_many(texts)

    monkeypatch.setattr(faq_service, "ask_many", fail_on_boom)
    with pytest.raises(RuntimeError):
        await faq_service.ask_async("boom")
    assert (await faq_service.ask_async("Can I pay with USDT?")).entry is not None
