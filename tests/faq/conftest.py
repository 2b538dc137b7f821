"""Fixtures of the FAQ tests: the smaller shipped model beside the default, loaded once per
session, for the behaviour that shows on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import bundled_kb_path
from faq.encoder import Encoder
from faq.models import MINILM
from faq.service import FaqService


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def minilm(model_cache: Path) -> Encoder:
    return Encoder(MINILM, model_cache)


@pytest.fixture(scope="session")
def minilm_service(minilm: Encoder, placeholders: dict[str, str]) -> Iterator[FaqService]:
    """The bundled KB answered in English by all-MiniLM-L6-v2."""
    service = FaqService(bundled_kb_path(), placeholders, minilm)
    yield service
    service.close()
