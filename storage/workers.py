"""What several processes serving from one database need of it besides the chat lock
(`ConversationStore.chat_lock`, which the engine holds for each turn): claimed inbox and
outbox rows, and leases for roles one process plays at a time (the timers).

Used by the runtime (`bot/runtime.py`, `bot/workers.py`). A claim or a lease lasts until
its time runs out, so the rows and roles of a worker that died pass to the others within
that time; times come from the workers' clocks (keep them in sync, as NTP does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # storage.base gathers every store, this one included.
    from storage.base import InboxUpdate, QueuedMessage


@dataclass(frozen=True)
class Claim:
    """Whom the replies a turn queues are claimed for in the turn's own transaction: the
    worker running the turn, for the channels it sends on."""

    worker: str
    lease_seconds: float
    channels: frozenset[str]


class WorkerStore(Protocol):
    async def claim_inbox(
        self,
        channel: str,
        worker: str,
        lease_seconds: float,
        limit: int = 100,
    ) -> list[InboxUpdate]:
        """Up to `limit` updates for `worker` to process, oldest first: none that another
        worker holds, and none of a chat another worker holds an update of, while their
        leases run. They are the worker's for `lease_seconds` or until processed."""
        ...

    async def receive_claimed(
        self, channel: str, updates: Sequence[InboxUpdate], worker: str, lease_seconds: float
    ) -> list[InboxUpdate]:
        """Keep `updates` of `channel` (as `InboxStore.receive`) and, in the same
        transaction, claim those of them `claim_inbox` would give `worker`, leaving out any
        of a chat with an earlier update waiting that `worker` does not hold: they are left
        to whoever takes that one. Returns those claimed, in order."""
        ...

    async def claim_outbox(
        self,
        channel: str,
        worker: str,
        lease_seconds: float,
        limit: int = 100,
        only: Sequence[int] | None = None,
    ) -> list[QueuedMessage]:
        """Up to `limit` replies for `worker` to send, in the order queued: none that
        another worker holds, and none of a chat another worker holds a reply of, while
        their leases run; so each chat's replies go out once and in order. They are the
        worker's for `lease_seconds` or until marked delivered or failed. With `only`
        (outbox ids: replies the worker's own turns queued), only those, and none of a chat
        with an earlier reply waiting that `worker` does not hold, as `receive_claimed`."""
        ...

    async def renew_claims(self, worker: str, lease_seconds: float) -> None:
        """Extend the worker's claims to `lease_seconds` from now (a slow reply)."""
        ...

    async def release_claims(self, worker: str) -> None:
        """Give back every row the worker holds (it is stopping), for others to take now."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take or renew the lease `name` for `ttl_seconds`; False while another holder's
        lease has not run out."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease if `holder` has it; another holder's is left alone."""
        ...
