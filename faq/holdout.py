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

    @property
    def miss(self) -> str | None:
        """How the question went wrong, named as in `MISS_KINDS`; None when it went right
        (answered correctly, or out of scope and not answered)."""
        if self.expected is None:
            return "out_of_scope_answered" if self.kind == "wrong" else None
        return None if self.kind == "correct" else self.kind


# What `HoldoutReport.tally` counts, in the order `faq check` prints it.
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

# The ways a question goes wrong, worst first: a wrong answer misleads, a suggestion of the
# right entry costs a tap.
MISS_KINDS = ("wrong", "out_of_scope_answered", "suggested_wrong", "fallback", "suggested_right")


@dataclass(frozen=True)
class HoldoutReport:
    in_scope: list[Outcome]
    out_of_scope: list[Outcome]

    def tally(self) -> dict[str, int]:
        """Questions in scope, what each got, questions out of scope and how many of those
        were answered (they should not be), keyed as `TALLY_KEYS`."""
        counts: Counter[str] = Counter()
        for outcome in self.in_scope:
            counts["in_scope"] += 1
            counts[outcome.kind] += 1
        for outcome in self.out_of_scope:
            counts["out_of_scope"] += 1
            if outcome.miss:  # answered: it should not have been
                counts["out_of_scope_answered"] += 1
        return {key: counts[key] for key in TALLY_KEYS}

    def by_language(self) -> dict[str, dict[str, int]]:
        """`tally` per language the questions were matched in."""
        languages = sorted({o.language for o in (*self.in_scope, *self.out_of_scope)})
        return {
            language: HoldoutReport(
                [o for o in self.in_scope if o.language == language],
                [o for o in self.out_of_scope if o.language == language],
            ).tally()
            for language in languages
        }

    def misses(self) -> list[Outcome]:
        """The questions that went wrong, worst kind first (`MISS_KINDS`), in file order
        within a kind."""
        missed = [outcome for outcome in (*self.in_scope, *self.out_of_scope) if outcome.miss]
        return sorted(missed, key=lambda outcome: MISS_KINDS.index(str(outcome.miss)))


class QuestionsInvalid(Exception):
    """The questions file cannot be used; the message (one line) says where and why."""


def load_holdout(path: Path) -> list[Question]:
    """Questions from a YAML list of {text, entry_id (null = out of scope), style}."""
    try:
        text = path.read_text(encoding="utf-8")
        # The node tree gives the line each question starts on; the values, the rest.
        root, rows = yaml.compose(text), yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsInvalid(f"{path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise QuestionsInvalid(f"{path}: {where}{problem}") from None
    if root is None or not isinstance(rows, list) or not rows:
        raise QuestionsInvalid(f"{path}: expected a YAML list of questions")
    questions = []
    for node, row in zip(root.value, rows, strict=True):
        where = f"{path}: line {node.start_mark.line + 1}"
        if not (isinstance(row, dict) and isinstance(row.get("text"), str) and "entry_id" in row):
            raise QuestionsInvalid(f"{where}: expected `text` and `entry_id`")
        expected = row["entry_id"]
        if not (expected is None or (isinstance(expected, str) and expected)):
            raise QuestionsInvalid(f"{where}: `entry_id` must be an entry's id, or null")
        questions.append(Question(row["text"], expected, str(row.get("style") or "")))
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
        kind = "fallback"  # or small talk: the question went unanswered all the same
    return Outcome(
        question.text,
        question.expected,
        best.entry_id if best else None,
        best.score if best else 0.0,
        question.style,
        kind,
        result.language,
    )


def miss_line(outcome: Outcome, width: int = 100) -> str:
    """A missed question (`outcome.miss` set) on one line: how it went wrong, the entry
    expected and the best one found, its score and the text (cut at `width` characters)."""
    text = " ".join(outcome.text.split())  # a line break in a question would split the line
    if len(text) > width:
        text = text[: width - 1] + "…"
    return (
        f"  {outcome.miss:<21} expected={outcome.expected or '-'} got={outcome.got or '-'} "
        f"score={outcome.score:.3f}  {text}"
    )
