"""`minerdesk run --workers N`: N worker processes of one command on one machine, kept
running. SIGTERM and SIGINT go on to every worker, which finish their work under way; a
worker that dies is started again after a back-off, unless workers keep dying at start
(a bad token, a database away), which ends the supervisor with one line."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

logger = logging.getLogger(__name__)

# A worker that lived this long started fine: its death is a crash, not a failing start.
STARTED_SECONDS = 60.0
# Deaths at start in a row, of any worker, after which the supervisor gives up.
MAX_FAILED_STARTS = 3
# Back-off before a restart: doubling from the first, up to the last.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# How often the workers are looked at.
POLL_SECONDS = 0.2


class WorkersKeepDying(Exception):
    """Workers died at start too often in a row; the message says how, in one line."""


@dataclass
class _Slot:
    """One worker's place: its process now, when it started, and its deaths in a row."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    deaths: int = 0
    # When a dead worker is started again (monotonic time); None while it runs.
    restart_at: float | None = None


class Supervisor:
    def __init__(self, command: Sequence[str], workers: int) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self.command = list(command)
        self.slots = [_Slot(number) for number in range(1, workers + 1)]
        self.stopping: int | None = None
        self.failed_starts = 0

    def run(self) -> int:
        """Run the workers until a signal stops them; returns the exit code (0 when every
        worker stopped cleanly). Raises WorkersKeepDying."""
        previous = {
            signum: signal.signal(signum, self._forward)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in self.slots:
                self._start(slot)
            while self.stopping is None:
                self._look_after()
                time.sleep(POLL_SECONDS)
            return self._wait_all()
        except BaseException:
            self._stop_all(signal.SIGTERM)
            self._wait_all()
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        """Pass the signal on; the loop then waits for the workers to finish."""
        logger.info("supervisor.stopping signal=%s", signal.Signals(signum).name)
        self.stopping = signum
        self._stop_all(signum)

    def _stop_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signum)

    def _wait_all(self) -> int:
        # A worker waiting to be restarted has nothing left to finish.
        running = [slot.process for slot in self.slots if slot.restart_at is None]
        codes = [process.wait() for process in running if process is not None]
        return max((abs(code) for code in codes), default=0)

    def _start(self, slot: _Slot) -> None:
        slot.process = subprocess.Popen(self.command)  # noqa: S603 (our own command line)
        slot.started = time.monotonic()
        slot.restart_at = None
        logger.info("supervisor.worker_started worker=%d pid=%d", slot.number, slot.process.pid)

    def _look_after(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    self._start(slot)
                continue
            assert slot.process is not None
            code = slot.process.poll()
            if code is None:
                if now - slot.started >= STARTED_SECONDS:
                    slot.deaths = 0
                    self.failed_starts = 0
                continue
            self._died(slot, code, now)

    def _died(self, slot: _Slot, code: int, now: float) -> None:
        lived = now - slot.started
        if lived < STARTED_SECONDS:
            self.failed_starts += 1
            if self.failed_starts >= MAX_FAILED_STARTS:
                raise WorkersKeepDying(
                    f"workers keep dying at start ({self.failed_starts} in a row, the last "
                    f"with exit code {code}); see their error above"
                )
        slot.deaths += 1
        delay = min(FIRST_BACKOFF_SECONDS * 2 ** (slot.deaths - 1), MAX_BACKOFF_SECONDS)
        logger.warning(
            "supervisor.worker_died worker=%d code=%d lived=%.0fs restart_in=%.0fs",
            slot.number,
            code,
            lived,
            delay,
        )
        slot.restart_at = now + delay
