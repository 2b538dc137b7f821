"""Shared fixtures: the real embedding model and the bundled KB, loaded once per session.

Markers follow the fixtures a test uses: one that reaches a model fixture is `model`, one
that reaches a subprocess fixture is `subprocess`, one that reaches the PostgreSQL server
(or runs on the `postgres` backend of a parametrized fixture) is `postgres`, anything under
tests/e2e is `e2e`. `make test-fast` deselects all four and, with MINERDESK_TEST_FAST=1,
makes loading a model or starting a process fail, so a test that does either without its
fixture shows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from bot.settings import CompanySettings, bundled_kb_path
from faq.encoder import Encoder, UniversalEncoder
from faq.service import FaqService
from storage.sqlite import SqliteStorage
from tests.factories import Turns
from tests.pgserver import Databases, NoPostgres, PostgresServer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODEL_FIXTURES = frozenset({"encoder", "multilingual_encoder", "faq_service", "editable_faq"})
SUBPROCESS_FIXTURES = frozenset({"cli_env"})
POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_databases"})
FAST = os.environ.get("MINERDESK_TEST_FAST") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """Property tests: no deadline (a shared machine is slow at times; speed belongs to
    benchmarks), and in CI the same examples every run, so a failure there reproduces."""
    settings.register_profile("dev", deadline=None)
    settings.register_profile("ci", deadline=None, derandomize=True, database=None)
    settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)
        if used & SUBPROCESS_FIXTURES:
            item.add_marker(pytest.mark.subprocess)
        if used & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=FAST)
def _nothing_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the fast suite, loading a model or starting a process is a test's mistake."""

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            pytest.fail(f"the fast suite {what}: use the fixture that marks it (tests/conftest.py)")

        return refused

    monkeypatch.setattr("faq.encoder.Encoder.__init__", refuse("loaded a model"))
    monkeypatch.setattr("faq.encoder.UniversalEncoder.__init__", refuse("loaded a model"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("started a process"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse("started a process"))


@pytest.fixture(scope="session")
def placeholders() -> dict[str, str]:
    return CompanySettings().placeholders()


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one embedding cache: the encoders here and every end-to-end bot keep
    their vectors in it, so each phrasing is encoded once per model."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def encoder(embedding_cache: Path) -> Encoder:
    return Encoder(cache_dir=embedding_cache)


@pytest.fixture(scope="session")
def multilingual_encoder(embedding_cache: Path) -> UniversalEncoder:
    return UniversalEncoder(cache_dir=embedding_cache)


@pytest.fixture(scope="session")
def faq_service(
    encoder: Encoder, multilingual_encoder: UniversalEncoder, placeholders: dict[str, str]
) -> Iterator[FaqService]:
    service = FaqService(bundled_kb_path(), placeholders, encoder, multilingual_encoder)
    yield service
    service.close()


@pytest.fixture
def editable_faq(
    tmp_path: Path, encoder: Encoder, placeholders: dict[str, str]
) -> Iterator[FaqService]:
    """A service on a copy of the bundled KB in the test's folder, free to edit and reload."""
    kb = tmp_path / "kb"
    shutil.copytree(bundled_kb_path(), kb)
    service = FaqService(kb, placeholders, encoder)
    yield service
    service.close()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    """A fresh SQLite file per test, `bot.db` in the test's folder."""
    async with SqliteStorage(tmp_path / "bot.db") as opened:
        yield opened


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session; without the binaries the tests
    that need it are skipped, but fail in CI (CI=true), where .ci/run installs them."""
    try:
        server = PostgresServer()
    except NoPostgres as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: PostgresServer) -> Databases:
    return Databases(postgres_server)


@pytest.fixture
def turn(storage: SqliteStorage) -> Turns:
    """Saves records the way a conversation turn does."""
    return Turns(storage)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running `minerdesk` as a subprocess with its data in a temp folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MINERDESK_")}
    env["MINERDESK_DATA_DIR"] = str(tmp_path / "data")
    env["MINERDESK_CONFIG"] = str(ROOT / "config.yaml")
    return env
