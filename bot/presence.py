"""The "typing…" indicator around slow turns, for any channel that can show one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.serial import SerialQueues

# Show "typing…" only when a turn is slow enough for the customer to wonder, and at most
# once per chat in the time Telegram shows it: each call counts against the bot's limits.
TYPING_AFTER_SECONDS = 0.5
TYPING_EVERY_SECONDS = 5.0
# With more chats than this waiting for their turns the bot is behind for everyone, and
# their "typing…" (one per chat per 5 s) would take a fifth of Telegram's ~30 messages a
# second from the replies themselves: then none is shown.
TYPING_MAX_BUSY_CHATS = 30

# The channel's call that shows "typing…" in a chat; it logs and drops its own failures.
ShowTyping = Callable[[str], Awaitable[None]]


class Typing:
    """Shows "typing…" in a chat whose turn is slow, sparing the bot's API limits: at most
    one call per chat every `every` seconds across its turns, none while the chat has turns
    queued behind this one (answers are coming anyway), and none while more than
    `max_busy` chats have turns under way (the bot is behind for everyone)."""

    def __init__(
        self,
        show: ShowTyping,
        turns: SerialQueues,
        after: float = TYPING_AFTER_SECONDS,
        every: float = TYPING_EVERY_SECONDS,
        max_busy: int = TYPING_MAX_BUSY_CHATS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.show = show
        self.turns = turns
        self.after = after
        self.every = every
        self.max_busy = max_busy
        self._clock = clock
        # When each chat was last shown "typing…", oldest first; older than `every` is
        # forgotten, so this holds only the chats of the last few seconds.
        self._shown: dict[str, float] = {}

    @asynccontextmanager
    async def while_slow(self, chat_id: str) -> AsyncIterator[None]:
        """Around a turn; leaving stops it, before the reply is queued."""
        task = asyncio.create_task(self._keep_typing(chat_id))
        try:
            yield
        finally:
            task.cancel()

    async def _keep_typing(self, chat_id: str) -> None:
        await asyncio.sleep(self.after)
        while True:
            if self.due(chat_id):
                await self.show(chat_id)
            await asyncio.sleep(self.every)

    def due(self, chat_id: str) -> bool:
        """Whether to show "typing…" now; if so, it counts as shown."""
        now = self._clock()
        while self._shown and next(iter(self._shown.values())) <= now - self.every:
            del self._shown[next(iter(self._shown))]
        if chat_id in self._shown or self.turns.waiting(chat_id) or self.turns.busy > self.max_busy:
            return False
        self._shown[chat_id] = now
        return True
