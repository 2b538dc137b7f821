"""Pace outgoing messages so Telegram never has to throttle the bot, and incoming ones so
that no sender can take more than their share of it.

A bot that sends too fast gets `429 Too Many Requests` with a `retry_after` that can
stall it for many seconds, so it is far cheaper to stay under Telegram's documented
limits up front: about one message per second per chat (short bursts are tolerated),
at most 20 messages per minute in a group, and about 30 messages per second overall.

This is only the pacing policy. It knows nothing about any messenger API, and its
clock and sleep are injectable, so it is tested in virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

# Float slack: a bucket refilled to 0.9999999999 holds a whole token. Without it a waiter
# woken exactly on time could go back to sleep for a rounding error.
_EPSILON = 1e-9


class TokenBucket:
    """Up to `capacity` tokens, refilled continuously at `rate` per second; a message costs one.

    Starts full. Refills lazily from `clock` on every call, so an idle bucket costs nothing.
    """

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if capacity < 1:
            raise ValueError(f"capacity must hold at least one token, got {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def delay(self) -> float:
        """Seconds until one token is available; 0.0 if one is available now."""
        missing = 1.0 - self._refill()
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self) -> None:
        """Consume one token.

        Taking from an empty bucket is allowed: the bucket goes into debt (negative tokens)
        and later `delay()` calls make the debt be paid back before the next message.
        `RateLimiter` only takes once `delay()` has returned 0, so it never borrows.
        """
        self._refill()
        self._tokens -= 1.0

    @property
    def full(self) -> bool:
        """True when the bucket is back at capacity, i.e. indistinguishable from a new one."""
        return self._refill() >= self.capacity - _EPSILON


@dataclass(frozen=True)
class RateLimits:
    """Telegram's limits for bots, as token buckets (a rate plus a burst).

    Private chats: 1/s with a burst of 3, so a reply split into up to three messages goes
    out at once; Telegram tolerates short bursts in a chat.

    Groups: Telegram states a hard count, 20 messages per minute. A token bucket lets
    through at most `burst + rate * T` messages in any T seconds, so the burst is paid for
    out of the minute's allowance: the refill rate is (20 - 3) per minute (see
    `per_group_rate`). No 60-second window ever holds more than 20 messages, yet a
    three-part reply still goes out without waiting.

    Global: 30/s with a burst of 30. Telegram's figure is approximate ("about 30 per
    second"), so this favours throughput: right after an idle spell up to 60 messages can
    go out within one second, and 30/s thereafter.
    """

    per_chat_rate: float = 1.0
    per_chat_burst: float = 3
    per_group_per_minute: float = 20
    per_group_burst: float = 3
    global_rate: float = 30.0
    global_burst: float = 30

    def __post_init__(self) -> None:
        if self.per_chat_rate <= 0 or self.global_rate <= 0:
            raise ValueError("rates must be positive")
        if min(self.per_chat_burst, self.per_group_burst, self.global_burst) < 1:
            raise ValueError("bursts must allow at least one message")
        if self.per_group_per_minute <= self.per_group_burst:
            raise ValueError("per_group_per_minute must exceed per_group_burst")

    @property
    def per_group_rate(self) -> float:
        """Refill rate of a group's bucket, per second: what the burst leaves of the minute."""
        return (self.per_group_per_minute - self.per_group_burst) / 60.0


@dataclass
class _Chat:
    bucket: TokenBucket
    # Keeps one chat's messages in call order, and makes the holder the only one taking
    # from `bucket`: while it waits for the global bucket, its own can only fill up.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # holding() calls between lookup and return; a chat in use is never forgotten.
    users: int = 0


class _ChatBuckets:
    """A token bucket per chat, held by one caller at a time, forgotten when idle.

    A full bucket behaves exactly like a new one, so dropping it loses nothing. At most
    every `prune_interval` seconds, `holding` sweeps out full, unused buckets. A sweep
    costs O(chats tracked), and only chats active since the previous sweep (plus one
    refill time) survive it, so the cost is amortised over those chats' messages and
    memory stays proportional to the chats active in the last `prune_interval`, not to
    all chats ever seen.
    """

    def __init__(self, clock: Callable[[], float], prune_interval: float) -> None:
        self._clock = clock
        self._prune_interval = prune_interval
        self._pruned_at = clock()
        self._chats: dict[str, _Chat] = {}

    def __len__(self) -> int:
        return len(self._chats)

    @asynccontextmanager
    async def holding(
        self, chat_id: str, new_bucket: Callable[[], TokenBucket]
    ) -> AsyncIterator[TokenBucket]:
        """The chat's bucket, for this caller alone; callers for one chat get it in call
        order."""
        self._prune()
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(new_bucket())
        chat.users += 1
        try:
            async with chat.lock:
                yield chat.bucket
        finally:
            chat.users -= 1

    def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned_at < self._prune_interval:
            return
        self._pruned_at = now
        idle = [key for key, chat in self._chats.items() if not chat.users and chat.bucket.full]
        for key in idle:
            del self._chats[key]


async def _until_token(bucket: TokenBucket, sleep: Callable[[float], Awaitable[None]]) -> None:
    # A loop, not one sleep: a real event loop may wake us a hair early.
    while (delay := bucket.delay()) > 0:
        await sleep(delay)


class RateLimiter:
    """Waits until a message may be sent to a chat without breaking any limit.

    Each chat has its own bucket (private or group limits) and all chats share a global
    one. A message first waits for its chat's bucket *without* holding the global one, so
    a chat at its own limit never holds up other chats; then it queues for the global
    bucket behind a lock, which asyncio wakes in arrival order, so the global bucket is
    shared first come first served. Both tokens are taken at the same instant. Buckets of
    idle chats are forgotten (`_ChatBuckets`).
    """

    def __init__(
        self,
        limits: RateLimits = RateLimits(),  # frozen, so one shared default is safe
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        prune_interval: float = 60.0,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._chats = _ChatBuckets(clock, prune_interval)
        self._global = TokenBucket(limits.global_rate, limits.global_burst, clock)
        self._global_lock = asyncio.Lock()

    @property
    def tracked_chats(self) -> int:
        """How many chats currently have a bucket (for tests and metrics)."""
        return len(self._chats)

    async def acquire(self, chat_id: str, *, group: bool) -> None:
        """Wait until one message to `chat_id` respects its chat's and the global limit.

        Concurrent calls for one chat return in call order. Cancelling a waiting call
        takes no tokens.
        """
        async with self._chats.holding(chat_id, lambda: self._new_bucket(group)) as bucket:
            await _until_token(bucket, self._sleep)
            # Nobody else takes from this chat's bucket while we hold it, so it still has
            # a token after the global wait: no need to re-check it.
            async with self._global_lock:
                await _until_token(self._global, self._sleep)
                self._global.take()
                bucket.take()

    def _new_bucket(self, group: bool) -> TokenBucket:
        limits = self.limits
        if group:
            return TokenBucket(limits.per_group_rate, limits.per_group_burst, self._clock)
        return TokenBucket(limits.per_chat_rate, limits.per_chat_burst, self._clock)


class ChatPacer:
    """Paces what each chat sends the bot: a burst of `burst` at once, then `rate` per
    second. A chat over its pace waits, in order; other chats do not wait for it."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        prune_interval: float = 60.0,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._chats = _ChatBuckets(clock, prune_interval)

    @property
    def tracked_chats(self) -> int:
        return len(self._chats)

    async def wait(self, chat_id: str) -> float:
        """Wait until the chat may have one more; returns the seconds waited."""
        started = self._clock()
        async with self._chats.holding(chat_id, self._new_bucket) as bucket:
            await _until_token(bucket, self._sleep)
            bucket.take()
        return self._clock() - started

    def _new_bucket(self) -> TokenBucket:
        return TokenBucket(self.rate, self.burst, self._clock)
