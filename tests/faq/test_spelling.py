"""The speller reads customers' typos as the KB's words and leaves real words alone."""

from __future__ import annotations

import dataclasses

import pytest

from faq.encoder import Encoder
from faq.matcher import Matcher, MatcherConfig
from faq.spelling import Speller

KB_PHRASINGS = [
    "One hashboard is not detected",
    "How long is the warranty on a new miner?",
    "Where is my order, what is the tracking number?",
    "Can I pay with USDT?",
]


@pytest.fixture(scope="module")
def speller(encoder: Encoder) -> Speller:
    return Speller(KB_PHRASINGS, encoder.known_words)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("hasboard not detected", "hashboard not detected"),  # a letter dropped
        ("warrenty for S19?", "warranty for S19?"),  # a letter replaced
        ("my trackign number", "my tracking number"),  # two letters swapped
        ("Hashbaord dead", "hashboard dead"),  # capitals do not matter
        ("ordr status", "order status"),  # four letters: one edit allowed
    ],
)
def test_unknown_words_become_the_nearest_kb_word(speller: Speller, typed: str, read: str) -> None:
    assert speller.correct(typed) == read


@pytest.mark.parametrize(
    "text",
    [
        "is the refurbished unit under warranty",  # a real word the KB does not use
        "S19j Pro 104TH, 3250W",  # model names and figures
        "pya with usdt",  # words under four letters are too often another real word
        "wrnty",  # five letters allow one edit; "warranty" is three away
        "гарантия на хэшборд",  # only Latin words are corrected
        "zzzzzzzz",  # nothing near in the KB
    ],
)
def test_known_short_foreign_or_far_words_are_left_alone(speller: Speller, text: str) -> None:
    assert speller.correct(text) == text


def test_of_two_equally_near_words_the_kb_s_more_frequent_one_wins(encoder: Encoder) -> None:
    speller = Speller(["the miner", "a miner", "my mined coins"], encoder.known_words)
    assert speller.correct("minerx") == "miner"


def test_a_typo_no_longer_sends_the_question_elsewhere(encoder: Encoder) -> None:
    kb = {
        "hashboard": ["a hashboard is not detected", "hashboard missing in the dashboard"],
        "warranty": ["how long is the warranty", "is my miner still under warranty"],
        "tracking": ["where is my order", "what is my tracking number"],
    }
    typo = "hasbord not detectd"
    with_speller = Matcher(encoder, kb)
    without = Matcher(encoder, kb, dataclasses.replace(MatcherConfig(), correct_typos=False))
    assert with_speller.rank(typo, 1)[0].entry_id == "hashboard"
    assert with_speller.rank(typo, 1)[0].score > without.rank(typo, 1)[0].score
