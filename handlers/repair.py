"""The repair ticket's questions (diagram: repair.mmd): the machine, its serial number,
the order for the warranty pre-check, the faulty part, the checks that may fix it first,
photos of the fault, and what decides whether the warranty is void.

The questions are data for `handlers.forms`; this module adds what is particular to a
repair: which checks apply to which part, and the warranty the customer can expect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial

from markupsafe import Markup

from domain.chats import ChatKey
from domain.identifiers import email_address, order_lookup, serial_number
from domain.orders import Order, OrderItem
from domain.privacy import mask_email
from domain.tickets import TicketKind
from domain.warranty import Coverage, machine_warranty
from handlers.engine import Services, Turn
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
from handlers.i18n import N_, translator
from handlers.orders import say_locked_out
from handlers.ownership import locked_out_minutes, owned_orders, prove_with_email
from handlers.warranty import machine_sentence

# Serial numbers on ASIC stickers are 8-32 letters and digits (Bitmain's are 17 to 18).

# Runs once the order of a ticket is known to be the customer's (or known not to be):
# False when it ended the form.
OrderHook = Callable[[Turn, Draft, Order | None], Awaitable[bool]]

PARTS = (
    Choice("miner", N_("🖥 The whole miner")),
    Choice("hashboard", N_("🧮 A hash board")),
    Choice("control_board", N_("🎛 The control board")),
    Choice("psu", N_("🔌 The power supply (PSU)")),
    Choice("fan", N_("🌀 A fan")),
)

# What to try before sending anything back; many faults end here.
CHECKS = {
    "miner": (
        N_(
            "Switch the miner off at the wall, wait 5 minutes, check the power cords sit "
            "firmly in the PSU, and switch it on again."
        ),
        N_(
            "Check the network: the cable is plugged in, the port lights blink, and the miner "
            "shows up in your router or IP Reporter."
        ),
        N_(
            "Open the miner's web page and look at the kernel log: note any error you see "
            "there for the ticket."
        ),
    ),
    "hashboard": (
        N_(
            "Power off, then unplug and firmly reconnect the hash board's signal (data) "
            "cable and its power connectors."
        ),
        N_(
            "Swap the signal cable with one from a working board, or connect the board to "
            "another slot: does the fault follow the board?"
        ),
        N_("Power on and check the miner's page: is the board (chain) detected now?"),
    ),
    "control_board": (
        N_("Power the miner off for 5 minutes and on again."),
        N_(
            "Hold the reset button for 10 seconds while the miner is on, to restore the "
            "factory settings."
        ),
        N_("Try another network cable and another port on your switch or router."),
    ),
    "psu": (
        N_("Try a different power cord of at least 10 A."),
        N_("Make sure the input voltage is within the PSU's specification."),
        N_("Power the PSU off for 30 minutes, then power it on again."),
    ),
    "fan": (
        N_("Power off and check the fan's connector is plugged in firmly."),
        N_("Clean the dust out of the fan and make sure nothing blocks it."),
        N_("Swap the fan with a neighbouring one: does the error follow the fan?"),
    ),
}

YES_NO = (Choice(YES, N_("Yes")), Choice(NO, N_("No")))

# The answers that void the warranty, in the words of the warranty terms.
VOID_QUESTIONS = (
    Question(
        "label_removed",
        N_("Label or SN removed"),
        N_("Is the warranty label or the serial-number sticker torn or removed?"),
        Ask.CHOICE,
        YES_NO,
    ),
    Question(
        "disassembled",
        N_("Opened by someone else"),
        N_(
            "Was the machine opened or taken apart by anyone other than us or the "
            "manufacturer's service?"
        ),
        Ask.CHOICE,
        YES_NO,
    ),
    Question(
        "wrong_voltage",
        N_("Wrong voltage"),
        N_(
            "Was it ever powered with a voltage outside its specification, or hit by a "
            "power surge or lightning?"
        ),
        Ask.CHOICE,
        YES_NO,
    ),
    Question(
        "modified",
        N_("Modified"),
        N_(
            "Was anything modified: the cooling (immersion, water), fans, heat sinks or "
            "power cables?"
        ),
        Ask.CHOICE,
        YES_NO,
    ),
)


def label_serial(text: str) -> str | None:
    """A serial number as a customer copies it from the sticker: long enough, and with
    enough digits, not to be a word typed by mistake."""
    serial = serial_number(text)
    if serial is None or not 8 <= len(serial) <= 32 or sum(c.isdigit() for c in serial) < 3:
        return None
    return serial


class OrderCheck(StrEnum):
    """What became of the order number a ticket gave (its `order_verified` answer)."""

    VERIFIED = "yes"
    # Not linked to the chat yet: the order's e-mail is asked next.
    UNPROVED = "no"
    # A wrong e-mail, or the chat is locked out: the service team checks the serial instead.
    FAILED = "failed"


async def _check_order(after_verified: OrderHook, turn: Turn, draft: Draft) -> bool:
    """The order number was given (or skipped): a linked order is verified at once."""
    number = draft.answers.get("order", SKIPPED)
    if number == SKIPPED:
        draft.answer("order_verified", None)
        return await after_verified(turn, draft, None)
    owned = await owned_orders(turn, number)
    if owned:
        draft.answer("order", owned[0].number)
        draft.answer("order_verified", OrderCheck.VERIFIED)
        return await after_verified(turn, draft, owned[0])
    draft.answer("order_verified", OrderCheck.UNPROVED)
    draft.answer("order_email", None)
    return True


async def _check_email(after_verified: OrderHook, turn: Turn, draft: Draft) -> bool:
    """The order's e-mail was given (or skipped): prove the order, or say why not."""
    email = draft.answers.get("order_email", SKIPPED)
    if email == SKIPPED:
        return await after_verified(turn, draft, None)
    minutes = await locked_out_minutes(turn, draft.answers.get("order"))
    proved = (
        minutes
        if minutes is not None
        else await prove_with_email(turn, draft.answers.get("order", ""), email)
    )
    # Only the proof is kept, not the address.
    draft.answer("order_email", mask_email(email))
    if isinstance(proved, int):
        say_locked_out(turn, proved)
    elif not proved:
        turn.say(
            turn._(
                "That e-mail does not match the order, so I cannot check the warranty "
                "here; our service team will check it with the serial number."
            )
        )
    if isinstance(proved, int) or not proved:
        draft.answer("order_verified", OrderCheck.FAILED)
        return await after_verified(turn, draft, None)
    draft.answer("order", proved[0].number)
    draft.answer("order_verified", OrderCheck.VERIFIED)
    turn.say(turn._("✅ Order {number} verified.").format(number=proved[0].number))
    return await after_verified(turn, draft, proved[0])


def order_questions(
    after_verified: OrderHook, when: Callable[[Answers], bool] = lambda answers: True
) -> tuple[Question, ...]:
    """The optional order number and, for an order not yet linked to the chat, its
    e-mail address; `after_verified` runs once the order is proved (or not) to be theirs.
    Both are asked only `when` that holds."""
    return (
        Question(
            "order",
            N_("Order number"),
            N_(
                "What is the order number? It is in your order confirmation e-mail. I use it "
                "to check the warranty."
            ),
            parse=order_lookup,
            invalid=N_(
                "That does not look like an order number (a short code like A-10234). Please "
                "send it again, or skip."
            ),
            skip=N_("I don't have it"),
            when=when,
            after=partial(_check_order, after_verified),
        ),
        Question(
            "order_email",
            N_("Order e-mail"),
            N_(
                "To keep order details private, please send the e-mail address the order was "
                "placed with."
            ),
            parse=email_address,
            invalid=N_(
                "That does not look like an e-mail address. Please send the one on the order."
            ),
            skip=N_("Skip"),
            when=lambda answers: (
                when(answers) and answers.get("order_verified") == OrderCheck.UNPROVED
            ),
            after=partial(_check_email, after_verified),
            editable=False,
        ),
    )


async def _no_follow_up(turn: Turn, draft: Draft, order: Order | None) -> bool:
    return True


def _checks_for_part(answers: Answers) -> tuple[str, ...]:
    return CHECKS.get(answers.get("part", ""), CHECKS["miner"])


async def repair_coverage(
    services: Services, key: ChatKey, answers: Answers, language: str
) -> list[Markup]:
    """The warranty pre-check: what our records say, what the answers void, what is paid."""
    _ = translator(language)
    lines = [_("<b>Warranty pre-check</b>")]
    found = await _machine(services, key, answers)
    if found is None:
        lines.append(
            _(
                "❔ Without a verified order I cannot check the warranty here; our service "
                "team will check it with the serial number."
            )
        )
        covered = None
    else:
        order, item = found
        warranty = machine_warranty(order, item, services.today(), services.order_rules)
        lines.append(
            _("{machine} from order {number}:").format(machine=item.title, number=order.number)
        )
        lines.append(machine_sentence(_, language, warranty))
        covered = warranty.coverage is Coverage.ACTIVE
    void = [q for q in VOID_QUESTIONS if answers.get(q.name) == YES]
    if void:
        lines.append(
            _(
                "⚠️ You answered yes to: {answers}. This voids the warranty, so the repair "
                "would be at your cost."
            ).format(answers=Markup(", ").join(_(q.label) for q in void))
        )
    elif covered:
        lines.append(_("The repair and its parts are free of charge under the warranty."))
    elif covered is False:
        lines.append(
            _("Out of warranty, the repair is at your cost: the team quotes it before repairing.")
        )
    lines.append(_("Shipping the item to us and back, and any customs costs, are paid by you."))
    return lines


async def _machine(
    services: Services, key: ChatKey, answers: Answers
) -> tuple[Order, OrderItem] | None:
    """The verified order's item this ticket is about: the one with the serial number,
    else the one of the model, else the only one."""
    linked = await services.store.linked_orders(key)
    serial = answers.get("serial", "")
    if answers.get("order_verified") == OrderCheck.VERIFIED:
        orders = [order for order in linked if order.number == answers.get("order")]
    else:
        orders = [order for order in linked if order.has_serial(serial)]
    for order in orders:
        for item in order.items:
            if serial.upper() in (s.upper() for s in item.serials):
                return order, item
        model = answers.get("model", "").casefold()
        for item in order.items:
            if model and model in item.model.casefold():
                return order, item
        if len(order.items) == 1:
            return order, order.items[0]
    return None


FORM = Form(
    kind=TicketKind.REPAIR,
    title=N_("Repair ticket"),
    intro=N_(
        "Let's open a repair ticket. I'll ask a few questions and for some photos; "
        "everything is saved as we go, and you can check it all before sending. /cancel "
        "pauses it."
    ),
    questions=(
        Question(
            "brand",
            N_("Brand"),
            N_("Which brand is the machine?"),
            Ask.CHOICE,
            (
                Choice("bitmain", N_("Bitmain Antminer")),
                Choice("whatsminer", N_("MicroBT Whatsminer")),
                Choice("avalon", N_("Canaan Avalon")),
                Choice("other", N_("Another brand")),
            ),
        ),
        Question(
            "model",
            N_("Model"),
            N_("Which model is it? For example <i>S21 200T</i> or <i>M50S</i>."),
            max_chars=60,
        ),
        Question(
            "serial",
            N_("Serial number"),
            N_(
                "What is the machine's serial number (SN)? It is on the sticker on the case. "
                "Type it, or send a photo of the sticker."
            ),
            parse=label_serial,
            invalid=N_(
                "A serial number is 8 to 32 letters and digits, like JYZZB0UBDJBBJ0584. "
                "Please type it again, or send a photo of the sticker."
            ),
            photo_instead=True,
            max_chars=60,
        ),
        *order_questions(_no_follow_up),
        Question("part", N_("Faulty part"), N_("Which part is faulty?"), Ask.CHOICE, PARTS),
        Question(
            "symptoms",
            N_("Symptoms"),
            N_(
                "What happens? Describe the fault: error messages or codes, lights, what the "
                "miner's page shows, and since when."
            ),
            parse=at_least(10),
            invalid=N_("Please describe the fault in a sentence or two."),
            max_chars=2000,
        ),
        Question(
            "checks",
            N_("Checks done"),
            N_("Before sending anything back, let's try what fixes many faults."),
            Ask.CHECKS,
            checks=_checks_for_part,
            editable=False,
        ),
        Question(
            "fault_photos",
            N_("Photos of the fault"),
            N_(
                "Please send photos (or a short video) that show the fault: the error on the "
                "miner's page, the part, any damage. Several at once is fine."
            ),
            Ask.FILES,
            files=Files(
                accepts=frozenset({Accept.IMAGE, Accept.VIDEO}), at_most=10, link_instead=True
            ),
        ),
        *VOID_QUESTIONS,
    ),
    coverage=repair_coverage,
)
