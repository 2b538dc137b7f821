"""The conversation engine: one turn per Incoming, one chat at a time, state kept in storage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from faq.service import FaqService
from handlers.i18n import Translate, supported_language, translator
from handlers.messages import Button, Incoming, Reply
from storage.base import ChatKey, ConversationState, ConversationStore, Record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """What flows use besides the conversation: the FAQ and the company's contact details."""

    faq: FaqService
    contacts: Mapping[str, str]


@dataclass
class Turn:
    """One incoming event being handled: flows read it and add replies and records."""

    incoming: Incoming
    state: ConversationState
    services: Services
    replies: list[Reply] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def _(self) -> Translate:
        return translator(self.state.language)

    def say(self, text: str, *rows: list[Button] | tuple[Button, ...]) -> None:
        self.replies.append(Reply(text, tuple(tuple(row) for row in rows if row)))


Handler = Callable[[Turn, list[str]], Awaitable[None]]


class Router:
    """Maps commands and button payloads (`namespace:action:args`) to handlers."""

    def __init__(self) -> None:
        self.commands: dict[str, Handler] = {}
        self.payloads: dict[str, Handler] = {}
        self.text: Handler | None = None
        self.media: Handler | None = None
        self.unknown_command: Handler | None = None
        self.stale_payload: Handler | None = None

    async def dispatch(self, turn: Turn) -> None:
        incoming = turn.incoming
        if incoming.payload is not None:
            namespace, *args = incoming.payload.split(":")
            handler = self.payloads.get(namespace, self.stale_payload)
            if handler is None:
                return
            await handler(turn, args)
        elif (command := incoming.command) is not None:
            args = (incoming.text or "").split(maxsplit=1)[1:]
            handler = self.commands.get(command, self.unknown_command)
            if handler is not None:
                await handler(turn, args)
        elif incoming.text and incoming.text.strip() and self.text is not None:
            await self.text(turn, [])
        elif self.media is not None:
            await self.media(turn, [])


class ChatLocks:
    """One lock per chat while it is in use: a chat's updates run in order, chats in parallel."""

    def __init__(self) -> None:
        self._locks: dict[ChatKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Engine:
    """Turns each Incoming into replies; state changes and the processed mark commit together."""

    def __init__(self, store: ConversationStore, services: Services, router: Router) -> None:
        self.store = store
        self.services = services
        self.router = router
        self._locks = ChatLocks()

    async def handle(self, incoming: Incoming) -> list[Reply]:
        key = ChatKey(incoming.channel, incoming.chat_id)
        async with self._locks.hold(key):
            if incoming.update_id and await self.store.is_processed(key, incoming.update_id):
                logger.info(
                    "engine.duplicate_update channel=%s chat=%s update=%s",
                    key.channel,
                    key.chat_id,
                    incoming.update_id,
                )
                return []
            state = await self.store.load(key)
            if incoming.language and not state.data.get("language_chosen"):
                state.language = supported_language(incoming.language)
            turn = Turn(incoming, state, self.services)
            await self.router.dispatch(turn)
            await self.store.save(key, turn.state, incoming.update_id, turn.records)
        return turn.replies
