"""Per-key serial work: one key's jobs run one at a time in order, different keys in parallel."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class SerialQueues:
    """A FIFO and a worker task per busy key; a key's worker ends when its queue is empty,
    so memory follows the number of busy chats, not of chats ever seen."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queues: dict[Hashable, deque[Job]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: Hashable, job: Job) -> None:
        self._queues.setdefault(key, deque()).append(job)
        if key not in self._workers:
            self._idle.clear()
            self._workers[key] = asyncio.create_task(self._work(key), name=f"{self.name}:{key}")

    @property
    def busy(self) -> int:
        """Keys with work queued or running."""
        return len(self._workers)

    def waiting(self, key: Hashable) -> int:
        """Jobs of this key queued behind the one running."""
        return max(0, len(self._queues.get(key, ())) - 1)

    async def join(self) -> None:
        """Wait until every queued job has run."""
        await self._idle.wait()

    async def cancel(self) -> None:
        """Stop now: running jobs are cancelled and queued ones dropped."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        # Each worker's `finally` forgets its queue.
        await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue[0]
                try:
                    await job()
                except Exception:
                    logger.exception("%s.job_failed key=%s", self.name, key)
                queue.popleft()
        finally:
            del self._queues[key]
            del self._workers[key]
            if not self._workers:
                self._idle.set()
