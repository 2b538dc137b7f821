"""WhatsApp end to end: the real bot process (`minerdesk run`, Telegram and WhatsApp both
configured) over real HTTP, the Cloud API emulator posting the webhook and the Bot API
emulator holding the Telegram staff group. One bot for the module: starts are expensive
(the last test kills and restarts it). Each test has its own customer number."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import BotProcess
from tests.e2e.conftest import Backend, launched
from tests.e2e.test_handoff import texts, wait_text
from tests.e2e.test_orders import import_orders
from tests.emulator import BotApiEmulator
from tests.factories import repaired_order
from tests.whatsapp_emulator import WhatsAppEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

CUSTOMER = "15551234567"
HANDED_OVER = "15557654321"
FORUM = -1001234567890
REP = 555
ALWAYS_OPEN = {
    "MINERDESK_HANDOFF__BUSINESS_HOURS__DAYS": '["mon","tue","wed","thu","fri","sat","sun"]',
    "MINERDESK_HANDOFF__BUSINESS_HOURS__OPENS": "00:00",
    "MINERDESK_HANDOFF__BUSINESS_HOURS__CLOSES": "23:59:59",
}


@pytest.fixture(scope="module")
def wa(backend: Backend) -> Iterator[WhatsAppEmulator]:
    """One Cloud API emulator per backend, as the customers' numbers are the same on each."""
    with WhatsAppEmulator(status_delay=0) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def whatsapp_bot(
    shared_emulator: BotApiEmulator,
    wa: WhatsAppEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
    backend: Backend,
) -> Iterator[BotProcess]:
    shared_emulator.add_forum(FORUM)
    data = tmp_path_factory.mktemp("whatsapp-bot") / "data"
    with launched(shared_emulator, data, shared_cache, backend) as process:
        process.env.update(ALWAYS_OPEN, MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM))
        process.on_whatsapp(wa)
        process.start()
        yield process


def choices(wa: WhatsAppEmulator, message: dict[str, Any]) -> list[str]:
    """The titles of a message's reply buttons, or of its list's rows."""
    return [title for _, title in wa.buttons(message)] + [title for _, title, _ in wa.rows(message)]


def test_a_question_gets_its_answer_with_its_buttons_and_a_redelivery_is_answered_once(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator
) -> None:
    question = wa.send_text(CUSTOMER, "Can I pay for my order in instalments?", name="Ann")
    wa.wait_until(
        lambda: any("deposit" in wa.text(m) for m in wa.messages(CUSTOMER)),
        timeout=60,
        what="the FAQ answer",
    )
    [answer] = [m for m in wa.messages(CUSTOMER) if "deposit" in wa.text(m)]
    assert answer["type"] == "interactive"
    assert {"👍", "👎"} <= set(choices(wa, answer))
    answered = len(wa.messages(CUSTOMER))

    wa.redeliver(question)
    wa.send_text(CUSTOMER, "How long does delivery take?")
    wa.wait_messages(CUSTOMER, answered + 1, timeout=60)
    whatsapp_bot.wait_outbox_empty()
    texts = [wa.text(m) for m in wa.messages(CUSTOMER)]
    assert sum("deposit" in text for text in texts) == 1, texts
    # Meta's statuses of the last replies may still be arriving: each leaves the inbox too.
    wa.wait_until(
        lambda: whatsapp_bot.query("SELECT COUNT(*) FROM inbox") == [(0,)],
        timeout=30,
        what="an empty inbox",
    )
    assert CUSTOMER not in whatsapp_bot.log


def test_a_handoff_reaches_the_telegram_staff_topic_and_the_reps_reply_comes_back(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    wa.send_text(HANDED_OVER, "I want to talk to a human", name="Bob")
    tg.wait_until(lambda: len(tg.topics(FORUM)) == 1, timeout=60, what="the customer's topic")
    [(thread, name)] = tg.topics(FORUM).items()
    assert HANDED_OVER not in name
    seen = len(wa.messages(HANDED_OVER))
    tg.send_text(FORUM, "Hi Bob, a rep here", user_id=REP, message_thread_id=thread)
    wa.wait_until(
        lambda: any("Hi Bob, a rep here" in wa.text(m) for m in wa.messages(HANDED_OVER)[seen:]),
        timeout=60,
        what="the rep's reply on WhatsApp",
    )
    # The topic's opening and the relay name the customer's chat masked in the log.
    assert HANDED_OVER not in whatsapp_bot.log


# --- a customer's side of a conversation ----------------------------------------------------


class Customer:
    """One WhatsApp customer: each step acts, then waits for a new bot message saying
    `expect` and returns its text."""

    def __init__(self, wa: WhatsAppEmulator, number: str, name: str = "Customer") -> None:
        self.wa, self.number, self.name = wa, number, name

    def texts(self) -> list[str]:
        return [self.wa.text(m) for m in self.wa.messages(self.number)]

    def says(self, text: str, expect: str) -> str:
        return self._then(lambda: self.wa.send_text(self.number, text, name=self.name), expect)

    def picks(self, label: str, expect: str) -> str:
        """Taps the reply button, or picks the list row, whose title is `label` (as WhatsApp
        shortened it) in the bot's latest interactive message."""
        return self._then(lambda: self._pick(label), expect)

    def sends(self, kind: str, content: bytes, mime: str, expect: str) -> str:
        return self._then(
            lambda: self.wa.send_media(self.number, kind, content, mime, name=self.name), expect
        )

    def reads(self, expect: str) -> None:
        """Waits for a bot message saying `expect` (the last part of a long reply)."""
        self.wa.wait_until(
            lambda: any(expect in text for text in self.texts()),
            timeout=60,
            what=f"{expect!r} on WhatsApp",
        )

    def _pick(self, label: str) -> None:
        """The latest message offering `label` (a long choice is split over several list
        messages, so it is not always the very last)."""
        offers = [m for m in self.wa.messages(self.number) if m["type"] == "interactive"]
        for message in reversed(offers):
            for button_id, title in self.wa.buttons(message):
                if shortened(title, label):
                    self.wa.press_button(self.number, button_id, context_message_id=message["id"])
                    return
            for row_id, title, _ in self.wa.rows(message):
                if shortened(title, label):
                    self.wa.choose_row(self.number, row_id, context_message_id=message["id"])
                    return
        raise AssertionError(f"no choice {label!r} in {[choices(self.wa, m) for m in offers]}")

    def _then(self, act: Callable[[], object], expect: str) -> str:
        seen = len(self.wa.messages(self.number))
        act()
        self.wa.wait_until(
            lambda: any(expect in text for text in self.texts()[seen:]),
            timeout=60,
            what=f"{expect!r} on WhatsApp after {self.texts()[max(0, seen - 1) :]}",
        )
        return next(text for text in self.texts()[seen:] if expect in text)


def shortened(title: str, label: str) -> bool:
    """Whether `title` is `label`, or `label` cut to fit WhatsApp with "…"."""
    return title == label or (title.endswith("…") and label.startswith(title[:-1].rstrip()))


def new_topic(tg: BotApiEmulator, before: dict[int, str]) -> int:
    tg.wait_until(lambda: len(tg.topics(FORUM)) > len(before), what="the customer's topic")
    [thread] = set(tg.topics(FORUM)) - set(before)
    return thread


def photo_size(message: dict[str, Any]) -> int:
    return int(message["photo"][-1]["file_size"])


def paid_order(number: str, email: str, **fields: str) -> dict[str, Any]:
    item = {"brand": "Bitmain", "model": "Antminer S21", "quantity": 1, "condition": "new"}
    return {"number": number, "email": email, "status": "paid", "items": [item], **fields}


def imported(bot: BotProcess, tmp_path: Path, orders: list[dict[str, Any]]) -> None:
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(orders), encoding="utf-8")
    done = import_orders(bot, path)
    assert done.returncode == 0, done.stderr


TICKET_ID = re.compile(r"[RS]-[0-9A-Z]{4}-[0-9A-Z]{4}")
FRONT = b"\xff\xd8\xff\xe0 the front side of the board " * 40
BACK = b"\xff\xd8\xff\xe0 the back side of the board " * 50
SCREENSHOT = b"\x89PNG\r\n\x1a\n the miner's page, board 2 missing " * 30
STICKER = b"\xff\xd8\xff\xe0 the PSU's SN sticker " * 60
VOLTAGE = b"\x00\x00\x00\x18ftypmp42 the multimeter shows 9 V " * 200
REP_PHOTO = b"\xff\xd8\xff\xe0 the rep's photo of a good PSU label " * 30
CUSTOMER_PHOTO = b"\xff\xd8\xff\xe0 the customer's blinking LEDs " * 70


def test_a_menu_of_more_than_three_choices_is_a_list_and_a_row_picks_one(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator
) -> None:
    ann = Customer(wa, "15550001001", "Ann")
    ann.says("/menu", "How can I help?")
    menu = wa.messages(ann.number)[-1]
    assert menu["interactive"]["type"] == "list"
    assert len(wa.rows(menu)) > 3
    assert ann.picks("📦 Track my order", "order number")
    assert wa.inbound(ann.number)[-1]["interactive"]["type"] == "list_reply"


def test_tracking_asks_the_email_unless_the_whatsapp_number_is_the_orders_phone(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator, tmp_path: Path
) -> None:
    imported(
        whatsapp_bot,
        tmp_path,
        [
            paid_order("W-3001", "buyer@example.com"),
            paid_order("W-3002", "owner@example.com", phone="+7 (701) 123-45-67"),
        ],
    )
    buyer = Customer(wa, "15550001002", "Ben")
    buyer.says("/menu", "How can I help?")
    buyer.picks("📦 Track my order", "order number")
    buyer.says("W-3001", "e-mail address")
    card = buyer.says("buyer@example.com", "Order W-3001")
    assert "paid" in card
    # Someone else's order, on someone else's number: the e-mail is asked, and guessed wrong.
    buyer.says("/menu", "How can I help?")
    buyer.picks("📦 Track my order", "order number")
    buyer.says("W-3002", "e-mail address")
    assert "could not find" in buyer.says("guess@example.com", "could not find")

    owner = Customer(wa, "77011234567", "Dana")
    owner.says("/menu", "How can I help?")
    owner.picks("📦 Track my order", "order number")
    assert "Order W-3002" in owner.says("W-3002", "Order W-3002")
    assert not any("e-mail address" in text for text in owner.texts())
    assert whatsapp_bot.query(
        "SELECT channel, number FROM order_links WHERE chat_id = ?", owner.number
    ) == [("whatsapp", "W-3002")]
    assert "77011234567" not in whatsapp_bot.log


def test_a_second_return_with_photos_one_by_one_reaches_the_staff_group_and_is_confirmed(
    whatsapp_bot: BotProcess,
    wa: WhatsAppEmulator,
    shared_emulator: BotApiEmulator,
    tmp_path: Path,
) -> None:
    tg = shared_emulator
    tg.set_member(FORUM, REP, "member")
    board = repaired_order("W-4001", "T-HB41", "Hash board", phone="+49 151 2345 6789")
    imported(whatsapp_bot, tmp_path, [board])
    topics = tg.topics(FORUM)
    eva = Customer(wa, "4915123456789", "Eva")
    eva.says("/menu", "How can I help?")
    eva.picks("🔧 Repair / second return", "What do you need?")
    eva.picks("🔁 A second return: a repaired part failed again", "first repair ticket")
    eva.says("T-HB41", "order number")
    # The order is on Eva's WhatsApp number: no e-mail question.
    eva.says("W-4001", "Which item failed again")
    eva.picks("🧮 Hash board", "front")
    eva.sends("image", FRONT, "image/jpeg", "back side")
    eva.sends("image", BACK, "image/jpeg", "screenshot")
    eva.sends("image", SCREENSHOT, "image/png", "Check 1 of 2")
    eva.picks("✅ Done, still not working", "Check 2 of 2")
    eva.picks("✅ Done, still not working", "Which carrier")
    eva.says("DHL", "tracking number")
    eva.says("JD014600004001", "How many")
    eva.says("1", "describe the defect")
    eva.says("Board 2 shows 0 chips again", "full address")
    eva.says("Eva Braun, 1 Hauptstr., 10115 Berlin, Germany", "after-sales service terms")
    review = eva.picks("✅ I accept the terms", "please check")
    # More than ten choices: a second list message carries the rest, 📨 Submit among them.
    eva.reads("(2/2)")
    assert "T-HB41" in review
    assert "e-mail address" not in " ".join(eva.texts())
    [ticket_id] = TICKET_ID.findall(eva.picks("📨 Submit", "pending"))

    thread = new_topic(tg, topics)
    wait_text(tg, FORUM, f"Second return {ticket_id}", thread)
    [card] = [m for m in tg.messages(FORUM, thread) if ticket_id in str(m.get("text", ""))]
    assert "Board 2 shows 0 chips again" in card["text"]
    # The three photos, sent one by one on WhatsApp, uploaded to the topic.
    tg.wait_until(
        lambda: len([m for m in tg.messages(FORUM, thread) if "photo" in m]) == 3,
        timeout=30,
        what="the ticket's photos in the topic",
    )
    photos = [m for m in tg.messages(FORUM, thread) if "photo" in m]
    assert [photo_size(m) for m in photos] == [len(FRONT), len(BACK), len(SCREENSHOT)]
    assert photos[0]["caption"] == f"Files of {ticket_id}"

    seen = len(wa.messages(eva.number))
    tg.press(FORUM, "✅ Confirm", message=card, user_id=REP)
    wa.wait_until(
        lambda: any("confirmed your" in text for text in eva.texts()[seen:]),
        timeout=60,
        what="the confirmation on WhatsApp",
    )
    assert whatsapp_bot.query("SELECT status FROM tickets WHERE id = ?", ticket_id) == [
        ("confirmed",)
    ]
    assert eva.number not in whatsapp_bot.log


def test_a_handoff_relays_a_photo_each_way(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    topics = tg.topics(FORUM)
    fay = Customer(wa, "15550001005", "Fay")
    fay.says("I want to talk to a human", "")
    thread = new_topic(tg, topics)

    # Rep -> customer: the Telegram photo is fetched and uploaded to WhatsApp via /media.
    uploads = len(wa.uploads)
    seen = len(wa.messages(fay.number))
    tg.send_media(
        FORUM,
        "photo",
        content=REP_PHOTO,
        caption="Is your label like this one?",
        user_id=REP,
        message_thread_id=thread,
    )
    wa.wait_until(
        lambda: any(m["type"] == "image" for m in wa.messages(fay.number)[seen:]),
        timeout=60,
        what="the rep's photo on WhatsApp",
    )
    [image] = [m for m in wa.messages(fay.number)[seen:] if m["type"] == "image"]
    assert image["image"]["caption"] == "Is your label like this one?"
    uploaded = wa.media(image["image"]["id"])
    assert uploaded is not None
    assert (uploaded.content, uploaded.mime_type) == (REP_PHOTO, "image/jpeg")
    assert len(wa.uploads) == uploads + 1

    # Customer -> topic: the WhatsApp photo is downloaded and uploaded to Telegram.
    in_topic = len(tg.messages(FORUM, thread))
    wa.send_image(fay.number, CUSTOMER_PHOTO, caption="Mine blinks red", name="Fay")
    tg.wait_until(
        lambda: any("photo" in m for m in tg.messages(FORUM, thread)[in_topic:]),
        timeout=60,
        what="the customer's photo in the topic",
    )
    [relayed] = [m for m in tg.messages(FORUM, thread)[in_topic:] if "photo" in m]
    assert (relayed["caption"], photo_size(relayed)) == ("Mine blinks red", len(CUSTOMER_PHOTO))
    assert fay.number not in whatsapp_bot.log


def test_sigkill_in_the_middle_of_a_ticket_and_the_ticket_goes_on(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    topics = tg.topics(FORUM)
    gus = Customer(wa, "15550001006", "Gus")
    gus.says("/menu", "How can I help?")
    gus.picks("🔧 Repair / second return", "What do you need?")
    gus.picks("🔁 A second return: a repaired part failed again", "first repair ticket")
    gus.says("T-PSU6", "order number")
    gus.picks("I don't have it", "Which item failed again")
    gus.picks("🔌 Power supply (PSU)", "SN) sticker")
    gus.sends("image", STICKER, "image/jpeg", "output voltage")

    # Killed between turns, with everything answered; the video comes while it is down.
    whatsapp_bot.wait_outbox_empty()
    whatsapp_bot.kill()
    video = wa.send_video(gus.number, VOLTAGE, name="Gus", check=False)
    assert wa.deliveries[-1].status != 200
    whatsapp_bot.start()
    # Meta retries a notification the webhook did not take.
    seen = len(wa.messages(gus.number))
    wa.redeliver(video)
    wa.wait_until(
        lambda: any("Check 1 of 3" in text for text in gus.texts()[seen:]),
        timeout=60,
        what="the flow going on after the restart",
    )
    whatsapp_bot.wait_outbox_empty()
    # Nothing answered twice: each question once, however the crash fell.
    said = gus.texts()
    for question in ("SN) sticker", "output voltage", "Check 1 of 3"):
        assert sum(question in text for text in said) == 1, (question, said)
    for check in ("Check 2 of 3", "Check 3 of 3", "Which carrier"):
        gus.picks("✅ Done, still not working", check)
    gus.says("UPS", "tracking number")
    gus.says("1Z999AA10123456784", "How many")
    gus.says("1", "describe the defect")
    gus.says("Output is 9 V again", "full address")
    gus.says("Gus Berg, 5 Main St, Austin TX 78701, USA", "after-sales service terms")
    gus.picks("✅ I accept the terms", "please check")
    gus.reads("(2/2)")
    [ticket_id] = TICKET_ID.findall(gus.picks("📨 Submit", "pending"))

    # Nothing lost: the sticker from before the crash and the video from after it reach staff.
    thread = new_topic(tg, topics)
    wait_text(tg, FORUM, f"Second return {ticket_id}", thread)
    tg.wait_until(
        lambda: any("video" in m for m in tg.messages(FORUM, thread)),
        timeout=30,
        what="the voltage video in the topic",
    )
    messages = tg.messages(FORUM, thread)
    assert [photo_size(m) for m in messages if "photo" in m] == [len(STICKER)]
    assert [m["video"]["file_size"] for m in messages if "video" in m] == [len(VOLTAGE)]
    assert "Files of" in " ".join(texts(tg, FORUM, thread))
    whatsapp_bot.wait_outbox_empty()
