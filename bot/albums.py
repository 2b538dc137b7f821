"""Gathering an album's items, which arrive one inbound update each, into one message.

Telegram sends an album as one update per item with no end marker; WhatsApp's reader gives
the files a customer sends one after another the chat's media group id. Either way the
runtime holds them here until the album is complete, then handles them as one turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from handlers.messages import Incoming

# The items of an album arrive within a fraction of a second of each other, and there are
# at most 10 (Telegram's album size); more updates under one media_group_id, or later ones,
# are the next message rather than an album buffered without end.
ALBUM_QUIET_SECONDS = 1.0
ALBUM_MAX_SECONDS = 10.0
ALBUM_MAX_ITEMS = 10


class Albums:
    """The items are gathered until none has come for `quiet` seconds, then handled as one
    message. An album is closed sooner at `max_items`, or `max_seconds` after its first
    item, so that a sender cannot keep one open; later items of the same group start
    another."""

    def __init__(
        self,
        quiet: float = ALBUM_QUIET_SECONDS,
        max_items: int = ALBUM_MAX_ITEMS,
        max_seconds: float = ALBUM_MAX_SECONDS,
    ) -> None:
        self.quiet = quiet
        self.max_items = max_items
        self.max_seconds = max_seconds
        self._open: dict[tuple[str, str], Album] = {}

    def add(self, item: Incoming) -> Album | None:
        """Add an album's item; returns the album it opened, None if it joined an open one."""
        group = item.media[0].media_group_id
        assert group is not None, "only album items have a media group"
        key = (item.chat_id, group)
        album = self._open.get(key)
        if album is None:
            deadline = asyncio.get_running_loop().time() + self.max_seconds
            album = self._open[key] = Album(key, item, deadline)
            return album
        album.add(item)
        if len(album.items) >= self.max_items:
            self._close(album)
        return None

    async def complete(self, album: Album) -> Incoming:
        """The album as one message, once it is closed or quiet."""
        loop = asyncio.get_running_loop()
        while self._open.get(album.key) is album:
            wait = min(self.quiet, album.deadline - loop.time())
            if wait <= 0:
                break
            album.arrived.clear()
            try:
                await asyncio.wait_for(album.arrived.wait(), wait)
            except TimeoutError:
                break
        self._close(album)
        return album.merged()

    def _close(self, album: Album) -> None:
        if self._open.get(album.key) is album:
            del self._open[album.key]
        album.arrived.set()


class Album:
    """The items of one album received so far."""

    def __init__(self, key: tuple[str, str], first: Incoming, deadline: float) -> None:
        self.key = key
        self.items = [first]
        self.deadline = deadline
        self.arrived = asyncio.Event()

    def add(self, item: Incoming) -> None:
        self.items.append(item)
        self.arrived.set()

    @property
    def update_ids(self) -> list[str]:
        return [item.update_id for item in self.items if item.update_id]

    def merged(self) -> Incoming:
        items = sorted(self.items, key=lambda item: int(item.message_id or 0))
        first = items[0]
        caption = next((item.text for item in items if item.text), None)
        return replace(
            first,
            text=caption,
            media=tuple(media for item in items for media in item.media),
            merged_update_ids=tuple(i.update_id for i in items[1:] if i.update_id),
        )
