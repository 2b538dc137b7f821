"""Answering questions from the knowledge base: answer, "did you mean", or an honest fallback.

After a 👎 the bot asks what the customer was looking for (step `waiting_for_rephrase`):
the rephrasing is kept for staff as a miss and answered like any question.
"""

from __future__ import annotations

from faq.matcher import Decision
from faq.schema import Entry
from handlers.engine import Turn
from handlers.handoff import open_handoff
from handlers.i18n import N_
from handlers.menu import menu_button, stale_button, unsupported_media
from handlers.messages import Button
from storage.base import Feedback, Miss

FLOW = "faq"
MAX_RELATED = 3
# Questions are a sentence or two; a wall of text is not a question we can match, and
# Telegram itself caps a message at 4,096 characters.
MAX_QUESTION_CHARS = 1000
# Two questions in a row the KB cannot answer: a person will do better than a third try.
HANDOFF_AFTER_MISSES = 2
MISSES_IN_A_ROW = "misses_in_a_row"


def entry_button(turn: Turn, entry: Entry) -> Button:
    return Button(entry.question_in(turn.state.language), f"faq:show:{entry.id}")


def handoff_button(turn: Turn) -> Button:
    return Button(turn._("👤 Talk to a human"), "flow:handoff")


async def answer_question(turn: Turn, args: list[str]) -> None:
    text = (turn.incoming.text or "").strip()
    if len(text) > MAX_QUESTION_CHARS:
        turn.say(
            turn._(
                "That message is too long for me. Please ask one question in a sentence or "
                "two, or talk to a person from our team."
            ),
            [handoff_button(turn)],
        )
        return
    result = await turn.services.faq.ask_async(text)
    if result.language != "en" and result.language != turn.state.language:
        # Written in Russian or Chinese: the customer has shown which language they read.
        turn.state.language, turn.state.language_chosen = result.language, True
    if result.decision is not Decision.FALLBACK:
        turn.state.data.pop(MISSES_IN_A_ROW, None)
    if result.decision is Decision.ANSWER and result.entry:
        send_answer(turn, result.entry)
    elif result.decision is Decision.SUGGEST:
        turn.state.data["faq_question"] = text
        turn.say(
            turn._("I'm not sure I understood. Did you mean:"),
            *[[entry_button(turn, entry)] for entry in result.suggestions],
            [Button(turn._("None of these"), "faq:none")],
        )
    else:
        turn.records.append(Miss(text, "fallback"))
        misses = turn.state.data.get(MISSES_IN_A_ROW, 0) + 1
        if misses < HANDOFF_AFTER_MISSES:
            turn.state.data[MISSES_IN_A_ROW] = misses
            fallback(turn)
            return
        turn.say(turn._("I still have no answer, so I am passing you to a person from our team."))
        await open_handoff(turn, "fallbacks")


def answer_rows(turn: Turn, entry: Entry, feedback: bool = True) -> list[list[Button]]:
    """Buttons under an answer: its flow, related entries, and (until used) feedback."""
    faq = turn.services.faq
    rows: list[list[Button]] = []
    if entry.action:
        rows.append([Button(turn._(ACTION_LABELS[entry.action]), f"flow:{entry.action}")])
    related = [faq.entry(entry_id) for entry_id in entry.related[:MAX_RELATED]]
    rows += [[entry_button(turn, item)] for item in related if item]
    if feedback:
        rows.append([Button("👍", f"faq:fb:{entry.id}:1"), Button("👎", f"faq:fb:{entry.id}:0")])
    return rows


def send_answer(turn: Turn, entry: Entry) -> None:
    turn.say(entry.answer_in(turn.state.language), *answer_rows(turn, entry))


def fallback(turn: Turn) -> None:
    _ = turn._
    turn.say(
        _(
            "Sorry, I don't know the answer to that. Try asking in other words, or talk to a "
            "person from our team."
        ),
        [handoff_button(turn)],
        [menu_button(turn)],
    )


async def faq_button(turn: Turn, args: list[str]) -> None:
    faq = turn.services.faq
    match args:
        case ["show", entry_id] if (entry := faq.entry(entry_id)) is not None:
            send_answer(turn, entry)
        case ["fb", entry_id, vote] if (entry := faq.entry(entry_id)) is not None and vote in (
            "0",
            "1",
        ):
            record_feedback(turn, entry, helpful=vote == "1")
        case ["none"]:
            question = turn.state.data.pop("faq_question", None)
            if question:
                turn.records.append(Miss(question, "none_of_these"))
            fallback(turn)
        case _:
            await stale_button(turn, args)


def record_feedback(turn: Turn, entry: Entry, helpful: bool) -> None:
    """Store the vote and take the 👍/👎 pair off the answer, so it is counted once."""
    _ = turn._
    turn.records.append(Feedback(entry.id, helpful))
    turn.replace(entry.answer_in(turn.state.language), *answer_rows(turn, entry, feedback=False))
    if helpful:
        turn.notice = _("Thanks for the feedback!")
        return
    turn.state.reset()
    turn.state.flow, turn.state.step = FLOW, "waiting_for_rephrase"
    turn.state.data["entry_id"] = entry.id
    turn.say(
        _(
            "Sorry that did not help. What were you looking for? Write it in your own words "
            "and I'll try again, or talk to a person from our team."
        ),
        [handoff_button(turn)],
    )


async def faq_step(turn: Turn, args: list[str]) -> None:
    """The customer's message while the FAQ waits for a rephrasing after a 👎."""
    entry_id = turn.state.data.get("entry_id")
    turn.state.reset()
    text = (turn.incoming.text or "").strip()
    if turn.incoming.media or not text:
        await unsupported_media(turn, [])
        return
    turn.records.append(Miss(text[:MAX_QUESTION_CHARS], "not_helpful", entry_id))
    await answer_question(turn, [])


ACTION_LABELS = {
    "track_order": N_("📦 Track my order"),
    "warranty_check": N_("🛡 Check my warranty"),
    "repair_ticket": N_("🔧 Open a repair ticket"),
    "handoff": N_("👤 Talk to a human"),
}
