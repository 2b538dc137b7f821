"""The orders HTTP API the shop's backend feeds: create, update and read orders.

    POST  /api/orders            a full order (JSON object); creates it or replaces it
    PATCH /api/orders/{number}   some fields of an existing order
    GET   /api/orders/{number}   the order as stored, with its status history

Every request needs `Authorization: Bearer <MINERDESK_ORDERS__API__TOKEN>`. The order
format is `domain.order_feed`'s, the same as `minerdesk orders import` reads. A status
change is told to the chats linked to the order by the channel's notifier.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.workers import REUSE_PORT
from domain.order_feed import (
    NestedTooDeep,
    RecordInvalid,
    apply_patch,
    order_from_record,
    parse_json,
)
from domain.orders import Order, order_to_record
from storage.orders import OrderStore

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
STORE_KEY = web.AppKey("store", OrderStore)
CHANGED_KEY = web.AppKey("changed", asyncio.Event)
LOCK_KEY = web.AppKey("lock", asyncio.Lock)


def orders_api(store: OrderStore, token: str, changed: asyncio.Event) -> web.Application:
    """The aiohttp application; `changed` is set after every save that changed an order."""
    app = web.Application(
        middlewares=[_errors_as_json, _require_token(token)], client_max_size=MAX_BODY_BYTES
    )
    app[STORE_KEY] = store
    app[CHANGED_KEY] = changed
    # Read-modify-write of a PATCH must not interleave with another save.
    app[LOCK_KEY] = asyncio.Lock()
    app.router.add_post("/api/orders", _create)
    app.router.add_patch("/api/orders/{number}", _update)
    app.router.add_get("/api/orders/{number}", _read)
    return app


async def serve_orders_api(
    store: OrderStore, token: str, changed: asyncio.Event, host: str, port: int
) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(orders_api(store, token, changed), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=REUSE_PORT).start()
        logger.info("orders_api.listening host=%s port=%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _require_token(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning("orders_api.unauthorized remote=%s", request.remote)
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413) in the same JSON shape as ours."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)


async def _create(request: web.Request) -> web.Response:
    record = await _json_object(request)
    try:
        order = order_from_record(record)
    except RecordInvalid as exc:
        return _invalid(exc)
    async with request.app[LOCK_KEY]:
        return await _save(request, order)


async def _update(request: web.Request) -> web.Response:
    patch = await _json_object(request)
    store = request.app[STORE_KEY]
    async with request.app[LOCK_KEY]:
        current = await store.order(request.match_info["number"])
        if current is None:
            return _error(404, f"no order {request.match_info['number']}")
        try:
            order = apply_patch(current, patch)
        except RecordInvalid as exc:
            return _invalid(exc)
        return await _save(request, order)


async def _read(request: web.Request) -> web.Response:
    order = await request.app[STORE_KEY].order(request.match_info["number"])
    if order is None:
        return _error(404, f"no order {request.match_info['number']}")
    return web.json_response({"order": order_to_record(order)})


async def _save(request: web.Request, order: Order) -> web.Response:
    store = request.app[STORE_KEY]
    result = await store.save_order(order, datetime.now(UTC))
    if result.changed:
        request.app[CHANGED_KEY].set()
    logger.info(
        "orders_api.saved order=%s status=%s created=%s changed=%s",
        order.number,
        order.status,
        result.created,
        result.changed,
    )
    saved = await store.order(order.number)
    assert saved is not None
    body = {"order": order_to_record(saved), "created": result.created, "changed": result.changed}
    return web.json_response(body, status=201 if result.created else 200)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = parse_json(await request.text())
    except NestedTooDeep as exc:
        raise web.HTTPBadRequest(reason=f"the body is {exc}") from None
    except (ValueError, LookupError):  # not JSON, not in its charset, an unknown charset
        raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="expected a JSON object")
    return body


def _invalid(exc: RecordInvalid) -> web.Response:
    problems = [{"field": field, "message": message} for field, message in exc.problems]
    return web.json_response({"error": "invalid order", "problems": problems}, status=422)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
