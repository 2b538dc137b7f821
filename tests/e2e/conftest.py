"""The real bot, started as users start it (`python -m bot run`), against the Bot API emulator."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.emulator import BotApiEmulator

# Start-up loads the embedding model; a busy 2-core CI machine can take a while.
START_TIMEOUT = 120


class BotProcess:
    """One `minerdesk run` process with its own database; restartable, killable."""

    def __init__(self, emulator: BotApiEmulator, data_dir: Path, cache_dir: Path) -> None:
        self.emulator = emulator
        self.data_dir = data_dir
        self.args: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MINERDESK_")}
        self.env.update(
            MINERDESK_CONFIG=str(ROOT / "config.yaml"),
            MINERDESK_DATA_DIR=str(data_dir),
            MINERDESK_TELEGRAM__TOKEN=emulator.token,
            MINERDESK_TELEGRAM__API_BASE_URL=emulator.base_url,
            MINERDESK_TELEGRAM__POLL_TIMEOUT_SECONDS="2",
            MINERDESK_TELEGRAM__SHUTDOWN_GRACE_SECONDS="5",
            MINERDESK_FAQ__THREADS="1",
        )
        self.cache_dir = cache_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def database(self) -> Path:
        return self.data_dir / "minerdesk.db"

    @property
    def log(self) -> str:
        path = self.data_dir / "minerdesk.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def start(self, *args: str, wait: bool = True) -> None:
        cache = self.data_dir / "cache"
        # Every test's bot shares one embedding cache, so only the first one encodes the KB.
        if not cache.exists():
            cache.symlink_to(self.cache_dir, target_is_directory=True)
        self.args = list(args)
        self.starts += 1
        with (self.data_dir / f"stderr-{self.starts}.txt").open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", *args],
                env=self.env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Ready once it asked for updates (polling) or set its webhook, after this start."""
        method = "setWebhook" if "--webhook" in self.args else "getUpdates"
        seen = len(self.emulator.calls(method))
        self.emulator.wait_until(
            lambda: len(self.emulator.calls(method)) > seen or self.process_exited(),
            timeout=START_TIMEOUT,
            what=f"the bot to call {method}",
        )
        assert not self.process_exited(), self.output()

    def process_exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def output(self) -> str:
        path = self.data_dir / f"stderr-{self.starts}.txt"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a power cut or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def wait_outbox_empty(self) -> None:
        self.emulator.wait_until(
            lambda: self.query("SELECT COUNT(*) FROM outbox") == [(0,)],
            what="every reply marked delivered",
        )

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql).fetchall()


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


def launched(emulator: BotApiEmulator, data_dir: Path, cache: Path) -> Iterator[BotProcess]:
    data_dir.mkdir()
    process = BotProcess(emulator, data_dir, cache)
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
