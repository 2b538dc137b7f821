"""Orders on each backend: saving, look-ups, links, status notices and failed checks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.chats import ChatKey, ConversationState
from domain.orders import Condition, Order, OrderItem, OrderStatus, Repair, StatusChange
from domain.ownership import FailedOwnershipCheck, OrderLinked
from storage.orders import OrderNotice, SaveResult
from storage.sql import SqlStorage
from storage.sqlite import MIGRATIONS, SqliteStorage
from tests.storage import raw

KEY = ChatKey("telegram", "42")
OTHER = ChatKey("telegram", "43")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)


def order(
    number: str = "MD-1001",
    status: OrderStatus = OrderStatus.PAID,
    serials: tuple[str, ...] = ("SN-AAA",),
    **fields: Any,
) -> Order:
    item = OrderItem("Bitmain", "Antminer S21", serials=serials)
    return Order(number, "buyer@example.com", status, items=(item,), **fields)


async def link(storage: SqlStorage, key: ChatKey, number: str, update_id: str) -> None:
    await storage.save(key, ConversationState(), update_id, records=[OrderLinked(number)])


async def test_a_new_order_is_created_with_a_history_of_one(storage: SqlStorage) -> None:
    result = await storage.save_order(order(), T0)
    assert result == SaveResult(created=True, changed=True, previous_status=None)
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert stored.history == (StatusChange(OrderStatus.PAID, T0),)
    assert stored == order(history=(StatusChange(OrderStatus.PAID, T0),))


async def test_an_unknown_order_is_none(storage: SqlStorage) -> None:
    assert await storage.order("MD-404") is None
    assert await storage.orders_with_serial("SN-AAA") == []


async def test_saving_an_identical_order_changes_nothing(storage: SqlStorage) -> None:
    await storage.save_order(order(), T0)
    # The history passed with a known order is ignored, so it does not count as a change.
    again = order(history=(StatusChange(OrderStatus.PAID, T1),))
    result = await storage.save_order(again, T1)
    assert result == SaveResult(created=False, changed=False, previous_status=OrderStatus.PAID)
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert stored.history == (StatusChange(OrderStatus.PAID, T0),)


async def test_other_changes_keep_the_status_history(storage: SqlStorage) -> None:
    await link(storage, KEY, "MD-1001", "1")
    await storage.save_order(order(), T0)
    result = await storage.save_order(order(phone="+49 30 1234567"), T1)
    assert result == SaveResult(created=False, changed=True, previous_status=OrderStatus.PAID)
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert stored.phone == "+49 30 1234567"
    assert stored.history == (StatusChange(OrderStatus.PAID, T0),)
    assert await storage.order_notices("telegram") == []


async def test_a_status_change_is_recorded_and_told_to_every_linked_chat(
    storage: SqlStorage,
) -> None:
    await storage.save_order(order(), T0)
    await storage.save(KEY, ConversationState(language="ru"), "1", [OrderLinked("MD-1001")])
    await link(storage, OTHER, "md-1001", "2")
    await link(storage, ChatKey("console", "7"), "MD-1001", "3")

    result = await storage.save_order(order(status=OrderStatus.SHIPPED), T1)

    assert result == SaveResult(created=False, changed=True, previous_status=OrderStatus.PAID)
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert stored.status is OrderStatus.SHIPPED
    assert stored.history == (
        StatusChange(OrderStatus.PAID, T0),
        StatusChange(OrderStatus.SHIPPED, T1),
    )
    notices = await storage.order_notices("telegram")
    assert [(n.key, n.number, n.status, n.language) for n in notices] == [
        (KEY, "MD-1001", OrderStatus.SHIPPED, "ru"),
        (OTHER, "MD-1001", OrderStatus.SHIPPED, "en"),
    ]
    assert [n.key for n in await storage.order_notices("console")] == [ChatKey("console", "7")]


async def test_notices_are_listed_oldest_first(storage: SqlStorage) -> None:
    await storage.save_order(order(), T0)
    await link(storage, KEY, "MD-1001", "1")
    await storage.save_order(order(status=OrderStatus.SHIPPED), T1)
    await storage.save_order(order(status=OrderStatus.DELIVERED), T2)
    notices = await storage.order_notices("telegram")
    assert [n.status for n in notices] == [OrderStatus.SHIPPED, OrderStatus.DELIVERED]
    assert notices[0].id < notices[1].id


async def test_no_notice_for_an_unlinked_order_or_an_unchanged_status(
    storage: SqlStorage,
) -> None:
    await link(storage, KEY, "MD-1001", "1")
    await storage.save_order(order("MD-1001"), T0)  # new: nothing to tell yet
    await storage.save_order(order("MD-2002", serials=()), T0)
    await storage.save_order(order("MD-2002", OrderStatus.SHIPPED, serials=()), T1)
    await storage.save_order(order("MD-1001", carrier="DHL"), T1)
    assert await storage.order_notices("telegram") == []


async def test_a_new_order_keeps_the_history_it_comes_with(storage: SqlStorage) -> None:
    history = (
        StatusChange(OrderStatus.PAID, T0),
        StatusChange(OrderStatus.SHIPPED, T1),
    )
    result = await storage.save_order(order(status=OrderStatus.SHIPPED, history=history), T2)
    assert result.created
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert stored.history == history


async def test_look_ups_ignore_case(storage: SqlStorage) -> None:
    await storage.save_order(order("MD-1001", serials=("SN-AbC",)), T0)
    by_number = await storage.order("md-1001")
    assert by_number is not None
    assert by_number.number == "MD-1001"
    assert [o.number for o in await storage.orders_with_serial("sn-abc")] == ["MD-1001"]
    assert [o.number for o in await storage.orders_with_serial(" SN-ABC ")] == ["MD-1001"]
    [found] = await storage.orders_with_serial("SN-ABC")
    assert found.history == (StatusChange(OrderStatus.PAID, T0),)


async def test_saving_by_another_spelling_updates_the_same_order(storage: SqlStorage) -> None:
    await storage.save_order(order("MD-1001"), T0)
    result = await storage.save_order(order("md-1001", OrderStatus.SHIPPED), T1)
    assert not result.created
    assert result.previous_status is OrderStatus.PAID
    stored = await storage.order("MD-1001")
    assert stored is not None
    assert [change.status for change in stored.history] == [
        OrderStatus.PAID,
        OrderStatus.SHIPPED,
    ]


async def test_serials_follow_the_items(storage: SqlStorage) -> None:
    await storage.save_order(order("MD-1001", serials=("SN-OLD", "SN-KEEP")), T0)
    await storage.save_order(order("MD-2002", serials=("SN-KEEP",)), T0)
    await storage.save_order(order("MD-1001", serials=("SN-KEEP", "SN-NEW")), T1)
    assert await storage.orders_with_serial("SN-OLD") == []
    assert [o.number for o in await storage.orders_with_serial("SN-NEW")] == ["MD-1001"]
    assert {o.number for o in await storage.orders_with_serial("SN-KEEP")} == {
        "MD-1001",
        "MD-2002",
    }


async def test_linked_orders_come_most_recently_linked_first_and_once(
    storage: SqlStorage,
) -> None:
    for number in ("MD-1", "MD-2", "MD-3"):
        await storage.save_order(order(number, serials=()), T0)
    await link(storage, KEY, "MD-1", "1")
    await link(storage, KEY, "MD-2", "2")
    await link(storage, OTHER, "MD-3", "3")
    await link(storage, KEY, "md-2", "4")  # linked again, by another spelling
    linked = await storage.linked_orders(KEY)
    assert [o.number for o in linked] == ["MD-2", "MD-1"]
    assert linked[0].history == (StatusChange(OrderStatus.PAID, T0),)
    assert [o.number for o in await storage.linked_orders(OTHER)] == ["MD-3"]
    assert await storage.linked_orders(ChatKey("console", "42")) == []


async def test_linking_again_moves_the_order_first(storage: SqlStorage) -> None:
    for number in ("MD-1", "MD-2"):
        await storage.save_order(order(number, serials=()), T0)
    await link(storage, KEY, "MD-1", "1")
    await link(storage, KEY, "MD-2", "2")
    await raw.execute(storage, "UPDATE order_links SET linked_at='2024-01-01T00:00:00.000Z'")
    await link(storage, KEY, "MD-1", "3")
    assert [o.number for o in await storage.linked_orders(KEY)] == ["MD-1", "MD-2"]


async def test_an_order_linked_before_it_is_known_shows_up_once_saved(
    storage: SqlStorage,
) -> None:
    await link(storage, KEY, "md-1001", "1")
    assert await storage.linked_orders(KEY) == []
    await storage.save_order(order("MD-1001"), T0)
    assert [o.number for o in await storage.linked_orders(KEY)] == ["MD-1001"]


async def test_delivering_a_notice_moves_it_to_the_outbox_once(storage: SqlStorage) -> None:
    await storage.save_order(order(), T0)
    await link(storage, KEY, "MD-1001", "1")
    await storage.save_order(order(status=OrderStatus.SHIPPED), T1)
    [notice] = await storage.order_notices("telegram")
    reply = {"text": "Заказ MD-1001 отправлен"}

    queued = await storage.deliver_notice(notice, reply)

    assert (queued.key, queued.body, queued.parts_sent) == (KEY, reply, 0)
    assert await storage.outbox("telegram") == [queued]
    assert await storage.order_notices("telegram") == []
    with pytest.raises(LookupError):
        await storage.deliver_notice(notice, reply)
    assert await storage.outbox("telegram") == [queued]


async def test_a_dropped_notice_is_gone_without_a_reply(storage: SqlStorage) -> None:
    await storage.save_order(order(), T0)
    await link(storage, KEY, "MD-1001", "1")
    await storage.save_order(order(status=OrderStatus.SHIPPED), T1)
    await storage.save_order(order(status=OrderStatus.DELIVERED), T2)
    shipped, delivered = await storage.order_notices("telegram")
    await storage.drop_notice(shipped)
    await storage.drop_notice(shipped)  # already gone: nothing to do
    assert await storage.order_notices("telegram") == [delivered]
    assert await storage.outbox("telegram") == []
    with pytest.raises(LookupError):
        await storage.deliver_notice(shipped, {"text": "x"})


async def test_a_notice_that_never_existed_cannot_be_delivered(storage: SqlStorage) -> None:
    ghost = OrderNotice(999, KEY, "MD-1001", OrderStatus.SHIPPED)
    with pytest.raises(LookupError):
        await storage.deliver_notice(ghost, {"text": "x"})
    assert await storage.outbox("telegram") == []


async def fail_check(
    storage: SqlStorage, key: ChatKey, update_id: str, lookup: str = "A-1"
) -> None:
    check = FailedOwnershipCheck(datetime.now(UTC), lookup)
    await storage.save(key, ConversationState(), update_id, records=[check])


async def test_failed_checks_are_counted_per_chat_since_a_time(storage: SqlStorage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await fail_check(storage, KEY, "1")
    await fail_check(storage, KEY, "2")
    await fail_check(storage, OTHER, "3")
    after = datetime.now(UTC) + timedelta(seconds=1)

    failures = await storage.failed_checks_since(key=KEY, since=before)

    assert len(failures) == 2
    assert failures == sorted(failures)
    assert all(before <= at <= after and at.utcoffset() == timedelta(0) for at in failures)
    assert len(await storage.failed_checks_since(key=OTHER, since=before)) == 1
    assert await storage.failed_checks_since(key=KEY, since=after) == []


async def test_failed_checks_are_counted_per_lookup_across_chats_and_overall(
    storage: SqlStorage,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await fail_check(storage, KEY, "1", lookup="A-1")
    await fail_check(storage, OTHER, "2", lookup="a-1")
    await fail_check(storage, OTHER, "3", lookup="SN-77")
    assert len(await storage.failed_checks_since(before, lookup="A-1")) == 2
    assert len(await storage.failed_checks_since(before, lookup="sn-77")) == 1
    assert len(await storage.failed_checks_since(before, key=OTHER, lookup="A-1")) == 1
    assert len(await storage.failed_checks_since(before)) == 3


async def test_failed_checks_compare_across_time_zones_and_to_the_millisecond(
    storage: SqlStorage,
) -> None:
    await raw.execute_many(
        storage,
        "INSERT INTO ownership_checks_failed (channel, chat_id, at) VALUES (?, ?, ?)",
        [
            ("telegram", "42", "2024-05-01T09:59:59.999Z"),
            ("telegram", "42", "2024-05-01T10:00:00.000Z"),
            ("telegram", "42", "2024-05-01T10:00:00.500Z"),
        ],
    )
    berlin_noon = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert await storage.failed_checks_since(key=KEY, since=berlin_noon) == [
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 10, 0, 0, 500_000, tzinfo=UTC),
    ]
    just_after = datetime(2024, 5, 1, 10, 0, 0, 400_000, tzinfo=UTC)
    assert await storage.failed_checks_since(key=KEY, since=just_after) == [
        datetime(2024, 5, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    ]


async def test_prune_forgets_old_failed_checks(storage: SqlStorage) -> None:
    await raw.execute(
        storage,
        "INSERT INTO ownership_checks_failed (channel, chat_id, at) "
        "VALUES ('telegram', '42', '2020-01-01T00:00:00.000Z')",
    )
    await fail_check(storage, KEY, "1")
    long_ago = datetime(2019, 1, 1, tzinfo=UTC)
    assert len(await storage.failed_checks_since(key=KEY, since=long_ago)) == 2
    await storage.prune(older_than_days=7)
    [recent] = await storage.failed_checks_since(key=KEY, since=long_ago)
    assert recent > datetime.now(UTC) - timedelta(minutes=1)


async def test_a_version_2_file_is_upgraded_and_keeps_orders(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as old:
        old.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "; PRAGMA user_version = 2;")
        old.execute(
            "INSERT INTO conversations (channel, chat_id, language) VALUES ('telegram', '42', 'de')"
        )
    old.close()
    async with SqliteStorage(path) as upgraded:
        assert await upgraded.schema_version() == len(MIGRATIONS)
        await upgraded.save_order(order(), T0)
        state = await upgraded.load(KEY)
        assert state.language == "de"
        await upgraded.save(KEY, state, "1", [OrderLinked("MD-1001")])
        await upgraded.save_order(order(status=OrderStatus.SHIPPED), T1)
        [notice] = await upgraded.order_notices("telegram")
        assert notice.language == "de"
    async with SqliteStorage(path) as reopened:
        stored = await reopened.order("MD-1001")
        assert stored is not None
        assert stored.status is OrderStatus.SHIPPED


async def test_an_order_with_every_field_round_trips(storage: SqlStorage) -> None:
    full = Order(
        number="MD-7777",
        email="mina@example.com",
        status=OrderStatus.IN_CUSTOMS,
        items=(
            OrderItem(
                "Bitmain",
                "Antminer S19 XP",
                quantity=2,
                condition=Condition.REFURBISHED,
                serials=("SN-1", "SN-2"),
                repairs=(
                    Repair("hashboard", date(2024, 3, 2), serial="HB-9", ticket_id="T-17"),
                    Repair("PSU", date(2024, 3, 5)),
                ),
            ),
            OrderItem("MicroBT", "WhatsMiner M50S", condition=Condition.USED, serials=("SN-3",)),
        ),
        phone="+7 999 123-45-67",
        carrier="DHL Express",
        tracking_number="JD0146000012345",
        ddp=True,
        paid_on=date(2024, 4, 1),
        shipped_on=date(2024, 4, 3),
        delivered_on=date(2024, 4, 20),
        expected_on=date(2024, 4, 2),
        tracking_updated_at=datetime(
            2024, 4, 10, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=3))
        ),
        history=(
            StatusChange(OrderStatus.PAID, datetime(2024, 4, 1, 10, 0, tzinfo=UTC)),
            StatusChange(OrderStatus.IN_CUSTOMS, datetime(2024, 4, 9, 17, 45, tzinfo=UTC)),
        ),
    )
    await storage.save_order(full, T0)
    stored = await storage.order("md-7777")
    assert stored == full
    assert stored is not None
    assert stored.tracking_updated_at is not None
    assert stored.tracking_updated_at.utcoffset() == timedelta(hours=3)
    assert [o.number for o in await storage.orders_with_serial("sn-3")] == ["MD-7777"]
    assert await storage.save_order(full, T1) == SaveResult(
        created=False, changed=False, previous_status=OrderStatus.IN_CUSTOMS
    )
