"""Answering questions from the knowledge base: answer, "did you mean", or an honest fallback."""

from __future__ import annotations

from faq.matcher import Decision
from faq.schema import Entry
from handlers.engine import Turn
from handlers.menu import menu_button, stale_button
from handlers.messages import Button
from storage.base import Feedback

MAX_RELATED = 3


def entry_button(entry: Entry) -> Button:
    return Button(entry.question, f"faq:show:{entry.id}")


async def answer_question(turn: Turn, args: list[str]) -> None:
    text = turn.incoming.text or ""
    result = await turn.services.faq.ask_async(text)
    if result.decision is Decision.ANSWER and result.entry:
        send_answer(turn, result.entry)
    elif result.decision is Decision.SUGGEST:
        turn.say(
            turn._("I'm not sure I understood. Did you mean:"),
            *[[entry_button(entry)] for entry in result.suggestions],
            [Button(turn._("None of these"), "faq:none")],
        )
    else:
        fallback(turn)


def send_answer(turn: Turn, entry: Entry) -> None:
    """The entry's answer, then buttons: its flow, related entries, and feedback."""
    _ = turn._
    faq = turn.services.faq
    rows: list[list[Button]] = []
    if entry.action:
        rows.append([Button(_(ACTION_LABELS[entry.action]), f"flow:{entry.action}")])
    related = [faq.entry(entry_id) for entry_id in entry.related[:MAX_RELATED]]
    rows += [[entry_button(item)] for item in related if item]
    rows.append([Button("👍", f"faq:fb:{entry.id}:1"), Button("👎", f"faq:fb:{entry.id}:0")])
    turn.say(entry.answer, *rows)


def fallback(turn: Turn) -> None:
    _ = turn._
    turn.say(
        _(
            "Sorry, I don't know the answer to that. Try asking in other words, or talk to a "
            "person from our team."
        ),
        [Button(_("👤 Talk to a human"), "flow:handoff")],
        [menu_button(turn)],
    )


async def faq_button(turn: Turn, args: list[str]) -> None:
    faq = turn.services.faq
    match args:
        case ["show", entry_id] if (entry := faq.entry(entry_id)) is not None:
            send_answer(turn, entry)
        case ["fb", entry_id, vote] if faq.entry(entry_id) is not None and vote in ("0", "1"):
            helpful = vote == "1"
            turn.records.append(Feedback(entry_id, helpful))
            if helpful:
                turn.say(turn._("Thanks for the feedback!"))
            else:
                turn.say(
                    turn._(
                        "Sorry that did not help. Try asking in other words, or talk to a "
                        "person from our team."
                    ),
                    [Button(turn._("👤 Talk to a human"), "flow:handoff")],
                )
        case ["none"]:
            fallback(turn)
        case _:
            await stale_button(turn, args)


ACTION_LABELS = {
    "track_order": "📦 Track my order",
    "warranty_check": "🛡 Check my warranty",
    "repair_ticket": "🔧 Open a repair ticket",
    "handoff": "👤 Talk to a human",
}
