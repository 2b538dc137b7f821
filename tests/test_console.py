"""`minerdesk chat` driven through stdin/stdout of the real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def chat(lines: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_console_conversation(cli_env: dict[str, str]) -> None:
    result = chat(
        [
            "Can I pay for my order in instalments?",  # an answer with buttons
            "3",  # the second related entry's button... numbering restarts per reply
            "who won the world cup in 1998",  # honest fallback
            "/menu",
            "1",  # Ask a question
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("bot> Hello! I'm the Apexto support assistant.")
    assert "[1] ❓ Ask a question" in out
    assert "For <b>" not in out
    assert "in-stock" in out.lower()
    assert "[1] 👍" not in out
    assert "👍" in out
    assert "Sorry, I don't know the answer to that." in out
    assert out.rstrip().endswith(
        "Type your question in your own words, for example Can I pay with USDT?"
    )


def test_state_is_kept_between_runs_and_eof_exits_cleanly(cli_env: dict[str, str]) -> None:
    first = chat([], cli_env)
    assert first.returncode == 0
    second = chat(["/cancel"], cli_env)
    assert second.returncode == 0
    assert "There is nothing to cancel" in second.stdout


def test_orders_imported_from_a_file_are_tracked_in_the_console(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(
        json.dumps(
            [
                {
                    "number": "A-1001",
                    "email": "buyer@example.com",
                    "status": "shipped",
                    "shipped_on": "2026-11-16",
                    "carrier": "DHL",
                    "tracking_number": "JD0001",
                    "items": [{"brand": "Bitmain", "model": "Antminer S21", "serials": "SN21A1"}],
                }
            ]
        ),
        encoding="utf-8",
    )
    imported = subprocess.run(
        [sys.executable, "-m", "bot", "orders", "import", str(orders)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert "1 created, 0 updated, 0 unchanged, 0 problem(s)" in imported.stdout
    result = chat(["2", "A-1001", "buyer@example.com", "/orders"], cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Order A-1001: shipped" in out
    assert "DHL, tracking number JD0001" in out
    assert "b***r@e***e.com" in out
    assert out.rstrip().endswith("[2] ☰ Main menu")
    assert "[1] Order A-1001 (shipped)" in out
