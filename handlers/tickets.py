"""Repair tickets and second returns from the menu to the service team's decision.

The questions live in repair.py and second_return.py and are asked by forms.py; this
module starts and resumes them, submits (exactly once: the button carries the ticket id
and a submitted ticket is never submitted again), lists the customer's tickets
(`/tickets`), lets them revise a ticket until staff confirm it, and runs the staff side:
a card in the customer's topic of the staff chat with the files, and Confirm / Ask for
more / Reject, each recorded with who decided and told to the customer.
"""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup

from domain.tickets import DECIDABLE, REVISABLE, Ticket, TicketKind, TicketStatus, TicketStatusSet
from handlers import forms, repair, second_return
from handlers.engine import Turn
from handlers.faq import handoff_button
from handlers.forms import Draft, Form
from handlers.handoff import customer_translator, in_topic, rep_name, topic_name
from handlers.i18n import N_, Translate, format_date, translator
from handlers.menu import menu_button, stale_button
from handlers.messages import Button, Incoming, Media, MediaKind, Reply

logger = logging.getLogger(__name__)

FORMS = {TicketKind.REPAIR: repair.FORM, TicketKind.SECOND_RETURN: second_return.FORM}
# `minerdesk tickets export` puts the answers in the order the forms ask them.
# (Files questions have their own `media:` columns.)
EXPORT_ANSWER_ORDER = tuple(
    dict.fromkeys(
        q.name for form in FORMS.values() for q in form.questions if q.ask is not forms.Ask.FILES
    )
)
MAX_LISTED = 10

STATUS_LABELS = {
    TicketStatus.DRAFT: N_("draft, not sent yet"),
    TicketStatus.PENDING: N_("pending: waiting for our service team"),
    TicketStatus.NEEDS_INFO: N_("waiting for more information from you"),
    TicketStatus.CONFIRMED: N_("confirmed"),
    TicketStatus.REJECTED: N_("not accepted"),
    TicketStatus.CANCELLED: N_("cancelled"),
}
# The same, in a word or two, for the list of tickets.
SHORT_STATUS_LABELS = {
    TicketStatus.DRAFT: N_("draft"),
    TicketStatus.PENDING: N_("pending"),
    TicketStatus.NEEDS_INFO: N_("needs more info"),
    TicketStatus.CONFIRMED: N_("confirmed"),
    TicketStatus.REJECTED: N_("not accepted"),
    TicketStatus.CANCELLED: N_("cancelled"),
}


def form_for(kind: TicketKind) -> Form:
    return FORMS[kind]


async def start(turn: Turn, args: list[str]) -> None:
    """`flow:repair_ticket`: a new repair, a second return, or the tickets so far."""
    _ = turn._
    turn.state.reset()
    turn.say(
        _("What do you need?"),
        [Button(_("🔧 A repair: open a new ticket"), "ticket:new:repair")],
        [Button(_("🔁 A second return: a repaired part failed again"), "ticket:new:second_return")],
        [Button(_("📋 My tickets"), "ticket:list")],
        [menu_button(turn)],
    )


async def form_step(turn: Turn, args: list[str]) -> None:
    """A message while the chat is filling in a ticket."""
    found = await _current(turn)
    if found is not None:
        await forms.on_message(turn, *found)


async def form_button(turn: Turn, args: list[str]) -> None:
    """`form:...`: a button of the question asked or of the review."""
    found = await _current(turn)
    if found is not None:
        await forms.on_button(turn, *found, args)


async def _current(turn: Turn) -> tuple[Form, Draft] | None:
    """The form and draft the chat is in; None (after saying so) if it can no longer change."""
    ticket_id = turn.state.data.get("ticket")
    ticket = await turn.services.store.ticket(ticket_id) if ticket_id else None
    revising = bool(turn.state.data.get("revising"))
    allowed = REVISABLE if revising else {TicketStatus.DRAFT}
    if ticket is None or ticket.key != turn.key or ticket.status not in allowed:
        turn.state.reset()
        turn.say(
            turn._("This ticket can no longer be changed. Send /tickets to see your tickets."),
            [menu_button(turn)],
        )
        return None
    return form_for(ticket.kind), Draft(turn, ticket)


async def ticket_button(turn: Turn, args: list[str]) -> None:
    """`ticket:<action>[:<id or kind>]` from the customer."""
    match args:
        case ["new", kind] if kind in TicketKind.__members__.values():
            await _new(turn, TicketKind(kind))
        case ["fresh", kind] if kind in TicketKind.__members__.values():
            await _open(turn, TicketKind(kind), replacing=True)
        case ["list"]:
            await list_tickets(turn, [])
        case [action, ticket_id] if action in CUSTOMER_ACTIONS:
            ticket = await turn.services.store.ticket(ticket_id)
            if ticket is None or ticket.key != turn.key:
                # Someone else's ticket id, or a forged one: nothing is revealed.
                await stale_button(turn, args)
                return
            await CUSTOMER_ACTIONS[action](turn, ticket)
        case _:
            await stale_button(turn, args)


async def _new(turn: Turn, kind: TicketKind) -> None:
    _ = turn._
    drafts = [
        t
        for t in await turn.services.store.tickets_of(turn.key)
        if t.kind is kind and t.status is TicketStatus.DRAFT
    ]
    if not drafts:
        await _open(turn, kind)
        return
    draft = drafts[0]
    turn.say(
        _("You have an unfinished {title} from {day}. Continue it, or start a new one?").format(
            title=_(form_for(kind).title).lower(),
            day=format_date(
                draft.created_at.astimezone(turn.services.zone).date(), turn.state.language
            ),
        ),
        [Button(_("▶️ Continue it"), f"ticket:continue:{draft.id}")],
        [Button(_("🆕 Start a new one"), f"ticket:fresh:{kind}")],
    )


async def _open(turn: Turn, kind: TicketKind, replacing: bool = False) -> None:
    form = form_for(kind)
    if replacing:
        for old in await turn.services.store.tickets_of(turn.key):
            if old.kind is kind and old.status is TicketStatus.DRAFT:
                _set_status(turn, old, TicketStatus.CANCELLED, "customer", "replaced by a new one")
    draft = forms.open_ticket(turn, form)
    forms.enter(turn, draft)
    logger.info("ticket.opened chat=%s ticket=%s kind=%s", turn.shown_chat_id, draft.id, kind)
    turn.say(forms.form_text(turn, form.intro))
    await forms.advance(turn, form, draft)


async def _continue(turn: Turn, ticket: Ticket) -> None:
    if ticket.status is not TicketStatus.DRAFT:
        await _show(turn, ticket)
        return
    form, draft = form_for(ticket.kind), Draft(turn, ticket)
    forms.enter(turn, draft)
    turn.say(turn._("Let's go on with your {title}.").format(title=turn._(form.title).lower()))
    await forms.advance(turn, form, draft)


async def _revise(turn: Turn, ticket: Ticket) -> None:
    """Change a submitted ticket until staff confirm it: the review, with Send changes."""
    if ticket.status not in (TicketStatus.PENDING, TicketStatus.NEEDS_INFO):
        turn.say(
            turn._(
                "This ticket can no longer be changed ({status}). A sales rep can help with "
                "anything about it."
            ).format(status=turn._(STATUS_LABELS[ticket.status])),
            [handoff_button(turn)],
            [menu_button(turn)],
        )
        return
    form, draft = form_for(ticket.kind), Draft(turn, ticket)
    forms.enter(turn, draft, revising=True)
    turn.say(
        turn._(
            "Change what you need with the buttons below; each change is saved at once. "
            "Press 📨 Send the changes when you are done, so our team sees them."
        )
    )
    await forms.advance(turn, form, draft)


async def _submit(turn: Turn, ticket: Ticket) -> None:
    _ = turn._
    form = form_for(ticket.kind)
    revising = turn.state.data.get("revising") and turn.state.data.get("ticket") == ticket.id
    if ticket.status is TicketStatus.DRAFT:
        draft = Draft(turn, ticket)
        if forms.next_question(form, draft, None) is not None:
            forms.enter(turn, draft)
            await forms.advance(turn, form, draft)
            return
        _set_status(turn, ticket, TicketStatus.PENDING, "customer")
        turn.state.reset()
        logger.info("ticket.submitted chat=%s ticket=%s", turn.shown_chat_id, ticket.id)
        turn.say(
            _(
                "✅ Your {title} is submitted: ticket <b>{id}</b>, status <b>pending</b>.\n\n"
                "Our service team checks it, usually within one business day, and I will "
                "tell you here. Until they confirm it you can still change it: /tickets."
            ).format(title=_(form.title).lower(), id=ticket.id),
            [Button(_("📋 My tickets"), "ticket:list")],
            [menu_button(turn)],
        )
        await _post_to_staff(turn, ticket, "🆕", "New")
        return
    if revising and ticket.status in (TicketStatus.PENDING, TicketStatus.NEEDS_INFO):
        changed = [
            _(q.label)
            for name in turn.state.data.get("changed", [])
            if (q := form.question(name)) is not None
        ]
        turn.state.reset()
        if not changed:
            turn.say(_("Nothing was changed; ticket {id} stays as it was.").format(id=ticket.id))
            return
        _set_status(
            turn, ticket, TicketStatus.PENDING, "customer", "changed: " + ", ".join(changed)
        )
        logger.info("ticket.revised chat=%s ticket=%s", turn.shown_chat_id, ticket.id)
        turn.say(
            _("✅ Changes sent: ticket <b>{id}</b> is pending again.").format(id=ticket.id),
            [Button(_("📋 My tickets"), "ticket:list")],
            [menu_button(turn)],
        )
        await _post_to_staff(turn, ticket, "✏️", "Revised (" + ", ".join(changed) + ")")
        return
    # A second tap on Submit, or an old button: the ticket went once and that is that.
    turn.notice = _("Ticket {id} was already sent.").format(id=ticket.id)
    if not turn.state.flow:
        await _show(turn, ticket)


async def _discard(turn: Turn, ticket: Ticket) -> None:
    if ticket.status is not TicketStatus.DRAFT:
        await _show(turn, ticket)
        return
    _set_status(turn, ticket, TicketStatus.CANCELLED, "customer", "discarded")
    turn.state.reset()
    turn.replace(turn._("🗑 The draft is discarded."), [menu_button(turn)])


async def _show(turn: Turn, ticket: Ticket) -> None:
    """One ticket as the customer sees it, with what they can do next."""
    _ = turn._
    if turn.state.data.get("ticket") == ticket.id:
        turn.state.reset()
    form = form_for(ticket.kind)
    lines: list[str] = [
        _("{title} <b>{id}</b>").format(title=_(form.title), id=ticket.id),
        _("Status: {status}").format(status=_(STATUS_LABELS[ticket.status])),
    ]
    if ticket.staff_note and ticket.status in (TicketStatus.NEEDS_INFO, TicketStatus.REJECTED):
        lines.append(_("Our team wrote: <i>{note}</i>").format(note=ticket.staff_note))
    lines += ["", *forms.summary_lines(_, form, ticket.answers, ticket.media)]
    rows = []
    if ticket.status is TicketStatus.DRAFT:
        rows.append([Button(_("▶️ Continue it"), f"ticket:continue:{ticket.id}")])
    elif ticket.status in (TicketStatus.PENDING, TicketStatus.NEEDS_INFO):
        rows.append([Button(_("✏️ Change it"), f"ticket:revise:{ticket.id}")])
    rows.append([Button(_("📋 My tickets"), "ticket:list")])
    rows.append([menu_button(turn)])
    turn.say(Markup("\n").join(lines), *rows)


CUSTOMER_ACTIONS = {
    "continue": _continue,
    "revise": _revise,
    "submit": _submit,
    "discard": _discard,
    "show": _show,
}


async def list_tickets(turn: Turn, args: list[str]) -> None:
    """`/tickets`: the chat's tickets with their status."""
    _ = turn._
    tickets = [
        t
        for t in await turn.services.store.tickets_of(turn.key)
        if t.status is not TicketStatus.CANCELLED
    ]
    if not tickets:
        turn.say(
            _("You have no tickets yet."),
            [Button(_("🔧 Repair / second return"), "flow:repair_ticket")],
            [menu_button(turn)],
        )
        return
    rows = [
        [
            Button(
                f"{t.id} · {_(form_for(t.kind).title)} · {_(SHORT_STATUS_LABELS[t.status])}",
                f"ticket:show:{t.id}",
            )
        ]
        for t in tickets[:MAX_LISTED]
    ]
    turn.say(_("Your tickets:"), *rows, [menu_button(turn)])


def _set_status(
    turn: Turn, ticket: Ticket, status: TicketStatus, actor: str, detail: str = ""
) -> None:
    turn.records.append(TicketStatusSet(ticket.id, status, actor, turn.services.now(), detail))


# Staff side. Staff read English; what reaches the customer is in the customer's language.


async def staff_card(turn: Turn, ticket: Ticket, heading: str, customer: str = "") -> Markup:
    """The ticket for the service team: who, what, the warranty, every answer in full."""
    form = form_for(ticket.kind)
    answers, services = ticket.answers, turn.services
    lines: list[str] = [
        Markup("{} <b>{} {}</b>").format(heading, form.title, ticket.id),
        Markup("Customer: {}id {} ({})").format(
            customer, services.shown_chat_id(ticket.key), ticket.key.channel
        ),
    ]
    lines += forms.summary_lines(translator("en"), form, answers, ticket.media, full=True)
    lines += ["", *await form.coverage(services, ticket.key, answers, "en")]
    return Markup("\n").join(lines)


def _decision_buttons(ticket: Ticket) -> tuple[tuple[Button, ...], ...]:
    return (
        (Button("✅ Confirm", f"ticket:confirm:{ticket.id}"),),
        (
            Button("❓ Ask for more", f"ticket:more:{ticket.id}"),
            Button("⛔ Reject", f"ticket:reject:{ticket.id}"),
        ),
    )


async def _post_to_staff(turn: Turn, ticket: Ticket, icon: str, what: str) -> None:
    """The card, then the files as albums, in the customer's topic of the staff chat."""
    staff_chat = turn.services.staff.chat
    if staff_chat is None:
        return
    # Answers and files were stored by earlier turns; this one only changes the status.
    who = turn.incoming.user_name or "–"
    if turn.incoming.username:
        who += f" (@{turn.incoming.username})"
    card = await staff_card(turn, ticket, f"{icon} {what}:", f"{who}, ")
    opens = topic_name(turn)
    turn.replies.append(
        Reply(
            card,
            _decision_buttons(ticket),
            to=staff_chat,
            topic_of=turn.key,
            open_topic=opens,
        )
    )
    # Files on the customer's channel, which the staff chat's channel fetches if not its own.
    files = [
        Media(
            MediaKind(m.kind),
            m.file_ref,
            mime=m.mime,
            file_name=m.file_name,
            channel=ticket.key.channel,
        )
        for name in ticket.media
        for m in ticket.media[name]
        if m.file_ref and m.kind in MediaKind.__members__.values()
    ]
    if files:
        turn.replies.append(
            Reply(
                Markup("Files of {}").format(ticket.id),
                album=tuple(files),
                to=staff_chat,
                topic_of=turn.key,
                open_topic=opens,
            )
        )


async def staff_button(turn: Turn, args: list[str]) -> None:
    """`ticket:<confirm|more|reject>:<id>` on a ticket card in the staff chat."""
    match args:
        case [("confirm" | "more" | "reject") as action, ticket_id]:
            ticket = await turn.services.store.ticket(ticket_id)
        case _:
            turn.notice = "Unknown button."
            return
    if ticket is None:
        turn.notice = "No such ticket."
        return
    rep = rep_name(turn)
    if ticket.status not in DECIDABLE:
        turn.notice = f"Already {ticket.status.replace('_', ' ')}" + (
            f" by {ticket.decided_by}." if ticket.decided_by else "."
        )
        return
    if action == "confirm":
        await _decide(turn, ticket, TicketStatus.CONFIRMED, "", turn.incoming.message_id)
        return
    # Asking for more and rejecting need words for the customer: the rep's next message in
    # the card's topic (in another topic the rep is talking to another customer).
    waiting = turn.state.data.setdefault("awaiting", {})
    waiting[turn.incoming.user_id] = {
        "ticket": ticket.id,
        "action": action,
        "card": turn.incoming.message_id,
        "thread": turn.incoming.thread_id,
    }
    question = (
        "what the customer should add or change"
        if action == "more"
        else "why the ticket is rejected"
    )
    turn.replies.append(
        in_topic(
            turn.key,
            ticket.key,
            Markup(
                "✍️ {}: send {} as your next message in this chat; it goes to the customer as "
                "it is. /cancel to drop it."
            ).format(rep, question),
        )
    )


async def staff_reply(turn: Turn) -> bool:
    """A rep's message that answers "what should the customer add" or "why rejected"."""
    waiting = turn.state.data.get("awaiting", {})
    pending = waiting.get(turn.incoming.user_id)
    if pending is None or not _answers_card(turn.incoming, pending):
        return False
    ticket = await turn.services.store.ticket(pending["ticket"])
    staff_chat, incoming = turn.key, turn.incoming
    if incoming.command == "cancel" or ticket is None:
        del waiting[incoming.user_id]
        turn.say(Markup("Dropped: nothing was sent."))
        return True
    text = (incoming.text or "").strip()
    if not text or incoming.command is not None:
        turn.replies.append(
            in_topic(
                staff_chat, ticket.key, Markup("Please type it as a text message (or /cancel).")
            )
        )
        return True
    del waiting[incoming.user_id]
    if ticket.status not in DECIDABLE:
        already = ticket.status.replace("_", " ")
        late = Markup("Not sent: ticket {} is already {}.").format(ticket.id, already)
        turn.replies.append(in_topic(staff_chat, ticket.key, late))
        return True
    status = TicketStatus.NEEDS_INFO if pending["action"] == "more" else TicketStatus.REJECTED
    await _decide(turn, ticket, status, text, pending.get("card"))
    return True


def _answers_card(incoming: Incoming, pending: dict[str, Any]) -> bool:
    """Whether a rep's message is where the decision's words are expected: in the card's
    topic; in a chat without topics, anything but a reply to some other message (which is
    how reps answer customers there)."""
    if incoming.thread_id != pending.get("thread"):
        return False
    return incoming.thread_id is not None or incoming.reply_to in (None, pending.get("card"))


async def _decide(
    turn: Turn, ticket: Ticket, status: TicketStatus, note: str, card_id: str | None
) -> None:
    """Record the decision with who made it, mark the card, and tell the customer."""
    rep = rep_name(turn)
    # A rep who decides otherwise is no longer asked for the words of an earlier button.
    turn.state.data.get("awaiting", {}).pop(turn.incoming.user_id, None)
    _set_status(turn, ticket, status, rep, note)
    logger.info("ticket.decided ticket=%s status=%s", ticket.id, status)
    verdict = {
        TicketStatus.CONFIRMED: "✅ Confirmed",
        TicketStatus.NEEDS_INFO: "❓ More asked",
        TicketStatus.REJECTED: "⛔ Rejected",
    }[status]
    decided = Markup("{} by {}").format(verdict, rep)
    if note:
        decided += Markup(": {}").format(note)
    card = await staff_card(turn, ticket, "🔧")
    if card_id is not None:
        turn.replies.append(
            Reply(Markup("{}\n\n<b>{}</b>").format(card, decided), replaces=card_id)
        )
    if status is not TicketStatus.CONFIRMED:
        sent = Markup("📨 Sent to the customer. {}").format(decided)
        turn.replies.append(in_topic(turn.key, ticket.key, sent))
    _ = await customer_translator(turn, ticket.key)
    turn.replies.append(_customer_notice(_, ticket, status, note))


def _customer_notice(_: Translate, ticket: Ticket, status: TicketStatus, note: str) -> Reply:
    title = _(form_for(ticket.kind).title).lower()
    menu = Button(_("☰ Main menu"), "menu:show")
    match status:
        case TicketStatus.CONFIRMED if ticket.kind is TicketKind.SECOND_RETURN:
            text = _(
                "✅ Our service team confirmed your {title} <b>{id}</b>. Please send us a copy "
                "of the shipment invoice with the ticket ID; we check the part as soon as it "
                "arrives."
            )
            rows: tuple[tuple[Button, ...], ...] = ((menu,),)
        case TicketStatus.CONFIRMED:
            text = _(
                "✅ Our service team confirmed your {title} <b>{id}</b>. They will send you the "
                "address and how to pack the item; please write the ticket ID on the parcel."
            )
            rows = ((menu,),)
        case TicketStatus.NEEDS_INFO:
            text = _(
                "❓ Our service team needs more for your {title} <b>{id}</b>:\n\n<i>{note}</i>"
                "\n\nPress the button to update the ticket."
            )
            rows = ((Button(_("✏️ Update the ticket"), f"ticket:revise:{ticket.id}"),), (menu,))
        case _:
            text = _(
                "⛔ Our service team could not accept your {title} <b>{id}</b>:\n\n<i>{note}</i>"
                "\n\nA sales rep can help with any question about it."
            )
            rows = ((Button(_("👤 Talk to a human"), "flow:handoff"),), (menu,))
    body = text.format(title=title, id=ticket.id, note=note)
    return Reply(body, rows, to=ticket.key)
