"""Markup injection: every flow that shows what a customer, a rep or the shop wrote, walked
through the engine with HTML in every free-text field. No reply may carry markup the
templates did not put there, and each value must read exactly as it was written. Nor may
a reply show a `{placeholder}` of the company's details unfilled.

The same walk runs twice, once with harmless text and once with a payload; each reply's
tags must match the harmless run's exactly. Fields a parser checks (order numbers, serials,
e-mails, a customer's tracking number) cannot carry markup and get fixed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from domain.chats import ChatKey
from domain.orders import Condition, OrderItem, OrderStatus, Repair
from faq.service import FaqService
from handlers.digest import DIGEST_EVENT
from handlers.engine import Engine, Services, StaffDesk
from handlers.forms import Form, summary_lines
from handlers.i18n import SUPPORTED_LANGUAGES, translator
from handlers.messages import Incoming, Media, MediaKind, Reply
from handlers.orders import status_notice
from handlers.repair import FORM as REPAIR
from handlers.routes import build_router
from handlers.staff import system_event
from handlers.tickets import FORMS
from storage.sqlite import SqliteStorage
from tests.factories import Clock, Shown, Turns, message, order, press, staff

PAYLOADS = ['<a href="https://evil.example">x</a>', "<b>", "&", "<", "&amp;", "</i>"]
HARMLESS = "plain"
# Friday 20 November 2026, 10:00 UTC: business hours.
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
STAFF = "-1001"
ADMIN = "77"
CUSTOMER = ChatKey("test", "1")
TOPIC = "500"
# Links are cut at "<", ">" and quotes, so a link can carry only "&" and entities.
LINK = "https://drive.example.com/v?id=1&amp;t=2&x=3"
# Markup of the templates, which no reply may show as text.
TEMPLATE_TAG = re.compile(r"</?(?:b|i|u|s|code|pre|a|blockquote)\b[^>]*>")
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class Step:
    name: str
    replies: list[Reply]
    # Values the step's replies must show, verbatim.
    echoes: tuple[str, ...]


class Walk:
    """Every flow that shows free text, with `value` in each free-text field."""

    def __init__(
        self, storage: SqliteStorage, faq: FaqService, placeholders: dict[str, str], value: str
    ) -> None:
        self.storage = storage
        self.clock = Clock(NOW)
        desk = StaffDesk(
            chat=ChatKey("test", STAFF), admin_ids=frozenset({ADMIN}), digest_at=time(9)
        )
        self.services = Services(faq, placeholders, storage, staff=desk, clock=self.clock)
        self.engine = Engine(storage, self.services, build_router())
        self.value = value
        self.steps: list[Step] = []

    def v(self, text: str) -> str:
        """`text` with the walk's value in it: "Model {}" -> "Model <b>"."""
        return text.format(self.value)

    def customer(self, incoming: Incoming) -> Incoming:
        """From the customer, whose name and username carry the value too."""
        return replace(incoming, user_name=self.v("Ann {}"), username=self.v("ann{}"))

    def rep(
        self,
        text: str | None = None,
        payload: str | None = None,
        thread: str | None = TOPIC,
        message_id: str | None = None,
        media: tuple[Media, ...] = (),
    ) -> Incoming:
        """From a rep, whose name carries the value."""
        return staff(text, payload, STAFF, "555", self.v("Rep {}"), thread, message_id, media)

    async def step(self, name: str, incoming: Incoming, *echoes: str) -> list[Reply]:
        replies = (await self.engine.handle(incoming)).replies
        self.steps.append(Step(name, replies, echoes))
        return replies

    async def say(self, name: str, text: str, *echoes: str) -> list[Reply]:
        return await self.step(name, self.customer(message(text)), *echoes)

    async def press(self, name: str, payload: str, *echoes: str) -> list[Reply]:
        return await self.step(name, self.customer(press(payload)), *echoes)

    async def run(self) -> list[Step]:
        await self.orders()
        await self.repair_ticket()
        await self.second_return()
        await self.handoff()
        await self.staff_chat()
        return self.steps

    async def orders(self) -> None:
        """The shop's fields on the tracking card, the warranty card and a status notice."""
        v = self.v
        item = OrderItem(
            v("Bitmain {}"),
            v("S21 {}"),
            1,
            Condition.NEW,
            ("SN21A0001", v("SN {}")),
            (Repair(v("hash board {}"), date(2026, 11, 10), ticket_id="T-5001"),),
        )
        shop = order(
            status=OrderStatus.IN_TRANSIT,
            items=(item,),
            carrier=v("DHL {}"),
            tracking_number=v("JD {}"),
            paid_on=date(2026, 11, 2),
            shipped_on=date(2026, 11, 9),
        )
        await self.storage.save_order(shop, NOW)
        title, carrier, tracking = item.title, v("DHL {}"), v("JD {}")
        await self.press("track", "flow:track_order")
        await self.say("order number", "A-1001")
        await self.say("tracking card", "buyer@example.com", title, carrier, tracking)
        await self.press(
            "warranty card", "orders:warranty:A-1001", title, v("SN {}"), v("hash board {}")
        )
        delivered = replace(shop, status=OrderStatus.DELIVERED, delivered_on=date(2026, 11, 19))
        await self.storage.save_order(delivered, NOW)
        notice = status_notice(delivered, "en", self.services)
        self.steps.append(Step("status notice", [notice], (title, carrier, tracking)))

    async def ticket_id(self, kind: str) -> str:
        tickets = await self.storage.tickets_of(CUSTOMER)
        return next(t.id for t in tickets if t.kind == kind and t.status != "cancelled")

    async def repair_ticket(self) -> None:
        """The customer's answers on the review and the staff card; the rep's notes on
        the customer's notices and the ticket."""
        v = self.v
        model, symptoms = v("S21 {}"), v("Chips lost {} since Monday")
        await self.press("repair", "flow:repair_ticket")
        await self.press("new repair", "ticket:new:repair")
        await self.press("brand", "form:answer:brand:bitmain")
        await self.say("model", model)
        await self.say("serial", "JYZZB0UBDJBBJ0584")
        await self.say("order", "A-1001")
        await self.press("part", "form:answer:part:hashboard")
        await self.say("symptoms", symptoms)
        for index in range(3):
            await self.press("check", f"form:check:{index}:done")
        await self.say("link", f"The video: {LINK}")
        for name in ("label_removed", "disassembled", "wrong_voltage"):
            await self.press("void", f"form:answer:{name}:no")
        await self.press("review", "form:answer:modified:no", model, symptoms, LINK)
        ticket = await self.ticket_id("repair")
        await self.press("submit", f"ticket:submit:{ticket}", model, symptoms, LINK, v("Ann {}"))
        more_button = self.rep(payload=f"ticket:more:{ticket}", thread=None, message_id="900")
        await self.step("ask for more", more_button, v("Rep {}"))
        more = v("Please add a photo of {} the label")
        await self.step("more asked", self.rep(more, thread=None), more, v("Rep {}"))
        await self.press("ticket shown", f"ticket:show:{ticket}", more, model)
        reject = self.rep(payload=f"ticket:reject:{ticket}", thread=None, message_id="901")
        await self.step("reject", reject, v("Rep {}"))
        why = v("The label {} was removed")
        await self.step("rejected", self.rep(why, thread=None), why)
        await self.press("rejected ticket", f"ticket:show:{ticket}", why)

    async def second_return(self) -> None:
        """The second return's answers, the repaired part from the shop, and the terms."""
        v = self.v
        carrier, description = v("DHL {}"), v("Dead {} again")
        address = v("Ivan Petrov, 1 Main St {}, Almaty 050000")
        await self.press("second return", "ticket:new:second_return")
        await self.say("first ticket", "T-5001")
        await self.press("item", "form:answer:item:psu")
        photo = Media(MediaKind.PHOTO, "sn-1", 1000, "image/jpeg")
        await self.step("sn photo", self.customer(message(media=(photo,))))
        await self.say("voltage video", "https://video.example.com/v?a=1&b=2")
        for index in range(3):
            await self.press("check", f"form:check:{index}:done")
        await self.say("carrier", carrier)
        await self.say("tracking", "JD0146 0000 1234")
        await self.say("quantity", "1")
        await self.say("description", description)
        await self.say("address", address)
        await self.press(
            "terms", "form:answer:terms:accepted", carrier, description, address, v("hash board {}")
        )
        ticket = await self.ticket_id("second_return")
        await self.press("submit", f"ticket:submit:{ticket}", carrier, description, address)

    async def handoff(self) -> None:
        """The handoff card, messages and albums relayed both ways, the reps' commands."""
        v = self.v
        await self.press("handoff", "flow:handoff", v("Ann {}"), v("ann{}"))
        await self.storage.set_topic(CUSTOMER, ChatKey("test", STAFF), TOPIC)
        await self.say("relayed", v("Where is it {}?"), v("Where is it {}?"))
        photos = (Media(MediaKind.PHOTO, "p1", media_group_id="g"), Media(MediaKind.PHOTO, "p2"))
        album = self.customer(message(v("Both sides {}"), media=photos))
        await self.step("album relayed", replace(album, message_id="9"), v("Both sides {}"))
        await self.step("claim", self.rep("/claim"), v("Rep {}"))
        await self.step("note", self.rep(v("/note VIP {} buyer")))
        await self.step("rep relayed", self.rep(v("Hello {}")), v("Hello {}"))
        rep_album = self.rep(v("Photos {}"), message_id="930", media=photos)
        await self.step("rep album", rep_album, v("Photos {}"))
        await self.step("close", self.rep("/close"), v("Rep {}"))
        await self.press("handoff again", "flow:handoff", v("Rep {}"), v("VIP {} buyer"))
        await self.say("cancel", "/cancel")

    async def staff_chat(self) -> None:
        """The admin's /faq_test echo, and the digest's missed questions."""
        v = self.v
        question = v("how can I pay with USDT {}")
        await self.step("faq test", staff(f"/faq_test {question}", user=ADMIN), question)
        missed = v("do you host {} miners")
        await Turns(self.storage).asked(ChatKey("test", "2"), missed, "fallback", at=NOW)
        self.clock.now = NOW + timedelta(days=1)
        digest = system_event(ChatKey("test", STAFF), DIGEST_EVENT)
        await self.step("digest", digest, missed)


async def walk(path: Path, faq: FaqService, placeholders: dict[str, str], value: str) -> list[Step]:
    async with SqliteStorage(path) as storage:
        return await Walk(storage, faq, placeholders, value).run()


def problems_of(steps: list[Step], value: str) -> list[str]:
    """What is wrong with the walk's replies on their own: markup Telegram would refuse,
    template markup shown as text, a value not shown as written."""
    problems = []
    for step in steps:
        shown = [Shown(reply.text) for reply in step.replies]
        for html in shown:
            problems += [f"{step.name}: {problem}" for problem in html.problems]
            if TEMPLATE_TAG.search(html.visible.replace(value, "")):
                problems.append(f"{step.name}: markup shown as text in {html.visible!r}")
        for echo in step.echoes:
            if not any(echo in html.visible for html in shown):
                problems.append(f"{step.name}: {echo!r} not shown as written")
    return problems


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_no_reply_carries_markup_that_was_not_in_the_templates(
    tmp_path: Path, faq_service: FaqService, placeholders: dict[str, str], payload: str
) -> None:
    harmless = await walk(tmp_path / "harmless.db", faq_service, placeholders, HARMLESS)
    injected = await walk(tmp_path / "injected.db", faq_service, placeholders, payload)
    assert problems_of(harmless, HARMLESS) == []
    assert problems_of(injected, payload) == []
    assert [(s.name, len(s.replies)) for s in injected] == [
        (s.name, len(s.replies)) for s in harmless
    ]
    for clean, dirty in zip(harmless, injected, strict=True):
        for expected, got in zip(clean.replies, dirty.replies, strict=True):
            assert Shown(got.text).tags == Shown(expected.text).tags, (clean.name, got.text)


async def test_no_reply_leaves_a_placeholder_unfilled(
    tmp_path: Path, faq_service: FaqService, placeholders: dict[str, str]
) -> None:
    steps = await walk(tmp_path / "bot.db", faq_service, placeholders, HARMLESS)
    unfilled = [
        (step.name, found)
        for step in steps
        for reply in step.replies
        for found in PLACEHOLDER.findall(reply.text)
    ]
    assert unfilled == []


def form_texts(form: Form) -> tuple[list[str], list[str]]:
    """The form's texts: those shown with the company's placeholders filled (intro,
    prompts, re-asks, checks, files wanted), and those shown as they are (the title and
    the labels of answers and buttons)."""
    filled, as_is = [form.intro], [form.title]
    every_choice = [{}] + [{q.name: c.value} for q in form.questions for c in q.choices]
    for question in form.questions:
        filled += [question.prompt, question.invalid]
        as_is += [question.label, *(choice.label for choice in question.choices)]
        as_is += [question.skip] if question.skip else []
        filled += question.files.slots if question.files else ()
        if question.checks is not None:
            filled += [check for answers in every_choice for check in question.checks(answers)]
    return filled, as_is


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_form_texts_name_only_placeholders_that_get_filled(
    language: str, placeholders: dict[str, str]
) -> None:
    _ = translator(language)
    for form in FORMS.values():
        filled, as_is = form_texts(form)
        for text in filled:
            names = {found[1:-1] for found in PLACEHOLDER.findall(_(text))}
            assert names <= placeholders.keys(), text
        for text in as_is:
            assert not PLACEHOLDER.findall(_(text)), text


def test_a_stored_choice_no_longer_offered_shows_as_text() -> None:
    [line] = summary_lines(translator("en"), REPAIR, {"brand": "<b>retired"}, {})
    assert line == "<b>Brand</b>: &lt;b&gt;retired"
