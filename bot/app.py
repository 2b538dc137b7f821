"""The one factory: settings in, storage + FAQ + engine out, closed again on the way out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from bot.channels.whatsapp_read import CHANNEL as WHATSAPP
from bot.delivery import Delivery
from bot.media import MB, Fetcher, MediaArchive
from bot.notifier import OrderNotifier
from bot.settings import Settings, kb_path
from domain.chats import ChatKey
from domain.hours import BusinessHours
from domain.orders import Order, OrderRules
from domain.ownership import CheckLimits
from faq.encoder import Encoder, multilingual_encoder
from faq.models import DEFAULT_MODEL
from faq.service import FaqService, ReloadReport, watch_kb
from handlers.engine import Engine, Services, StaffDesk
from handlers.messages import Reply
from handlers.orders import status_notice
from handlers.routes import build_router
from storage.open import open_storage
from storage.sql import SqlStorage

logger = logging.getLogger(__name__)

# The staff chat's channel (the Telegram supergroup); bot.channels.telegram imports this
# module, so its CHANNEL is named here again.
TELEGRAM = "telegram"

# Messengers re-deliver within hours, so a week of processed-update marks is plenty.
PRUNE_AFTER_DAYS = 7


@dataclass
class App:
    settings: Settings
    storage: SqlStorage
    faq: FaqService
    engine: Engine
    # Set when this process saved an order, so notifiers look for notices at once.
    orders_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # The KB watcher's latest report, and set while the staff chat has not been told of it.
    kb_report: ReloadReport | None = None
    kb_reported: asyncio.Event = field(default_factory=asyncio.Event)

    def kb_reloaded(self, report: ReloadReport) -> None:
        """The watcher tried an edited KB: the runtime posts the report in the staff chat
        (only the latest, if several come before it looks)."""
        self.kb_report = report
        self.kb_reported.set()

    @property
    def services(self) -> Services:
        return self.engine.services

    def order_notifier(self, channel: str, delivery: Delivery) -> OrderNotifier:
        """Tells this channel's chats about their orders' status changes."""

        def write(order: Order, language: str) -> Reply:
            return status_notice(order, language, self.services)

        return OrderNotifier(self.storage, channel, delivery, write, self.orders_changed)

    def media_archive(self, channel: str, fetcher: Fetcher) -> MediaArchive | None:
        """Copies this channel's ticket files to `media.store_path`; None when unset."""
        media = self.settings.media
        if media.store_path is None:
            return None
        return MediaArchive(
            self.storage, channel, fetcher, media.store_path, media.max_store_mb * MB
        )


def order_rules(settings: Settings) -> OrderRules:
    orders = settings.orders
    return OrderRules(
        dispatch_business_days=orders.dispatch_business_days,
        delivery_business_days=orders.delivery_business_days,
        ddp_delivery_business_days=orders.ddp_delivery_business_days,
        warranty_days=orders.warranty_days,
        repaired_part_warranty_days=orders.repaired_part_warranty_days,
        stale_after_days=orders.stale_after_days,
        holidays=frozenset(settings.company.holidays),
    )


def build_faq(settings: Settings) -> FaqService:
    """Load the model (offline) and the KB; blocking, so call it in a worker thread."""
    faq = settings.faq
    model = settings.english_model()
    # Which model serves is worth a line: `faq train` changes it without a config edit.
    logger.info("faq.model english=%s", model or f"{DEFAULT_MODEL} (shipped)")
    encoder = Encoder(model, cache_dir=settings.cache_dir, threads=faq.threads)
    multilingual = multilingual_encoder(faq.multilingual_model, settings.cache_dir, faq.threads)
    return FaqService(
        kb_path(settings),
        settings.company.placeholders(),
        encoder,
        multilingual,
        cache_dir=settings.cache_dir,
        target_unanswered=faq.target_unanswered,
    )


def staff_desk(settings: Settings) -> StaffDesk:
    handoff, company = settings.handoff, settings.company
    hours = handoff.business_hours
    return StaffDesk(
        # The Telegram staff supergroup, whatever channel customers write on.
        chat=None
        if handoff.staff_chat_id is None
        else ChatKey(TELEGRAM, str(handoff.staff_chat_id)),
        hours=BusinessHours(
            zone=company.zone,
            days=hours.weekdays,
            opens=hours.opens,
            closes=hours.closes,
            holidays=frozenset(company.holidays),
        ),
        reply_within_minutes=handoff.reply_within_minutes,
        remind_after_minutes=handoff.remind_after_minutes,
        admin_ids=frozenset(str(user_id) for user_id in handoff.admin_ids),
        digest_at=handoff.digest_time,
    )


@asynccontextmanager
async def build_app(settings: Settings) -> AsyncIterator[App]:
    faq = await asyncio.to_thread(build_faq, settings)
    stack = AsyncExitStack()
    watcher: asyncio.Task[None] | None = None
    try:
        storage = await stack.enter_async_context(open_storage(settings.storage_url))
        await storage.prune(older_than_days=PRUNE_AFTER_DAYS)
        services = Services(
            faq=faq,
            contacts=settings.company.placeholders(),
            store=storage,
            order_rules=order_rules(settings),
            zone=settings.company.zone,
            check_limits=CheckLimits(
                per_chat=settings.orders.max_failed_checks_per_hour,
                per_lookup=settings.orders.max_failed_checks_per_order_per_hour,
                overall=settings.orders.max_failed_checks_overall_per_hour,
            ),
            staff=staff_desk(settings),
            file_size_limits={
                TELEGRAM: None if settings.telegram.local_bot_api else 20 * 1024 * 1024,
                # Meta's own limits by type (up to 100 MB) apply when the file is fetched.
                WHATSAPP: None,
            },
            # A WhatsApp chat id is the customer's phone number: staff see it masked.
            phone_channels=frozenset({WHATSAPP}),
        )
        engine = Engine(storage, services, build_router())
        app = App(settings, storage, faq, engine)
        interval = settings.faq.reload_interval_seconds
        watcher = asyncio.create_task(watch_kb(faq, interval, app.kb_reloaded))
        yield app
    finally:
        if watcher is not None:
            watcher.cancel()
        await stack.aclose()
        faq.close()
