"""What became of a message the bot sent, as the messenger reports it later (WhatsApp's
statuses): kept per message so an operator can see what happened to a reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.chats import ChatKey


class SentStatus(StrEnum):
    """A sent message's progress, in order; `failed` ends it whenever it comes."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class SentMessage:
    """One message of a reply, by the messenger's id for it (`message_id`, WhatsApp's
    wamid): the reply it was part of (`outbox_id`, its `body` as queued, `part` its index;
    None while only a status that overtook the send's answer is known), and the latest
    status reported, with Meta's error code and words when it failed."""

    message_id: str
    key: ChatKey
    outbox_id: int | None
    part: int
    body: dict[str, Any] | None
    sent_at: datetime
    status: SentStatus = SentStatus.SENT
    status_at: datetime | None = None
    error_code: int | None = None
    error: str | None = None
