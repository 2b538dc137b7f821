"""Scoring a KB on labelled customer questions: the shipped KB's held-out check
(benchmarks/shipped_kb.py) and `minerdesk faq check` on a deployment's own questions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from faq.matcher import Decision
from faq.service import FaqService

Kind = Literal["correct", "wrong", "suggested_right", "suggested_wrong", "fallback"]


@dataclass(frozen=True)
class Question:
    text: str
    expected: str | None  # None: out of scope, must not be answered
    style: str


@dataclass(frozen=True)
class Outcome:
    text: str
    expected: str | None
    got: str | None
    score: float
    style: str
    kind: Kind
    language: str  # the language it was matched in


@dataclass(frozen=True)
class HoldoutReport:
    in_scope: list[Outcome]
    out_of_scope: list[Outcome]

    def by_language(self) -> dict[str, dict[str, int]]:
        """Per language: questions in scope, what each got, questions out of scope and how
        many of those were answered (they should not be)."""
        tallies: dict[str, Counter[str]] = {}
        for outcome in self.in_scope:
            tally = tallies.setdefault(outcome.language, Counter())
            tally["in_scope"] += 1
            tally[outcome.kind] += 1
        for outcome in self.out_of_scope:
            tally = tallies.setdefault(outcome.language, Counter())
            tally["out_of_scope"] += 1
            tally["out_of_scope_answered"] += outcome.kind == "wrong"
        return {
            language: {key: tally[key] for key in TALLY_KEYS}
            for language, tally in sorted(tallies.items())
        }


TALLY_KEYS = (
    "in_scope",
    "correct",
    "wrong",
    "suggested_right",
    "suggested_wrong",
    "fallback",
    "out_of_scope",
    "out_of_scope_answered",
)


class QuestionsInvalid(Exception):
    """The questions file cannot be used; the message says where and why."""


def load_holdout(path: Path) -> list[Question]:
    """Questions from a YAML list of {text, entry_id (null = out of scope), style}."""
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QuestionsInvalid(f"{path}: cannot read it: {exc}") from None
    if not isinstance(rows, list) or not rows:
        raise QuestionsInvalid(f"{path}: expected a YAML list of questions")
    questions = []
    for number, row in enumerate(rows, start=1):
        if not (
            isinstance(row, dict)
            and isinstance(row.get("text"), str)
            and "entry_id" in row
            and isinstance(row["entry_id"], str | None)
        ):
            raise QuestionsInvalid(
                f"{path}: question {number}: expected `text` and `entry_id` (an entry's id, or "
                "null: out of scope)"
            )
        questions.append(Question(row["text"], row["entry_id"], str(row.get("style", ""))))
    return questions


def evaluate_holdout(service: FaqService, questions: list[Question]) -> HoldoutReport:
    """Ask every question; classify what a customer would have got."""
    outcomes = [_outcome(service, question) for question in questions]
    return HoldoutReport(
        in_scope=[o for o in outcomes if o.expected is not None],
        out_of_scope=[o for o in outcomes if o.expected is None],
    )


def _outcome(service: FaqService, question: Question) -> Outcome:
    result = service.ask(question.text)
    best = result.match.best
    kind: Kind
    if result.decision is Decision.ANSWER:
        kind = "correct" if result.entry and result.entry.id == question.expected else "wrong"
    elif result.decision is Decision.SUGGEST:
        offered = {entry.id for entry in result.suggestions}
        kind = "suggested_right" if question.expected in offered else "suggested_wrong"
    else:
        kind = "fallback"
    return Outcome(
        question.text,
        question.expected,
        best.entry_id if best else None,
        best.score if best else 0.0,
        question.style,
        kind,
        result.language,
    )
