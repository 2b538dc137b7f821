"""The knowledge base's data model: what staff write in faq/kb/*.yaml."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MIN_ALTERNATES = 6

# Ids travel in button payloads, which Telegram caps at 64 bytes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=40)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Action(StrEnum):
    """A conversation flow an entry can start, offered as a button under its answer."""

    TRACK_ORDER = "track_order"
    WARRANTY_CHECK = "warranty_check"
    REPAIR_TICKET = "repair_ticket"
    HANDOFF = "handoff"


class Entry(BaseModel):
    """One question and its answer, with the phrasings customers use for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    category: Identifier
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=120)]
    alternates: Annotated[list[NonEmpty], Field(min_length=MIN_ALTERNATES)]
    answer: NonEmpty
    related: list[Identifier] = Field(default_factory=list)
    action: Action | None = None

    @property
    def phrasings(self) -> list[str]:
        """The canonical question first, then every alternate."""
        return [self.question, *self.alternates]


class KbFile(BaseModel):
    """The top level of one YAML file."""

    model_config = ConfigDict(extra="forbid")

    entries: list[Entry]
