"""Which handler answers which command, button and message."""

from __future__ import annotations

from handlers import faq, flows, forms, handoff, menu, orders, staff, tickets
from handlers.engine import Router


def build_router() -> Router:
    router = Router()
    router.commands = {
        "start": menu.start,
        "menu": menu.show_menu,
        "help": menu.help_text,
        "cancel": menu.cancel,
        "orders": orders.list_orders,
        "tickets": tickets.list_tickets,
        "language": menu.choose_language,
    }
    router.payloads = {
        "menu": menu.menu_choice,
        "lang": menu.language_button,
        "faq": faq.faq_button,
        "flow": flows.start_flow,
        "orders": orders.orders_button,
        "rate": handoff.rate,
        "ticket": tickets.ticket_button,
        "form": tickets.form_button,
    }
    router.flow_steps = {
        faq.FLOW: faq.faq_step,
        orders.FLOW: orders.order_step,
        forms.FLOW: tickets.form_step,
    }
    # An open handoff relays everything first; asking for a person works from anywhere.
    router.interceptors = [handoff.relay_customer, handoff.asked_in_words]
    router.staff = staff.staff_event
    router.text = faq.answer_question
    router.media = menu.unsupported_media
    router.unknown_command = menu.unknown_command
    router.stale_payload = menu.stale_button
    return router
