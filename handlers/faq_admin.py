"""The knowledge base from the staff chat: how each live edit went, and the staff admins'
`/reload` and `/faq_test`.

The bot re-reads `faq/kb` when a file changes (`faq.service.watch_kb`); the channel that
serves the staff chat then sends it the system event `faq:reloaded:<attempt>`, and this
module posts the report. Admins (`handoff.admin_ids`) can reload at once and see how a
question would be matched; anyone else in the staff chat is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from markupsafe import Markup

from faq.loader import Problem
from faq.matcher import Decision
from faq.service import FaqResult, ReloadReport
from handlers.engine import Turn
from handlers.handoff import customer_of, in_topic
from handlers.i18n import N_, Translate

logger = logging.getLogger(__name__)

RELOADED = "kb_reloaded:"
# A KB broken in many places would fill the staff chat; the first problems show what is
# wrong, and `minerdesk faq validate` lists them all.
MAX_PROBLEMS_SHOWN = 20
DECISIONS = {
    Decision.ANSWER: N_("<b>answer</b>: the customer gets the first entry's answer"),
    Decision.SUGGEST: N_("<b>suggest</b>: the customer is offered these entries as buttons"),
    Decision.FALLBACK: N_("<b>fallback</b>: the bot says it does not know and offers a person"),
    Decision.SMALL_TALK: N_("<b>small talk</b>: the customer gets the KB's reply to it"),
}


def reloaded_event(report: ReloadReport) -> str:
    """The staff chat's system event that posts the watcher's `report`."""
    return f"{RELOADED}{report.attempt}"


async def post_reload_report(turn: Turn, attempt: str) -> None:
    """The watcher's report of reload `attempt`, unless a newer attempt superseded it (its
    own event, or the answer to /reload, tells what serves now)."""
    report = turn.services.faq.last_report
    if report is None or str(report.attempt) != attempt:
        return
    turn.say(report_text(turn._, report))


def report_text(_: Translate, report: ReloadReport) -> Markup:
    """How a reload went: what changed, or why it was rejected (problems capped)."""
    if not report.accepted:
        return _rejection_text(_, report)
    if report.files_changed:
        head = _(
            "✅ <b>FAQ updated</b>: {entries} entries answering now (read in {seconds:.1f} s)."
        )
    else:
        head = _(
            "✅ <b>FAQ reloaded</b>, no file changed: {entries} entries answering "
            "(read in {seconds:.1f} s)."
        )
    lines: list[str] = [head.format(entries=report.entries, seconds=report.seconds)]
    lines += _file_lines(_, report)
    if report.warnings:
        lines.append(
            _("Warnings: {count} (<code>minerdesk faq validate</code> shows them).").format(
                count=report.warnings
            )
        )
    return Markup("\n").join(lines)


def _rejection_text(_: Translate, report: ReloadReport) -> Markup:
    problems = report.problems
    lines = [
        _(
            "❌ <b>FAQ edit rejected</b>: the previous version keeps answering ({entries} entries)."
        ).format(entries=report.entries),
        *_file_lines(_, report),
        _("Problems to fix: {count}").format(count=len(problems)),
        *(Markup("• {}").format(_problem_line(_, p)) for p in problems[:MAX_PROBLEMS_SHOWN]),
    ]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(
            _("…and {count} more (<code>minerdesk faq validate</code> lists them all).").format(
                count=len(problems) - MAX_PROBLEMS_SHOWN
            )
        )
    lines.append(_("Fix and save: the bot reads the files again as soon as they change."))
    return Markup("\n").join(lines)


def _file_lines(_: Translate, report: ReloadReport) -> list[Markup]:
    changes = (
        (_("Changed: {files}"), report.changed),
        (_("Added: {files}"), report.added),
        (_("Removed: {files}"), report.removed),
    )
    return [label.format(files=_file_names(files)) for label, files in changes if files]


def _file_names(files: tuple[str, ...]) -> Markup:
    return Markup(", ").join(Markup("<code>{}</code>").format(name) for name in files)


def _problem_line(_: Translate, problem: Problem) -> Markup:
    file, message = str(problem.path), problem.message
    if problem.line:
        return _("<code>{file}</code> line {line}: {message}").format(
            file=file, line=problem.line, message=message
        )
    # Line 0: the whole file or folder (unreadable, no YAML files).
    return _("<code>{file}</code>: {message}").format(file=file, message=message)


async def staff_command(turn: Turn) -> bool:
    """/reload or /faq_test in the staff chat: run for an admin, refused to anyone else.
    Whether the message was one of these commands."""
    incoming = turn.incoming
    command = incoming.command
    if command not in COMMANDS:
        return False
    if incoming.user_id not in turn.services.staff.admin_ids:
        logger.info("faq.admin_command_refused command=%s user=%s", command, incoming.user_id)
        await _answer(
            turn,
            turn._(
                "Only staff admins can use /{command}. Admins are listed by Telegram user id "
                "in handoff.admin_ids (config.yaml); yours is {user_id}."
            ).format(command=command, user_id=incoming.user_id),
        )
        return True
    text = (incoming.text or "").split(maxsplit=1)[1:]
    await COMMANDS[command](turn, text[0].strip() if text else "")
    return True


async def _reload(turn: Turn, text: str) -> None:
    """Re-read the KB now, changed or not, and answer with the report."""
    logger.info("faq.reload_requested user=%s", turn.incoming.user_id)
    # Reading and refitting takes a second or more: not on the event loop.
    report = await asyncio.to_thread(turn.services.faq.reload)
    await _answer(turn, report_text(turn._, report))


async def _faq_test(turn: Turn, text: str) -> None:
    """How the bot would match `text`: the decision, why, and the three best entries."""
    _ = turn._
    if not text:
        await _answer(
            turn,
            _(
                "Usage: /faq_test TEXT, e.g. <code>/faq_test can i pay in parts</code>: "
                "shows how the bot matches a customer's question."
            ),
        )
        return
    result = await turn.services.faq.ask_async(text)
    await _answer(turn, match_text(_, text, result))


def match_text(_: Translate, question: str, result: FaqResult) -> Markup:
    """The decision with the figures it was made from, and the ranked entries."""
    match, thresholds = result.match, result.thresholds
    lines = [
        _("🔎 <b>FAQ test</b>: <i>{question}</i>").format(question=question),
        _("Decision: {decision}").format(decision=_(DECISIONS[match.decision])),
    ]
    if result.small_talk is not None:
        lines.append(_("Small talk: <code>{kind}</code>").format(kind=result.small_talk.kind))
        return Markup("\n").join(lines)
    if result.matched_text is not None:
        lines.append(
            _("Small talk left out, matched as: <i>{question}</i>").format(
                question=result.matched_text
            )
        )
    if not match.candidates:
        lines.append(_("Nothing to match: the text has no words."))
        return Markup("\n").join(lines)
    if match.off_topic is not None:
        lines.append(
            _("Off-topic: nearest to <i>{question}</i> in the KB's off-topic questions.").format(
                question=match.off_topic
            )
        )
    top_score = sum(candidate.score for candidate in match.candidates)
    lines += [
        _("Confidence {confidence:.2f}; answers at {answer:.2f} or more.").format(
            confidence=match.confidence, answer=thresholds.answer
        ),
        _(
            "The top {count} scores add up to {score:.2f}; below {suggest:.2f} the bot falls "
            "back, else it suggests."
        ).format(count=len(match.candidates), score=top_score, suggest=thresholds.suggest),
    ]
    for rank, (entry, candidate) in enumerate(
        zip(result.ranked, match.candidates, strict=True), start=1
    ):
        lines.append(
            _("{rank}. <code>{id}</code> {score:.3f}: {question}").format(
                rank=rank, id=entry.id, score=candidate.score, question=entry.question
            )
        )
    return Markup("\n").join(lines)


async def _answer(turn: Turn, text: Markup) -> None:
    """Answer where the command was sent: in a customer's topic, or the chat itself."""
    customer = await customer_of(turn)
    if customer is None:
        turn.say(text)
    else:
        turn.replies.append(in_topic(turn.key, customer, text))


COMMANDS: dict[str, Callable[[Turn, str], Awaitable[None]]] = {
    "reload": _reload,
    "faq_test": _faq_test,
}
