"""A conversation's identity and where it stands: what every flow and store shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    # Set by /language: the messenger's language code no longer overrides `language`.
    language_chosen: bool = False

    def reset(self) -> None:
        """Leave the current flow, forgetting what it collected."""
        self.flow, self.step, self.data = None, None, {}
