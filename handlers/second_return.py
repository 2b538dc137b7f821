"""The second return (diagram: second_return.mmd): a repaired part failed again within the
30 days its repair is covered, counted from the day it was shipped back.

The first repair ticket id finds the repair in the customer's verified orders (asking for
the order and its e-mail when it is not linked to the chat yet). A repair shipped more
than 30 days ago is not eligible: the customer is told why and offered a normal repair
ticket. Then the evidence the service centre asks for, per item (hash board or PSU), the
package, and the after-sales terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from markupsafe import Markup

from domain.chats import ChatKey
from domain.identifiers import service_ticket_id
from domain.orders import Order, Repair
from domain.tickets import TicketKind, TicketStatus, TicketStatusSet
from domain.warranty import Coverage, repair_warranty
from handlers.engine import Services, Turn
from handlers.faq import handoff_button
from handlers.forms import (
    NO,
    SKIPPED,
    YES,
    Accept,
    Answers,
    Ask,
    Choice,
    Draft,
    Files,
    Form,
    Question,
    at_least,
)
from handlers.i18n import N_, format_date, translator
from handlers.menu import menu_button
from handlers.messages import Button
from handlers.repair import order_questions

_TRACKING = re.compile(r"[A-Z0-9][A-Z0-9-]{3,39}")
MAX_QUANTITY = 100

ITEMS = (Choice("hashboard", N_("🧮 Hash board")), Choice("psu", N_("🔌 Power supply (PSU)")))

CHECKS = {
    "hashboard": (
        N_("Make sure the hash board is well connected to the control board."),
        N_(
            "Put the hash board into another good miner, or connect it with a different "
            "signal cable, and try again."
        ),
    ),
    "psu": (
        N_("Try a different power cord, of at least 10 A."),
        N_("Make sure the PSU's input voltage is within its specification."),
        N_("Power the PSU off for 30 minutes, then power it on again and retry."),
    ),
}


def tracking_number(text: str) -> str | None:
    number = "".join(text.split()).upper()
    return number if _TRACKING.fullmatch(number) else None


def quantity(text: str) -> str | None:
    text = text.strip()
    return text if text.isdigit() and 1 <= int(text) <= MAX_QUANTITY else None


def _repair_in(order: Order, ticket_id: str) -> Repair | None:
    for item in order.items:
        for repair in item.repairs:
            if repair.ticket_id and repair.ticket_id.upper() == ticket_id.upper():
                return repair
    return None


async def _find_in_linked_orders(turn: Turn, draft: Draft) -> bool:
    """After the first ticket id: the repair, if one of the chat's verified orders has it."""
    ticket_id = draft.answers.get("first_ticket", "")
    for order in await turn.services.store.linked_orders(turn.key):
        repair = _repair_in(order, ticket_id)
        if repair is not None:
            return _judge(turn, draft, order, repair)
    # Not among the linked orders: the order questions come next.
    draft.answer("repair_found", NO)
    return True


async def _find_in_order(turn: Turn, draft: Draft, order: Order | None) -> bool:
    """After the order is proved (or not): the repair in it, else staff check the date."""
    repair = None if order is None else _repair_in(order, draft.answers.get("first_ticket", ""))
    if order is None or repair is None:
        draft.answer("repair_found", "unknown")
        return True
    return _judge(turn, draft, order, repair)


def _judge(turn: Turn, draft: Draft, order: Order, repair: Repair) -> bool:
    """Within 30 days of the repaired part's shipping date, go on; else explain and stop."""
    _ = turn._
    draft.answer("repair_found", YES)
    draft.answer("repair_order", order.number)
    draft.answer("repaired_part", repair.part)
    draft.answer("repaired_shipped_on", repair.shipped_on.isoformat())
    services = turn.services
    warranty = repair_warranty(repair, services.today(), services.order_rules)
    if warranty.coverage is Coverage.ACTIVE:
        return True
    assert warranty.ends_on is not None
    turn.records.append(
        TicketStatusSet(
            draft.id,
            TicketStatus.CANCELLED,
            "customer",
            services.now(),
            f"not eligible: repaired part shipped {repair.shipped_on.isoformat()}",
        )
    )
    turn.state.reset()
    language = turn.state.language
    turn.say(
        _(
            "The repaired {part} was shipped back to you on {shipped}, so its "
            "{days}-day warranty ended on {end}. A second return is only possible within "
            "those {days} days.\n\nYou can still open a normal repair ticket: outside the "
            "warranty the repair is at your cost, and our team quotes it first."
        ).format(
            part=repair.part,
            shipped=format_date(repair.shipped_on, language),
            days=services.order_rules.repaired_part_warranty_days,
            end=format_date(warranty.ends_on, language),
        ),
        [Button(_("🔧 Open a repair ticket"), "ticket:new:repair")],
        [handoff_button(turn)],
        [menu_button(turn)],
    )
    return False


def _item_is(item: str) -> Callable[[Answers], bool]:
    return lambda answers: answers.get("item") == item


def _repair_not_found(answers: Answers) -> bool:
    return answers.get("repair_found") != YES


async def second_return_coverage(
    services: Services, key: ChatKey, answers: Answers, language: str
) -> list[Markup]:
    """Whether the repaired part is within its 30 days, and what the customer pays."""
    _ = translator(language)
    days = services.order_rules.repaired_part_warranty_days
    lines = [_("<b>Eligibility</b>")]
    shipped_on = answers.get("repaired_shipped_on")
    if answers.get("repair_found") == YES and shipped_on:
        shipped = date.fromisoformat(shipped_on)
        repair = Repair(answers.get("repaired_part", ""), shipped)
        warranty = repair_warranty(repair, services.today(), services.order_rules)
        assert warranty.ends_on is not None
        lines.append(
            _(
                "✅ The repaired {part} was shipped back on {shipped}: covered until {end} "
                "({left} days left). A defect that is not caused by use is replaced free of "
                "charge."
            ).format(
                part=repair.part,
                shipped=format_date(shipped, language),
                end=format_date(warranty.ends_on, language),
                left=warranty.days_left,
            )
        )
    else:
        lines.append(
            _(
                "❔ I could not find ticket {ticket} in your verified orders: our service team "
                "will check that the repaired part was shipped back less than {days} days ago."
            ).format(ticket=answers.get("first_ticket", SKIPPED), days=days)
        )
    lines.append(_("Shipping the item to us, and any customs costs, are paid by you."))
    return lines


FORM = Form(
    kind=TicketKind.SECOND_RETURN,
    title=N_("Second return"),
    intro=N_(
        "Let's prepare a second return for a repaired part that failed again. Repaired parts "
        "are covered for 30 days from the day we shipped them back. Everything is saved as "
        "we go; /cancel pauses it."
    ),
    fixed={"reason": "Second repair"},
    questions=(
        Question(
            "first_ticket",
            N_("First repair ticket"),
            N_(
                "What is the ID of the first repair ticket? It is in the e-mails about that repair."
            ),
            parse=service_ticket_id,
            invalid=N_("A ticket ID is a short code of letters and digits. Please send it again."),
            max_chars=60,
            after=_find_in_linked_orders,
        ),
        *order_questions(_find_in_order, when=_repair_not_found),
        Question("item", N_("Item"), N_("Which item failed again?"), Ask.CHOICE, ITEMS),
        Question(
            "board_photos",
            N_("Hash board photos"),
            N_(
                "Please send a photo of the <b>front</b> side of the hash board, then one of "
                "the <b>back</b> side (both in one go is fine)."
            ),
            Ask.FILES,
            files=Files(
                slots=(
                    N_("a photo of the front side of the hash board"),
                    N_("a photo of the back side of the hash board"),
                )
            ),
            when=_item_is("hashboard"),
        ),
        Question(
            "screenshot",
            N_("Screenshot"),
            N_(
                "Please send a screenshot showing the board does not work after connecting "
                "(the miner's page with the board missing or in error)."
            ),
            Ask.FILES,
            files=Files(slots=(N_("the screenshot"),)),
            when=_item_is("hashboard"),
        ),
        Question(
            "sn_photo",
            N_("PSU SN sticker"),
            N_("Please send a photo of the PSU's serial-number (SN) sticker."),
            Ask.FILES,
            files=Files(slots=(N_("a photo of the PSU's SN sticker"),)),
            when=_item_is("psu"),
        ),
        Question(
            "voltage_video",
            N_("Voltage video"),
            N_(
                "Please send a video showing the PSU's output voltage is below 11 V after "
                "powering on, measured with a multimeter. A link to the video works too."
            ),
            Ask.FILES,
            files=Files(
                accepts=frozenset({Accept.VIDEO}),
                slots=(N_("the video of the output voltage"),),
                link_instead=True,
            ),
            when=_item_is("psu"),
        ),
        Question(
            "checks",
            N_("Checks done"),
            N_("Please confirm these checks, which often find the cause."),
            Ask.CHECKS,
            checks=lambda answers: CHECKS[answers.get("item", "hashboard")],
            editable=False,
        ),
        Question(
            "carrier",
            N_("Carrier"),
            N_("Which carrier are you shipping it with (DHL, FedEx, UPS…)?"),
            max_chars=60,
        ),
        Question(
            "tracking",
            N_("Tracking number"),
            N_("What is the parcel's tracking number?"),
            parse=tracking_number,
            invalid=N_("A tracking number is 4 to 40 letters and digits. Please send it again."),
            max_chars=60,
        ),
        Question(
            "quantity",
            N_("Quantity"),
            N_("How many of these items are you sending back?"),
            parse=quantity,
            invalid=N_("Please send a number from 1 to 100."),
            max_chars=10,
        ),
        Question(
            "description",
            N_("Description"),
            N_("Please describe the defect in a sentence or two."),
            max_chars=1000,
        ),
        Question("reason", N_("Reason"), N_("Reason"), editable=False),
        Question(
            "return_address",
            N_("Return address"),
            N_(
                "Where should we send it back? Your full address: name, street, city, postcode, "
                "country and a phone number."
            ),
            parse=at_least(15),
            invalid=N_("Please send the full address, with the city, postcode and country."),
            max_chars=500,
        ),
        Question(
            "terms",
            N_("After-sales terms"),
            N_(
                "Last step: please read the after-sales service terms at {repair_portal_url} "
                "and accept them."
            ),
            Ask.CHOICE,
            (Choice("accepted", N_("✅ I accept the terms")),),
            editable=False,
        ),
    ),
    coverage=second_return_coverage,
)
