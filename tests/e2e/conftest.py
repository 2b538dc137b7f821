"""Fixtures: the Bot API emulator and the real bot process (tests/botprocess.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.botprocess import BotProcess
from tests.emulator import BotApiEmulator


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def emulator() -> Iterator[BotApiEmulator]:
    with BotApiEmulator() as emu:
        yield emu


@pytest.fixture
def bot(emulator: BotApiEmulator, tmp_path: Path, shared_cache: Path) -> Iterator[BotProcess]:
    """A bot of this test's own, not started yet."""
    yield from launched(emulator, tmp_path / "data", shared_cache)


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[BotApiEmulator]:
    """One emulator for a test module's tests, with `running_bot`."""
    with BotApiEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def running_bot(
    shared_emulator: BotApiEmulator, tmp_path_factory: pytest.TempPathFactory, shared_cache: Path
) -> Iterator[BotProcess]:
    """One bot for a module's tests that neither stop nor restart it; each uses its own chat."""
    data = tmp_path_factory.mktemp("shared-bot") / "data"
    for process in launched(shared_emulator, data, shared_cache):
        process.start()
        yield process
        assert shared_emulator.unanswered_callbacks() == []


def launched(emulator: BotApiEmulator, data_dir: Path, cache: Path) -> Iterator[BotProcess]:
    data_dir.mkdir()
    process = BotProcess(emulator, data_dir, cache)
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()
