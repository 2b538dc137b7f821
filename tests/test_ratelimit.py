"""The rate limiter in virtual time: bursts, per-chat and group pacing, the global cap, fairness."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Coroutine
from typing import Any

import pytest

from bot.ratelimit import ChatPacer, RateLimiter, RateLimits, TokenBucket

# Lots of room globally, for tests that are about one chat's own limit.
UNLIMITED_GLOBAL = {"global_rate": 1e6, "global_burst": 1_000_000}


class VirtualTime:
    """A fake clock plus a fake sleep: sleepers park until `run` advances the clock to them.

    `run` lets every runnable coroutine go as far as it can, then jumps the clock to the
    earliest sleeper's deadline and wakes it, so concurrent tasks see consistent time.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(delay, 0.0), next(self._order), wake))
        await wake

    async def run(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        tasks = [asyncio.create_task(coro) for coro in coros]
        while True:
            # Let woken tasks run to their next sleep (or lock wait); the chains in these
            # tests are a handful of steps long.
            for _ in range(20):
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            assert self._timers, "deadlock: tasks are waiting but nobody sleeps"
            when, _, wake = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not wake.done():
                wake.set_result(None)


def limiter(vt: VirtualTime, **limits: Any) -> RateLimiter:
    return RateLimiter(RateLimits(**limits), clock=vt, sleep=vt.sleep)


async def send_times(
    vt: VirtualTime, rl: RateLimiter, chat: str, n: int, group: bool
) -> list[float]:
    times = []
    for _ in range(n):
        await rl.acquire(chat, group=group)
        times.append(vt.now)
    return times


# --- TokenBucket -----------------------------------------------------------------------


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, capacity=2, clock=lambda: now[0])
    assert bucket.full
    for _ in range(2):
        assert bucket.delay() == 0.0
        bucket.take()
    assert bucket.delay() == pytest.approx(0.5)
    now[0] = 0.25
    assert bucket.delay() == pytest.approx(0.25)
    now[0] = 0.5
    assert bucket.delay() == 0.0
    now[0] = 100.0  # refilling stops at capacity
    assert bucket.full
    bucket.take()
    bucket.take()
    assert bucket.delay() == pytest.approx(0.5)


def test_taking_from_an_empty_bucket_borrows_against_the_future() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, capacity=1, clock=lambda: now[0])
    bucket.take()
    bucket.take()  # in debt by one token
    assert bucket.delay() == pytest.approx(2.0)


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1), (-1.0, 1), (1.0, 0.5)])
def test_a_bucket_that_could_never_pass_a_message_is_refused(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, capacity)


def test_inconsistent_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimits(per_group_per_minute=3, per_group_burst=3)
    with pytest.raises(ValueError):
        RateLimits(per_chat_burst=0)


# --- one chat --------------------------------------------------------------------------


async def test_a_private_chat_gets_its_burst_at_once_then_one_per_second() -> None:
    vt = VirtualTime()
    rl = limiter(vt)
    [times] = await vt.run(send_times(vt, rl, "alice", 6, group=False))
    assert times == pytest.approx([0, 0, 0, 1, 2, 3])


async def test_a_group_never_gets_more_than_20_messages_in_a_minute() -> None:
    vt = VirtualTime()
    rl = limiter(vt, **UNLIMITED_GLOBAL)
    [times] = await vt.run(send_times(vt, rl, "-100group", 60, group=True))
    assert times[:3] == [0, 0, 0]  # a three-part reply goes out at once
    assert sum(t <= 60 + 1e-6 for t in times) == 20  # the whole allowance in the first minute
    # No 60-second window, open or closed, holds 21 messages.
    assert all(times[i + 20] - times[i] > 60 for i in range(len(times) - 20))
    # Sustained, a group gets what the burst leaves of the minute: 17 per minute.
    assert times[-1] - times[3] == pytest.approx(56 * 60 / 17)


async def test_messages_to_one_chat_leave_in_call_order() -> None:
    vt = VirtualTime()
    rl = limiter(vt)
    order: list[int] = []

    async def send(i: int) -> None:
        await rl.acquire("alice", group=False)
        order.append(i)

    await vt.run(*(send(i) for i in range(8)))
    assert order == list(range(8))
    assert vt.now == pytest.approx(5.0)  # 3 at once, then 5 more at 1/s


async def test_a_chat_keeps_its_pace_while_its_messages_queue_for_the_global_bucket() -> None:
    vt = VirtualTime()
    rl = limiter(vt, per_chat_burst=1, global_rate=2.0, global_burst=1)
    alice: list[float] = []

    async def to_alice() -> None:
        await rl.acquire("alice", group=False)
        alice.append(vt.now)

    async def to_bob() -> None:
        await vt.sleep(0.9)  # uses the global token alice's second message would get at t=1
        await rl.acquire("bob", group=False)

    # Alice's 2nd message has her chat's token at t=1 but waits for the global one until
    # 1.4; her 3rd must not treat that chat token as still free.
    await vt.run(to_alice(), to_alice(), to_alice(), to_bob())
    assert alice == pytest.approx([0.0, 1.4, 2.4])


# --- many chats ------------------------------------------------------------------------


async def test_the_global_bucket_caps_all_chats_together_at_30_per_second() -> None:
    vt = VirtualTime()
    rl = limiter(vt)
    sent: list[float] = []

    async def send(chat: str) -> None:
        await rl.acquire(chat, group=False)
        sent.append(vt.now)

    await vt.run(*(send(f"user{i}") for i in range(300)))  # every chat is within its own limit
    assert sent[:30] == [0.0] * 30  # the global burst
    assert sent[30:] == pytest.approx([(k + 1) / 30 for k in range(270)])
    assert sent[-1] == pytest.approx(9.0)  # 270 more at 30/s


async def test_the_global_bucket_serves_waiting_chats_first_come_first_served() -> None:
    vt = VirtualTime()
    rl = limiter(vt, global_rate=1.0, global_burst=1)
    served: list[str] = []

    async def send(chat: str, after: float = 0.0) -> None:
        if after:
            await vt.sleep(after)
        await rl.acquire(chat, group=False)
        served.append(chat)

    # "late" turns up exactly when the next global token does, and its wake-up is due
    # before the waiters' (it started sleeping first). Without a queue it would grab that
    # token ahead of w1, which has been waiting since t=0.
    await vt.run(
        send("late", after=1.0),
        send("first"),
        send("w1"),
        send("w2"),
        send("w3"),
    )
    assert served == ["first", "w1", "w2", "w3", "late"]
    assert vt.now == pytest.approx(4.0)


async def test_a_chat_waiting_for_its_own_limit_does_not_delay_other_chats() -> None:
    vt = VirtualTime()
    rl = limiter(vt, global_rate=10.0, global_burst=10)
    slow_times: list[float] = []

    async def slow() -> None:
        slow_times.extend(await send_times(vt, rl, "slow", 6, group=False))

    async def group_slow() -> None:
        slow_times.extend(await send_times(vt, rl, "-100slow", 5, group=True))

    async def fast(chat: str, at: float) -> float:
        await vt.sleep(at)
        await rl.acquire(chat, group=False)
        return vt.now

    _, _, other, another = await vt.run(slow(), group_slow(), fast("bob", 0.5), fast("carol", 1.5))
    assert other == 0.5  # while "slow" sleeps on its own bucket
    assert another == 1.5
    assert max(slow_times) > 3  # the slow chats really were waiting all along


async def test_a_cancelled_wait_takes_no_token_and_blocks_nobody() -> None:
    vt = VirtualTime()
    rl = limiter(vt, per_chat_burst=1)

    async def scenario() -> float:
        await rl.acquire("alice", group=False)
        waiter = asyncio.create_task(rl.acquire("alice", group=False))
        await asyncio.sleep(0)  # let it start waiting
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await rl.acquire("alice", group=False)
        return vt.now

    [when] = await vt.run(scenario())
    assert when == pytest.approx(1.0)  # the cancelled call did not use up the next second


# --- memory ----------------------------------------------------------------------------


async def test_buckets_of_idle_chats_are_forgotten() -> None:
    vt = VirtualTime()
    rl = limiter(vt, **UNLIMITED_GLOBAL)

    async def scenario() -> None:
        for i in range(1000):
            await rl.acquire(f"user{i}", group=i % 2 == 0)
        assert rl.tracked_chats == 1000
        await vt.sleep(30)
        await rl.acquire("busy", group=False)
        assert rl.tracked_chats == 1001  # no sweep before the prune interval
        await vt.sleep(30)
        await rl.acquire("newcomer", group=False)
        # The idle ones are full again and gone; "busy" last sent 30 s ago, long refilled.
        assert rl.tracked_chats == 1
        # A forgotten chat simply starts over with a full bucket.
        now = vt.now
        assert await send_times(vt, rl, "user7", 4, group=False) == [now, now, now, now + 1]

    await vt.run(scenario())


async def test_a_chat_that_is_still_refilling_or_waiting_is_kept() -> None:
    vt = VirtualTime()
    rl = RateLimiter(
        RateLimits(per_chat_burst=1, **UNLIMITED_GLOBAL),
        clock=vt,
        sleep=vt.sleep,
        prune_interval=1.0,
    )

    async def scenario() -> None:
        await rl.acquire("alice", group=False)
        waiting = asyncio.create_task(rl.acquire("alice", group=False))
        await asyncio.sleep(0)
        vt.now = 1.0  # a sweep is due, alice's bucket is full again but a call is waiting on it
        await rl.acquire("bob", group=False)
        assert rl.tracked_chats == 2
        await waiting

    await vt.run(scenario())


async def test_memory_follows_active_chats_not_all_chats_ever_seen() -> None:
    vt = VirtualTime()

    async def never_sleep(delay: float) -> None:
        raise AssertionError("every chat here is new and within every limit")

    rl = RateLimiter(
        RateLimits(**UNLIMITED_GLOBAL), clock=vt, sleep=never_sleep, prune_interval=5.0
    )
    peak = 0
    for i in range(10_000):  # 100 new chats a second for 100 s
        vt.now += 0.01
        await rl.acquire(f"user{i}", group=False)
        peak = max(peak, rl.tracked_chats)
    # A chat is dropped at the first sweep after its bucket refills (3 s): at most
    # (5 s + 3 s) * 100/s of them are tracked at any time.
    assert peak <= 800


# --- real time -------------------------------------------------------------------------


async def test_it_paces_in_real_time_with_the_real_clock_and_sleep() -> None:
    rl = RateLimiter(RateLimits(per_chat_rate=100.0, per_chat_burst=1))
    started = time.monotonic()

    async def send(chat: str, n: int) -> None:
        for _ in range(n):
            await rl.acquire(chat, group=False)

    sends: list[Awaitable[None]] = [send("alice", 11), send("bob", 11)]
    await asyncio.gather(*sends)
    elapsed = time.monotonic() - started
    assert 0.095 <= elapsed < 0.5  # 10 intervals of 10 ms per chat, the two chats in parallel


# --- ChatPacer (what chats send the bot) -------------------------------------------------


async def test_a_chat_over_its_inbound_pace_waits_and_the_others_do_not() -> None:
    vt = VirtualTime()
    pacer = ChatPacer(rate=0.5, burst=3, clock=vt, sleep=vt.sleep)

    async def turns(chat: str, n: int) -> list[tuple[float, float]]:
        return [(await pacer.wait(chat), vt.now) for _ in range(n)]

    flood, other = await vt.run(turns("flood", 6), turns("other", 2))
    assert [at for _, at in flood] == [0, 0, 0, 2, 4, 6]
    assert [waited for waited, _ in flood] == [0, 0, 0, 2, 2, 2]
    assert other == [(0, 0), (0, 0)]
    vt.now += 1000
    await pacer.wait("someone else")  # the sweep forgets the idle chats
    assert pacer.tracked_chats == 1
