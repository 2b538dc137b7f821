"""What lets several worker processes serve from one database: each worker's identity, and
roles one of them plays at a time (the timers' leader, Telegram's poller) by a lease it
keeps renewing. The rows a worker works on are claims (`storage/workers.py`) that last as
long as the same lease; a worker that dies passes both on when they run out."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from storage.workers import WorkerStore

logger = logging.getLogger(__name__)

# Several workers on one machine listen on one port, the kernel spreading the connections
# (SO_REUSEPORT: Linux's; elsewhere run one per port behind a load balancer).
REUSE_PORT = sys.platform == "linux"
# How long a claim or a role lasts without renewal: the failover time after a worker dies.
LEASE_SECONDS = 12.0
# How often a worker renews its claims and roles and claims rows nobody holds; well under
# LEASE_SECONDS, so a slow database round or a busy loop does not lose them.
RENEW_SECONDS = 3.0


@dataclass(frozen=True)
class Worker:
    """One process's name in claims and leases; unique per start (a restarted container
    has the same host name and pid)."""

    id: str

    @classmethod
    def new(cls) -> Worker:
        return cls(f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")


class Role:
    """A part one worker plays at a time: `play` runs while this worker holds the lease
    `name`, and stops when the lease is lost (another worker took it after a stall) or
    the role is cancelled, which gives the lease back."""

    def __init__(
        self,
        store: WorkerStore,
        name: str,
        worker: Worker,
        play: Callable[[], Coroutine[Any, Any, None]],
        begin: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.worker = worker
        self.play = play
        # Done on taking the role (its log line, say), before `decided` is set and `play`
        # starts.
        self.begin = begin
        # Set once the first attempt at the lease is decided (`begin` done and `play`
        # started, if won).
        self.decided = asyncio.Event()
        self._playing: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Try for the lease every RENEW_SECONDS and play while holding it, until cancelled.
        Raises what `play` raised if this worker still held the lease then (a messenger
        that will not serve), not if another took it over (Telegram's 409 to a poller
        whose lease ran out)."""
        try:
            while True:
                await self._keep()
                self.decided.set()
                playing = self._playing
                if playing is None:
                    await asyncio.sleep(RENEW_SECONDS)
                    continue
                await asyncio.wait({playing}, timeout=RENEW_SECONDS)
                if playing.done():
                    await self._ended(playing)
        finally:
            await self._stop_playing()
            with suppress(Exception):
                await self.store.release_lease(self.name, self.worker.id)

    async def _keep(self) -> None:
        """Renew or take the lease; start or stop playing as it went."""
        try:
            holding = await self.store.acquire_lease(self.name, self.worker.id, LEASE_SECONDS)
        except Exception:
            # The database is away: go on as before, and ask again next round.
            logger.exception("runtime.lease_failed lease=%s", self.name)
            return
        if holding and self._playing is None:
            if self.begin is not None:
                await self.begin()
            self._playing = asyncio.create_task(self.play(), name=self.name)
        elif not holding and self._playing is not None:
            logger.warning("runtime.role_lost role=%s worker=%s", self.name, self.worker.id)
            await self._stop_playing()

    async def _ended(self, playing: asyncio.Task[None]) -> None:
        self._playing = None
        error = None if playing.cancelled() else playing.exception()
        if error is None:
            return
        if await self.store.acquire_lease(self.name, self.worker.id, LEASE_SECONDS):
            raise error
        logger.warning(
            "runtime.role_lost role=%s worker=%s reason=%s", self.name, self.worker.id, error
        )

    async def _stop_playing(self) -> None:
        playing, self._playing = self._playing, None
        if playing is not None:
            playing.cancel()
            await asyncio.gather(playing, return_exceptions=True)
