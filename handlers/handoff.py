"""Handing a customer to a sales rep in the staff chat, and taking them back (diagram:
handoff.mmd).

The staff chat is a supergroup with topics, on its own channel (Telegram) whatever channel
the customer writes on: each customer gets a topic, opened with a context card on their
first handoff and reused later. While a handoff is open the bot
relays: customer messages go to the topic, staff messages in the topic go to the customer
as the company (on the same channel as a copy, across channels as their text and files),
and the bot says nothing itself except to `/cancel`. Reps use `/claim`, `/close`, `/note`
and `/phone` in the topic. Without topics, staff answer by replying to the
relayed messages instead.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime

from markupsafe import Markup, escape

from domain.chats import ChatKey
from domain.handoffs import Handoff, HandoffOpened, HandoffStatus, HandoffUpdate, StaffNote
from domain.privacy import mask_email, mask_phone
from domain.tickets import OPEN as OPEN_TICKETS
from handlers.engine import Services, Turn
from handlers.i18n import Translate, describe_hours, format_date, translator
from handlers.menu import main_menu, menu_button, stale_button
from handlers.messages import Button, Incoming, Reply

logger = logging.getLogger(__name__)

# Asking for a person in so many words, in the languages customers write. Only short
# messages count: a long question that mentions a "manager" is still a question.
_ASKS_FOR_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect)\w*\s+(to|with)\s+(a\s+|an\s+|the\s+|your\s+)?"
    r"(human|person|people|someone|agent|operator|manager|sales\s*(rep|man|person)|staff)\b"
    r"|\b(real|live)\s+(person|human|agent|support)\b"
    r"|\b(human|operator|agent)\s*(please|pls|plz)?[\s!.]*$"
    r"|^\s*(human|operator|agent|manager)\s*$"
    r"|оператор|менеджер|живой человек|живым человеком|позовите человека|с человеком"
    r"|人工|客服|真人",
    re.IGNORECASE,
)
MAX_TRIGGER_CHARS = 80
CONTEXT_LINES = 8
RATINGS = range(1, 6)


def asks_for_human(text: str) -> bool:
    """Whether a short message asks for a person rather than asking a question."""
    return len(text) <= MAX_TRIGGER_CHARS and bool(_ASKS_FOR_HUMAN.search(text))


async def start_handoff(turn: Turn, args: list[str]) -> None:
    """`flow:handoff[:<order number>]`: the menu, answer buttons and order cards. Only an
    order the chat proved it owns goes on the card: a payload can be forged."""
    linked = {order.number for order in await turn.services.store.linked_orders(turn.key)}
    order_number = args[0] if args and args[0] in linked else None
    if args and order_number is None:
        logger.warning("handoff.unverified_order_ignored chat=%s", turn.shown_chat_id)
    await open_handoff(turn, "asked" if order_number is None else "order", order_number)


async def open_handoff(turn: Turn, reason: str, order_number: str | None = None) -> None:
    """Pass the customer to staff: tell them who answers when, and post the context card."""
    _ = turn._
    services = turn.services
    turn.state.reset()
    staff_chat = services.staff.chat
    if staff_chat is None:
        turn.say(
            _("Our team answers by e-mail at {email}. Please write to them there.").format(
                email=services.contacts.get("support_email", "")
            ),
            [menu_button(turn)],
        )
        return
    if await services.store.open_handoff(turn.key) is not None:
        turn.say(_("You are already talking with our team: just write here."))
        return
    now = services.now()
    turn.records.append(HandoffOpened(turn.key, reason, now, order_number, turn.incoming.phone))
    turn.say(_expectation(turn.state.language, services, now))
    card = await _context_card(turn, reason, order_number)
    turn.replies.append(Reply(card, to=staff_chat, topic_of=turn.key, open_topic=topic_name(turn)))
    logger.info("handoff.opened chat=%s reason=%s", services.shown_chat_id(turn.key), reason)


def _expectation(language: str, services: Services, now: datetime) -> Markup:
    _ = translator(language)
    hours = services.staff.hours
    if hours.is_open(now):
        when = _("A sales rep usually answers within {minutes} minutes.").format(
            minutes=services.staff.reply_within_minutes
        )
    else:
        opening = hours.next_opening(now)
        when = _(
            "Our team is offline now (hours: {hours}); a sales rep will answer after we open "
            "on {day} at {time}."
        ).format(
            hours=describe_hours(hours, language),
            day=format_date(opening.date(), language),
            time=opening.strftime("%H:%M"),
        )
    return Markup("\n\n").join(
        [
            _("I have passed our conversation to a sales rep from our team."),
            when,
            _("Write here as usual: they see everything you send. /cancel returns you to the bot."),
        ]
    )


def topic_name(turn: Turn) -> str:
    """The customer's topic's name: who they are, and their channel when it is not the
    staff chat's (the staff chat's channel shortens it to what it takes)."""
    name = turn.incoming.user_name or turn.shown_chat_id
    username = f" @{turn.incoming.username}" if turn.incoming.username else ""
    desk = turn.services.staff.chat
    channel = f" · {turn.key.channel}" if desk is None or desk.channel != turn.key.channel else ""
    return f"{name}{username}{channel}"


async def _context_card(turn: Turn, reason: str, order_number: str | None) -> Markup:
    services, incoming = turn.services, turn.incoming
    store = services.store
    reasons = {
        "asked": "asked for a person",
        "words": "asked for a person in words",
        "fallbacks": "the bot could not answer twice in a row",
        "order": f"question about order {order_number}",
        "repair": "from the repair flow",
    }
    username = f" (@{incoming.username})" if incoming.username else ""
    lines = [
        Markup("🆕 <b>Handoff</b>: {}").format(reasons.get(reason, reason)),
        Markup("Customer: {}{}, id {}, {}").format(
            incoming.user_name or "–", username, services.shown_chat_id(turn.key), turn.key.channel
        ),
    ]
    if incoming.phone:
        lines.append(
            Markup("Phone: {} (verified by {}; /phone shows it)").format(
                mask_phone(incoming.phone), turn.key.channel
            )
        )
    lines.append(Markup("Language: {}").format(turn.state.language))
    orders = await store.linked_orders(turn.key)
    if orders:
        lines.append(Markup("Orders (verified):"))
        lines += [
            Markup("• {}: {}, {}").format(o.number, o.status.replace("_", " "), mask_email(o.email))
            for o in orders[:5]
        ]
    else:
        lines.append(Markup("Orders: none verified in this chat"))
    tickets = [t for t in await store.tickets_of(turn.key) if t.status in OPEN_TICKETS]
    if tickets:
        lines.append(Markup("Tickets:"))
        lines += [
            Markup("• {}: {}, {}").format(
                t.id, t.kind.replace("_", " "), t.status.replace("_", " ")
            )
            for t in tickets[:5]
        ]
    notes = await store.notes(turn.key)
    if notes:
        lines.append(Markup("Earlier notes:"))
        lines += [Markup("📝 {}: {}").format(n.author, n.text) for n in notes]
    transcript = await store.recent_lines(turn.key, CONTEXT_LINES)
    if transcript:
        lines.append(Markup("<b>Last exchanges</b>"))
        for line in transcript:
            who = "👤" if line.from_customer else "🤖"
            lines.append(Markup("{} {}").format(who, _shorten(line.text, 200)))
    lines.append(Markup("\nReply here to answer the customer. /claim · /close · /note TEXT"))
    return Markup("\n").join(lines)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def asked_in_words(turn: Turn) -> bool:
    """ "Can I talk to a human?" starts a handoff from anywhere, like the menu button."""
    incoming = turn.incoming
    if incoming.payload is not None or incoming.command is not None or not incoming.text:
        return False
    if not asks_for_human(incoming.text.strip()):
        return False
    await open_handoff(turn, "words")
    return True


async def relay_customer(turn: Turn) -> bool:
    """While a handoff is open, the customer's messages go to staff; only /cancel is ours."""
    services = turn.services
    handoff = await services.store.open_handoff(turn.key)
    if handoff is None:
        return False
    _ = turn._
    incoming = turn.incoming
    staff_chat = services.staff.chat
    now = services.now()
    if incoming.command == "cancel" or staff_chat is None:
        _close(turn, handoff, closed_by="customer")
        turn.say(_("You are back with the bot. How can I help?"), *main_menu(turn))
        if staff_chat is not None:
            left = Markup("↩️ The customer left the conversation (/cancel).")
            turn.replies.append(in_topic(staff_chat, handoff.key, left))
        return True
    if incoming.payload is not None:
        turn.notice = _("You are talking with our team. Send /cancel to return to the bot.")
        return True
    relayed = _relay(incoming, staff_chat, topic_of=handoff.key)
    if relayed is None:
        kinds = ", ".join(media.kind for media in incoming.media)
        relayed = in_topic(
            staff_chat,
            handoff.key,
            Markup("The customer sent something that cannot be shown here ({}).").format(kinds),
        )
    turn.replies.append(relayed)
    changes: dict[str, object] = {"last_customer_at": now}
    if handoff.waiting_since is None:
        changes["waiting_since"] = now
    turn.records.append(HandoffUpdate(handoff.id, changes))
    return True


def _relay(incoming: Incoming, to: ChatKey, topic_of: ChatKey | None = None) -> Reply | None:
    """The incoming message passed on. On its own channel: an album as an album, anything
    else as a copy. To another channel, whose messenger cannot copy it: its text and files
    (each naming its channel, for the other to fetch); None when it has neither (a
    location, a contact)."""
    # What a person wrote is text, never markup: the caption of an album, a message.
    text = escape(incoming.text or "")
    media = tuple(item.on(incoming.channel) for item in incoming.media)
    if incoming.channel != to.channel:
        files = tuple(item for item in media if item.file_ref)
        if not text and not files:
            return None
        return Reply(text, to=to, topic_of=topic_of, album=files)
    if len(media) > 1:
        return Reply(text, to=to, topic_of=topic_of, album=media)
    if incoming.message_id is None:
        return Reply(text, to=to, topic_of=topic_of)
    return Reply(
        Markup(),
        to=to,
        topic_of=topic_of,
        copy_of=(incoming.chat_id, incoming.message_id),
    )


UNDELIVERED = "handoff:undelivered:"


def undelivered_event(customer: ChatKey, reason: str) -> str:
    """The staff chat's system event for a reply a channel gave up delivering to this
    customer, with the channel's reason."""
    return f"{UNDELIVERED}{customer.channel}:{customer.chat_id}:{reason}"


async def report_undelivered(turn: Turn, event: str) -> None:
    """A reply that never reached a customer in a handoff (the bot blocked, the chat gone)
    gets a line in their topic, or the rep waits for an answer to a message never read."""
    channel, _, rest = event.partition(":")
    chat_id, _, reason = rest.partition(":")
    customer = ChatKey(channel, chat_id)
    staff_chat = turn.services.staff.chat
    if staff_chat is None or await turn.services.store.open_handoff(customer) is None:
        return
    line = Markup("⚠️ Could not deliver to the customer: {reason}").format(reason=reason)
    turn.replies.append(in_topic(staff_chat, customer, line))


def in_topic(staff_chat: ChatKey, customer: ChatKey, text: Markup) -> Reply:
    """A bot message for staff in the customer's topic."""
    return Reply(text, to=staff_chat, topic_of=customer)


def _close(turn: Turn, handoff: Handoff, closed_by: str) -> None:
    turn.records.append(
        HandoffUpdate(
            handoff.id,
            {
                "status": HandoffStatus.CLOSED,
                "closed_at": turn.services.now(),
                "closed_by": closed_by,
                "waiting_since": None,
            },
        )
    )
    shown = turn.services.shown_chat_id(handoff.key)
    logger.info("handoff.closed chat=%s by=%s", shown, closed_by)


async def staff_message(turn: Turn) -> None:
    """A rep's message in the staff chat: a command, or an answer for a customer."""
    incoming = turn.incoming
    customer = await customer_of(turn)
    command = incoming.command
    if customer is None:
        # Staff talking among themselves outside customers' topics: none of our business.
        if command in STAFF_COMMANDS:
            turn.say(Markup("Use this in a customer's topic (or as a reply to their message)."))
        return
    handoff = await turn.services.store.open_handoff(customer)
    if command in STAFF_COMMANDS:
        await STAFF_COMMANDS[command](turn, customer, handoff)
    elif command is None:
        _relay_to_customer(turn, customer, handoff)


async def customer_of(turn: Turn) -> ChatKey | None:
    """The customer a staff-chat message concerns: by its topic, or the relayed message it
    replies to; None for staff talking among themselves."""
    store, incoming = turn.services.store, turn.incoming
    staff = turn.key
    if incoming.thread_id is not None:
        customer = await store.customer_of_topic(staff, incoming.thread_id)
        if customer is not None:
            return customer
    if incoming.reply_to is not None:
        return await store.customer_of_relay(staff, incoming.reply_to)
    return None


def rep_name(turn: Turn) -> str:
    return turn.incoming.user_name or turn.incoming.user_id


def _relay_to_customer(turn: Turn, customer: ChatKey, handoff: Handoff | None) -> None:
    if handoff is None:
        turn.replies.append(
            in_topic(
                turn.key,
                customer,
                Markup(
                    "Not sent: this conversation is closed and the customer is with the bot. "
                    "They can ask for a person again at any time."
                ),
            )
        )
        return
    relayed = _relay(turn.incoming, customer)
    if relayed is None:
        turn.replies.append(
            in_topic(
                turn.key,
                customer,
                Markup("Not sent: only text, photos, videos and files reach a {} customer.").format(
                    customer.channel
                ),
            )
        )
        return
    turn.replies.append(relayed)
    now = turn.services.now()
    turn.records.append(
        HandoffUpdate(
            handoff.id,
            {
                "status": HandoffStatus.ACTIVE,
                "first_staff_reply_at": now,
                "last_staff_at": now,
                "waiting_since": None,
            },
        )
    )


async def _claim(turn: Turn, customer: ChatKey, handoff: Handoff | None) -> None:
    staff_chat = turn.key
    if handoff is None:
        turn.replies.append(in_topic(staff_chat, customer, Markup("Nothing to claim: closed.")))
        return
    name = rep_name(turn)
    turn.records.append(
        HandoffUpdate(
            handoff.id,
            {
                "status": HandoffStatus.ACTIVE,
                "claimed_by": turn.incoming.user_id,
                "claimed_by_name": name,
            },
        )
    )
    took = Markup("🙋 {} took this conversation.").format(name)
    turn.replies.append(in_topic(staff_chat, customer, took))
    if handoff.claimed_by is None:
        _ = await customer_translator(turn, customer)
        turn.replies.append(Reply(_("A sales rep has joined the conversation."), to=customer))


async def _close_by_staff(turn: Turn, customer: ChatKey, handoff: Handoff | None) -> None:
    staff_chat = turn.key
    if handoff is None:
        turn.replies.append(in_topic(staff_chat, customer, Markup("Already closed.")))
        return
    _close(turn, handoff, closed_by=rep_name(turn))
    closed = Markup("✅ Closed by {}. The bot answers the customer again.").format(rep_name(turn))
    turn.replies.append(in_topic(staff_chat, customer, closed))
    _ = await customer_translator(turn, customer)
    turn.replies.append(
        Reply(
            _(
                "Our sales rep has closed this conversation; I am here again for anything else. "
                "How would you rate the help you got?"
            ),
            (tuple(Button(f"{n} ⭐", f"rate:{handoff.id}:{n}") for n in RATINGS),),
            to=customer,
        )
    )


async def _note(turn: Turn, customer: ChatKey, handoff: Handoff | None) -> None:
    staff_chat = turn.key
    text = (turn.incoming.text or "").split(maxsplit=1)[1:]
    if not text or handoff is None:
        message = Markup("Usage: /note TEXT, in an open conversation's topic.")
        turn.replies.append(in_topic(staff_chat, customer, message))
        return
    turn.records.append(StaffNote(handoff.id, rep_name(turn), text[0], turn.services.now()))
    turn.replies.append(
        in_topic(staff_chat, customer, Markup("📝 Note saved (the customer does not see it)."))
    )


async def _phone(turn: Turn, customer: ChatKey, handoff: Handoff | None) -> None:
    """The customer's phone number in full, for a rep who must call them; logged."""
    services = turn.services
    phone = handoff.phone if handoff is not None else None
    if phone is None and customer.channel in services.phone_channels:
        phone = f"+{customer.chat_id.lstrip('+')}"
    if phone is None:
        text = Markup("No verified phone number: the customer's channel ({}) gives none.").format(
            customer.channel
        )
    else:
        shown = services.shown_chat_id(customer)
        logger.info("handoff.phone_shown chat=%s by=%s", shown, turn.incoming.user_id)
        text = Markup("📞 {}").format(phone)
    turn.replies.append(in_topic(turn.key, customer, text))


STAFF_COMMANDS = {"claim": _claim, "close": _close_by_staff, "note": _note, "phone": _phone}


async def customer_translator(turn: Turn, customer: ChatKey) -> Translate:
    """Interface texts in the customer's language (a staff turn has the staff chat's)."""
    return translator((await turn.services.store.load(customer)).language)


async def rate(turn: Turn, args: list[str]) -> None:
    """`rate:<handoff id>:<1-5>` under the closing message."""
    _ = turn._
    match args:
        case [handoff_id, score] if handoff_id.isdigit() and score.isdigit():
            handoff = await turn.services.store.handoff(int(handoff_id))
            rating = int(score)
            if (
                handoff is None
                or handoff.key != turn.key
                or handoff.status is not HandoffStatus.CLOSED
                or rating not in RATINGS
            ):
                await stale_button(turn, args)
                return
            if handoff.rating is None:
                turn.records.append(HandoffUpdate(handoff.id, {"rating": rating}))
            turn.replace(_("Thank you for rating us {stars}!").format(stars="⭐" * rating))
        case _:
            await stale_button(turn, args)


REMIND_EVENT = "reminders_due"


async def remind(turn: Turn) -> None:
    """Post a reminder in the topic of every customer waiting too long in business hours."""
    services = turn.services
    staff, staff_chat = services.staff, services.staff.chat
    if staff_chat is None:
        return
    now = services.now()
    due_after = staff.remind_after_minutes * 60
    for handoff in await services.store.open_handoffs():
        since = handoff.waiting_since
        if since is None:
            continue
        last = max(since, handoff.reminded_at) if handoff.reminded_at else since
        if staff.hours.open_seconds_between(last, now) < due_after:
            continue
        waited = math.floor((now - since).total_seconds() / 60)
        turn.replies.append(
            in_topic(
                staff_chat,
                handoff.key,
                Markup(
                    "⏰ The customer has been waiting {} minutes for an answer. /claim to take it."
                ).format(waited),
            )
        )
        turn.records.append(HandoffUpdate(handoff.id, {"reminded_at": now}))
        shown = services.shown_chat_id(handoff.key)
        logger.info("handoff.reminded chat=%s waited_minutes=%d", shown, waited)
