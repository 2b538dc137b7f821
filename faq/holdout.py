"""Scoring the shipped KB on held-out customer questions (used by a benchmark and a test)."""

from __future__ import annotations

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


@dataclass(frozen=True)
class HoldoutReport:
    in_scope: list[Outcome]
    out_of_scope: list[Outcome]


def load_holdout(path: Path) -> list[Question]:
    """Questions from a YAML list of {text, entry_id (null = out of scope), style}."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Question(row["text"], row["entry_id"], row.get("style", "")) for row in rows]


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
    )
