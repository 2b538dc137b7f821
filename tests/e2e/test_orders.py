"""Order tracking end to end: orders imported by the CLI and fed through the HTTP API, a
customer verifying ownership in Telegram, proactive status notices, and the lock-out."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import ROOT, BotProcess, free_port
from tests.emulator import BotApiEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

API_TOKEN = "shop-backend-token"
ORDERS_CSV = """number,email,status,paid_on,brand,model,quantity,condition,serials
A-1001,buyer@example.com,paid,2026-11-02,Bitmain,Antminer S21,2,new,SN21A0001 SN21A0002
B-2002,other@example.com,paid,2026-11-03,MicroBT,Whatsminer M60,1,used,WM600002
"""


def import_orders(bot: BotProcess, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "orders", "import", str(path)],
        env=bot.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def call_api(port: int, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
        return result


def last_text(emu: BotApiEmulator, chat: int, count: int) -> str:
    return str(emu.wait_messages(chat, count)[-1]["text"])


def test_tracking_verification_and_status_notices(
    bot: BotProcess, emulator: BotApiEmulator, tmp_path: Path
) -> None:
    emu, customer = emulator, 2001
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS_CSV, encoding="utf-8")
    imported = import_orders(bot, orders)
    assert imported.returncode == 0, imported.stderr
    assert "2 created" in imported.stdout

    port = free_port()
    bot.env["MINERDESK_ORDERS__API__TOKEN"] = API_TOKEN
    bot.env["MINERDESK_ORDERS__API__LISTEN_PORT"] = str(port)
    bot.start()

    emu.send_text(customer, "/start")
    emu.wait_messages(customer, 1)
    emu.press(customer, "📦 Track my order")
    assert "order number" in last_text(emu, customer, 2)
    emu.send_text(customer, "A-1001")
    assert "e-mail address" in last_text(emu, customer, 3)
    emu.send_text(customer, "buyer@example.com")
    card = last_text(emu, customer, 4)
    assert "Order A-1001: paid" in card
    assert "2 × Bitmain Antminer S21 (new)" in card
    assert "buyer@example.com" not in card

    # The shop ships the order: the customer hears about it without asking.
    shipped = call_api(
        port,
        "PATCH",
        "/api/orders/A-1001",
        {
            "status": "shipped",
            "shipped_on": "2026-11-06",
            "carrier": "DHL",
            "tracking_number": "J1",
        },
    )
    assert shipped["changed"] is True
    notice = last_text(emu, customer, 5)
    assert "Update on your order A-1001: now shipped" in notice
    assert "DHL, tracking number J1" in notice

    # An import run by another process is noticed too.
    delivered = ORDERS_CSV.replace(
        "A-1001,buyer@example.com,paid,", "A-1001,buyer@example.com,delivered,"
    )
    orders.write_text(delivered, encoding="utf-8")
    assert import_orders(bot, orders).returncode == 0
    assert "now delivered" in last_text(emu, customer, 6)

    # The owner of B-2002 never verified: nothing about A-1001 or B-2002 reaches them.
    assert emu.messages(2002) == []
    assert bot.query("SELECT COUNT(*) FROM order_notices") == [(0,)]
    assert "buyer@example.com" not in bot.log


def test_five_wrong_answers_pause_lookups(bot: BotProcess, emulator: BotApiEmulator) -> None:
    emu, stranger = emulator, 2003
    bot.start()
    emu.send_text(stranger, "/start")
    emu.wait_messages(stranger, 1)
    emu.press(stranger, "📦 Track my order")
    count = 2
    for attempt in range(5):
        emu.wait_messages(stranger, count)
        emu.send_text(stranger, "A-1001")
        count += 1
        assert "e-mail address" in last_text(emu, stranger, count)
        emu.send_text(stranger, f"guess{attempt}@example.com")
        count += 1
        expected = "paused" if attempt == 4 else "could not find"
        assert expected in last_text(emu, stranger, count)
    emu.send_text(stranger, "/start")
    emu.wait_messages(stranger, count + 1)
    emu.press(stranger, "📦 Track my order")
    assert "paused" in last_text(emu, stranger, count + 2)
    assert bot.query("SELECT COUNT(*) FROM ownership_checks_failed") == [(5,)]
