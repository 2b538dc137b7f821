"""What a handoff update writes, without a database: only the first staff reply counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.handoffs import HANDOFF_FIELDS, HandoffStatus, HandoffUpdate, fields_to_set

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_the_first_staff_reply_is_set_while_none_came_yet() -> None:
    update = HandoffUpdate(7, {"first_staff_reply_at": T1, "last_staff_at": T1})
    assert fields_to_set(update, None) == {"first_staff_reply_at": T1, "last_staff_at": T1}


def test_a_later_reply_does_not_move_the_first() -> None:
    later = T1 + timedelta(hours=1)
    update = HandoffUpdate(7, {"first_staff_reply_at": later, "last_staff_at": later})
    assert fields_to_set(update, T1) == {"last_staff_at": later}


def test_every_other_field_is_set_as_given() -> None:
    changes = {name: f"value of {name}" for name in HANDOFF_FIELDS - {"first_staff_reply_at"}}
    changes["status"] = HandoffStatus.CLOSED
    assert fields_to_set(HandoffUpdate(7, changes), T1) == changes


def test_an_empty_update_sets_nothing() -> None:
    assert fields_to_set(HandoffUpdate(7), None) == {}


def test_a_field_outside_the_handoff_is_refused() -> None:
    update = HandoffUpdate(7, {"claimed_by": "7001", "chat_id": "666", "id": 8})
    with pytest.raises(ValueError, match="not handoff fields: chat_id, id"):
        fields_to_set(update, None)
