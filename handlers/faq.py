"""Answering questions from the knowledge base: answer, "did you mean", or an honest fallback.

Every question the matcher sees is logged, personal data masked, with its decision; a
fallback, a suggestion, a rejected suggestion and a 👎 are kept as misses for staff
(`minerdesk faq gaps`). The chat remembers which question its recent answers were for, so a
👎 names the question that got the answer. After a 👎 the bot asks what the customer was
looking for (step `waiting_for_rephrase`) and answers the rephrasing like any question.

Small talk ("hi", "thanks!", "ok bye", "are you a bot?") is not a question: it gets the KB's
own reply for its kind, is neither logged nor counted as a miss, and leaves the misses in a
row as they were, so "ok bye" after a fallback hands nobody over and a question that misses
after it still does.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from markupsafe import Markup

from domain.chats import ConversationState
from domain.faq_log import Feedback, Miss, QuestionAsked
from domain.privacy import mask_personal_data
from faq.matcher import Decision
from faq.schema import Action, Entry, SmallTalkKind
from faq.service import FaqResult
from handlers.engine import Turn
from handlers.handoff import open_handoff
from handlers.i18n import N_
from handlers.menu import main_menu, menu_button, stale_button, unsupported_media
from handlers.messages import Button

logger = logging.getLogger(__name__)

FLOW = "faq"
MAX_RELATED = 3
# Questions are a sentence or two; a wall of text is not a question we can match, and
# Telegram itself caps a message at 4,096 characters.
MAX_QUESTION_CHARS = 1000
# Two questions in a row the KB cannot answer: a person will do better than a third try.
HANDOFF_AFTER_MISSES = 2
MISSES_IN_A_ROW = "misses_in_a_row"
# The question whose "Did you mean" choices are on screen: {"question_id", "entry_ids"}.
SUGGESTED = "faq_suggested"
# The newest answers shown with a 👍/👎 pair, by the token their buttons carry: the entry
# and the question it answered (None for an answer opened from a button). A vote counts
# only for a token here, and takes it away: one vote per answer shown.
ANSWERED = "faq_answered"
# Tokens already voted on, so a second press is thanked rather than called stale.
VOTED = "faq_voted"
ANSWERS_REMEMBERED = 5


def entry_button(turn: Turn, entry: Entry) -> Button:
    return Button(entry.question_in(turn.state.language), f"faq:show:{entry.id}")


def handoff_button(turn: Turn) -> Button:
    return Button(turn._(ACTION_LABELS[Action.HANDOFF]), f"flow:{Action.HANDOFF}")


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
    if result.small_talk is not None:
        answer_small_talk(turn, result.small_talk)
        return
    question_id = log_question(turn, text, result)
    if result.decision is not Decision.FALLBACK:
        turn.state.data.pop(MISSES_IN_A_ROW, None)
    if result.decision is Decision.ANSWER and result.entry:
        send_answer(turn, result.entry, question_id)
    elif result.decision is Decision.SUGGEST:
        turn.records.append(Miss(question_id, "suggested", turn.services.now()))
        turn.state.data[SUGGESTED] = {
            "question_id": question_id,
            "entry_ids": [entry.id for entry in result.suggestions],
        }
        turn.say(
            turn._("I'm not sure I understood. Did you mean:"),
            *[[entry_button(turn, entry)] for entry in result.suggestions],
            [Button(turn._("None of these"), "faq:none")],
        )
    else:
        turn.records.append(Miss(question_id, "fallback", turn.services.now()))
        misses = turn.state.data.get(MISSES_IN_A_ROW, 0) + 1
        if misses < HANDOFF_AFTER_MISSES:
            turn.state.data[MISSES_IN_A_ROW] = misses
            fallback(turn)
            return
        turn.say(turn._("I still have no answer, so I am passing you to a person from our team."))
        await open_handoff(turn, "fallbacks")


def answer_small_talk(turn: Turn, small_talk: SmallTalkKind) -> None:
    """The KB's reply to this kind of small talk, with the menu or the flow it offers.
    Only its kind goes to the log: the question log and its figures are about questions."""
    logger.info("faq.small_talk kind=%s language=%s", small_talk.kind, turn.state.language)
    # Staff write the replies in Telegram's HTML and the loader checks it, as for answers.
    text = Markup(small_talk.reply_in(turn.state.language))  # noqa: S704 (trusted: the KB)
    rows: list[list[Button]] = []
    if small_talk.action:
        action = small_talk.action
        rows.append([Button(turn._(ACTION_LABELS[action]), f"flow:{action}")])
    if small_talk.show_menu:
        rows += main_menu(turn)
    turn.say(text, *rows)


def new_question_id() -> str:
    """64 random bits: unique in a log that grows by thousands of questions a day."""
    return secrets.token_hex(8)


def log_question(turn: Turn, text: str, result: FaqResult) -> str:
    """Keep the question (masked) with the matcher's verdict; returns the id that misses and
    votes on its answer refer to."""
    best = result.match.best
    question_id = new_question_id()
    turn.records.append(
        QuestionAsked(
            id=question_id,
            question=mask_personal_data(text),
            language=turn.state.language,
            decision=result.decision.value,
            entry_id=best.entry_id if best else None,
            confidence=round(result.match.confidence, 4),
            at=turn.services.now(),
        )
    )
    return question_id


def _remember(state: ConversationState, key: str, token: str, value: Any) -> None:
    """Add to one of the chat's short lists of recent answers, dropping the oldest."""
    remembered: dict[str, Any] = state.data.setdefault(key, {})
    remembered[token] = value
    for oldest in list(remembered)[:-ANSWERS_REMEMBERED]:
        del remembered[oldest]


def answer_rows(turn: Turn, entry: Entry, vote_token: str | None) -> list[list[Button]]:
    """Buttons under an answer: its flow, related entries, and the 👍/👎 pair of this
    showing of it (none once voted)."""
    faq = turn.services.faq
    rows: list[list[Button]] = []
    if entry.action:
        rows.append([Button(turn._(ACTION_LABELS[entry.action]), f"flow:{entry.action}")])
    related = [faq.entry(entry_id) for entry_id in entry.related[:MAX_RELATED]]
    rows += [[entry_button(turn, item)] for item in related if item]
    if vote_token is not None:
        rows.append(
            [Button("👍", f"faq:fb:{vote_token}:1"), Button("👎", f"faq:fb:{vote_token}:0")]
        )
    return rows


def answer_text(turn: Turn, entry: Entry) -> Markup:
    """The entry's answer in the chat's language. Staff write answers in Telegram's HTML
    and the loader checks it (placeholder values escaped): the one place a KB answer
    becomes markup."""
    return Markup(entry.answer_in(turn.state.language))  # noqa: S704 (trusted: the KB)


def send_answer(turn: Turn, entry: Entry, question_id: str | None = None) -> None:
    """Show the answer, open to one vote that will name `question_id` (if any)."""
    token = secrets.token_hex(4)
    _remember(turn.state, ANSWERED, token, [entry.id, question_id])
    turn.say(answer_text(turn, entry), *answer_rows(turn, entry, token))


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
            suggested = turn.state.data.get(SUGGESTED) or {"entry_ids": ()}
            # A choice picked for the customer's question: its answer is for that question.
            chosen = entry.id in suggested["entry_ids"]
            send_answer(turn, entry, suggested["question_id"] if chosen else None)
        case ["fb", token, ("0" | "1") as vote]:
            await _vote(turn, token, helpful=vote == "1")
        case ["none"]:
            suggested = turn.state.data.pop(SUGGESTED, None)
            if suggested:
                now = turn.services.now()
                turn.records.append(Miss(suggested["question_id"], "none_of_these", now))
            fallback(turn)
        case _:
            await stale_button(turn, args)


async def _vote(turn: Turn, token: str, helpful: bool) -> None:
    """A 👍/👎 press: counted when it is the first for an answer this chat was shown."""
    answered: dict[str, Any] = turn.state.data.get(ANSWERED, {})
    shown = answered.pop(token, None)
    entry = turn.services.faq.entry(shown[0]) if shown else None
    if shown is None or entry is None:
        if token in turn.state.data.get(VOTED, {}):
            turn.notice = turn._("Your vote is already counted.")
        else:
            # Forged, or older than the answers remembered: nothing is counted.
            await stale_button(turn, ["fb", token])
        return
    _remember(turn.state, VOTED, token, True)
    record_feedback(turn, entry, shown[1], helpful)


def record_feedback(turn: Turn, entry: Entry, question_id: str | None, helpful: bool) -> None:
    """Store the vote and take the 👍/👎 pair off the answer; a 👎 keeps the question that
    got the answer as a miss."""
    _ = turn._
    now = turn.services.now()
    turn.records.append(Feedback(entry.id, helpful, now, question_id))
    turn.replace(answer_text(turn, entry), *answer_rows(turn, entry, None))
    if helpful:
        turn.notice = _("Thanks for the feedback!")
        return
    if question_id is not None:
        turn.records.append(Miss(question_id, "not_helpful", now, entry.id))
    # The other answers on screen can still be voted on, each once.
    votes = {key: turn.state.data[key] for key in (ANSWERED, VOTED) if key in turn.state.data}
    turn.state.reset()
    turn.state.flow, turn.state.step = FLOW, "waiting_for_rephrase"
    turn.state.data.update(votes)
    turn.say(
        _(
            "Sorry that did not help. What were you looking for? Write it in your own words "
            "and I'll try again, or talk to a person from our team."
        ),
        [handoff_button(turn)],
    )


async def faq_step(turn: Turn, args: list[str]) -> None:
    """The customer's message while the FAQ waits for a rephrasing after a 👎: a question
    like any other (the FAQ's notes on the answers on screen stay)."""
    turn.state.flow, turn.state.step = None, None
    text = (turn.incoming.text or "").strip()
    if turn.incoming.media or not text:
        await unsupported_media(turn, [])
        return
    await answer_question(turn, [])


ACTION_LABELS = {
    "track_order": N_("📦 Track my order"),
    "warranty_check": N_("🛡 Check my warranty"),
    "repair_ticket": N_("🔧 Open a repair ticket"),
    "handoff": N_("👤 Talk to a human"),
}
