"""The FAQ service: questions asked at once are answered as if asked one by one; each
language answers with its own caution."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import build_faq
from bot.settings import load_settings
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
    faq_service: FaqService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Russian and Chinese are stricter than English by default; the setting changes one
    language and leaves the others as shipped."""
    monkeypatch.setenv("MINERDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MINERDESK_FAQ__TARGET_UNANSWERED__RU", str(TARGET_UNANSWERED["en"]))
    as_english = build_faq(load_settings())
    questions = {
        "en": "Can I pay with USDT?",
        "ru": "Можно оплатить в USDT?",
        "zh": "可以用USDT付款吗？",
    }
    try:
        shipped = {language: faq_service.ask(text) for language, text in questions.items()}
        changed = {language: as_english.ask(text) for language, text in questions.items()}
        assert {language: result.language for language, result in shipped.items()} == {
            "en": "en",
            "ru": "ru",
            "zh": "zh",
        }
        assert shipped["ru"].thresholds.answer > changed["ru"].thresholds.answer
        assert shipped["en"].thresholds == changed["en"].thresholds
        assert shipped["zh"].thresholds == changed["zh"].thresholds
    finally:
        as_english.close()
