"""The orders HTTP API over real HTTP on 127.0.0.1, with a real SQLite file behind it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import MAX_BODY_BYTES, orders_api
from domain.chats import ChatKey, ConversationState
from domain.ownership import OrderLinked
from storage.sqlite import SqliteStorage
from tests.factories import DEEP_ARRAY, DEEP_OBJECT

Client = TestClient[web.Request, web.Application]
TOKEN = "shop-backend-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "number": "A-1001",
        "email": "buyer@example.com",
        "status": "paid",
        "paid_on": "2026-11-19",
        "items": [{"brand": "Bitmain", "model": "Antminer S21", "serials": ["SN21A0001"]}],
    }
    return base | changes


@pytest.fixture
def changed() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def client(storage: SqliteStorage, changed: asyncio.Event) -> AsyncIterator[Client]:
    async with TestClient(TestServer(orders_api(storage, TOKEN, changed))) as opened:
        yield opened


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
async def test_requests_without_the_bearer_token_are_refused(
    client: Client, storage: SqliteStorage, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.post("/api/orders", json=record(), headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await response.json())["error"] == "missing or wrong bearer token"
    assert await storage.order("A-1001") is None


async def test_create_then_read_then_post_again_changes_nothing(
    client: Client, changed: asyncio.Event
) -> None:
    created = await client.post("/api/orders", json=record(), headers=AUTH)
    assert created.status == 201
    body = await created.json()
    assert (body["created"], body["changed"]) == (True, True)
    assert changed.is_set()
    read = await client.get("/api/orders/a-1001", headers=AUTH)
    assert read.status == 200
    order = (await read.json())["order"]
    assert order["status"] == "paid"
    assert [change["status"] for change in order["history"]] == ["paid"]
    changed.clear()
    again = await client.post("/api/orders", json=record(), headers=AUTH)
    assert again.status == 200
    assert (await again.json())["changed"] is False
    assert not changed.is_set()


async def test_an_invalid_order_gets_every_problem_by_field(client: Client) -> None:
    response = await client.post(
        "/api/orders",
        json=record(status="lost", paid_on="2026-02-30", colour="red"),
        headers=AUTH,
    )
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "invalid order"
    assert {problem["field"] for problem in body["problems"]} >= {"status", "paid_on", "colour"}


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b"x" * (MAX_BODY_BYTES + 1), 413)],
)
async def test_malformed_bodies_get_a_clear_error(client: Client, data: bytes, status: int) -> None:
    response = await client.post(
        "/api/orders", data=io.BytesIO(data), headers=AUTH | {"Content-Type": "application/json"}
    )
    assert response.status == status
    assert (await response.json())["error"]


async def test_bodies_in_no_charset_python_reads_get_a_clear_error(client: Client) -> None:
    for data, content_type in [
        (b'{"carrier": "\xff"}', "application/json"),
        (b"{}", "application/json; charset=klingon"),
    ]:
        response = await client.post(
            "/api/orders", data=data, headers=AUTH | {"Content-Type": content_type}
        )
        assert response.status == 400
        assert (await response.json())["error"] == "the body is not valid JSON"


@pytest.mark.parametrize(
    "body",
    [
        DEEP_ARRAY,
        DEEP_OBJECT,
        json.dumps(record(phone="@")).replace('"@"', DEEP_ARRAY),
        json.dumps(record(carrier="@")).replace('"@"', DEEP_OBJECT),
    ],
    ids=["array", "object", "array-in-a-record", "object-in-a-record"],
)
async def test_bodies_nested_too_deep_get_one_line_and_the_api_carries_on(
    client: Client, body: str
) -> None:
    for send, path in ((client.post, "/api/orders"), (client.patch, "/api/orders/A-1001")):
        response = await send(path, data=body, headers=AUTH)
        assert response.status == 400
        assert await response.json() == {
            "error": "the body is nested deeper than 10 levels (an order has 5)"
        }
    assert (await client.post("/api/orders", json=record(), headers=AUTH)).status == 201


async def test_fields_without_bounds_get_a_422_naming_them(client: Client) -> None:
    huge = record(
        carrier="x" * 900_000, items=[{"brand": "Bitmain", "model": "S21", "quantity": 10_001}]
    )
    created = await client.post("/api/orders", json=huge, headers=AUTH)
    await client.post("/api/orders", json=record(), headers=AUTH)
    patched = await client.patch(
        "/api/orders/A-1001", json={"tracking_number": "1" * 65}, headers=AUTH
    )

    assert (created.status, patched.status) == (422, 422)
    assert (await created.json())["problems"] == [
        {
            "field": "items[0].quantity",
            "message": "10001 is not a quantity (expected a whole number from 1 to 10000)",
        },
        {"field": "carrier", "message": "longer than 80 characters (900000)"},
    ]
    assert (await patched.json())["problems"] == [
        {"field": "tracking_number", "message": "longer than 64 characters (65)"}
    ]


async def test_patch_changes_the_status_and_queues_a_notice_for_linked_chats(
    client: Client, storage: SqliteStorage, changed: asyncio.Event
) -> None:
    await client.post("/api/orders", json=record(), headers=AUTH)
    customer = ChatKey("telegram", "42")
    await storage.save(customer, ConversationState(), None, records=[OrderLinked("A-1001")])
    changed.clear()
    response = await client.patch(
        "/api/orders/A-1001",
        json={"status": "shipped", "shipped_on": "2026-11-20", "carrier": "DHL"},
        headers=AUTH,
    )
    assert response.status == 200
    order = (await response.json())["order"]
    assert (order["status"], order["carrier"]) == ("shipped", "DHL")
    assert [change["status"] for change in order["history"]] == ["paid", "shipped"]
    assert changed.is_set()
    [notice] = await storage.order_notices("telegram")
    assert (notice.key, notice.number, notice.status) == (customer, "A-1001", "shipped")


async def test_patch_errors(client: Client) -> None:
    missing = await client.patch("/api/orders/NOPE-1", json={"status": "shipped"}, headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"] == "no order NOPE-1"
    await client.post("/api/orders", json=record(), headers=AUTH)
    renumber = await client.patch("/api/orders/A-1001", json={"number": "B-2"}, headers=AUTH)
    assert renumber.status == 422
    assert (await renumber.json())["problems"][0]["field"] == "number"


async def test_unknown_routes_and_methods_answer_in_json(client: Client) -> None:
    assert (await client.get("/api/nothing", headers=AUTH)).status == 404
    wrong_method = await client.delete("/api/orders/A-1001", headers=AUTH)
    assert wrong_method.status == 405
    assert (await wrong_method.json())["error"]
