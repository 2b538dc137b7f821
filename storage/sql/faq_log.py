"""What the FAQ learns from customers: the questions it saw, the misses, the votes; and the
days whose digest went to the staff chat."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from domain.chats import ChatKey
from domain.faq_log import FaqStats, Feedback, LoggedMiss, Miss, QuestionAsked
from domain.handoffs import DigestSent
from storage.sql.database import Reader, Repository, Transaction
from storage.sql.times import parse_timestamp, period, utc_timestamp

# Misses kept before the question log have no language: every chat was in English then.
_LANGUAGE_BEFORE_THE_LOG = "en"


async def write_question(tx: Transaction, key: ChatKey, record: QuestionAsked) -> None:
    await tx.execute(
        """INSERT INTO faq_questions (id, channel, chat_id, language, question, decision,
             entry_id, confidence, asked_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            record.id,
            key.channel,
            key.chat_id,
            record.language,
            record.question,
            record.decision,
            record.entry_id,
            record.confidence,
            utc_timestamp(record.at),
        ),
    )


async def write_feedback(tx: Transaction, key: ChatKey, record: Feedback) -> None:
    await tx.execute(
        "INSERT INTO faq_feedback (channel, chat_id, entry_id, helpful, question_id, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            key.channel,
            key.chat_id,
            record.entry_id,
            int(record.helpful),
            record.question_id,
            utc_timestamp(record.at),
        ),
    )


async def write_miss(tx: Transaction, key: ChatKey, record: Miss) -> None:
    """Keep the miss with a copy of its logged question's text.

    Raises ValueError when no such question was logged: a flow's bug must fail its turn
    rather than keep a miss nobody can read.
    """
    written = await tx.execute(
        """INSERT INTO faq_misses (channel, chat_id, question, reason, entry_id, question_id,
             created_at)
           SELECT ?, ?, question, ?, ?, id, ? FROM faq_questions WHERE id=?""",
        (
            key.channel,
            key.chat_id,
            record.reason,
            record.entry_id,
            utc_timestamp(record.at),
            record.question_id,
        ),
    )
    if written == 0:
        raise ValueError(f"no logged question {record.question_id}")


async def write_digest_sent(tx: Transaction, key: ChatKey, record: DigestSent) -> None:
    await tx.execute(
        "INSERT INTO staff_digests (day, sent_at) VALUES (?, ?)",
        (record.day.isoformat(), utc_timestamp(record.at)),
    )


async def _votes(db: Reader, bounds: tuple[str, str]) -> dict[str, tuple[int, int]]:
    """Entry id -> (helpful, not helpful) for votes in `bounds` (see `period`)."""
    rows = await db.fetch_all(
        "SELECT entry_id, SUM(helpful), SUM(1 - helpful) FROM faq_feedback "
        "WHERE created_at >= ? AND created_at < ? GROUP BY entry_id",
        bounds,
    )
    return {entry_id: (int(helpful), int(unhelpful)) for entry_id, helpful, unhelpful in rows}


async def _most_missed(db: Reader, bounds: tuple[str, str], top: int) -> list[tuple[str, int]]:
    """The `top` questions missed in `bounds`, most first."""
    rows = await db.fetch_all(
        # A question missed twice (suggested, then none of these) counts once; the same
        # words in any case are one question.
        """SELECT MIN(question), COUNT(DISTINCT COALESCE(question_id, 'row:' || id)) AS times
           FROM faq_misses WHERE created_at >= ? AND created_at < ?
           GROUP BY lower(question) ORDER BY times DESC, MIN(question) LIMIT ?""",
        (*bounds, top),
    )
    return [(question, times) for question, times in rows]


class FaqLogRepository(Repository):
    async def feedback_counts(self) -> dict[str, tuple[int, int]]:
        return await _votes(self.database, period(None, None))

    async def misses(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[LoggedMiss]:
        rows = await self.database.fetch_all(
            """SELECT m.question, m.reason, m.entry_id, COALESCE(q.language, ?), m.channel,
                 m.chat_id, m.created_at, m.question_id
               FROM faq_misses m LEFT JOIN faq_questions q ON q.id = m.question_id
               WHERE m.created_at >= ? AND m.created_at < ? ORDER BY m.created_at, m.id""",
            (_LANGUAGE_BEFORE_THE_LOG, *period(since, until)),
        )
        return [
            LoggedMiss(
                question,
                reason,
                entry_id,
                language,
                ChatKey(channel, chat_id),
                parse_timestamp(at),
                question_id,
            )
            for question, reason, entry_id, language, channel, chat_id, at, question_id in rows
        ]

    async def faq_stats(
        self, since: datetime, until: datetime | None = None, top: int = 10
    ) -> FaqStats:
        bounds = period(since, until)
        decisions: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        channels: dict[str, Counter[str]] = {}
        for channel, decision, language, count in await self.database.fetch_all(
            "SELECT channel, decision, language, COUNT(*) FROM faq_questions "
            "WHERE asked_at >= ? AND asked_at < ? GROUP BY channel, decision, language",
            bounds,
        ):
            decisions[decision] += count
            languages[language] += count
            channels.setdefault(channel, Counter())[decision] += count
        answered = await self.database.fetch_all(
            "SELECT entry_id, COUNT(*) FROM faq_questions "
            "WHERE asked_at >= ? AND asked_at < ? AND decision='answer' "
            "GROUP BY entry_id ORDER BY COUNT(*) DESC, entry_id LIMIT ?",
            (*bounds, top),
        )
        return FaqStats(
            dict(decisions),
            dict(languages),
            [(entry_id, count) for entry_id, count in answered],
            await _votes(self.database, bounds),
            await _most_missed(self.database, bounds, top),
            {channel: dict(counts) for channel, counts in sorted(channels.items())},
        )

    async def last_digest_day(self) -> date | None:
        row = await self.database.fetch_one("SELECT MAX(day) FROM staff_digests")
        return None if row is None or row[0] is None else date.fromisoformat(row[0])
