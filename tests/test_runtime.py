"""The channel-neutral runtime with fake channels and a scripted engine: no messenger, no model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

import bot.runtime
import bot.workers
from bot.app import App
from bot.delivery import Undeliverable
from bot.runtime import Aside, CannotServe, Pace, Runtime, Store
from bot.settings import Settings
from domain.chats import ChatKey, ConversationState
from handlers import digest, handoff
from handlers.engine import Outcome, StaffDesk
from handlers.messages import Incoming, Media, MediaKind
from storage.base import InboxUpdate, QueuedMessage
from storage.sqlite import SqliteStorage
from storage.workers import Claim

STAFF = ChatKey("alpha", "-100")
PACE = Pace(
    messages_per_second=100.0,
    inbound_per_minute=6000.0,
    inbound_burst=100,
    shutdown_grace_seconds=1.0,
)


class FakeSender:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, str]] = []

    def parts(self, message: QueuedMessage) -> list[str]:
        return [str(message.body["text"])]

    async def send(self, key: ChatKey, part: Any) -> None:
        if self.refuse:
            raise Undeliverable("blocked")
        self.sent.append((key.chat_id, part))

    def is_group(self, chat_id: str) -> bool:
        return False


class FakeFetcher:
    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        return False


class FakeChannel:
    """A channel whose raw items are `{"id", "chat", "text"}` (or `"ignore"`), handed in
    through `store` once the runtime receives."""

    def __init__(self, name: str, refuse: bool = False, fail: Exception | None = None) -> None:
        self.name = name
        self.sender = FakeSender(refuse)
        self.fetcher = FakeFetcher()
        self.pace = PACE
        self.gate = None
        self.receives_alone = False
        self.fail = fail
        self.store: Store | None = None
        self.receiving = asyncio.Event()
        self.set_aside_ids: list[str] = []
        # How many asides to fail on (the database away) before settling them.
        self.aside_failures = 0
        self.answered_ids: list[tuple[str, str | None]] = []
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    async def receive(self, store: Store) -> None:
        self.store = store
        self.receiving.set()
        if self.fail is not None:
            raise self.fail
        await asyncio.Event().wait()

    def inbox_id(self, body: dict[str, Any]) -> str:
        return str(body["id"])

    def read(self, stored: InboxUpdate) -> Incoming | Aside:
        body = stored.body
        if body.get("ignore"):
            return Aside("ignored")
        group = body.get("album")
        media = (Media(MediaKind.PHOTO, f"p{body['id']}", media_group_id=group),) if group else ()
        return Incoming(
            self.name,
            str(body["chat"]),
            str(body["chat"]),
            text=body.get("text"),
            media=media,
            update_id=stored.update_id,
            message_id=stored.update_id,
        )

    async def set_aside(self, stored: InboxUpdate, aside: Aside) -> None:
        if self.aside_failures:
            self.aside_failures -= 1
            raise ConnectionError("the database is away")
        self.set_aside_ids.append(stored.update_id)

    async def answered(self, stored: InboxUpdate, incoming: Incoming, notice: str | None) -> None:
        self.answered_ids.append((stored.update_id, notice))

    async def show_typing(self, chat_id: str) -> None:
        pass


class ScriptedEngine:
    """Records every turn; a customer's text is answered with a reply to `to` (a
    "channel:chat" in the text, else the customer's own chat)."""

    def __init__(self, storage: SqliteStorage, desk: StaffDesk) -> None:
        self.storage = storage
        self.services = type(
            "Services", (), {"staff": desk, "shown_chat_id": staticmethod(lambda key: key.chat_id)}
        )()
        self.turns: list[Incoming] = []

    async def handle(self, incoming: Incoming, claim: Claim | None = None) -> Outcome:
        if incoming.system is not None:
            self.turns.append(incoming)
            return Outcome()
        key = ChatKey(incoming.channel, incoming.chat_id)
        if incoming.update_id and await self.storage.is_processed(key, incoming.update_id):
            return Outcome(duplicate=True)
        self.turns.append(incoming)
        text = incoming.text or ""
        to = ChatKey(*text.split(":", 1)) if ":" in text else key
        queued = await self.storage.save(
            key,
            ConversationState(),
            incoming.update_id,
            replies=[(to, {"text": f"re {text}"})],
            also_processed=incoming.merged_update_ids,
            claim=claim,
        )
        return Outcome(queued=queued, notice="ok")

    def system_events(self) -> list[str]:
        return [turn.system for turn in self.turns if turn.system is not None]


def scripted_app(storage: SqliteStorage) -> App:
    desk = StaffDesk(chat=STAFF, digest_at=time(9, 0))
    engine = ScriptedEngine(storage, desk)
    return App(Settings(), storage, faq=None, engine=engine)  # type: ignore[arg-type]


@pytest.fixture
def app(storage: SqliteStorage) -> App:
    return scripted_app(storage)


def engine_of(app: App) -> ScriptedEngine:
    engine = app.engine
    assert isinstance(engine, ScriptedEngine)
    return engine


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def running(runtime: Runtime, *channels: FakeChannel) -> asyncio.Task[None]:
    task = asyncio.create_task(runtime.run())
    for channel in channels:
        await asyncio.wait_for(channel.receiving.wait(), 5)
    return task


async def test_the_staff_timers_run_once_however_many_channels(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.runtime, "STAFF_CHECK_SECONDS", 0.05)
    alpha, beta = FakeChannel("alpha"), FakeChannel("beta")
    runtime = Runtime(app, [alpha, beta])
    task = await running(runtime, alpha, beta)
    engine = engine_of(app)
    # At start, then every STAFF_CHECK_SECONDS: each check once per round, not per channel.
    await until(lambda: len(engine.system_events()) >= 6)
    runtime.stop()
    await task
    events = engine.system_events()
    rounds = len(events) // 2
    assert events[: rounds * 2] == [handoff.REMIND_EVENT, digest.DIGEST_EVENT] * rounds
    assert all(turn.channel == STAFF.channel for turn in engine.turns)
    assert (alpha.started, beta.started) == (1, 1)


async def test_each_reply_goes_to_its_channels_delivery_and_others_wait_in_the_outbox(
    app: App, storage: SqliteStorage
) -> None:
    alpha, beta = FakeChannel("alpha"), FakeChannel("beta")
    runtime = Runtime(app, [alpha, beta])
    task = await running(runtime, alpha, beta)
    assert alpha.store is not None
    await alpha.store([{"id": 1, "chat": 7, "text": "beta:8"}, {"id": 2, "chat": 7, "text": "hi"}])
    await alpha.store([{"id": 3, "chat": 7, "text": "gamma:9"}])
    await until(lambda: len(alpha.sender.sent) == 1 and len(beta.sender.sent) == 1)
    await until(lambda: len(alpha.answered_ids) == 3)
    runtime.stop()
    await task
    assert beta.sender.sent == [("8", "re beta:8")]
    assert alpha.sender.sent == [("7", "re hi")]
    assert alpha.answered_ids == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    # No channel "gamma" runs here: its reply waits for it.
    assert [m.key for m in await storage.outbox("gamma")] == [ChatKey("gamma", "9")]


async def test_the_inbox_is_replayed_at_start_once_and_ignored_items_leave_it(
    app: App, storage: SqliteStorage
) -> None:
    await storage.receive(
        [
            InboxUpdate("alpha", "1", {"id": 1, "chat": 7, "text": "left over"}),
            InboxUpdate("alpha", "2", {"id": 2, "ignore": True}),
        ]
    )
    alpha = FakeChannel("alpha")
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.store is not None
    # The messenger sends an item twice before it is handled: stored once, handled once.
    await alpha.store([{"id": 3, "chat": 7, "text": "new"}, {"id": 3, "chat": 7, "text": "new"}])
    await until(lambda: len(alpha.sender.sent) == 2 and alpha.set_aside_ids != [])
    runtime.stop()
    await task
    assert alpha.sender.sent == [("7", "re left over"), ("7", "re new")]
    assert [turn.update_id for turn in engine_of(app).turns if not turn.system] == ["1", "3"]
    assert alpha.set_aside_ids == ["2"]
    assert await storage.inbox("alpha") == []


async def test_an_aside_is_settled_as_it_arrives_and_kept_in_the_inbox_if_it_cannot_be(
    app: App, storage: SqliteStorage
) -> None:
    alpha = FakeChannel("alpha")
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.store is not None
    await alpha.store([{"id": 1, "ignore": True}])
    assert alpha.set_aside_ids == ["1"]
    assert await storage.inbox("alpha") == []
    alpha.aside_failures = 1
    await alpha.store([{"id": 2, "ignore": True}])
    # Kept, so not lost: the worker takes it from the inbox and settles it then.
    await until(lambda: alpha.set_aside_ids == ["1", "2"])
    runtime.stop()
    await task
    assert await storage.inbox("alpha") == []


async def test_an_item_re_delivered_after_it_was_handled_leaves_the_inbox(
    app: App, storage: SqliteStorage
) -> None:
    alpha = FakeChannel("alpha")
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.store is not None
    await alpha.store([{"id": 1, "chat": 7, "text": "hi"}])
    await until(lambda: len(alpha.answered_ids) == 1)
    # A webhook retried after the bot had handled it: stored again, answered never twice.
    await alpha.store([{"id": 1, "chat": 7, "text": "hi"}])
    await until(lambda: len(alpha.answered_ids) == 2)
    runtime.stop()
    await task
    assert alpha.sender.sent == [("7", "re hi")]
    assert await storage.inbox("alpha") == []


async def test_an_albums_items_are_one_turn(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    alpha = FakeChannel("alpha")
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.store is not None
    await alpha.store([{"id": n, "chat": 7, "album": "g"} for n in (1, 2, 3)])
    engine = engine_of(app)
    await until(lambda: any(turn.media for turn in engine.turns), seconds=10)
    runtime.stop()
    await task
    (album,) = [turn for turn in engine.turns if turn.media]
    assert [m.file_ref for m in album.media] == ["p1", "p2", "p3"]
    assert album.update_ids == ("1", "2", "3")


async def test_an_undelivered_reply_is_a_staff_event(app: App) -> None:
    alpha = FakeChannel("alpha", refuse=True)
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.store is not None
    await alpha.store([{"id": 1, "chat": 7, "text": "hi"}])
    engine = engine_of(app)
    await until(lambda: any(e.startswith(handoff.UNDELIVERED) for e in engine.system_events()))
    runtime.stop()
    await task


async def test_a_channel_that_cannot_serve_stops_the_runtime(app: App) -> None:
    alpha, beta = FakeChannel("alpha"), FakeChannel("beta", fail=CannotServe("beta: refused"))
    runtime = Runtime(app, [alpha, beta])
    with pytest.raises(CannotServe, match="beta: refused"):
        await asyncio.wait_for(runtime.run(), 5)


@pytest.fixture
def fast_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases of a moment, renewed often: a worker's roles pass on within a test."""
    monkeypatch.setattr(bot.workers, "LEASE_SECONDS", 0.5)
    monkeypatch.setattr(bot.workers, "RENEW_SECONDS", 0.05)
    monkeypatch.setattr(bot.runtime, "RENEW_SECONDS", 0.05)
    monkeypatch.setattr(bot.runtime, "STAFF_CHECK_SECONDS", 0.05)


async def test_of_two_workers_one_leads_and_the_other_takes_over_when_it_stops(
    app: App, storage: SqliteStorage, fast_roles: None
) -> None:
    async with SqliteStorage(storage.path) as other_storage:
        other = scripted_app(other_storage)
        alpha, beta = FakeChannel("alpha"), FakeChannel("alpha")
        first, second = Runtime(app, [alpha]), Runtime(other, [beta])
        running_first = await running(first, alpha)
        running_second = await running(second, beta)
        await until(lambda: len(engine_of(app).system_events()) >= 4)
        assert engine_of(other).system_events() == []
        # Each worker handles what it received; the leader's timers run in it alone.
        assert beta.store is not None
        await beta.store([{"id": 1, "chat": 7, "text": "hi"}])
        await until(lambda: beta.sender.sent == [("7", "re hi")])
        assert alpha.sender.sent == []
        first.stop()
        await running_first
        await until(lambda: len(engine_of(other).system_events()) >= 2)
        second.stop()
        await running_second


async def test_a_dead_workers_items_and_replies_go_to_the_survivor(
    app: App, storage: SqliteStorage, fast_roles: None
) -> None:
    # A worker that died holding an update and a reply: nobody renews its claims.
    await storage.receive([InboxUpdate("alpha", "1", {"id": 1, "chat": 7, "text": "hi"}, "7")])
    [queued] = await storage.save(
        ChatKey("alpha", "8"),
        ConversationState(),
        "0",
        replies=[(ChatKey("alpha", "8"), {"text": "left"})],
    )
    await storage.claim_inbox("alpha", "dead", 0.3)
    await storage.claim_outbox("alpha", "dead", 0.3)
    alpha = FakeChannel("alpha")
    runtime = Runtime(app, [alpha])
    task = await running(runtime, alpha)
    assert alpha.sender.sent == []
    await until(lambda: sorted(alpha.sender.sent) == [("7", "re hi"), ("8", "left")])
    runtime.stop()
    await task
    assert queued.id not in {m.id for m in await storage.outbox("alpha")}
