"""Delivering queued replies: in order per chat, within the channel's rate limits, retried
until they arrive or are known undeliverable. Replies wait in the outbox table, so a
restart sends what a crash left behind; a worker sends the replies it claimed
(`storage/workers.py`), so several workers send each reply once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.ratelimit import RateLimiter
from bot.serial import SerialQueues
from bot.workers import LEASE_SECONDS, Worker
from domain.chats import ChatKey
from storage.base import OutboxStore, QueuedMessage
from storage.workers import WorkerStore

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

    async def send(self, key: ChatKey, part: Any) -> str | None:
        """Send one part; raise a DeliveryError subclass when it did not go out. Returns
        the messenger's id of the message sent where a later status names it (WhatsApp's
        wamid), else None."""
        ...

    def is_group(self, chat_id: str) -> bool: ...


class Gate(Protocol):
    """What a channel asks of a reply besides rendering it, where the messenger limits what
    may go out when (WhatsApp's 24-hour window), and what it keeps of each message sent."""

    async def parts(self, message: QueuedMessage, parts: Sequence[Any]) -> Sequence[Any]:
        """The parts to send for a reply not yet begun: `parts` as rendered, or others in
        their place (a template); raises Undeliverable to keep the reply back."""
        ...

    async def refused(self, message: QueuedMessage, error: Undeliverable) -> Sequence[Any]:
        """The parts to send in place of a reply the messenger refused with `error` (the
        window closed after all); raises Undeliverable (`error` itself) when none may go."""
        ...

    async def sent(self, message: QueuedMessage, part: int, sent_id: str) -> str | None:
        """Part `part` of the reply went out as the messenger's message `sent_id`; returns
        why it failed when the messenger's failed status came before its answer."""
        ...


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


class ClaimedOutbox(OutboxStore, WorkerStore, Protocol):
    """The outbox, with the claims that share it among workers."""


class Delivery:
    def __init__(
        self,
        outbox: ClaimedOutbox,
        channel: str,
        sender: Sender,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy = RetryPolicy(),
        on_failed: OnFailed | None = None,
        shown: Callable[[ChatKey], str] = lambda key: key.chat_id,
        gate: Gate | None = None,
        worker: Worker | None = None,
    ) -> None:
        self.outbox = outbox
        self.channel = channel
        self.sender = sender
        self.limiter = limiter
        self.policy = policy
        self.on_failed = on_failed
        # How logs name a chat: a phone number (WhatsApp's chat ids) masked.
        self.shown = shown
        self.gate = gate
        self._queues = SerialQueues(f"delivery.{channel}")
        # Whose claims this delivery sends under; its own unless the runtime's is given.
        self.worker = worker if worker is not None else Worker.new()
        # Replies queued here and not yet done, so a claim repeated never sends one twice.
        self._held: set[int] = set()

    async def start(self) -> None:
        """Queue what the outbox holds that no worker holds (an earlier run's, a dead
        worker's), before anything new."""
        left_over = await self.claim()
        if left_over:
            logger.info("delivery.resumed channel=%s messages=%d", self.channel, left_over)

    async def claim(self) -> int:
        """Claim and queue the replies no worker holds; returns how many were queued."""
        claimed = await self.outbox.claim_outbox(self.channel, self.worker.id, LEASE_SECONDS)
        return self._queue_new(claimed)

    async def take(self, messages: Sequence[QueuedMessage]) -> None:
        """Send replies this process queued (a turn's, a notice), those claimed with their
        turn and those it can claim now: a chat another worker is sending to keeps its
        order by going to that worker."""
        unclaimed = [message.id for message in messages if not message.claimed]
        claimed = [message for message in messages if message.claimed]
        if unclaimed:
            claimed += await self.outbox.claim_outbox(
                self.channel, self.worker.id, LEASE_SECONDS, limit=len(unclaimed), only=unclaimed
            )
        # Outbox ids grow in the order replies were queued.
        self._queue_new(sorted(claimed, key=lambda message: message.id))

    def _queue_new(self, messages: Sequence[QueuedMessage]) -> int:
        fresh = [message for message in messages if message.id not in self._held]
        for message in fresh:
            self.enqueue(message)
        return len(fresh)

    def enqueue(self, message: QueuedMessage) -> None:
        """Queue a reply behind its chat's earlier ones, claimed or not (one process)."""
        self._held.add(message.id)
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
        # Held until its row is gone or marked: a claim meanwhile must not queue it again.
        try:
            await self._send_parts(message)
            await self.outbox.mark_delivered(message.id)
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
        finally:
            self._held.discard(message.id)

    async def _send_parts(self, message: QueuedMessage) -> None:
        """Send what is left of the reply (what the gate lets through); raises Undeliverable
        when it cannot go."""
        parts = self.sender.parts(message)
        if self.gate is not None and message.parts_sent == 0:
            parts = await self.gate.parts(message, parts)
        try:
            await self._send_from(message, parts, message.parts_sent, progress=True)
        except Undeliverable as exc:
            if self.gate is None:
                raise
            # Sent in place of the whole reply: progress is kept of the reply's own parts.
            await self._send_from(message, await self.gate.refused(message, exc), 0)

    async def _send_from(
        self, message: QueuedMessage, parts: Sequence[Any], start: int, progress: bool = False
    ) -> None:
        for index in range(start, len(parts)):
            sent_id = await self._send_part(message.key, parts[index])
            if sent_id and self.gate is not None:
                failed = await self.gate.sent(message, index, sent_id)
                if failed is not None and self.on_failed is not None:
                    await self.on_failed(message, failed)
            if progress and index + 1 < len(parts):
                await self.outbox.mark_progress(message.id, index + 1)

    async def _send_part(self, key: ChatKey, part: Any) -> str | None:
        failures = 0
        while True:
            if self.limiter is not None:
                await self.limiter.acquire(key.chat_id, group=self.sender.is_group(key.chat_id))
            try:
                return await self.sender.send(key, part)
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
