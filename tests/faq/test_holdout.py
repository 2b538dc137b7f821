"""Counting and listing outcomes per language, as `minerdesk faq check` prints them (no model
needed)."""

from __future__ import annotations

from faq.holdout import TALLY_KEYS, HoldoutReport, Kind, Outcome, miss_line


def outcome(
    kind: Kind, language: str, expected: str | None = "payment_methods", text: str = "a question"
) -> Outcome:
    return Outcome(text, expected, "payment_methods", 0.5, "plain", kind, language)


def test_outcomes_are_counted_per_language() -> None:
    report = HoldoutReport(
        in_scope=[
            outcome("correct", "en"),
            outcome("correct", "en"),
            outcome("suggested_right", "en"),
            outcome("wrong", "ru"),
            outcome("fallback", "ru"),
        ],
        out_of_scope=[
            outcome("wrong", "en", expected=None),  # answered: it should not have been
            outcome("fallback", "en", expected=None),
            outcome("suggested_wrong", "zh", expected=None),
        ],
    )
    zeros = dict.fromkeys(TALLY_KEYS, 0)
    assert report.by_language() == {
        "en": {
            **zeros,
            "in_scope": 3,
            "correct": 2,
            "suggested_right": 1,
            "out_of_scope": 2,
            "out_of_scope_answered": 1,
        },
        "ru": {**zeros, "in_scope": 2, "wrong": 1, "fallback": 1},
        "zh": {**zeros, "out_of_scope": 1},
    }


def test_misses_are_listed_worst_first_and_right_outcomes_left_out() -> None:
    report = HoldoutReport(
        in_scope=[
            outcome("suggested_right", "en", text="offered the right entry"),
            outcome("correct", "en", text="answered right"),
            outcome("fallback", "en", text="fell back"),
            outcome("wrong", "ru", text="answered wrong"),
            outcome("suggested_wrong", "en", text="offered wrong entries"),
        ],
        out_of_scope=[
            outcome("fallback", "en", expected=None, text="left unanswered, rightly"),
            outcome("wrong", "en", expected=None, text="answered, wrongly"),
            outcome("suggested_wrong", "en", expected=None, text="offered entries"),
        ],
    )
    assert [(o.miss, o.text) for o in report.misses()] == [
        ("wrong", "answered wrong"),
        ("out_of_scope_answered", "answered, wrongly"),
        ("suggested_wrong", "offered wrong entries"),
        ("fallback", "fell back"),
        ("suggested_right", "offered the right entry"),
    ]


def test_a_miss_fits_one_line() -> None:
    long = outcome("wrong", "en", expected="refund_policy", text="my order\n" + "word " * 40)
    line = miss_line(long, width=40)
    assert line == (
        "  wrong                 expected=refund_policy got=payment_methods score=0.500  "
        "my order word word word word word word …"
    )
    unanswerable = outcome("wrong", "en", expected=None, text="capital of australia?")
    assert miss_line(unanswerable).endswith(
        "expected=- got=payment_methods score=0.500  capital of australia?"
    )
