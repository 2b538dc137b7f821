"""`minerdesk stats`: the figures from known handoffs, and the command on a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.stats import format_figures, handoff_figures
from storage.base import ChatKey, ConversationState
from storage.handoffs import HandoffOpened, HandoffStats, HandoffUpdate, Said
from storage.sqlite import SqliteStorage
from tests.test_cli import minerdesk


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


def test_no_handoffs_say_so() -> None:
    empty = HandoffStats(0, [], 0, [], [])
    report = format_figures(handoff_figures(empty, days=30))
    assert "share handed off:           –" in report
    assert "(no ratings)" in report


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

    asyncio.run(one_answered_handoff())
    result = minerdesk("stats", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["handoffs"], figures["conversations"], figures["handoff_share"]) == (1, 1, 1.0)
    assert figures["first_reply_minutes"]["median"] == 3.0
    assert figures["satisfaction"]["ratings"] == 1
    human = minerdesk("stats", "--days", "7", env=cli_env)
    assert "Handoffs to sales reps, last 7 days" in human.stdout
