"""The conversation engine: one turn per Incoming, one chat at a time, state kept in storage."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from markupsafe import Markup

from domain.chats import ChatKey, ConversationState
from domain.handoffs import Said
from domain.hours import BusinessHours
from domain.orders import OrderRules
from domain.ownership import CheckLimits
from domain.privacy import mask_emails_in, mask_phone
from faq.service import FaqService
from handlers.i18n import Translate, supported_language, translator
from handlers.messages import Button, Incoming, Purpose, Reply
from storage.base import AlreadyProcessed, ConversationStore, QueuedMessage, Record, Storage
from storage.workers import Claim

logger = logging.getLogger(__name__)


# What most messengers let a bot download (Telegram's cloud Bot API: 20 MB).
DEFAULT_FILE_SIZE_LIMIT = 20 * 1024 * 1024


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StaffDesk:
    """Where and when sales reps answer customers handed over to them."""

    # The staff chat (the Telegram supergroup, with topics for one thread per customer),
    # on its own channel whatever channel customers write on; None: no handoff, customers
    # are given the support e-mail instead.
    chat: ChatKey | None = None
    hours: BusinessHours = field(default_factory=BusinessHours)
    # What customers are told to expect during business hours.
    reply_within_minutes: int = 15
    remind_after_minutes: int = 10
    # User ids (as channels give them) allowed the staff chat's KB commands.
    admin_ids: frozenset[str] = frozenset()
    # When the daily digest goes to the staff chat (the company's time zone); None: never.
    digest_at: time | None = None


@dataclass(frozen=True)
class Services:
    """What flows use besides the conversation: the FAQ, the company's contact details,
    the orders and their rules, and the clock (replaceable in tests)."""

    faq: FaqService
    contacts: Mapping[str, str]
    # What flows read besides the conversation: orders, handoffs.
    store: Storage
    order_rules: OrderRules = field(default_factory=OrderRules)
    zone: tzinfo = UTC
    check_limits: CheckLimits = field(default_factory=CheckLimits)
    staff: StaffDesk = field(default_factory=StaffDesk)
    clock: Callable[[], datetime] = _utc_now
    # The biggest file the bot can fetch from each channel (Telegram's cloud Bot API: 20
    # MB; None: no limit, as with a local Bot API server); a channel not named here has
    # DEFAULT_FILE_SIZE_LIMIT. Bigger videos are asked for as a link.
    file_size_limits: Mapping[str, int | None] = field(default_factory=dict)
    # Channels whose chat id is the customer's phone number (WhatsApp): staff see it
    # masked (`shown_chat_id`), and a rep in the customer's topic asks /phone for it.
    phone_channels: frozenset[str] = frozenset()

    def now(self) -> datetime:
        return self.clock()

    def shown_chat_id(self, key: ChatKey) -> str:
        """The chat's id as staff see it: masked to its last 4 digits where it is the
        customer's phone number."""
        return mask_phone(key.chat_id) if key.channel in self.phone_channels else key.chat_id

    def file_size_limit(self, channel: str) -> int | None:
        """The biggest file the bot can fetch from `channel`; None: any."""
        return self.file_size_limits.get(channel, DEFAULT_FILE_SIZE_LIMIT)

    def today(self) -> date:
        """Today in the company's time zone, which business days and dates shown follow."""
        return self.clock().astimezone(self.zone).date()


@dataclass
class Turn:
    """One incoming event being handled: flows read it and add replies and records."""

    incoming: Incoming
    state: ConversationState
    services: Services
    replies: list[Reply] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    # A short acknowledgement of a button press (a Telegram toast), not kept in the chat.
    notice: str | None = None

    @property
    def _(self) -> Translate:
        return translator(self.state.language)

    @property
    def key(self) -> ChatKey:
        return ChatKey(self.incoming.channel, self.incoming.chat_id)

    @property
    def shown_chat_id(self) -> str:
        """The chat's id as logs and staff see it: a phone number masked."""
        return self.services.shown_chat_id(self.key)

    def say(self, text: Markup, *rows: list[Button] | tuple[Button, ...]) -> None:
        self.replies.append(Reply(text, _rows(rows)))

    def replace(self, text: Markup, *rows: list[Button] | tuple[Button, ...]) -> None:
        """Put this text and buttons in place of the message whose button was pressed."""
        if self.incoming.message_id is None:
            self.say(text, *rows)
        else:
            self.replies.append(Reply(text, _rows(rows), replaces=self.incoming.message_id))


def _rows(rows: tuple[list[Button] | tuple[Button, ...], ...]) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(row) for row in rows if row)


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
        # While a chat is in a flow, its messages (not commands or buttons) go to the flow.
        self.flow_steps: dict[str, Handler] = {}
        # Everything from the staff chat goes here.
        self.staff: Handler | None = None
        # Asked first about every customer event; one that returns True has handled it
        # (a chat handed to a sales rep is relayed, not answered).
        self.interceptors: list[Callable[[Turn], Awaitable[bool]]] = []

    async def dispatch(self, turn: Turn) -> None:
        incoming = turn.incoming
        if incoming.staff:
            if self.staff is not None:
                await self.staff(turn, [])
            return
        for intercept in self.interceptors:
            if await intercept(turn):
                return
        handler: Handler | None
        args: list[str] = []
        if incoming.payload is not None:
            namespace, *args = incoming.payload.split(":")
            handler = self.payloads.get(namespace, self.stale_payload)
        elif (command := incoming.command) is not None:
            args = (incoming.text or "").split(maxsplit=1)[1:]
            handler = self.commands.get(command, self.unknown_command)
        elif turn.state.flow in self.flow_steps:
            handler = self.flow_steps[turn.state.flow]
        elif incoming.media:
            handler = self.media
        elif incoming.text and incoming.text.strip():
            handler = self.text
        else:
            handler = None
        if handler is not None:
            await handler(turn, args)


@dataclass(frozen=True)
class Outcome:
    """What a turn produced: replies already queued in the outbox, and a button's notice."""

    queued: list[QueuedMessage] = field(default_factory=list)
    notice: str | None = None
    duplicate: bool = False

    @property
    def replies(self) -> list[Reply]:
        return [Reply.from_json(message.body, message.key.channel) for message in self.queued]


class Engine:
    """Turns each Incoming into replies; state changes, replies and the processed mark
    commit together, so a crash before the commit replays the update and one after it
    leaves the replies in the outbox for delivery."""

    def __init__(self, store: ConversationStore, services: Services, router: Router) -> None:
        self.store = store
        self.services = services
        self.router = router

    async def handle(self, incoming: Incoming, claim: Claim | None = None) -> Outcome:
        """Run the turn; with `claim`, its replies are claimed as they are queued (see
        `ConversationStore.save`)."""
        key = ChatKey(incoming.channel, incoming.chat_id)
        # The database's lock: a chat's turns run one at a time across every process.
        async with self.store.chat_lock(key):
            # Checked first to spare the turn; `save` refuses one another process saved since.
            if incoming.update_id and await self.store.is_processed(key, incoming.update_id):
                return _duplicate(key, incoming, self.services)
            turn = await self._run_turn(key, incoming)
            try:
                queued = await self.store.save(
                    key,
                    turn.state,
                    incoming.update_id,
                    [*turn.records, *_transcript(turn)],
                    [_queued(turn, reply) for reply in turn.replies],
                    also_processed=incoming.merged_update_ids,
                    inbound_at=_inbound_at(turn),
                    claim=claim,
                )
            except AlreadyProcessed:
                return _duplicate(key, incoming, self.services)
        return Outcome(queued, turn.notice)

    async def _run_turn(self, key: ChatKey, incoming: Incoming) -> Turn:
        state = await self.store.load(key)
        if incoming.language and not state.language_chosen:
            state.language = supported_language(incoming.language)
        turn = Turn(incoming, state, self.services)
        try:
            await self.router.dispatch(turn)
            _refuse_plain_text(turn.replies)
        except Exception:
            # A bug in a flow must not lose the update or wedge the chat: keep the state as
            # it was before the turn, apologise, and mark the update processed.
            logger.exception(
                "engine.turn_failed channel=%s chat=%s update=%s",
                key.channel,
                self.services.shown_chat_id(key),
                incoming.update_id,
            )
            turn = Turn(incoming, await self.store.load(key), self.services)
            turn.say(
                turn._("Sorry, something went wrong on our side. Please try again, or send /menu.")
            )
        return turn


def _refuse_plain_text(replies: list[Reply]) -> None:
    """mypy keeps plain strings out of replies, except through values typed Any (the
    conversation's data); the outbox would take such a string for markup."""
    for reply in replies:
        if not isinstance(reply.text, Markup):
            raise TypeError(f"reply text is {type(reply.text).__name__}, not Markup")


def _duplicate(key: ChatKey, incoming: Incoming, services: Services) -> Outcome:
    logger.info(
        "engine.duplicate_update channel=%s chat=%s update=%s",
        key.channel,
        services.shown_chat_id(key),
        incoming.update_id,
    )
    return Outcome(duplicate=True)


def _destination(key: ChatKey, reply: Reply) -> ChatKey:
    """Where a reply goes: the turn's chat, or the one it names (maybe on another channel,
    whose delivery then sends it)."""
    return key if reply.to is None else reply.to


def _queued(turn: Turn, reply: Reply) -> tuple[ChatKey, dict[str, Any]]:
    """A reply as the outbox keeps it, for the chat it goes to. What a staff turn sends a
    customer is the staff's (a rep's answer, a ticket's decision): WhatsApp may send it
    after its 24-hour window only as the staff's template."""
    destination = _destination(turn.key, reply)
    if turn.incoming.staff and destination != turn.key and reply.purpose is Purpose.ANSWER:
        reply = replace(reply, purpose=Purpose.STAFF_REPLY)
    return destination, reply.to_json()


def _inbound_at(turn: Turn) -> datetime | None:
    """When the customer wrote, on the messenger's clock if it says (what opens WhatsApp's
    24-hour window); None for the staff's and the application's own events."""
    incoming = turn.incoming
    if incoming.staff or incoming.system is not None:
        return None
    return incoming.sent_at or turn.services.now()


def _transcript(turn: Turn) -> list[Record]:
    """What the customer wrote and the bot answered in this turn, e-mails masked: staff see
    the last lines when the conversation is handed to them (storage caps their length)."""
    if turn.incoming.staff:
        return []
    now = turn.services.now()
    lines: list[Record] = []
    if turn.incoming.text:
        lines.append(Said(True, mask_emails_in(turn.incoming.text), now))
    for reply in turn.replies:
        if reply.to in (None, turn.key) and reply.text:
            # As plain text, like the customer's lines: the context card escapes both.
            lines.append(Said(False, reply.text.striptags(), now))
    return lines
