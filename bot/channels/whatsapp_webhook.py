"""The WhatsApp webhook: Meta's subscription handshake and its signed notifications.

A notification is accepted only with a valid `X-Hub-Signature-256` (HMAC-SHA256 of the raw
body with the app secret, compared in constant time). Its messages and statuses are handed
to `store`, one item each, before Meta gets its 200: once Meta has the 200 it does not send
them again, and until then it does (a redelivery carries the same wamids, so it is stored
once). The secrets are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from bot.channels.whatsapp_read import NotANotification, split_notification
from bot.settings import WhatsAppSettings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE_PREFIX = "sha256="
# Meta batches up to a thousand statuses in one notification; far below this.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_CHALLENGE_LENGTH = 256

# Stores the notification's items (each a notification of one message or status) durably;
# raises if it could not, and Meta is answered 500 and sends them again later.
Store = Callable[[list[dict[str, Any]]], Awaitable[None]]


def signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends with `body`."""
    return _SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signed_by_meta(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `header` is the body's signature with the app secret (constant time); a
    missing, empty or malformed header never is."""
    if not header or not header.isascii() or not header.startswith(_SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(header.lower().encode(), signature(app_secret, body).encode())


def verified_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo when the handshake carries our verify token; None otherwise."""
    given = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    if query.get("hub.mode") != "subscribe" or not given or not challenge:
        return None
    if len(challenge) > MAX_CHALLENGE_LENGTH:
        return None
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return challenge


class WhatsAppWebhook:
    """An aiohttp server on `whatsapp.webhook.listen_host:listen_port` + `path`; `serve()`
    until cancelled, or `start()` and `stop()` (a port of 0 picks a free one: `port`)."""

    def __init__(self, settings: WhatsAppSettings, store: Store) -> None:
        if settings.app_secret is None or settings.verify_token is None:
            raise ValueError("the WhatsApp webhook needs the app secret and the verify token")
        self.settings = settings
        self.store = store
        self._app_secret = settings.app_secret
        self._verify_token = settings.verify_token
        self._runner: web.AppRunner | None = None
        self.port = settings.webhook.listen_port

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get(self.settings.webhook.path, self._verify)
        app.router.add_post(self.settings.webhook.path, self._notify)
        return app

    async def start(self) -> None:
        hook = self.settings.webhook
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, hook.listen_host, hook.listen_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        logger.info(
            "whatsapp.webhook_listening host=%s port=%d path=%s",
            hook.listen_host,
            self.port,
            hook.path,
        )

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def serve(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _verify(self, request: web.Request) -> web.Response:
        challenge = verified_challenge(request.query, self._verify_token.get_secret_value())
        if challenge is None:
            logger.warning("whatsapp.webhook_verify_refused remote=%s", request.remote)
            return web.Response(status=403, text="verification refused")
        logger.info("whatsapp.webhook_verified")
        return web.Response(text=challenge)

    async def _notify(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            logger.warning("whatsapp.webhook_unsigned remote=%s", request.remote)
            return web.Response(status=401, text="signature required")
        if not signed_by_meta(raw, header, self._app_secret.get_secret_value()):
            logger.warning("whatsapp.webhook_bad_signature remote=%s", request.remote)
            return web.Response(status=403, text="bad signature")
        try:
            body = json.loads(raw)
            notification = split_notification(body, self.settings.phone_number_id)
        except (ValueError, RecursionError) as exc:  # NotANotification is a ValueError
            reason = exc if isinstance(exc, NotANotification) else "not JSON"
            logger.warning("whatsapp.webhook_malformed reason=%s", reason)
            return web.Response(status=400, text="not a WhatsApp notification")
        for code, title in notification.errors:
            logger.warning("whatsapp.webhook_error code=%s title=%s", code, title)
        if notification.skipped:
            logger.info("whatsapp.webhook_skipped what=%s", ",".join(notification.skipped))
        if notification.items:
            try:
                await self.store(notification.items)
            except Exception:
                # Meta sends the notification again: nothing is lost, but it must not repeat.
                logger.exception("whatsapp.webhook_store_failed items=%d", len(notification.items))
                return web.Response(status=500, text="try again")
        return web.Response(text="OK")
