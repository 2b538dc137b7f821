"""What storage keeps of messages sent: their messenger ids against the reply they were part
of, and the statuses the messenger reports later."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from domain.chats import ChatKey
from domain.sent import SentMessage, SentStatus

if TYPE_CHECKING:
    # storage.base gathers every store, this one included.
    from storage.base import QueuedMessage


class SentStore(Protocol):
    async def record_sent(self, message: QueuedMessage, part: int, message_id: str) -> SentMessage:
        """Part `part` of a queued reply went out as the messenger's message `message_id`
        (kept with the reply's body: the outbox forgets a reply once delivered). Returns
        the record, with any status that came before the send's own answer."""
        ...

    async def record_status(
        self,
        key: ChatKey,
        message_id: str,
        status: SentStatus,
        at: datetime,
        error_code: int | None = None,
        error: str | None = None,
    ) -> SentMessage | None:
        """Keep a status reported of a message sent to `key`, unless the same or a later
        one is kept already (statuses arrive out of order, and again); returns the record
        as it is now, None when nothing changed. A status of a message not recorded yet is
        kept for `record_sent` to find."""
        ...

    async def sent_messages(self, key: ChatKey) -> list[SentMessage]:
        """The chat's recorded messages, oldest first."""
        ...
