"""The real bot as users start it (`python -m bot run`), pointed at the Bot API emulator.

Used by the end-to-end tests and the load benchmark.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.emulator import BotApiEmulator

ROOT = Path(__file__).resolve().parent.parent

# Start-up loads the embedding model; a busy 2-core CI machine can take a while.
START_TIMEOUT = 300


class BotProcess:
    """One `minerdesk run` process with its own database; restartable, killable."""

    start_timeout: float = START_TIMEOUT

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

    def start(self, *args: str, wait: bool = True) -> float:
        """Start; with `wait`, until it is ready. Returns the seconds that took."""
        started = time.perf_counter()
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
        return time.perf_counter() - started

    def wait_ready(self) -> None:
        """Ready once it asked for updates (polling) or set its webhook, after this start."""
        method = "setWebhook" if "--webhook" in self.args else "getUpdates"
        seen = len(self.emulator.calls(method))
        self.emulator.wait_until(
            lambda: len(self.emulator.calls(method)) > seen or self.process_exited(),
            timeout=self.start_timeout,
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

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_outbox_empty(self) -> None:
        self.emulator.wait_until(
            lambda: self.query("SELECT COUNT(*) FROM outbox") == [(0,)],
            what="every reply marked delivered",
        )

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql).fetchall()
