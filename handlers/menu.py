"""Greeting, main menu, help and /cancel: the ways in and out of every flow."""

from __future__ import annotations

from markupsafe import Markup

from faq.schema import Action
from handlers.engine import Turn
from handlers.i18n import LANGUAGE_NAMES, SUPPORTED_LANGUAGES
from handlers.messages import Button, MediaKind


def main_menu(turn: Turn) -> list[list[Button]]:
    _ = turn._
    return [
        [Button(_("❓ Ask a question"), "menu:ask")],
        [Button(_("📦 Track my order"), f"flow:{Action.TRACK_ORDER}")],
        [Button(_("🛡 Warranty check"), f"flow:{Action.WARRANTY_CHECK}")],
        [Button(_("🔧 Repair / second return"), f"flow:{Action.REPAIR_TICKET}")],
        [Button(_("👤 Talk to a human"), f"flow:{Action.HANDOFF}")],
    ]


def menu_button(turn: Turn) -> Button:
    return Button(turn._("☰ Main menu"), "menu:show")


async def start(turn: Turn, args: list[str]) -> None:
    turn.state.reset()
    _ = turn._
    name = turn.services.contacts.get("company_name", "")
    turn.say(
        _(
            "Hello! I'm the {company} support assistant. I can answer questions about ordering, "
            "payment, shipping, customs, warranty and repairs.\n\nType your question in your own "
            "words, or choose below."
        ).format(company=name),
        *main_menu(turn),
    )


async def show_menu(turn: Turn, args: list[str]) -> None:
    turn.say(turn._("How can I help?"), *main_menu(turn))


async def help_text(turn: Turn, args: list[str]) -> None:
    _ = turn._
    turn.say(
        _(
            "Just write your question, for example <i>How long does delivery take?</i>\n\n"
            "Commands:\n/menu – the main menu\n/orders – your orders\n"
            "/tickets – your repair tickets\n/language – change the language\n"
            "/cancel – stop what we are doing\n/help – this message"
        ),
        [menu_button(turn)],
    )


async def cancel(turn: Turn, args: list[str]) -> None:
    _ = turn._
    if turn.state.flow is None:
        turn.say(_("There is nothing to cancel. How can I help?"), *main_menu(turn))
        return
    draft = turn.state.data.get("ticket") and not turn.state.data.get("revising")
    turn.state.reset()
    if draft:
        turn.say(
            _("Paused. Your ticket is saved as a draft: /tickets to go on with it."),
            *main_menu(turn),
        )
        return
    turn.say(_("Cancelled. How can I help?"), *main_menu(turn))


async def choose_language(turn: Turn, args: list[str]) -> None:
    """/language, or /language ru: from now on the bot speaks the chosen language, whatever
    the messenger says the customer's language is."""
    if args and args[0].strip().lower() in SUPPORTED_LANGUAGES:
        set_language(turn, args[0].strip().lower())
        return
    turn.say(
        turn._("Choose your language:"),
        [Button(LANGUAGE_NAMES[code], f"lang:{code}") for code in SUPPORTED_LANGUAGES],
    )


async def language_button(turn: Turn, args: list[str]) -> None:
    if len(args) == 1 and args[0] in SUPPORTED_LANGUAGES:
        set_language(turn, args[0])
    else:
        await stale_button(turn, args)


def set_language(turn: Turn, language: str) -> None:
    turn.state.language, turn.state.language_chosen = language, True
    _ = turn._
    done = _("Language: {name}.").format(name=LANGUAGE_NAMES[language])
    if turn.state.flow is None:
        turn.say(Markup("{} {}").format(done, _("How can I help?")), *main_menu(turn))
    else:
        turn.say(Markup("{} {}").format(done, _("Please go on where we were.")))


async def menu_choice(turn: Turn, args: list[str]) -> None:
    if args == ["ask"]:
        turn.say(
            turn._("Type your question in your own words, for example <i>Can I pay with USDT?</i>")
        )
    elif args == ["show"]:
        await show_menu(turn, [])
    else:
        await stale_button(turn, args)


async def unknown_command(turn: Turn, args: list[str]) -> None:
    turn.say(turn._("I don't know that command. Send /help to see what I can do."))


async def stale_button(turn: Turn, args: list[str]) -> None:
    turn.say(turn._("That button is no longer valid. Here is the main menu."), *main_menu(turn))


async def unsupported_media(turn: Turn, args: list[str]) -> None:
    """Something other than text outside a flow that asked for it: say what we can read."""
    _ = turn._
    kinds = {media.kind for media in turn.incoming.media}
    if kinds & {MediaKind.VOICE, MediaKind.AUDIO}:
        text = _("I can't listen to voice messages. Please type your question.")
    elif kinds & {MediaKind.LOCATION, MediaKind.CONTACT}:
        text = _("Thanks, but I don't need that here. Please type your question, or choose below.")
    elif kinds & {MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.DOCUMENT}:
        text = _(
            "I can only read text messages here. To send photos or videos of a faulty "
            "machine, choose 🔧 Repair / second return in the menu."
        )
    else:
        text = _("I can only read text messages here. Please type your question.")
    turn.say(text, [menu_button(turn)])
