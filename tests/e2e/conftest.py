"""Fixtures: the Bot API emulator and the real bot process (tests/botprocess.py), on each
storage backend: every test that starts a bot runs once on SQLite and once on PostgreSQL
(`test_x[sqlite]`, `test_x[postgresql]`; the latter marked `postgres`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from faq.service import FaqService
from tests.botprocess import BotProcess, sqlite_url
from tests.emulator import BotApiEmulator
from tests.pgserver import Databases


class Backend:
    """Where the bots of one backend keep their data: each bot (or group of workers) gets a
    database of its own, a SQLite file in its folder or a PostgreSQL database on the
    session's server, dropped after."""

    def __init__(self, name: str, databases: Databases | None = None) -> None:
        self.name = name
        self.databases = databases

    @contextmanager
    def database(self, folder: Path) -> Iterator[str]:
        """A fresh database's storage URL for the block."""
        if self.databases is None:
            yield sqlite_url(folder)
            return
        url = asyncio.run(self.databases.create())
        try:
            yield url
        finally:
            asyncio.run(self.databases.drop(url))


# For a test of what happens before the bot serves (a start-up refused), where the
# database plays no part: one backend is enough.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The storage backend of a module's bots; module-scoped, so that a module's shared bot
    starts once per backend and pytest runs its tests backend by backend."""
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgresql", request.getfixturevalue("postgres_databases"))


@pytest.fixture(scope="session")
def shared_cache(embedding_cache: Path, faq_service: FaqService) -> Path:
    """The bots' embedding cache: the session's, where `faq_service` (needed by other tests
    anyway) has encoded the bundled KB, so no bot process encodes it again."""
    return embedding_cache


@pytest.fixture
def emulator() -> Iterator[BotApiEmulator]:
    with BotApiEmulator() as emu:
        yield emu


@pytest.fixture
def bot(
    emulator: BotApiEmulator, tmp_path: Path, shared_cache: Path, backend: Backend
) -> Iterator[BotProcess]:
    """A bot of this test's own, on a fresh database, not started yet."""
    with launched(emulator, tmp_path / "data", shared_cache, backend) as process:
        yield process


@pytest.fixture(scope="module")
def shared_emulator(backend: Backend) -> Iterator[BotApiEmulator]:
    """One emulator for a test module's tests, with `running_bot`; one per backend, as the
    tests' chats would otherwise hold the other backend's messages."""
    with BotApiEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def running_bot(
    shared_emulator: BotApiEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
    backend: Backend,
) -> Iterator[BotProcess]:
    """One bot for a module's tests that neither stop nor restart it; each uses its own chat."""
    data = tmp_path_factory.mktemp("shared-bot") / "data"
    with launched(shared_emulator, data, shared_cache, backend) as process:
        process.start()
        yield process
        assert shared_emulator.unanswered_callbacks() == []


@contextmanager
def launched(
    emulator: BotApiEmulator, data_dir: Path, cache: Path, backend: Backend
) -> Iterator[BotProcess]:
    """A bot (not started) with its data in `data_dir` and a fresh database of `backend`;
    killed if still running at the end, before its database is dropped."""
    data_dir.mkdir()
    with backend.database(data_dir) as url:
        process = BotProcess(emulator, data_dir, cache, url)
        try:
            yield process
        finally:
            if process.process is not None and process.process.poll() is None:
                process.kill()
