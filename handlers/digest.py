"""The daily digest in the staff chat: a day's FAQ and handoff figures and the questions the
bot missed most, posted once the next day at `StaffDesk.digest_at` (company time zone).

The channel asks every so often with a system event (`DIGEST_EVENT`). The day reported is
stored in the same transaction as the reply, so a restart neither posts a day twice nor
skips one: days missed while the bot was down follow when it is back (the last
`MAX_CATCH_UP_DAYS` of them).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from markupsafe import Markup

from domain.faq_log import FaqStats
from domain.handoffs import DigestSent
from handlers.engine import Turn
from handlers.i18n import format_date

logger = logging.getLogger(__name__)

DIGEST_EVENT = "digest_due"
TOP_MISSES = 5
MAX_CATCH_UP_DAYS = 7


def days_due(now: datetime, at: time, last: date | None) -> list[date]:
    """The days whose digest is due at `now` (local time) and not posted yet, oldest first.

    A day's digest is due at `at` on the day after. `last` is the newest day posted; with
    none yet, the first digest is the next one due from now on.
    """
    latest = now.date() - timedelta(days=1 if now.time() >= at else 2)
    if last is None:
        return [latest] if now.time() >= at else []
    first = max(last + timedelta(days=1), latest - timedelta(days=MAX_CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


async def post_digest(turn: Turn) -> None:
    """The timer's check: post every digest that is due in the staff chat."""
    services = turn.services
    at = services.staff.digest_at
    if services.staff.chat is None or at is None:
        return
    now = services.now()
    for day in days_due(now.astimezone(services.zone), at, await services.store.last_digest_day()):
        turn.say(await digest_text(turn, day))
        turn.records.append(DigestSent(day, now))
        logger.info("digest.posted day=%s", day)


async def digest_text(turn: Turn, day: date) -> Markup:
    """The digest of `day` (midnight to midnight in the company's time zone)."""
    _ = turn._
    services = turn.services
    since = datetime.combine(day, time(), services.zone)
    until = datetime.combine(day + timedelta(days=1), time(), services.zone)
    faq = await services.store.faq_stats(since, until, top=TOP_MISSES)
    handoffs = await services.store.handoff_stats(since, until)
    lines: list[str] = [
        _("📊 <b>Daily digest: {day}</b>").format(day=format_date(day, turn.state.language)),
        _faq_line(turn, faq),
        _("Votes on answers: 👍 {up} · 👎 {down}").format(
            up=sum(up for up, _down in faq.votes.values()),
            down=sum(down for _up, down in faq.votes.values()),
        ),
        _("Handoffs to the team: {count}").format(count=handoffs.handoffs),
    ]
    if faq.missed:
        lines.append("")
        lines.append(_("Missed most:"))
        lines += [
            _("{count}× {question}").format(count=count, question=question)
            for question, count in faq.missed
        ]
        lines.append(_("<code>minerdesk faq gaps</code> drafts KB entries from what was missed."))
    return Markup("\n").join(lines)


def _faq_line(turn: Turn, faq: FaqStats) -> Markup:
    _ = turn._
    total = faq.questions
    if not total:
        return _("No questions to the FAQ.")
    return _(
        "Questions to the FAQ: {total} (answered {answered}, suggestions {suggested}, "
        "fallbacks {fallbacks})"
    ).format(
        total=total,
        answered="{:.0%}".format(faq.decisions.get("answer", 0) / total),
        suggested="{:.0%}".format(faq.decisions.get("suggest", 0) / total),
        fallbacks="{:.0%}".format(faq.decisions.get("fallback", 0) / total),
    )
