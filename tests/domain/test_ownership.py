"""The pause after failed ownership checks, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.ownership import CHECK_WINDOW, on_phone, pause
from tests.factories import order

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_below_the_limit_nothing_is_paused() -> None:
    assert pause([NOW - timedelta(minutes=5)] * 4, 5, NOW) is None


def test_at_the_limit_the_pause_lasts_until_the_oldest_counted_failure_ages_out() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (50, 40, 30, 20, 10, 1)]
    # The five newest count; the oldest of them (40 minutes ago) frees a try in 20 minutes.
    assert pause(failures, 5, NOW) == CHECK_WINDOW - timedelta(minutes=40)


@pytest.mark.parametrize(
    ("order_phone", "chat_phone", "matches"),
    [
        ("+7 (701) 123-45-67", "+77011234567", True),
        ("0077011234567", "+77011234567", True),
        ("+7 701 123 45 68", "+77011234567", False),
        # Written without a country: never a match, even when the digits are the same.
        ("77011234567", "+77011234567", False),
        ("8 701 123 45 67", "+77011234567", False),
        (None, "+77011234567", False),
        ("+77011234567", None, False),
    ],
)
def test_an_order_is_on_the_chats_phone_only_when_both_read_as_the_same_e164(
    order_phone: str | None, chat_phone: str | None, matches: bool
) -> None:
    assert on_phone(order(phone=order_phone), chat_phone) is matches
