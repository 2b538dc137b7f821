"""WhatsApp's 24-hour window and Meta's statuses end to end: the real bot process (Telegram's
staff desk and WhatsApp both configured, the orders API on) over real HTTP, the Cloud API
emulator posting the webhook. A customer whose messages Meta stamped more than 24 hours ago
gets their order notice as the configured template; a rep's late answer, with no
`staff_reply` template, is kept and the rep told in the topic; a message Meta accepted and
then reported failed is reported in the topic too. One bot for the module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import BotProcess, free_port
from tests.e2e.conftest import Backend, launched
from tests.e2e.test_orders import ORDERS_CSV, call_api, import_orders
from tests.emulator import BotApiEmulator
from tests.whatsapp_emulator import WhatsAppEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

LATE = "15550001111"
LATE_FOR_REP = "15550002222"
FAILING = "15550003333"
FORUM = -1001234567899
REP = 556
DAY_AND_A_HALF = 36 * 3600
ALWAYS_OPEN = {
    "MINERDESK_HANDOFF__BUSINESS_HOURS__DAYS": '["mon","tue","wed","thu","fri","sat","sun"]',
    "MINERDESK_HANDOFF__BUSINESS_HOURS__OPENS": "00:00",
    "MINERDESK_HANDOFF__BUSINESS_HOURS__CLOSES": "23:59:59",
}
API_TOKEN = "shop-backend-token"
# Only the order notice has a template: a rep's late answer has none.
TEMPLATES = {"order_update": {"name": "order_update", "language": "en_US"}}


@pytest.fixture(scope="module")
def wa(backend: Backend) -> Iterator[WhatsAppEmulator]:
    """One Cloud API emulator per backend, as the customers' numbers are the same on each."""
    with WhatsAppEmulator(status_delay=0) as emulator:
        emulator.register_template("order_update", "en_US", body_params=1)
        yield emulator


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def window_bot(
    shared_emulator: BotApiEmulator,
    wa: WhatsAppEmulator,
    api_port: int,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
    backend: Backend,
) -> Iterator[BotProcess]:
    shared_emulator.add_forum(FORUM)
    folder = tmp_path_factory.mktemp("whatsapp-window-bot")
    with launched(shared_emulator, folder / "data", shared_cache, backend) as process:
        process.env.update(
            ALWAYS_OPEN,
            MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM),
            MINERDESK_ORDERS__API__TOKEN=API_TOKEN,
            MINERDESK_ORDERS__API__LISTEN_PORT=str(api_port),
            MINERDESK_WHATSAPP__TEMPLATES=json.dumps(TEMPLATES),
        )
        process.on_whatsapp(wa)
        orders = folder / "orders.csv"
        orders.write_text(ORDERS_CSV, encoding="utf-8")
        imported = import_orders(process, orders)
        assert imported.returncode == 0, imported.stderr
        process.start()
        yield process


def written_long_ago(
    wa: WhatsAppEmulator, wa_id: str, fields: dict[str, Any], name: str = "Customer"
) -> None:
    """A customer's message that Meta stamped a day and a half ago (a late delivery), and
    the emulator's window closed as Meta's would be."""
    stamped = str(int(time.time()) - DAY_AND_A_HALF)
    wa.send_raw_message(wa_id, {**fields, "timestamp": stamped}, name=name)
    wa.set_last_inbound(wa_id, DAY_AND_A_HALF)


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


def topic_of(tg: BotApiEmulator, customer: str) -> int:
    """The thread of the customer's topic (named for their WhatsApp profile name), once open."""
    tg.wait_until(
        lambda: any(name.startswith(customer) for name in tg.topics(FORUM).values()),
        timeout=60,
        what=f"{customer}'s topic",
    )
    [thread] = [tid for tid, name in tg.topics(FORUM).items() if name.startswith(customer)]
    return thread


def topic_lines(tg: BotApiEmulator, thread: int) -> list[str]:
    """The bot's lines in a topic."""
    return [str(m.get("text", "")) for m in tg.messages(FORUM, thread)]


def kept_replies(bot: BotProcess, wa_id: str) -> list[str]:
    rows = bot.query(
        "SELECT failed_reason FROM outbox WHERE chat_id = ? AND failed_reason IS NOT NULL", wa_id
    )
    return [str(reason) for (reason,) in rows]


def test_a_late_customer_gets_the_order_notice_as_the_configured_template(
    window_bot: BotProcess, wa: WhatsAppEmulator, api_port: int
) -> None:
    track = {
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "flow:track_order", "title": "Track my order"},
        },
    }
    for fields in (track, text("A-1001"), text("buyer@example.com")):
        written_long_ago(wa, LATE, fields)
    wa.wait_until(
        lambda: (
            window_bot.query("SELECT COUNT(*) FROM order_links WHERE chat_id = ?", LATE) == [(1,)]
        ),
        timeout=60,
        what="the order linked to the late customer",
    )
    # The bot's own answers could not go out: kept, with the reason.
    wa.wait_until(lambda: len(kept_replies(window_bot, LATE)) >= 3, what="the answers kept")
    assert all("24-hour window" in reason for reason in kept_replies(window_bot, LATE))

    shipped = call_api(
        api_port,
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
    wa.wait_until(lambda: len(wa.messages(LATE)) == 1, timeout=30, what="the order notice")
    [notice] = wa.messages(LATE)
    assert notice["type"] == "template"
    template = notice["template"]
    assert (template["name"], template["language"]) == ("order_update", {"code": "en_US"})
    [parameter] = template["components"][0]["parameters"]
    assert "A-1001" in parameter["text"]
    assert "shipped" in parameter["text"]
    assert "\n" not in parameter["text"]
    # Logged once Meta's answer is read, which may be after the emulator shows the message.
    wa.wait_until(lambda: "whatsapp.template_sent" in window_bot.log, what="the template logged")
    assert LATE not in window_bot.log


def test_a_reps_late_answer_without_a_template_is_kept_and_the_rep_told(
    window_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    written_long_ago(wa, LATE_FOR_REP, text("I want to talk to a human"), name="Dora")
    thread = topic_of(tg, "Dora")
    tg.send_text(FORUM, "Sorry for the wait, it ships today", user_id=REP, message_thread_id=thread)
    tg.wait_until(
        lambda: any(
            "Could not deliver" in line and "whatsapp.templates.staff_reply" in line
            for line in topic_lines(tg, thread)
        ),
        timeout=30,
        what="the rep told in the topic",
    )
    assert wa.messages(LATE_FOR_REP, include_failed=True) == []
    assert any("staff_reply" in reason for reason in kept_replies(window_bot, LATE_FOR_REP))


def test_a_failed_status_of_a_sent_reply_is_reported_in_the_topic(
    window_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    wa.send_text(FAILING, "I want to talk to a human", name="Cy")
    thread = topic_of(tg, "Cy")
    # The bot's answers are out (the earlier tests' kept replies stay on record).
    wa.wait_until(
        lambda: (
            window_bot.query("SELECT COUNT(*) FROM outbox WHERE failed_reason IS NULL") == [(0,)]
        ),
        what="every reply sent",
    )
    # Meta accepts the next message to the customer, then reports it failed (131026).
    wa.fail_next(131026, wa_id=FAILING)
    tg.send_text(FORUM, "Here is your quote", user_id=REP, message_thread_id=thread)
    tg.wait_until(
        lambda: any(
            "Could not deliver" in line and "#131026" in line for line in topic_lines(tg, thread)
        ),
        timeout=30,
        what="the failed status reported in the topic",
    )
    [failed] = window_bot.query(
        "SELECT status, error_code, outbox_id IS NOT NULL FROM sent_messages "
        "WHERE chat_id = ? AND status = 'failed'",
        FAILING,
    )
    assert failed == ("failed", 131026, 1)
    assert FAILING not in window_bot.log
