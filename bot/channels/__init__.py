"""The messengers `minerdesk run` can serve, one entry each in `CHANNELS`.

A channel is one adapter module (`bot/channels/<name>.py`) with an `open_channel` that builds
its `Channel` (see `bot.runtime`) and closes it after; this table only says when the channel
is configured and where its adapter is, so `run`, `--channel` and the supervisor need no
change for a new one. Adapters are imported only when their channel runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.app import App
    from bot.media import OpenFile
    from bot.runtime import Channel
    from bot.settings import Settings


class OpenChannel(Protocol):
    """An adapter module's `open_channel`: its channel for the block, closed after it;
    `open_file` fetches another channel's file for its sender to upload."""

    def __call__(
        self, app: App, open_file: OpenFile, *, webhook: bool
    ) -> AbstractAsyncContextManager[Channel]: ...


@dataclass(frozen=True)
class ChannelKind:
    name: str
    # Whether the settings give what the channel needs to serve (its token, its number).
    configured: Callable[[Settings], bool]
    # What is missing, in one line naming the setting, when it is asked for but not set.
    missing: str
    module: str

    def opener(self) -> OpenChannel:
        """The adapter's `open_channel` (imported now: aiogram and aiohttp are heavy)."""
        opener: OpenChannel = importlib.import_module(self.module).open_channel
        return opener


CHANNELS: dict[str, ChannelKind] = {
    kind.name: kind
    for kind in (
        ChannelKind(
            "telegram",
            lambda settings: settings.telegram.token is not None,
            "telegram.token: not set; export MINERDESK_TELEGRAM__TOKEN (from @BotFather), "
            "or try the bot locally with `minerdesk chat`",
            "bot.channels.telegram",
        ),
        ChannelKind(
            "whatsapp",
            lambda settings: settings.whatsapp.enabled,
            "whatsapp: not configured (set whatsapp.phone_number_id and its secrets)",
            "bot.channels.whatsapp",
        ),
    )
}
