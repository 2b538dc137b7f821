"""The real bot as users start it (`python -m bot run`), pointed at the Bot API emulator.

Used by the end-to-end tests and the load benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from storage.open import SQLITE_PREFIX
from tests.emulator import BotApiEmulator

if TYPE_CHECKING:
    from tests.whatsapp_emulator import WhatsAppEmulator

ROOT = Path(__file__).resolve().parent.parent

# Start-up loads the embedding model; a busy 2-core CI machine can take a while.
START_TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_url(data_dir: Path) -> str:
    """The database the bot keeps in its data folder when no storage URL is set."""
    return f"{SQLITE_PREFIX}{data_dir / 'minerdesk.db'}"


def read(storage_url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """The rows of `sql` (`?` placeholders) on the bot's database, read on a short connection
    of their own: SQLite read-only (a file that is not there yet is an error, not created),
    PostgreSQL through asyncpg."""
    if storage_url.startswith(SQLITE_PREFIX):
        uri = f"file:{storage_url.removeprefix(SQLITE_PREFIX)}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return db.execute(sql, params).fetchall()

    async def fetch() -> list[tuple[object, ...]]:
        import asyncpg

        from storage.postgres.connection import numbered

        connection = await asyncpg.connect(storage_url)
        try:
            return [tuple(row) for row in await connection.fetch(numbered(sql), *params)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


class BotProcess:
    """One `minerdesk run` process with its own database (a SQLite file in its data folder
    unless `storage_url` names another); restartable, killable."""

    start_timeout: float = START_TIMEOUT

    def __init__(
        self,
        emulator: BotApiEmulator,
        data_dir: Path,
        cache_dir: Path,
        storage_url: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.data_dir = data_dir
        self.storage_url = storage_url or sqlite_url(data_dir)
        self.args: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MINERDESK_")}
        self.env.update(
            MINERDESK_CONFIG=str(ROOT / "config.yaml"),
            MINERDESK_DATA_DIR=str(data_dir),
            MINERDESK_STORAGE__URL=self.storage_url,
            MINERDESK_TELEGRAM__TOKEN=emulator.token,
            MINERDESK_TELEGRAM__API_BASE_URL=emulator.base_url,
            MINERDESK_TELEGRAM__POLL_TIMEOUT_SECONDS="2",
            MINERDESK_TELEGRAM__SHUTDOWN_GRACE_SECONDS="5",
            MINERDESK_FAQ__THREADS="1",
        )
        self.cache_dir = cache_dir
        # The Cloud API emulator the bot's WhatsApp channel talks to, once `on_whatsapp`.
        self.whatsapp: WhatsAppEmulator | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

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

    def on_whatsapp(self, wa: WhatsAppEmulator) -> None:
        """Serve WhatsApp too, against the Cloud API emulator, which posts to the bot's
        webhook on a free port."""
        port = free_port()
        self.env.update(
            MINERDESK_WHATSAPP__PHONE_NUMBER_ID=wa.phone_number_id,
            MINERDESK_WHATSAPP__API_BASE_URL=wa.api_base_url,
            MINERDESK_WHATSAPP__API_VERSION=wa.api_version,
            MINERDESK_WHATSAPP__ACCESS_TOKEN=wa.access_token,
            MINERDESK_WHATSAPP__APP_SECRET=wa.app_secret,
            MINERDESK_WHATSAPP__VERIFY_TOKEN=wa.verify_token,
            MINERDESK_WHATSAPP__WEBHOOK__LISTEN_PORT=str(port),
        )
        wa.webhook_url = f"http://127.0.0.1:{port}/whatsapp/webhook"
        self.whatsapp = wa

    def wait_ready(self) -> None:
        """Ready once it asked for updates (polling) or set its webhook, after this start,
        and with WhatsApp once its webhook answers Meta's handshake (Telegram starts first)."""
        method = "setWebhook" if "--webhook" in self.args else "getUpdates"
        seen = len(self.emulator.calls(method))
        self.emulator.wait_until(
            lambda: len(self.emulator.calls(method)) > seen or self.process_exited(),
            timeout=self.start_timeout,
            what=f"the bot to call {method}",
        )
        wa = self.whatsapp
        if wa is not None:
            wa.wait_until(
                lambda: self.process_exited() or wa.verify("ready")[0] == 200,
                timeout=self.start_timeout,
                what="the WhatsApp webhook to listen",
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

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """The rows of `sql` (`?` placeholders) on the bot's database, either backend."""
        return read(self.storage_url, sql, *params)
