"""`minerdesk run --workers N`'s supervisor, with small Python programs as its workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import bot.supervisor
from bot.supervisor import Supervisor, WorkersKeepDying
from tests.botprocess import ROOT

pytestmark = pytest.mark.subprocess

# A worker: says it started (a file named by its pid), and on SIGTERM that it stopped.
WORKER = """
import os, signal, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
def stop(signum, frame):
    (folder / f"stopped-{os.getpid()}").touch()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
(folder / f"started-{os.getpid()}").touch()
while True:
    time.sleep(1)
"""

# The supervisor of two such workers, restarting at once, logging to stderr.
SUPERVISOR = """
import logging, sys
import bot.supervisor
logging.basicConfig(level=logging.INFO, format="%(message)s")
bot.supervisor.FIRST_BACKOFF_SECONDS = 0.1
command = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
sys.exit(bot.supervisor.Supervisor(command, 2).run())
"""


def pids(folder: Path, state: str) -> set[int]:
    return {int(path.name.split("-")[1]) for path in folder.glob(f"{state}-*")}


def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_that_dies_is_restarted_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    with (tmp_path / "supervisor.txt").open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, WORKER, str(tmp_path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=log,
        )
    try:
        until(lambda: len(pids(tmp_path, "started")) == 2)
        victim = min(pids(tmp_path, "started"))
        os.kill(victim, signal.SIGKILL)
        until(lambda: len(pids(tmp_path, "started")) == 3)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
    finally:
        supervisor.kill()
    assert pids(tmp_path, "stopped") == pids(tmp_path, "started") - {victim}
    output = (tmp_path / "supervisor.txt").read_text()
    assert "supervisor.worker_died worker=" in output
    assert f"code={-signal.SIGKILL}" in output
    assert "supervisor.stopping signal=SIGTERM" in output


def test_workers_that_keep_dying_at_start_give_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bot.supervisor, "FIRST_BACKOFF_SECONDS", 0.01)
    failing = Supervisor([sys.executable, "-c", "raise SystemExit(2)"], 2)
    with pytest.raises(WorkersKeepDying) as raised:
        failing.run()
    assert str(raised.value) == (
        "workers keep dying at start (3 in a row, the last with exit code 2); see their error above"
    )
    assert all(slot.process is not None and slot.process.poll() == 2 for slot in failing.slots)


def test_workers_are_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--workers", "0"])
    assert exited.value.code == 2
    assert "a number of workers, 1 or more: '0'" in capsys.readouterr().err
