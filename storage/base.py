"""What the conversations need from storage, as small interfaces any backend can implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatKey:
    """A conversation is identified by its channel and the chat's id on that channel."""

    channel: str
    chat_id: str


@dataclass
class ConversationState:
    """Where a chat is: the flow it is in, the step the bot waits on, and what it collected."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    language: str = "en"

    def reset(self) -> None:
        """Leave the current flow, forgetting what it collected."""
        self.flow, self.step, self.data = None, None, {}


@dataclass(frozen=True)
class Feedback:
    """A customer's 👍 (helpful) or 👎 on an FAQ answer."""

    entry_id: str
    helpful: bool


# What a turn of conversation asks storage to keep, besides the state itself.
Record = Feedback


class ConversationStore(Protocol):
    async def load(self, key: ChatKey) -> ConversationState:
        """The chat's saved state, or a fresh one."""
        ...

    async def is_processed(self, key: ChatKey, update_id: str) -> bool:
        """Whether this channel update was already handled (re-delivery)."""
        ...

    async def save(
        self,
        key: ChatKey,
        state: ConversationState,
        update_id: str | None,
        records: Sequence[Record] = (),
    ) -> None:
        """Store the state and the turn's records and mark the update processed, atomically."""
        ...


class FeedbackStore(Protocol):
    async def feedback_counts(self) -> dict[str, tuple[int, int]]:
        """Entry id -> (helpful, not helpful) votes."""
        ...


class Storage(ConversationStore, FeedbackStore, Protocol):
    """Everything the bot stores; one implementation per backend."""

    async def close(self) -> None: ...
