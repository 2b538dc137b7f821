"""The FAQ service: questions asked at once are answered as if asked one by one; each
language answers with its own caution."""

from __future__ import annotations

import asyncio

import pytest

from bot.settings import bundled_kb_path
from faq.encoder import Encoder, UniversalEncoder
from faq.service import TARGET_UNANSWERED, FaqService

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


def test_each_language_answers_with_its_own_caution(
    faq_service: FaqService,
    encoder: Encoder,
    multilingual_encoder: UniversalEncoder,
    placeholders: dict[str, str],
) -> None:
    """Russian is stricter than English by default; config.yaml can change one language."""
    as_english = FaqService(
        bundled_kb_path(),
        placeholders,
        encoder,
        multilingual_encoder,
        target_unanswered={"ru": TARGET_UNANSWERED["en"]},
    )
    russian, english = "Можно оплатить в USDT?", "Can I pay with USDT?"
    try:
        assert faq_service.ask(russian).language == "ru"
        shipped, overridden = faq_service.ask(russian), as_english.ask(russian)
        assert shipped.thresholds.answer > overridden.thresholds.answer
        assert faq_service.ask(english).thresholds == as_english.ask(english).thresholds
    finally:
        as_english.close()
