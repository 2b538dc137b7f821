"""`minerdesk stats`: the figures from known handoffs, and the command on a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.stats import faq_figures, format_faq_figures, format_figures, handoff_figures
from domain.chats import ChatKey, ConversationState
from domain.faq_log import FaqStats, Feedback
from domain.handoffs import HandoffOpened, HandoffStats, HandoffUpdate, Said
from storage.sqlite import SqliteStorage
from tests.factories import Turns
from tests.test_cli import minerdesk

QUESTIONS = {
    "instalments": "Can I pay for my order in instalments?",
    "payment_methods": "What payment methods do you accept?",
}


def test_figures_from_known_handoffs() -> None:
    stats = HandoffStats(
        handoffs=4,
        per_day=[("2026-11-20", 1), ("2026-11-21", 3)],
        conversations=40,
        first_reply_seconds=[60, 120, 600],
        ratings=[5, 4, 4],
    )
    figures = handoff_figures(stats, days=2)
    assert figures["handoffs_per_day"] == 2
    assert figures["handoff_share"] == 0.1
    assert figures["first_reply_minutes"] == {"answered": 3, "median": 2.0, "p90": 10.0}
    assert figures["satisfaction"]["average"] == 4.33
    assert figures["satisfaction"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}
    report = format_figures(figures)
    assert "share handed off:           10.0%" in report
    assert "median 2.0 min, p90 10.0 min (3 answered)" in report
    assert "4.33 / 5 from 3 ratings" in report


def test_figures_are_split_by_the_customers_channel() -> None:
    on_telegram = HandoffStats(3, [("2026-11-21", 3)], 30, [60, 600], [5, 4])
    on_whatsapp = HandoffStats(1, [("2026-11-21", 1)], 4, [180], [])
    stats = HandoffStats(
        4,
        [("2026-11-21", 4)],
        34,
        [60, 600, 180],
        [5, 4],
        by_channel={"telegram": on_telegram, "whatsapp": on_whatsapp},
    )
    figures = handoff_figures(stats, days=1)
    assert figures["handoffs"] == 4
    assert sorted(figures["by_channel"]) == ["telegram", "whatsapp"]
    whatsapp = figures["by_channel"]["whatsapp"]
    assert (whatsapp["handoffs"], whatsapp["conversations"], whatsapp["handoff_share"]) == (
        1,
        4,
        0.25,
    )
    assert whatsapp["first_reply_minutes"] == {"answered": 1, "median": 3.0, "p90": 3.0}
    assert whatsapp["satisfaction"]["ratings"] == 0
    assert figures["by_channel"]["telegram"]["satisfaction"]["average"] == 4.5
    report = format_figures(figures).splitlines()
    assert report[-3:] == [
        "  by the customer's channel:",
        "    telegram: 3 handoffs of 30 conversations (10.0%), first reply median 5.5 min, "
        "4.5 / 5 from 2 ratings",
        "    whatsapp: 1 handoffs of 4 conversations (25.0%), first reply median 3.0 min, "
        "no ratings",
    ]


def test_faq_questions_are_counted_by_channel() -> None:
    stats = FaqStats(
        decisions={"answer": 3, "fallback": 2},
        languages={"en": 5},
        answered=[],
        votes={},
        missed=[],
        channels={
            "telegram": {"answer": 2, "fallback": 1},
            "whatsapp": {"answer": 1, "fallback": 1},
        },
    )
    figures = faq_figures(stats, {})
    assert figures["channels"] == {
        "telegram": {"questions": 3, "answered": 2},
        "whatsapp": {"questions": 2, "answered": 1},
    }
    report = format_faq_figures(figures, days=7)
    assert (
        "  channels:                   telegram 3 (2 answered), whatsapp 2 (1 answered)" in report
    )


def test_no_handoffs_say_so() -> None:
    empty = HandoffStats(0, [], 0, [], [])
    report = format_figures(handoff_figures(empty, days=30))
    assert "share handed off:           –" in report
    assert "(no ratings)" in report


def test_faq_figures_from_known_counts() -> None:
    stats = FaqStats(
        decisions={"answer": 14, "suggest": 4, "fallback": 2},
        languages={"ru": 3, "en": 17},
        answered=[("payment_methods", 9), ("instalments", 5)],
        votes={"instalments": (3, 1), "payment_methods": (5, 0), "gone_entry": (0, 2)},
        missed=[("do you offer hosting", 3), ("is mining profitable", 1)],
    )
    figures = faq_figures(stats, QUESTIONS)
    assert figures["questions"] == 20
    assert figures["answered"] == {"count": 14, "share": 0.7}
    assert figures["suggested"] == {"count": 4, "share": 0.2}
    assert figures["fallback"] == {"count": 2, "share": 0.1}
    assert figures["languages"] == {"en": 17, "ru": 3}
    assert figures["votes"] == [
        {"entry_id": "gone_entry", "question": None, "up": 0, "down": 2},
        {"entry_id": "instalments", "question": QUESTIONS["instalments"], "up": 3, "down": 1},
        {
            "entry_id": "payment_methods",
            "question": QUESTIONS["payment_methods"],
            "up": 5,
            "down": 0,
        },
    ]
    assert figures["top_answered"][0] == {
        "entry_id": "payment_methods",
        "question": QUESTIONS["payment_methods"],
        "count": 9,
    }
    assert figures["top_missed"] == [
        {"question": "do you offer hosting", "count": 3},
        {"question": "is mining profitable", "count": 1},
    ]
    report = format_faq_figures(figures, days=30).splitlines()
    assert report[:6] == [
        "FAQ, last 30 days",
        "  questions:                  20",
        "  answered:                   14 (70.0%)",
        "  suggestions offered:        4 (20.0%)",
        "  fallbacks:                  2 (10.0%)",
        "  languages:                  en 17, ru 3",
    ]
    assert "       9  [payment_methods] What payment methods do you accept?" in report
    assert "       3  do you offer hosting" in report
    assert "    0 / 2   [gone_entry] (no longer in the KB)" in report


def test_no_questions_say_so() -> None:
    report = format_faq_figures(faq_figures(FaqStats({}, {}, [], {}, []), {}), days=7)
    assert "  answered:                   0\n" in report
    assert "  languages:                  –" in report
    assert "  most missed: –" in report


def test_the_stats_command_reads_the_database(cli_env: dict[str, str]) -> None:
    database = Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db"
    opened = datetime.now(UTC) - timedelta(hours=2)

    async def one_answered_handoff() -> None:
        customer = ChatKey("telegram", "7")
        async with SqliteStorage(database) as storage:
            await storage.save(
                customer,
                ConversationState(),
                "1",
                [Said(True, "human please", opened), HandoffOpened(customer, "words", opened)],
            )
            handoff = await storage.open_handoff(customer)
            assert handoff is not None
            replied = opened + timedelta(minutes=3)
            update = HandoffUpdate(handoff.id, {"first_staff_reply_at": replied, "rating": 5})
            await storage.save(customer, ConversationState(), "2", [update])
            turn = Turns(storage)
            await turn.asked(customer, "do you offer hosting", "fallback", at=opened)
            voted_down = await turn.asked(
                customer, "how do I pay", "not_helpful", at=opened, entry_id="payment_methods"
            )
            await turn(customer, Feedback("payment_methods", False, opened, voted_down))

    asyncio.run(one_answered_handoff())
    result = minerdesk("stats", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["handoffs"], figures["conversations"], figures["handoff_share"]) == (1, 1, 1.0)
    assert figures["first_reply_minutes"]["median"] == 3.0
    assert figures["satisfaction"]["ratings"] == 1
    assert figures["by_channel"]["telegram"]["handoffs"] == 1
    faq = figures["faq"]
    assert (faq["questions"], faq["answered"], faq["fallback"]) == (
        2,
        {"count": 1, "share": 0.5},
        {"count": 1, "share": 0.5},
    )
    assert faq["votes"] == [
        {
            "entry_id": "payment_methods",
            "question": QUESTIONS["payment_methods"],
            "up": 0,
            "down": 1,
        }
    ]
    assert faq["top_missed"] == [
        {"question": "do you offer hosting", "count": 1},
        {"question": "how do I pay", "count": 1},
    ]
    assert faq["channels"] == {"telegram": {"questions": 2, "answered": 1}}
    human = minerdesk("stats", "--days", "7", env=cli_env)
    assert "Handoffs to sales reps, last 7 days" in human.stdout
    assert "\n\nFAQ, last 7 days\n  questions:                  2\n" in human.stdout
