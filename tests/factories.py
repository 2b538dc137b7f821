"""Builders for what channels hand the engine, so tests say only what matters to them,
and a reader of what the engine hands back."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from domain.chats import ChatKey, ConversationState
from domain.faq_log import Miss, QuestionAsked
from domain.identifiers import MAX_EMAIL
from domain.order_feed import MAX_CODE, MAX_NAME, MAX_PHONE, MAX_QUANTITY
from domain.orders import Condition, Order, OrderItem, OrderStatus
from handlers.engine import Engine
from handlers.messages import Incoming, Media, Reply
from storage.base import Record
from storage.sqlite import SqliteStorage

_update_ids = itertools.count(1)

# JSON nested 100,000 levels: Python's json module raises RecursionError on either.
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000


def message(
    text: str | None = None,
    chat: str = "1",
    language: str | None = "en",
    media: tuple[Media, ...] = (),
    update_id: str | None = None,
) -> Incoming:
    return Incoming(
        channel="test",
        chat_id=chat,
        user_id=chat,
        text=text,
        language=language,
        media=media,
        update_id=update_id or str(next(_update_ids)),
    )


def press(
    payload: str, chat: str = "1", update_id: str | None = None, message_id: str | None = "77"
) -> Incoming:
    """A button press on the bot message `message_id`."""
    return Incoming(
        channel="test",
        chat_id=chat,
        user_id=chat,
        payload=payload,
        update_id=update_id or str(next(_update_ids)),
        message_id=message_id,
    )


def staff(
    text: str | None = None,
    payload: str | None = None,
    chat: str = "-1001",
    user: str = "77",
    name: str = "Bob Rep",
    thread: str | None = None,
    message_id: str | None = None,
    media: tuple[Media, ...] = (),
) -> Incoming:
    """A rep's message or button press in the staff chat (in a customer's topic with
    `thread`; a press is on the bot message `message_id`)."""
    return Incoming(
        channel="test",
        chat_id=chat,
        user_id=user,
        text=text,
        payload=payload,
        media=media,
        update_id=f"staff-{next(_update_ids)}",
        user_name=name,
        message_id=message_id,
        staff=True,
        thread_id=thread,
    )


def order(
    number: str = "A-1001",
    email: str = "buyer@example.com",
    status: OrderStatus = OrderStatus.PAID,
    items: tuple[OrderItem, ...] | None = None,
    **fields: Any,
) -> Order:
    """An order of one new Antminer S21 unless told otherwise."""
    if items is None:
        items = (OrderItem("Bitmain", "Antminer S21", 1, Condition.NEW, ("SN21A0001",)),)
    return Order(number=number, email=email, status=status, items=items, **fields)


def repaired_order(
    number: str, ticket: str, part: str, repaired_days_ago: int = 5, phone: str | None = None
) -> dict[str, Any]:
    """A shop record (as `orders import` reads it) of a delivered Antminer S19 whose `part`
    was repaired under `ticket` and shipped back `repaired_days_ago` days ago; with `phone`,
    the order's phone (a WhatsApp customer on that number needs no e-mail)."""
    repair = {
        "part": part,
        "shipped_on": (date.today() - timedelta(days=repaired_days_ago)).isoformat(),
        "ticket_id": ticket,
    }
    item = {
        "brand": "Bitmain",
        "model": "Antminer S19",
        "quantity": 1,
        "condition": "new",
        "serials": [f"SN{number}"],
        "repairs": [repair],
    }
    record: dict[str, Any] = {
        "number": number,
        "email": "buyer@example.com",
        "status": "delivered",
        "shipped_on": "2026-01-05",
        "items": [item],
    }
    if phone is not None:
        record["phone"] = phone
    return record


def longest_record() -> dict[str, Any]:
    """A shop record whose every free-text field is as long as the order feed takes."""
    return {
        "number": "N" * 40,  # ORDER_NUMBER's longest
        "email": "e" * 64 + "@" + "d" * (MAX_EMAIL - 69) + ".com",
        "phone": "9" * MAX_PHONE,
        "status": "shipped",
        "carrier": "C" * MAX_NAME,
        "tracking_number": "T" * MAX_CODE,
        "paid_on": "2026-11-02",
        "shipped_on": "2026-11-16",
        "items": [
            {
                "brand": "B" * MAX_NAME,
                "model": "M" * MAX_NAME,
                "quantity": MAX_QUANTITY,
                "serials": ["S" * 40],  # SERIAL's longest
                "repairs": [
                    {
                        "part": "P" * MAX_NAME,
                        "shipped_on": "2026-11-10",
                        "serial": "R" * MAX_CODE,
                        "ticket_id": "K" * MAX_CODE,
                    }
                ],
            }
        ],
    }


def create_database(path: Path) -> None:
    """An empty database, as the bot leaves it before its first chat."""

    async def create() -> None:
        async with SqliteStorage(path):
            pass

    asyncio.run(create())


@dataclass
class Clock:
    """A clock tests set by hand: `Services(clock=...)`."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


class Turns:
    """Saves turns of records with fresh update ids, as the engine would: the `turn`
    fixture of storage tests."""

    def __init__(self, storage: SqliteStorage) -> None:
        self.storage = storage
        self.count = 0

    async def __call__(self, key: ChatKey, *records: Record) -> None:
        self.count += 1
        # Apart from the numbers tests give updates themselves: a processed one is refused.
        update_id = f"turn-{self.count}"
        await self.storage.save(key, ConversationState(), update_id, records=records)

    async def asked(
        self,
        key: ChatKey,
        question: str,
        *misses: str,
        at: datetime,
        entry_id: str | None = None,
        language: str = "en",
    ) -> str:
        """Log `question` as the FAQ does, answered unless `misses` gives the reasons it
        was missed ("not_helpful" on `entry_id`); returns the question's id."""
        question_id = f"q{self.count + 1}"
        first = misses[0] if misses else None
        decision = {"fallback": "fallback", "suggested": "suggest"}.get(first or "", "answer")
        await self(
            key,
            QuestionAsked(question_id, question, language, decision, entry_id, 0.5, at),
            *(
                Miss(question_id, reason, at, entry_id if reason == "not_helpful" else None)
                for reason in misses
            ),
        )
        return question_id


async def said(engine: Engine, incoming: Incoming) -> list[Reply]:
    """What the bot answers to `incoming` (the turn's replies)."""
    return (await engine.handle(incoming)).replies


# What Telegram reads as markup in a message; any other "<" or "&" must have been escaped.
TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}
_TAG = re.compile(r"""</?[A-Za-z][^<>"']*(?:(?:"[^"]*"|'[^']*')[^<>"']*)*>""")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-f]+);", re.IGNORECASE)


class Shown(HTMLParser):
    """A reply's text as Telegram renders it: its tags, and the text a reader sees."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.data: list[str] = []
        self.feed(text)
        self.close()
        if self.open:
            self.problems.append(f"left open: {self.open}")
        bare = _ENTITY.sub("", _TAG.sub("", text))
        if set("<&") & set(bare):
            self.problems.append(f"unescaped '<' or '&' in {bare!r}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[self.get_starttag_text() or tag] += 1
        self.open.append(tag)
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not a Telegram tag")

    def handle_endtag(self, tag: str) -> None:
        self.tags[f"</{tag}>"] += 1
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"</{tag}> closes nothing open")

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.data)
