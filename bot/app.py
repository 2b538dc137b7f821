"""The one factory: settings in, storage + FAQ + engine out, closed again on the way out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings
from faq.encoder import Encoder
from faq.service import FaqService, watch_kb
from handlers.engine import Engine, Services
from handlers.routes import build_router
from storage.sqlite import SqliteStorage

logger = logging.getLogger(__name__)

# Messengers re-deliver within hours, so a week of processed-update marks is plenty.
PRUNE_AFTER_DAYS = 7


def bundled_kb_path() -> Path:
    """The knowledge base shipped with the package (faq/kb)."""
    import faq

    return Path(faq.__file__).parent / "kb"


def kb_path(settings: Settings) -> Path:
    """The KB folder to serve: `faq.kb_path`, else the bundled one."""
    return settings.faq.kb_path or bundled_kb_path()


@dataclass
class App:
    settings: Settings
    storage: SqliteStorage
    faq: FaqService
    engine: Engine


def build_faq(settings: Settings) -> FaqService:
    """Load the model (offline) and the KB; blocking, so call it in a worker thread."""
    encoder = Encoder(
        settings.faq.model, cache_dir=settings.cache_dir, threads=settings.faq.threads
    )
    return FaqService(kb_path(settings), settings.company.placeholders(), encoder)


@asynccontextmanager
async def build_app(settings: Settings) -> AsyncIterator[App]:
    faq = await asyncio.to_thread(build_faq, settings)
    storage = await SqliteStorage.open(settings.database_path)
    await storage.prune(older_than_days=PRUNE_AFTER_DAYS)
    watcher = asyncio.create_task(watch_kb(faq, settings.faq.reload_interval_seconds))
    try:
        services = Services(faq=faq, contacts=settings.company.placeholders())
        engine = Engine(storage, services, build_router())
        yield App(settings, storage, faq, engine)
    finally:
        watcher.cancel()
        await storage.close()
        faq.close()
