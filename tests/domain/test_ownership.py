"""The pause after failed ownership checks, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.ownership import CHECK_WINDOW, pause

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_below_the_limit_nothing_is_paused() -> None:
    assert pause([NOW - timedelta(minutes=5)] * 4, 5, NOW) is None


def test_at_the_limit_the_pause_lasts_until_the_oldest_counted_failure_ages_out() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (50, 40, 30, 20, 10, 1)]
    # The five newest count; the oldest of them (40 minutes ago) frees a try in 20 minutes.
    assert pause(failures, 5, NOW) == CHECK_WINDOW - timedelta(minutes=40)
