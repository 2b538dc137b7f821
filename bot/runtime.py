"""The channel-neutral runtime: every channel's inbound items, turns and deliveries.

A channel adapter (`Channel`) only receives raw items, reads a stored one into an `Incoming`
(or sets it aside), renders replies (its `Sender`), fetches files (its `Fetcher`) and shows
"typing…". The runtime does the rest, the same for every channel: each item is stored in the
inbox before the messenger is told it arrived, each chat's items are handled one at a time
in order (albums gathered, inbound paced), and a turn's replies go to the delivery of the
channel each names.

The same code runs one worker or several on one database (`bot/workers.py`): a worker
handles the items and sends the replies it claimed (those it stored or queued itself, and
every few seconds those nobody holds: a poller's, a dead worker's, an earlier run's). One
worker at a time leads (the staff timers, order notices, KB reload reports, copies of
ticket files, whatever the number of channels), and one polls a channel that allows only
one receiver (Telegram's long polling).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.albums import Album, Albums
from bot.app import App
from bot.delivery import Delivery, Gate, Sender
from bot.media import Fetcher, MediaArchive
from bot.notifier import OrderNotifier
from bot.presence import Typing
from bot.ratelimit import ChatPacer, RateLimiter, RateLimits
from bot.serial import SerialQueues
from bot.workers import LEASE_SECONDS, RENEW_SECONDS, Role, Worker
from domain.chats import ChatKey
from handlers.faq_admin import reloaded_event
from handlers.handoff import undelivered_event
from handlers.messages import Incoming
from handlers.staff import due_checks, system_event
from storage.base import InboxUpdate, QueuedMessage
from storage.workers import Claim

logger = logging.getLogger(__name__)

# How often the staff flows are asked whether a reminder or the daily digest is due.
STAFF_CHECK_SECONDS = 30.0
# A wait this long is worth a log line; shorter ones are the pacer's own bookkeeping.
PACED_LOG_SECONDS = 0.1


class CannotServe(Exception):
    """A messenger will not serve this process; the message says why, in one line."""


@dataclass(frozen=True)
class Aside:
    """An item that is no turn for the engine: an update the bot does not answer, or one
    the channel acts on itself (`event`: Telegram leaves a group it was added to, WhatsApp
    keeps a delivery status). Settled as it arrives, before the channel acknowledges it; only
    if that fails is it kept in the inbox, and handled from there (in its chat's order when
    it names a chat)."""

    reason: str
    chat_id: str | None = None
    event: object = None


@dataclass(frozen=True)
class Undelivered:
    """A reply the messenger reported lost after it had taken it (a WhatsApp `failed`
    status): the staff hear of it as of a reply delivery gave up on."""

    message: QueuedMessage
    reason: str


@dataclass(frozen=True)
class Pace:
    """A channel's limits: replies a second overall, what one chat may send (a burst, then
    so many a minute), and the grace on stopping for turns and deliveries under way."""

    messages_per_second: float
    inbound_per_minute: float
    inbound_burst: int
    shutdown_grace_seconds: float


# Stores raw items (bodies as the messenger sent them) in the inbox and queues them; a
# channel calls it before acknowledging them, and it raises if they were not stored.
Store = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]


class Channel(Protocol):
    """A messenger's adapter: what the runtime needs of it, and nothing else."""

    @property
    def name(self) -> str:
        """The channel of its `ChatKey`s and inbox items: "telegram", "whatsapp"."""
        ...

    @property
    def sender(self) -> Sender: ...

    @property
    def fetcher(self) -> Fetcher: ...

    @property
    def pace(self) -> Pace: ...

    @property
    def gate(self) -> Gate | None:
        """What a reply must pass before it goes out, and what is kept of each message
        sent (WhatsApp's 24-hour window and statuses); None: replies go as rendered."""
        ...

    @property
    def receives_alone(self) -> bool:
        """Whether one process at a time may receive (Telegram's long polling): several
        workers take turns by a lease."""
        ...

    async def start(self) -> None:
        """Start-up checks and set-up before anything is received (Telegram: getMe, the
        command menu); raise CannotServe when the messenger will not serve."""
        ...

    async def receive(self, store: Store) -> None:
        """Receive until cancelled (long polling or a webhook), handing raw items to `store`
        before acknowledging them; raise CannotServe when the messenger stops serving."""
        ...

    def inbox_id(self, body: dict[str, Any]) -> str:
        """The item's id in the inbox: the same for a re-delivery of it."""
        ...

    def read(self, stored: InboxUpdate) -> Incoming | Aside:
        """What a stored item means; never raises."""
        ...

    async def set_aside(self, stored: InboxUpdate, aside: Aside) -> Undelivered | None:
        """Act on an item that is no turn (log it, answer its button, leave its group);
        returns the reply it reports undelivered (a failed status), if any."""
        ...

    async def answered(self, stored: InboxUpdate, incoming: Incoming, notice: str | None) -> None:
        """The turn of `incoming` (read from `stored`) is over (Telegram: answer its button
        press with `notice`; WhatsApp: the blue ticks)."""
        ...

    async def show_typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat; failures are logged and dropped."""
        ...


class _Lane:
    """One running channel: its delivery, its chats' queues, albums and pace."""

    def __init__(self, runtime: Runtime, channel: Channel) -> None:
        app = runtime.app
        self.channel = channel
        self.name = channel.name
        pace = channel.pace
        self.pace = pace
        limits = RateLimits(
            global_rate=pace.messages_per_second, global_burst=pace.messages_per_second
        )
        self.delivery = Delivery(
            app.storage,
            self.name,
            channel.sender,
            RateLimiter(limits),
            on_failed=runtime.report_undelivered,
            shown=app.services.shown_chat_id,
            gate=channel.gate,
            worker=runtime.worker,
        )
        self.notifier: OrderNotifier = app.order_notifier(self.name, self.delivery)
        self.archive: MediaArchive | None = app.media_archive(self.name, channel.fetcher)
        self.inbound = ChatPacer(pace.inbound_per_minute / 60.0, pace.inbound_burst)
        self.turns = SerialQueues(f"{self.name}.updates")
        self.typing = Typing(channel.show_typing, self.turns)
        self.albums = Albums()
        self.queued: set[str] = set()


class Runtime:
    """Runs channels around one `App` until `stop()` (on SIGTERM), then finishes the work
    under way first; `run()` raises CannotServe when a channel cannot serve."""

    def __init__(self, app: App, channels: Sequence[Channel], worker: Worker | None = None) -> None:
        if not channels:
            raise ValueError("a runtime needs a channel")
        self.app = app
        self.worker = worker if worker is not None else Worker.new()
        self.staff_chat = app.services.staff.chat
        self._lanes = {channel.name: _Lane(self, channel) for channel in channels}
        # A turn's replies to the channels run here are this worker's to send from the start.
        self._claim = Claim(self.worker.id, LEASE_SECONDS, frozenset(self._lanes))
        self._staff_checks = due_checks(app.services.staff)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        lanes = list(self._lanes.values())
        for lane in lanes:
            await lane.channel.start()
        try:
            for lane in lanes:
                await lane.delivery.start()
                await self._claim_inbox(lane)
            await self._serve(lanes)
        finally:
            await self._release_claims()

    async def _serve(self, lanes: list[_Lane]) -> None:
        leader = Role(self.app.storage, "leader", self.worker, self._lead, self._begin_leading)
        leading = asyncio.create_task(leader.run(), name="runtime.leader")
        deciding = asyncio.create_task(leader.decided.wait())
        await asyncio.wait({leading, deciding}, return_when=asyncio.FIRST_COMPLETED)
        deciding.cancel()
        receiving = [
            asyncio.create_task(self._receive(lane), name=f"{lane.name}.receive") for lane in lanes
        ]
        claiming = asyncio.create_task(self._claim_every_while())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({*receiving, leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (*receiving, leading, claiming, stopping):
            task.cancel()
        # The leader's copy under way deletes its partial file on the way out.
        results = await asyncio.gather(*receiving, leading, claiming, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
        await self._finish()

    async def _receive(self, lane: _Lane) -> None:
        """Receive on the lane's channel; where one receiver is allowed, while this worker
        holds its lease."""
        store = self._store(lane)
        if not lane.channel.receives_alone:
            await lane.channel.receive(store)
            return

        async def poll() -> None:
            await lane.channel.receive(store)

        async def begin() -> None:
            logger.info("runtime.poller channel=%s worker=%s", lane.name, self.worker.id)

        await Role(self.app.storage, f"receiver:{lane.name}", self.worker, poll, begin).run()

    async def _begin_leading(self) -> None:
        logger.info("runtime.leader worker=%s", self.worker.id)
        # What fell due while the bot was down goes out before anything new comes in.
        await self.check_staff()

    async def _lead(self) -> None:
        """The timers one worker runs for all (begun with a staff check, see `_serve`): an
        edit's KB report that came before this worker led was posted by the leader then."""
        self.app.kb_reported.clear()
        lanes = self._lanes.values()
        timers = [
            *(lane.archive.run() for lane in lanes if lane.archive is not None),
            *(lane.notifier.run() for lane in lanes),
            self._check_staff_every_while(),
            self._report_kb_reloads(),
        ]
        tasks = [asyncio.create_task(timer) for timer in timers]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_every_while(self) -> None:
        """Keep this worker's claims, and take the items and replies nobody holds."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.app.storage.renew_claims(self.worker.id, LEASE_SECONDS)
                for lane in self._lanes.values():
                    await self._claim_inbox(lane)
                    await lane.delivery.claim()
            except Exception:
                # The database is away: try again next round; nothing is lost meanwhile.
                logger.exception("runtime.claim_failed worker=%s", self.worker.id)

    async def _claim_inbox(self, lane: _Lane) -> None:
        claimed = await self.app.storage.claim_inbox(lane.name, self.worker.id, LEASE_SECONDS)
        for stored in claimed:
            self._submit(lane, stored)

    async def _release_claims(self) -> None:
        """Stopping: what this worker did not finish is for the others to take now."""
        try:
            await self.app.storage.release_claims(self.worker.id)
        except Exception:
            logger.exception("runtime.release_failed worker=%s", self.worker.id)

    async def _finish(self) -> None:
        """Let each channel finish its turns and deliveries within its grace, together."""
        await asyncio.gather(*(self._finish_lane(lane) for lane in self._lanes.values()))

    async def _finish_lane(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        grace = lane.pace.shutdown_grace_seconds
        deadline = loop.time() + grace
        try:
            await asyncio.wait_for(lane.turns.join(), grace)
        except TimeoutError:
            logger.warning("%s.stopped_with_backlog chats=%d", lane.name, lane.turns.busy)
        await lane.turns.cancel()
        await lane.delivery.stop(max(0.0, deadline - loop.time()))
        logger.info("%s.stopped", lane.name)

    def _store(self, lane: _Lane) -> Store:
        async def store(bodies: Sequence[dict[str, Any]]) -> None:
            kept: dict[str, tuple[InboxUpdate, Incoming | Aside]] = {}
            for stored, event in (self._read_new(lane, body) for body in bodies):
                if isinstance(event, Incoming) or not await self._settled(lane, stored, event):
                    kept[stored.update_id] = (stored, event)
            if not kept:
                return
            # Handled here, unless their chat is another worker's: it takes them, in order.
            claimed = await self.app.storage.receive_claimed(
                lane.name, [stored for stored, _ in kept.values()], self.worker.id, LEASE_SECONDS
            )
            for stored in claimed:
                self._submit(lane, stored, kept[stored.update_id][1])

        return store

    @staticmethod
    def _read_new(lane: _Lane, body: dict[str, Any]) -> tuple[InboxUpdate, Incoming | Aside]:
        """The raw item as the inbox keeps it, with its chat so workers keep the chat's
        order, and what it says (read once: the turn uses it too)."""
        update_id = lane.channel.inbox_id(body)
        event = lane.channel.read(InboxUpdate(lane.name, update_id, body))
        return InboxUpdate(lane.name, update_id, body, event.chat_id), event

    def _submit(
        self, lane: _Lane, stored: InboxUpdate, event: Incoming | Aside | None = None
    ) -> None:
        if stored.update_id in lane.queued:
            return
        lane.queued.add(stored.update_id)
        if event is None:
            event = lane.channel.read(stored)
        # Items of one chat are handled in order; those of no chat need no order.
        chat = event.chat_id
        if isinstance(event, Incoming) and event.media and event.media[0].media_group_id:
            album = lane.albums.add(event)
            if album is not None:
                lane.turns.submit(chat, lambda: self._process_album(lane, album, stored))
            return
        lane.turns.submit(chat, lambda: self._process(lane, stored, event))

    async def _process_album(self, lane: _Lane, album: Album, first: InboxUpdate) -> None:
        try:
            await self._converse(lane, await lane.albums.complete(album), first)
        finally:
            for update_id in album.update_ids:
                lane.queued.discard(update_id)

    async def _settled(self, lane: _Lane, stored: InboxUpdate, aside: Aside) -> bool:
        """Settle an aside (a delivery status, an update to ignore) as it arrives: it needs
        no turn, so no order and no inbox row, where a WhatsApp reply's three statuses
        would cost three writes each. Should that fail, it goes to the inbox like a turn."""
        try:
            await self._set_aside(lane, stored, aside)
        except Exception:
            logger.exception("%s.aside_failed item=%s", lane.name, stored.update_id)
            return False
        return True

    async def _set_aside(self, lane: _Lane, stored: InboxUpdate, aside: Aside) -> None:
        undelivered = await lane.channel.set_aside(stored, aside)
        if undelivered is not None:
            await self.report_undelivered(undelivered.message, undelivered.reason)

    async def _process(self, lane: _Lane, stored: InboxUpdate, event: Incoming | Aside) -> None:
        try:
            if isinstance(event, Incoming):
                await self._converse(lane, event, stored)
            else:
                await self._set_aside(lane, stored, event)
                await self.app.storage.discard(lane.name, stored.update_id)
        finally:
            lane.queued.discard(stored.update_id)

    async def _converse(self, lane: _Lane, incoming: Incoming, stored: InboxUpdate) -> None:
        if not incoming.staff:
            # Over its pace a chat's turns wait here; its items stay in the inbox till then.
            waited = await lane.inbound.wait(incoming.chat_id)
            if waited >= PACED_LOG_SECONDS:
                shown = self.app.services.shown_chat_id(ChatKey(lane.name, incoming.chat_id))
                logger.info("%s.inbound_paced chat=%s waited=%.1fs", lane.name, shown, waited)
        async with lane.typing.while_slow(incoming.chat_id):
            outcome = await self.app.engine.handle(incoming, self._claim)
        if outcome.duplicate:
            # Re-delivered after it was handled (a webhook retried): stored again, so let go.
            for update_id in {stored.update_id, *incoming.update_ids}:
                await self.app.storage.discard(lane.name, update_id)
        await self.deliver(outcome.queued)
        if incoming.media and lane.archive is not None:
            # The turn may have added files to a ticket: copy them now, not at the next poll.
            lane.archive.wake()
        await lane.channel.answered(stored, incoming, outcome.notice)

    async def deliver(self, queued: Sequence[QueuedMessage]) -> None:
        """Hand each reply to the delivery of the channel it goes to; a reply to a channel
        not running here (a rep's answer to a WhatsApp customer) waits in the outbox."""
        by_lane: dict[str, list[QueuedMessage]] = {}
        for message in queued:
            if message.key.channel in self._lanes:
                by_lane.setdefault(message.key.channel, []).append(message)
            else:
                logger.info(
                    "runtime.queued_for_channel channel=%s message=%d",
                    message.key.channel,
                    message.id,
                )
        for channel, messages in by_lane.items():
            await self._lanes[channel].delivery.take(messages)

    async def _check_staff_every_while(self) -> None:
        while True:
            await asyncio.sleep(STAFF_CHECK_SECONDS)
            await self.check_staff()

    async def check_staff(self) -> None:
        """Ask the staff flows whether a customer waits too long, or the digest is due."""
        for name in self._staff_checks:
            await self.staff_system_event(name)

    async def _report_kb_reloads(self) -> None:
        """Post the KB watcher's reports in the staff chat: an edit served, or rejected
        with its problems. Without a staff chat they are only logged."""
        if self.staff_chat is None:
            return
        while True:
            await self.app.kb_reported.wait()
            self.app.kb_reported.clear()
            report = self.app.kb_report
            assert report is not None, "kb_reported is set with a report"
            await self.staff_system_event(reloaded_event(report))

    async def staff_system_event(self, name: str) -> None:
        """Run a system event through the staff chat's flows, like a rep's message, so what
        it posts goes through the outbox."""
        assert self.staff_chat is not None
        event = system_event(self.staff_chat, name)
        try:
            outcome = await self.app.engine.handle(event, self._claim)
        except Exception:
            logger.exception("runtime.staff_event_failed event=%s", name)
            return
        await self.deliver(outcome.queued)

    async def report_undelivered(self, message: QueuedMessage, reason: str) -> None:
        """Staff flows hear of every reply a customer never got (they tell the rep if one
        is talking with that customer); a failed staff post is only logged."""
        if self.staff_chat is None or message.key == self.staff_chat:
            return
        await self.staff_system_event(undelivered_event(message.key, reason))
