"""What the FAQ learns from customers: the questions it saw, the misses and the votes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.chats import ChatKey


@dataclass(frozen=True)
class QuestionAsked:
    """A question the FAQ matcher saw and what it decided: the log `minerdesk stats` and
    `minerdesk faq gaps` read.

    `question` has personal data masked; `entry_id` is the best candidate whatever the
    decision ("answer", "suggest" or "fallback"). The turn chooses `id`, so a Miss or
    Feedback of a later turn can name the question.
    """

    id: str
    question: str
    language: str
    decision: str
    entry_id: str | None
    confidence: float
    at: datetime


@dataclass(frozen=True)
class Feedback:
    """A customer's 👍 (helpful) or 👎 on an FAQ answer, and the question it answered when
    the chat still knew it (None: the answer came from a button, or long ago)."""

    entry_id: str
    helpful: bool
    at: datetime
    question_id: str | None = None


@dataclass(frozen=True)
class Miss:
    """A logged question the knowledge base did not answer well: what staff should look at.

    `reason` says how we know: "fallback" (no answer), "suggested" (not sure: choices
    offered), "none_of_these" (the choices rejected) or "not_helpful" (a 👎 on the answer
    `entry_id`).
    """

    question_id: str
    reason: str
    at: datetime
    entry_id: str | None = None


@dataclass(frozen=True)
class LoggedMiss:
    """A miss read back with its question, the chat that asked and the chat's language."""

    question: str
    reason: str
    entry_id: str | None
    language: str
    key: ChatKey
    at: datetime
    # None for misses kept before the question log (schema 6): each one a question of its own.
    question_id: str | None


@dataclass(frozen=True)
class FaqStats:
    """The FAQ's figures for a period."""

    # Questions by decision ("answer", "suggest", "fallback") and by the chat's language.
    decisions: dict[str, int]
    languages: dict[str, int]
    # (entry id, questions it answered), most first.
    answered: list[tuple[str, int]]
    # Entry id -> (👍, 👎).
    votes: dict[str, tuple[int, int]]
    # (masked question, times missed), most first; the same words in any case count as one.
    missed: list[tuple[str, int]]
    # Questions by the customer's channel, then by decision.
    channels: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def questions(self) -> int:
        return sum(self.decisions.values())
