"""Roles one worker plays at a time (`bot.workers.Role`), on a real SQLite file."""

from __future__ import annotations

import asyncio

import pytest

import bot.workers
from bot.workers import Role, Worker
from storage.sqlite import SqliteStorage

LEASE = "receiver:alpha"


class Refused(Exception):
    """What a messenger says to a receiver it will not serve (Telegram's 409, a bad token)."""


async def test_a_worker_whose_lease_another_took_steps_down_instead_of_failing(
    storage: SqliteStorage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A stalls past its lease (it renews too seldom), B takes it, and the messenger tells
    # A that another receives now.
    monkeypatch.setattr(bot.workers, "LEASE_SECONDS", 0.05)
    monkeypatch.setattr(bot.workers, "RENEW_SECONDS", 10.0)
    refused = asyncio.Event()
    plays = 0

    async def receive() -> None:
        nonlocal plays
        plays += 1
        await refused.wait()
        raise Refused("409 Conflict")

    role = Role(storage, LEASE, Worker("A"), receive)
    task = asyncio.create_task(role.run())
    await role.decided.wait()
    await asyncio.sleep(0.1)
    assert await storage.acquire_lease(LEASE, "B", 60)
    refused.set()
    await asyncio.sleep(0.1)
    assert not task.done()
    assert "runtime.role_lost role=receiver:alpha worker=A reason=409 Conflict" in caplog.text
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert plays == 1
    # B's lease was left alone by A's stopping.
    assert not await storage.acquire_lease(LEASE, "C", 60)


async def test_a_worker_refused_while_holding_its_lease_fails_and_gives_it_back(
    storage: SqliteStorage,
) -> None:
    async def receive() -> None:
        raise Refused("token rejected")

    with pytest.raises(Refused, match="token rejected"):
        await asyncio.wait_for(Role(storage, LEASE, Worker("A"), receive).run(), 5)
    assert await storage.acquire_lease(LEASE, "B", 60)


async def test_one_of_two_workers_plays_and_the_other_takes_over_when_it_stops(
    storage: SqliteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.workers, "RENEW_SECONDS", 0.02)
    playing: list[str] = []

    def player(name: str) -> Role:
        async def play() -> None:
            playing.append(name)
            await asyncio.Event().wait()

        return Role(storage, LEASE, Worker(name), play)

    first, second = player("A"), player("B")
    running = [asyncio.create_task(first.run())]
    await first.decided.wait()
    running.append(asyncio.create_task(second.run()))
    await second.decided.wait()
    await asyncio.sleep(0.1)
    assert playing == ["A"]
    running[0].cancel()
    await asyncio.gather(running[0], return_exceptions=True)
    await asyncio.sleep(0.1)
    assert playing == ["A", "B"]
    running[1].cancel()
    await asyncio.gather(running[1], return_exceptions=True)
