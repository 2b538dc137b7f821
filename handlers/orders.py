"""Order tracking and the warranty check (diagram: orders.mmd).

Both start by finding the customer's order, by number or by a machine's serial number,
and proving it is theirs with the order's e-mail address. A verified order is linked to
the chat, so later look-ups (and `/orders`) skip the question. Nothing about an order
reaches a chat that has not proved it owns it: an unknown order and a wrong e-mail get
the same answer, and too many wrong answers in an hour pause look-ups for the chat.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from markupsafe import Markup

from domain.identifiers import email_address, order_lookup
from domain.order_dates import Expectation, Stage, expect, last_tracking_news, tracking_is_stale
from domain.orders import ON_THE_WAY, Order, OrderRules, OrderStatus
from domain.privacy import mask_email
from faq.schema import Action
from handlers.engine import Services, Turn
from handlers.faq import ACTION_LABELS, entry_button, handoff_button
from handlers.i18n import Translate, format_date, translator
from handlers.menu import menu_button, stale_button
from handlers.messages import Button, Reply
from handlers.ownership import locked_out_minutes, owned_orders, prove_with_email
from handlers.warranty import warranty_card

logger = logging.getLogger(__name__)

FLOW = "orders"
TRACK, WARRANTY = "track", "warranty"
PURPOSES = (TRACK, WARRANTY)
MAX_LINKED_SHOWN = 8


def status_label(_: Translate, status: OrderStatus) -> Markup:
    return {
        OrderStatus.PAID: _("paid"),
        OrderStatus.PRE_ORDER: _("pre-order"),
        OrderStatus.PROCESSING: _("being prepared"),
        OrderStatus.SHIPPED: _("shipped"),
        OrderStatus.IN_TRANSIT: _("in transit"),
        OrderStatus.IN_CUSTOMS: _("in customs clearance"),
        OrderStatus.DELIVERED: _("delivered"),
        OrderStatus.CANCELLED: _("cancelled"),
        OrderStatus.REFUNDED: _("refunded"),
    }[status]


async def start_tracking(turn: Turn, args: list[str]) -> None:
    await choose_order(turn, TRACK)


async def start_warranty_check(turn: Turn, args: list[str]) -> None:
    await choose_order(turn, WARRANTY)


async def choose_order(turn: Turn, purpose: str) -> None:
    """Offer the chat's linked orders, or ask for an order number (or a serial number)."""
    turn.state.reset()
    if await _locked_out(turn):
        return
    _ = turn._
    turn.state.flow, turn.state.step = FLOW, "waiting_for_order"
    turn.state.data["purpose"] = purpose
    linked = await turn.services.store.linked_orders(turn.key)
    if not linked:
        turn.say(_ask_for_order(_, purpose), [menu_button(turn)])
        return
    rows = [
        [Button(_order_title(_, order), f"orders:{purpose}:{order.number}")]
        for order in linked[:MAX_LINKED_SHOWN]
    ]
    turn.say(
        _("Which order? Choose it below, or send another order number."),
        *rows,
        [menu_button(turn)],
    )


def _ask_for_order(_: Translate, purpose: str) -> Markup:
    if purpose == WARRANTY:
        return _(
            "Please send your order number, or the serial number (SN) from the sticker on the "
            "machine."
        )
    return _("Please send your order number. You will find it in the order confirmation e-mail.")


async def order_step(turn: Turn, args: list[str]) -> None:
    """A message while the flow waits for an order number or the order's e-mail."""
    _ = turn._
    text = (turn.incoming.text or "").strip()
    purpose = turn.state.data.get("purpose", TRACK)
    if turn.incoming.media or not text:
        turn.say(_("Please type it as a text message."), [menu_button(turn)])
        return
    if turn.state.step == "waiting_for_email":
        await _check_email(turn, text)
        return
    # Order numbers and serials are short codes; anything else is not worth a look-up.
    lookup = order_lookup(text)
    if lookup is None:
        turn.say(
            _(
                "That does not look like an order number. It is a short code of letters and "
                "digits, like A-10234. Please send it again."
            ),
            [menu_button(turn)],
        )
        return
    owned = await owned_orders(turn, lookup)
    if owned:
        _show(turn, owned[0], purpose, lookup)
        return
    if await _locked_out(turn, lookup):
        return
    turn.state.step = "waiting_for_email"
    turn.state.data["lookup"] = lookup
    turn.say(
        _(
            "To keep order details private, please send the e-mail address the order was "
            "placed with."
        ),
        [menu_button(turn)],
    )


async def _check_email(turn: Turn, email: str) -> None:
    _ = turn._
    if email_address(email) is None:
        turn.say(
            _("That does not look like an e-mail address. Please send the one on the order."),
            [menu_button(turn)],
        )
        return
    lookup = turn.state.data.get("lookup", "")
    purpose = turn.state.data.get("purpose", TRACK)
    if await _locked_out(turn, lookup):
        return
    proved = await prove_with_email(turn, lookup, email)
    if isinstance(proved, int):
        turn.state.reset()
        say_locked_out(turn, proved)
    elif not proved:
        turn.state.step = "waiting_for_order"
        turn.state.data.pop("lookup", None)
        turn.say(
            _(
                "I could not find an order with that number and e-mail address. Please check "
                "both and send the order number again."
            ),
            [handoff_button(turn)],
            [menu_button(turn)],
        )
    else:
        _show(turn, proved[0], purpose, lookup)


async def _locked_out(turn: Turn, lookup: str | None = None) -> bool:
    """After too many wrong answers in an hour, pause look-ups until the oldest ages out."""
    minutes = await locked_out_minutes(turn, lookup)
    if minutes is None:
        return False
    turn.state.reset()
    say_locked_out(turn, minutes)
    return True


def say_locked_out(turn: Turn, minutes: int) -> None:
    turn.say(
        turn._(
            "For your security, order look-ups are paused in this chat after several "
            "unsuccessful attempts. Please try again in about {minutes} minutes, or talk to a "
            "sales rep."
        ).format(minutes=minutes),
        [handoff_button(turn)],
        [menu_button(turn)],
    )


def _show(turn: Turn, order: Order, purpose: str, lookup: str | None = None) -> None:
    turn.state.reset()
    if purpose == WARRANTY:
        serial = lookup if lookup and order.has_serial(lookup) else None
        _say_warranty(turn, order, serial)
    else:
        reply = status_card(turn.state.language, order, turn.services)
        turn.replies.append(reply)


def _say_warranty(turn: Turn, order: Order, serial: str | None) -> None:
    _ = turn._
    services = turn.services
    text = warranty_card(
        _,
        turn.state.language,
        order,
        services.today(),
        services.order_rules,
        services.contacts,
        serial,
    )
    turn.say(
        text,
        [Button(_(ACTION_LABELS[Action.REPAIR_TICKET]), f"flow:{Action.REPAIR_TICKET}")],
        [_order_handoff_button(_, order)],
        [menu_button(turn)],
    )


def status_card(language: str, order: Order, services: Services) -> Reply:
    """Where the order is, what happened so far and what to expect, with what can help."""
    _ = translator(language)
    today = services.today()
    expectation = expect(order, today, services.order_rules)
    stale = tracking_is_stale(order, services.now(), services.order_rules)
    lines: list[str] = [
        _("📦 <b>Order {number}</b>: {status}").format(
            number=order.number, status=status_label(_, order.status)
        ),
        _("Placed with {email}").format(email=mask_email(order.email)),
        "",
    ]
    lines += [_item_line(_, item.quantity, item.title, item.condition) for item in order.items]
    if order.history:
        lines += ["", _("<b>So far</b>")]
        lines += [
            Markup("• {}: {}").format(
                format_date(change.at.astimezone(services.zone).date(), language),
                status_label(_, change.status),
            )
            for change in order.history
        ]
    if order.carrier or order.tracking_number:
        lines += [
            "",
            _("Carrier: {carrier}, tracking number <code>{tracking}</code>").format(
                carrier=order.carrier or "–", tracking=order.tracking_number or "–"
            ),
        ]
    lines += ["", _expectation_text(_, language, order, expectation, services)]
    if stale:
        news = last_tracking_news(order)
        days = (services.now() - news).days if news else services.order_rules.stale_after_days
        lines += [
            "",
            _(
                "There has been no tracking update for {days} days. We are sorry about that: "
                "a sales rep can check with the carrier for you."
            ).format(days=days),
        ]
    rows = []
    if stale or expectation.overdue:
        rows.append([_order_handoff_button(_, order)])
    if order.status in ON_THE_WAY and not order.ddp:
        rows.append([Button(_("🛃 Customs questions"), "orders:customs")])
    if order.status in ON_THE_WAY or order.status is OrderStatus.DELIVERED:
        rows.append([Button(_("🛡 Warranty"), f"orders:{WARRANTY}:{order.number}")])
    rows.append([Button(_("☰ Main menu"), "menu:show")])
    return Reply(Markup("\n").join(lines), tuple(tuple(row) for row in rows))


def _item_line(_: Translate, quantity: int, title: str, condition: str) -> Markup:
    conditions = {"new": _("new"), "used": _("used"), "refurbished": _("refurbished")}
    return Markup("• {} × {} ({})").format(quantity, title, conditions[condition])


def _expectation_text(
    _: Translate, language: str, order: Order, expectation: Expectation, services: Services
) -> Markup:
    """What the customer can expect next, by the stage the order is at."""
    rules = services.order_rules
    dates = (expectation.earliest, expectation.latest)
    span = ExpectedSpan(*(format_date(day, language) if day else "–" for day in dates))
    match expectation.stage:
        case Stage.DISPATCH:
            return _dispatch_text(_, expectation, rules, span)
        case Stage.MANUFACTURER:
            return _manufacturer_text(_, expectation, span)
        case Stage.DELIVERY:
            return _delivery_text(_, order, expectation, rules, span)
        case Stage.DELIVERED:
            return _("Delivered on {date}. Please check the machines within 24 hours.").format(
                date=span.latest
            )
        case _:
            return _("This order is closed. A sales rep can help with any question about it.")


class ExpectedSpan(NamedTuple):
    """An expectation's dates as the customer reads them ("–" when unknown)."""

    earliest: str
    latest: str


def _dispatch_text(
    _: Translate, expectation: Expectation, rules: OrderRules, span: ExpectedSpan
) -> Markup:
    low, high = rules.dispatch_business_days
    if expectation.overdue:
        return _(
            "Dispatch is taking longer than the usual {low}–{high} business days. We are "
            "sorry for the wait: a sales rep can tell you more."
        ).format(low=low, high=high)
    if expectation.earliest:
        return _(
            "Machines in stock are dispatched within {low}–{high} business days of payment: "
            "expect dispatch between {earliest} and {latest}."
        ).format(low=low, high=high, earliest=span.earliest, latest=span.latest)
    return _("We will dispatch it as soon as it is ready and tell you here.")


def _manufacturer_text(_: Translate, expectation: Expectation, span: ExpectedSpan) -> Markup:
    if expectation.overdue:
        return _(
            "The manufacturer's expected date ({date}) has passed. We ship as soon as the "
            "machines reach us; a sales rep can tell you the latest."
        ).format(date=span.latest)
    if expectation.latest:
        return _(
            "This is a pre-order: the manufacturer expects to ship on {date}, and we "
            "dispatch as soon as the machines reach us."
        ).format(date=span.latest)
    return _("This is a pre-order: we will tell you when the manufacturer confirms a date.")


def _delivery_text(
    _: Translate, order: Order, expectation: Expectation, rules: OrderRules, span: ExpectedSpan
) -> Markup:
    if expectation.overdue:
        return _(
            "Delivery is taking longer than expected ({date} at the latest). We are sorry: "
            "a sales rep can check it with the carrier."
        ).format(date=span.latest)
    if order.ddp and expectation.latest:
        return _(
            "Expected delivery around {date}: DDP parcels take about {days} business days, "
            "and we clear customs for you."
        ).format(date=span.latest, days=rules.ddp_delivery_business_days)
    if expectation.latest:
        low, high = rules.delivery_business_days
        return _(
            "Expected delivery between {earliest} and {latest} ({low}–{high} business days "
            "after shipment)."
        ).format(earliest=span.earliest, latest=span.latest, low=low, high=high)
    return _("It is on its way; we will tell you here when it moves on.")


def _order_handoff_button(_: Translate, order: Order) -> Button:
    return Button(_("👤 Ask a sales rep about this order"), f"flow:handoff:{order.number}")


def _order_title(_: Translate, order: Order) -> str:
    """A button's label: plain text, so the template is filled as a plain string."""
    return str(_("Order {number} ({status})")).format(
        number=order.number, status=status_label(_, order.status)
    )


async def orders_button(turn: Turn, args: list[str]) -> None:
    """`orders:<purpose>:<number>` for a linked order, `orders:customs`."""
    match args:
        case [purpose, number] if purpose in PURPOSES:
            linked = {o.number: o for o in await turn.services.store.linked_orders(turn.key)}
            if number not in linked:
                # A forged or outdated payload must not reveal an order.
                await stale_button(turn, args)
                return
            _show(turn, linked[number], purpose)
        case ["customs"]:
            entries = [e for e in turn.services.faq.kb.entries if e.category == "customs"]
            turn.say(
                turn._("Questions customers often ask about customs:"),
                *[[entry_button(turn, entry)] for entry in entries],
                [menu_button(turn)],
            )
        case _:
            await stale_button(turn, args)


async def list_orders(turn: Turn, args: list[str]) -> None:
    """`/orders`: the orders this chat has proved it owns."""
    _ = turn._
    linked = await turn.services.store.linked_orders(turn.key)
    if not linked:
        turn.say(
            _(
                "No orders are linked to this chat yet. Choose 📦 Track my order and I will "
                "look yours up."
            ),
            [Button(_("📦 Track my order"), "flow:track_order")],
        )
        return
    turn.say(
        _("Your orders:"),
        *[[Button(_order_title(_, o), f"orders:{TRACK}:{o.number}")] for o in linked],
        [menu_button(turn)],
    )


def status_notice(order: Order, language: str, services: Services) -> Reply:
    """The message a linked chat gets when its order's status changes."""
    _ = translator(language)
    card = status_card(language, order, services)
    heading = _("🔔 Update on your order {number}: now {status}.").format(
        number=order.number, status=status_label(_, order.status)
    )
    return Reply(Markup("{}\n\n{}").format(heading, card.text), card.buttons)
