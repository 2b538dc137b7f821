"""Matching decisions on real phrasings with the real model and the shipped KB."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from faq.matcher import Decision, Match, Matcher, MatcherConfig
from faq.service import FaqService

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parent.parent / "data"
SEED_QUESTIONS = yaml.safe_load((DATA / "seed_questions.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "item", SEED_QUESTIONS, ids=[item["question"][:40] for item in SEED_QUESTIONS]
)
def test_every_seed_question_finds_its_entry(faq_service: FaqService, item: dict[str, str]) -> None:
    result = faq_service.ask(item["question"])
    if item.get("verbatim"):
        assert result.decision is Decision.ANSWER, result.match
        assert result.entry is not None
        assert result.entry.id == item["entry_id"]
    else:
        # A question we phrased for a policy: at worst one tap away, never a fallback.
        assert result.decision is not Decision.FALLBACK, result.match
        assert result.match.best is not None
        assert result.match.best.entry_id == item["entry_id"]


@pytest.mark.parametrize(
    "question",
    [
        "what's the weather in berlin tomorrow",
        "recommend me a good pizza place",
        "who won the football world cup",
        "asdfghjkl",
        "tell me a joke about cats",
    ],
)
def test_out_of_scope_questions_are_not_answered(faq_service: FaqService, question: str) -> None:
    assert faq_service.ask(question).decision is not Decision.ANSWER


def test_suggestions_are_the_three_best_distinct_entries(faq_service: FaqService) -> None:
    candidates = faq_service.matcher.rank("warranty", 3)
    assert len({c.entry_id for c in candidates}) == 3
    assert candidates == sorted(candidates, key=lambda c: -c.score)


def test_empty_and_punctuation_only_queries_fall_back(faq_service: FaqService) -> None:
    for text in ("", "   ", "???"):
        result = faq_service.ask(text)
        assert result.decision is Decision.FALLBACK
        assert result.match.candidates == ()


def test_a_very_long_question_is_still_matched(faq_service: FaqService) -> None:
    question = "How long does it take to arrive after shipment? " + "please " * 2000
    result = faq_service.ask(question)
    assert result.match.best is not None


def test_thresholds_are_fitted_from_the_kb(faq_service: FaqService) -> None:
    thresholds = faq_service.matcher.thresholds
    assert 0 < thresholds.answer < 1
    assert 0 <= thresholds.suggest < 1


def test_a_restart_with_an_unchanged_kb_encodes_nothing(
    faq_service: FaqService, tmp_path: Path
) -> None:
    from faq.encoder import Encoder

    cache = tmp_path / "cache"
    phrasings = faq_service.kb.phrasings()
    first = Encoder(cache_dir=cache)
    Matcher(first, phrasings)
    second = Encoder(cache_dir=cache)
    calls: list[list[str]] = []
    original = second._encode
    second._encode = lambda texts: calls.append(texts) or original(texts)  # type: ignore[method-assign]
    Matcher(second, phrasings)
    assert calls == []


def test_a_kb_edit_encodes_only_the_changed_phrasing(
    faq_service: FaqService, tmp_path: Path
) -> None:
    from faq.encoder import Encoder

    encoder = Encoder(cache_dir=tmp_path / "cache")
    phrasings = faq_service.kb.phrasings()
    Matcher(encoder, phrasings)
    calls: list[list[str]] = []
    original = encoder._encode
    encoder._encode = lambda texts: calls.append(texts) or original(texts)  # type: ignore[method-assign]
    first = next(iter(phrasings))
    Matcher(encoder, {**phrasings, first: [*phrasings[first], "a phrasing added by staff"]})
    assert calls == [["a phrasing added by staff"]]


def test_a_big_kb_calibrates_on_a_sample_of_its_simulated_questions(
    faq_service: FaqService,
) -> None:
    """Past `max_simulated_per_fold`, the thresholds come from a sample (bounded reload time
    on a 5,000-entry KB) and still sit where they separate answers from unknown questions."""
    phrasings = faq_service.kb.phrasings()
    sampled = Matcher(
        faq_service.encoder,
        phrasings,
        dataclasses.replace(MatcherConfig(), max_simulated_per_fold=60),
    )
    assert 0 < sampled.thresholds.answer < 1
    question = faq_service.kb.entries[0].question
    assert sampled.rank(question, 1) == Matcher(faq_service.encoder, phrasings).rank(question, 1)
    assert sampled.match("what's the weather in berlin tomorrow").decision is not Decision.ANSWER


def stored_fits(cache: Path) -> list[Path]:
    return sorted(cache.glob("fit-*.npz"))


def with_stored_answer_threshold(path: Path, answer: float) -> None:
    """Rewrite a stored fit's answer threshold: a matcher that shows it has read the file."""
    import numpy as np

    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["answer"] = np.float64(answer)
    with path.open("wb") as file:
        np.savez(file, **arrays)


def test_a_restart_on_an_unchanged_kb_uses_the_stored_fit(
    faq_service: FaqService, tmp_path: Path
) -> None:
    phrasings, cache = faq_service.kb.phrasings(), tmp_path / "cache"
    fitted = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    [stored] = stored_fits(cache)
    restarted = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    assert restarted.thresholds == fitted.thresholds
    for question in ("how long is the warranty", "my hashboard died", "pizza near me"):
        assert restarted.match(question) == fitted.match(question)
    with_stored_answer_threshold(stored, 0.123)
    assert Matcher(faq_service.encoder, phrasings, cache_dir=cache).thresholds.answer == 0.123


def test_an_edited_kb_or_another_setting_is_fitted_again(
    faq_service: FaqService, tmp_path: Path
) -> None:
    phrasings, cache = faq_service.kb.phrasings(), tmp_path / "cache"
    Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    [stored] = stored_fits(cache)
    with_stored_answer_threshold(stored, 0.123)
    first = next(iter(phrasings))
    edited = {**phrasings, first: [*phrasings[first], "a phrasing added by staff"]}
    stricter = dataclasses.replace(MatcherConfig(), target_unanswered=0.9)
    assert Matcher(faq_service.encoder, edited, cache_dir=cache).thresholds.answer != 0.123
    assert Matcher(faq_service.encoder, phrasings, stricter, cache).thresholds.answer != 0.123
    assert len(stored_fits(cache)) == 3


def test_an_unreadable_stored_fit_is_fitted_again_and_replaced(
    faq_service: FaqService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    phrasings, cache = faq_service.kb.phrasings(), tmp_path / "cache"
    fitted = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    [stored] = stored_fits(cache)
    stored.write_bytes(b"half a file")
    again = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    assert again.thresholds == fitted.thresholds
    assert "faq.fit_unreadable" in caplog.text
    assert Matcher(faq_service.encoder, phrasings, cache_dir=cache).thresholds == fitted.thresholds
    assert stored_fits(cache) == [stored]


def test_old_fits_are_dropped_from_the_cache(faq_service: FaqService, tmp_path: Path) -> None:
    from faq.matcher import KEPT_FITS

    cache = tmp_path / "cache"
    cache.mkdir()
    for number in range(KEPT_FITS + 5):
        old = cache / f"fit-old{number}.npz"
        old.write_bytes(b"")
        os.utime(old, (1_700_000_000 + number, 1_700_000_000 + number))  # old0 the oldest
    Matcher(faq_service.encoder, faq_service.kb.phrasings(), cache_dir=cache)
    assert len(stored_fits(cache)) == KEPT_FITS
    assert not (cache / "fit-old0.npz").exists()


@pytest.mark.parametrize(
    ("message", "entry_id"),
    [
        (
            "Hello, my farm runs thirty S19 units on a hydro setup and my electrician says the "
            "wiring is fine, the room is cool and the firmware is stock. Yesterday one unit "
            "stopped hashing completely. How long does a repair take?",
            "repair_period",
        ),
        (
            "I have been mining since 2017 and I have seen every kind of market, prices go up "
            "and down and I know the drill. What is your refund policy?",
            "refund_policy",
        ),
    ],
)
def test_a_question_wrapped_in_context_is_answered_when_its_sentence_agrees(
    minilm_service: FaqService, message: str, entry_id: str
) -> None:
    # On MiniLM: all-mpnet-base-v2 answers these messages whole already, so the sentence's
    # backing would go untested on it.
    matcher = minilm_service.matcher
    whole, _ = matcher._score([message])
    assert whole is not None
    # Embedded whole, the context drowns the question: alone, this would not be answered.
    assert matcher._confidence.predict(whole)[0] < matcher.thresholds.answer
    result = matcher.match(message)
    assert result.decision is Decision.ANSWER
    assert result.best is not None
    assert result.best.entry_id == entry_id
    # The sentence only backs the decision: the ranking stays the whole message's.
    assert list(result.candidates) == matcher.rank(message, 3)


def test_a_long_message_about_nothing_in_the_kb_is_not_answered(
    faq_service: FaqService,
) -> None:
    message = (
        "Hello. It is raining here today and my dog is sick. Who won the football world cup "
        "last year? Also, what is a good pizza place near the station?"
    )
    assert faq_service.ask(message).decision is not Decision.ANSWER


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("How long does a repair take?", None),
        ("hi there. how long does a repair take?", None),  # "hi there" is no sentence
        (
            "My unit stopped hashing. How long does a repair take? Thanks a lot for your help.",
            "How long does a repair take?",
        ),
        (
            "I paid for two units last week. I am still waiting. Where are they now",
            "Where are they now",
        ),
        (
            "first line of context here\nand the question on its own line",
            "and the question on its own line",
        ),
        ("我的矿机昨天坏了。保修期是多久？谢谢你们的帮助", "保修期是多久？"),
    ],
)
def test_the_question_sentence_of_a_long_message(message: str, expected: str | None) -> None:
    from faq.matcher import question_sentence

    assert question_sentence(message) == expected


def test_the_head_weight_is_chosen_by_the_kbs_cross_validation_and_stored(
    faq_service: FaqService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faq import matcher as matcher_module

    phrasings, cache = faq_service.kb.phrasings(), tmp_path / "cache"
    chosen: list[float] = []
    choose = matcher_module._choose_head_weight

    def recording(*args: object) -> float:
        chosen.append(choose(*args))  # type: ignore[arg-type]
        return chosen[-1]

    monkeypatch.setattr(matcher_module, "_choose_head_weight", recording)
    fitted = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    assert len(chosen) == 1
    assert chosen[0] in matcher_module.HEAD_WEIGHTS
    assert fitted._scorer.head_weight == chosen[0]
    # A restart reads the weight with the rest of the fit: no cross-validation again.
    restarted = Matcher(faq_service.encoder, phrasings, cache_dir=cache)
    assert len(chosen) == 1
    assert restarted._scorer.head_weight == chosen[0]


def test_a_fixed_head_weight_is_used_as_it_is(faq_service: FaqService) -> None:
    fixed = dataclasses.replace(MatcherConfig(), head_weight=0.55)
    matcher = Matcher(faq_service.encoder, faq_service.kb.phrasings(), fixed)
    assert matcher._scorer.head_weight == 0.55


def test_an_off_topic_question_falls_back_instead_of_a_wrong_answer(
    faq_service: FaqService,
) -> None:
    """Staff list questions the shop has no answer for; a customer's rewording of one falls
    back instead of getting the nearest entry's answer, and the entries it resembles are still
    answered."""
    phrasings = faq_service.kb.phrasings()
    question = "which wallet is best for keeping my coins"
    plain = Matcher(faq_service.encoder, phrasings).match(question)
    # The nearest entry is about which wallet to pay from: a wrong answer, given confidently.
    assert plain.decision is Decision.ANSWER
    assert plain.best is not None
    assert plain.best.entry_id == "coinbase_commercial_account"

    off_topic = ["what is the best wallet to keep my coins safe", "usdt to dollar rate right now"]
    guarded = Matcher(faq_service.encoder, phrasings, off_topic=off_topic)
    match = guarded.match(question)
    assert (match.decision, match.confidence) == (Decision.FALLBACK, 0.0)
    assert [c.entry_id for c in match.candidates][:1] == ["coinbase_commercial_account"]
    assert all(candidate.entry_id in phrasings for candidate in match.candidates)
    for asked in (
        "what wallet do i need to pay for my order with crypto",
        "can i pay with my coinbase wallet",
    ):
        answered = guarded.match(asked)
        assert answered.decision is Decision.ANSWER, (asked, answered)
        assert answered.best is not None
        assert answered.best.entry_id == "coinbase_commercial_account"


def test_the_off_topic_margin_sets_how_near_an_off_topic_phrasing_must_be(
    faq_service: FaqService,
) -> None:
    phrasings = faq_service.kb.phrasings()
    off_topic = ["what is the best wallet to keep my coins safe"]

    def matched(margin: float, question: str) -> Match:
        config = MatcherConfig(off_topic_margin=margin)
        return Matcher(faq_service.encoder, phrasings, config, off_topic=off_topic).match(question)

    # The off-topic phrasing must beat the nearest entry by 0.5: the rewording is not caught.
    assert matched(0.5, "which wallet is best for keeping my coins").off_topic is None
    # At -1 it catches every question, even one its entry answers.
    caught = matched(-1.0, "can i pay with my coinbase wallet")
    assert (caught.decision, caught.off_topic) == (Decision.FALLBACK, off_topic[0])


def test_the_shipped_off_topic_questions_guard_every_language(faq_service: FaqService) -> None:
    for question in (
        "how much is one bitcoin worth now",
        "сколько сейчас стоит биткоин",
        "比特币现在什么价格",
    ):
        result = faq_service.ask(question)
        assert (result.decision, result.match.confidence) == (Decision.FALLBACK, 0.0), question


def test_editing_the_off_topic_questions_fits_again(
    faq_service: FaqService, tmp_path: Path
) -> None:
    phrasings, cache = faq_service.kb.phrasings(), tmp_path / "cache"
    Matcher(faq_service.encoder, phrasings, cache_dir=cache, off_topic=["btc price?"])
    [stored] = stored_fits(cache)
    with_stored_answer_threshold(stored, 0.123)
    same = Matcher(faq_service.encoder, phrasings, cache_dir=cache, off_topic=["btc price?"])
    assert same.thresholds.answer == 0.123
    edited = ["btc price?", "tell me a joke"]
    assert (
        Matcher(faq_service.encoder, phrasings, cache_dir=cache, off_topic=edited).thresholds.answer
        != 0.123
    )
    assert Matcher(faq_service.encoder, phrasings, cache_dir=cache).thresholds.answer != 0.123


def test_a_small_kb_whose_off_topic_questions_catch_every_unknown_one_still_fits(
    faq_service: FaqService,
) -> None:
    """Its simulated questions that are not caught are all answered right: the confidence
    model then learns from all of them rather than failing the reload."""
    phrasings = {
        "warranty": ["how long is the warranty", "warranty period", "warranty length"],
        "tracking": ["where is my parcel", "track my package", "tracking number"],
        "crypto": ["can i pay with bitcoin", "crypto payment", "pay in usdt"],
    }
    off_topic = [
        "how long is the warranty of my phone",
        "where is my parcel from amazon",
        "pay with bitcoin on amazon",
    ]
    matcher = Matcher(faq_service.encoder, phrasings, off_topic=off_topic)
    match = matcher.match("please track my package")
    assert match.best is not None
    assert match.best.entry_id == "tracking"
    assert match.off_topic is None
    assert matcher.match("where is my parcel from amazon please").off_topic in off_topic
