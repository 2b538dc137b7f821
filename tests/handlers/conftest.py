"""The engine most flow tests talk to: the real FAQ, a real SQLite file, default services."""

from __future__ import annotations

import pytest

from faq.service import FaqService
from handlers.engine import Engine, Services
from handlers.routes import build_router
from storage.sqlite import SqliteStorage


@pytest.fixture
def engine(storage: SqliteStorage, faq_service: FaqService, placeholders: dict[str, str]) -> Engine:
    return Engine(storage, Services(faq_service, placeholders, storage), build_router())
