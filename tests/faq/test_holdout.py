"""Counting outcomes per language, as `minerdesk faq check` prints them (no model needed)."""

from __future__ import annotations

from faq.holdout import TALLY_KEYS, HoldoutReport, Kind, Outcome


def outcome(kind: Kind, language: str, expected: str | None = "payment_methods") -> Outcome:
    return Outcome("a question", expected, "payment_methods", 0.5, "plain", kind, language)


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
