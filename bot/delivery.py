"""Delivering queued replies: in order per chat, within the channel's rate limits, retried
until they arrive or are known undeliverable. Replies wait in the outbox table, so a
restart sends what a crash left behind."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.ratelimit import RateLimiter
from bot.serial import SerialQueues
from domain.chats import ChatKey
from storage.base import OutboxStore, QueuedMessage

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """Why one part of a reply did not go out."""


class RetryAfter(DeliveryError):
    """The messenger asked us to wait (Telegram's 429)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry after {seconds}s")
        self.seconds = seconds


class TemporaryFailure(DeliveryError):
    """Network trouble or a server error: worth retrying with back-off."""


class Undeliverable(DeliveryError):
    """The messenger refused for good (bot blocked, chat gone, invalid message)."""


class Sender(Protocol):
    """A channel's way of sending: a reply becomes one or more parts, each one API call."""

    def parts(self, message: QueuedMessage) -> Sequence[Any]: ...

    async def send(self, key: ChatKey, part: Any) -> None:
        """Send one part; raise a DeliveryError subclass when it did not go out."""
        ...

    def is_group(self, chat_id: str) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for temporary failures, the one every retry loop uses: by default 0.5 s
    doubling to 30 s, giving up after 10 failures in a row (about 3 minutes in all)."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    # None: never give up (polling: the updates wait at Telegram until it answers again).
    max_failures: int | None = 10

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row."""
        delay = min(self.first_delay * 2.0 ** (failures - 1), self.max_delay)
        # Jitter keeps many callers that failed together from retrying together.
        return delay * random.uniform(0.8, 1.2)

    def gives_up(self, failures: int) -> bool:
        return self.max_failures is not None and failures >= self.max_failures


# Told of a reply given up on, with the reason; the channel decides who else should know.
OnFailed = Callable[[QueuedMessage, str], Awaitable[None]]


class Delivery:
    def __init__(
        self,
        outbox: OutboxStore,
        channel: str,
        sender: Sender,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy = RetryPolicy(),
        on_failed: OnFailed | None = None,
        shown: Callable[[ChatKey], str] = lambda key: key.chat_id,
    ) -> None:
        self.outbox = outbox
        self.channel = channel
        self.sender = sender
        self.limiter = limiter
        self.policy = policy
        self.on_failed = on_failed
        # How logs name a chat: a phone number (WhatsApp's chat ids) masked.
        self.shown = shown
        self._queues = SerialQueues(f"delivery.{channel}")

    async def start(self) -> None:
        """Queue what the outbox still holds from an earlier run, before anything new."""
        left_over = await self.outbox.outbox(self.channel)
        if left_over:
            logger.info("delivery.resumed channel=%s messages=%d", self.channel, len(left_over))
        for message in left_over:
            self.enqueue(message)

    def enqueue(self, message: QueuedMessage) -> None:
        self._queues.submit(message.key, lambda: self._deliver(message))

    async def join(self) -> None:
        """Wait until everything queued so far was delivered or given up."""
        await self._queues.join()

    async def stop(self, grace_seconds: float) -> None:
        """Finish what is queued within the grace period; the rest stays in the outbox."""
        try:
            await asyncio.wait_for(self._queues.join(), grace_seconds)
        except TimeoutError:
            logger.warning(
                "delivery.stopped_with_backlog channel=%s chats=%d",
                self.channel,
                self._queues.busy,
            )
        await self._queues.cancel()

    async def _deliver(self, message: QueuedMessage) -> None:
        parts = self.sender.parts(message)
        for index in range(message.parts_sent, len(parts)):
            try:
                await self._send_part(message.key, parts[index])
            except Undeliverable as exc:
                logger.error(
                    "delivery.failed channel=%s chat=%s message=%d reason=%s",
                    self.channel,
                    self.shown(message.key),
                    message.id,
                    exc,
                )
                await self.outbox.mark_failed(message.id, str(exc))
                if self.on_failed is not None:
                    await self.on_failed(message, str(exc))
                return
            if index + 1 < len(parts):
                await self.outbox.mark_progress(message.id, index + 1)
        await self.outbox.mark_delivered(message.id)

    async def _send_part(self, key: ChatKey, part: Any) -> None:
        failures = 0
        while True:
            if self.limiter is not None:
                await self.limiter.acquire(key.chat_id, group=self.sender.is_group(key.chat_id))
            try:
                await self.sender.send(key, part)
                return
            except RetryAfter as exc:
                logger.warning(
                    "delivery.rate_limited chat=%s retry_after=%s", self.shown(key), exc.seconds
                )
                await asyncio.sleep(exc.seconds)
            except TemporaryFailure as exc:
                failures += 1
                if self.policy.gives_up(failures):
                    raise Undeliverable(f"gave up after {failures} attempts: {exc}") from exc
                delay = self.policy.delay(failures)
                logger.warning(
                    "delivery.retrying chat=%s attempt=%d in=%.1fs reason=%s",
                    self.shown(key),
                    failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
