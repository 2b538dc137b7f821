"""What WhatsApp asks of a reply besides rendering it, and what becomes of it afterwards:

- `WindowGate`, delivery's `Gate`: before a reply's first part, `decide` (whatsapp_window) by
  when the customer last wrote (stored per chat from Meta's `timestamp`, so every process
  on the database sees it): sent as it is, as the approved template of its purpose, or kept
  and the staff told; and once more with the window taken as closed when Meta refuses a
  message with 131047 anyway. Each message sent is recorded by its wamid against its reply.
- `StatusBook`: each status Meta reports kept against that record; a `failed` one gives the
  reply back to be reported undelivered, as delivery's own failures are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.channels.whatsapp_errors import OutsideWindow, mask
from bot.channels.whatsapp_read import DeliveryStatus, meta_time
from bot.channels.whatsapp_window import KeepForStaff, SendAsIs, SendTemplate, decide
from bot.delivery import Undeliverable
from bot.settings import WhatsAppTemplateSettings
from domain.chats import ChatKey
from domain.sent import SentMessage, SentStatus
from handlers.messages import Reply
from storage.base import QueuedMessage
from storage.sent import SentStore

logger = logging.getLogger(__name__)


class WindowStore(SentStore, Protocol):
    """What the gate and the status book need of storage."""

    async def last_inbound(self, key: ChatKey) -> datetime | None: ...


class WindowGate:
    """Delivery's `Gate` for WhatsApp: the 24-hour window applied to every reply."""

    def __init__(
        self,
        store: WindowStore,
        templates: Mapping[str, WhatsAppTemplateSettings],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.templates = templates
        self.clock = clock

    async def parts(self, message: QueuedMessage, parts: Sequence[Any]) -> Sequence[Any]:
        last = await self.store.last_inbound(message.key)
        return self._decided(message, parts, None if last is None else last.timestamp())

    async def refused(self, message: QueuedMessage, error: Undeliverable) -> Sequence[Any]:
        if not isinstance(error, OutsideWindow):
            raise error
        # Meta's clock is the one that counts: the window is closed, whatever ours said.
        logger.info("whatsapp.window_closed_at_meta chat=%s", mask(message.key.chat_id))
        return self._decided(message, (), None)

    async def sent(self, message: QueuedMessage, part: int, sent_id: str) -> str | None:
        record = await self.store.record_sent(message, part, sent_id)
        # Meta can post a status before it answers the call: a failure that came first.
        if record.status is not SentStatus.FAILED:
            return None
        return record.error or "failed without a reason"

    def _decided(
        self, message: QueuedMessage, parts: Sequence[Any], last_inbound: float | None
    ) -> Sequence[Any]:
        reply = Reply.from_json(message.body, message.key.channel)
        decision = decide(
            reply.purpose, str(reply.text), last_inbound, self.clock(), self.templates
        )
        match decision:
            case SendAsIs():
                return parts
            case SendTemplate():
                logger.info(
                    "whatsapp.template_chosen chat=%s message=%d purpose=%s template=%s",
                    mask(message.key.chat_id),
                    message.id,
                    reply.purpose,
                    decision.name,
                )
                return [decision.message()]
            case KeepForStaff(reason=reason):
                logger.warning(
                    "whatsapp.kept_for_staff chat=%s message=%d purpose=%s",
                    mask(message.key.chat_id),
                    message.id,
                    reply.purpose,
                )
                raise Undeliverable(reason)


class StatusBook:
    """Meta's statuses kept against the messages sent."""

    def __init__(self, store: SentStore) -> None:
        self.store = store

    async def keep(self, status: DeliveryStatus, channel: str) -> SentMessage | None:
        """Keep the status; returns the reply's message when this status is its first
        failure (the staff are told once, however many of its parts fail), else None."""
        key = ChatKey(channel, status.recipient)
        record = await self.store.record_status(
            key,
            status.message_id,
            SentStatus(status.status.value),
            meta_time(status.timestamp) or datetime.now(UTC),
            status.error_code,
            status.error,
        )
        if record is None or record.status is not SentStatus.FAILED or record.body is None:
            return None
        siblings = [
            other
            for other in await self.store.sent_messages(key)
            if other.outbox_id == record.outbox_id and other.message_id != record.message_id
        ]
        if any(other.status is SentStatus.FAILED for other in siblings):
            return None
        return record
