"""WhatsApp end to end: the real bot process (`minerdesk run`, Telegram and WhatsApp both
configured) over real HTTP, the Cloud API emulator posting the webhook. One bot for the
module: starts are expensive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.botprocess import START_TIMEOUT, BotProcess
from tests.e2e.conftest import free_port, launched
from tests.emulator import BotApiEmulator
from tests.whatsapp_emulator import WhatsAppEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

CUSTOMER = "15551234567"
HANDED_OVER = "15557654321"
FORUM = -1001234567890
REP = 555
ALWAYS_OPEN = {
    "MINERDESK_HANDOFF__BUSINESS_HOURS__DAYS": '["mon","tue","wed","thu","fri","sat","sun"]',
    "MINERDESK_HANDOFF__BUSINESS_HOURS__OPENS": "00:00",
    "MINERDESK_HANDOFF__BUSINESS_HOURS__CLOSES": "23:59:59",
}


@pytest.fixture(scope="module")
def wa() -> Iterator[WhatsAppEmulator]:
    with WhatsAppEmulator(status_delay=0) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def whatsapp_bot(
    shared_emulator: BotApiEmulator,
    wa: WhatsAppEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    shared_cache: Path,
) -> Iterator[BotProcess]:
    port = free_port()
    shared_emulator.add_forum(FORUM)
    data = tmp_path_factory.mktemp("whatsapp-bot") / "data"
    for process in launched(shared_emulator, data, shared_cache):
        process.env.update(
            ALWAYS_OPEN,
            MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM),
            MINERDESK_WHATSAPP__PHONE_NUMBER_ID=wa.phone_number_id,
            MINERDESK_WHATSAPP__API_BASE_URL=wa.api_base_url,
            MINERDESK_WHATSAPP__API_VERSION=wa.api_version,
            MINERDESK_WHATSAPP__ACCESS_TOKEN=wa.access_token,
            MINERDESK_WHATSAPP__APP_SECRET=wa.app_secret,
            MINERDESK_WHATSAPP__VERIFY_TOKEN=wa.verify_token,
            MINERDESK_WHATSAPP__WEBHOOK__LISTEN_PORT=str(port),
        )
        wa.webhook_url = f"http://127.0.0.1:{port}/whatsapp/webhook"
        process.start()
        # Telegram polls first; the webhook is up once the handshake answers.
        wa.wait_until(
            lambda p=process: wa.verify("ready")[0] == 200 or p.process_exited(),  # type: ignore[misc]
            timeout=START_TIMEOUT,
            what="the WhatsApp webhook to listen",
        )
        assert not process.process_exited(), process.output()
        yield process


def choices(wa: WhatsAppEmulator, message: dict[str, Any]) -> list[str]:
    """The titles of a message's reply buttons, or of its list's rows."""
    return [title for _, title in wa.buttons(message)] + [title for _, title, _ in wa.rows(message)]


def test_a_question_gets_its_answer_with_its_buttons_and_a_redelivery_is_answered_once(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator
) -> None:
    question = wa.send_text(CUSTOMER, "Can I pay for my order in instalments?", name="Ann")
    wa.wait_until(
        lambda: any("deposit" in wa.text(m) for m in wa.messages(CUSTOMER)),
        timeout=60,
        what="the FAQ answer",
    )
    [answer] = [m for m in wa.messages(CUSTOMER) if "deposit" in wa.text(m)]
    assert answer["type"] == "interactive"
    assert {"👍", "👎"} <= set(choices(wa, answer))
    answered = len(wa.messages(CUSTOMER))

    wa.redeliver(question)
    wa.send_text(CUSTOMER, "How long does delivery take?")
    wa.wait_messages(CUSTOMER, answered + 1, timeout=60)
    whatsapp_bot.wait_outbox_empty()
    texts = [wa.text(m) for m in wa.messages(CUSTOMER)]
    assert sum("deposit" in text for text in texts) == 1, texts
    # Meta's statuses of the last replies may still be arriving: each leaves the inbox too.
    wa.wait_until(
        lambda: whatsapp_bot.query("SELECT COUNT(*) FROM inbox") == [(0,)],
        timeout=30,
        what="an empty inbox",
    )
    assert CUSTOMER not in whatsapp_bot.log


def test_a_handoff_reaches_the_telegram_staff_topic_and_the_reps_reply_comes_back(
    whatsapp_bot: BotProcess, wa: WhatsAppEmulator, shared_emulator: BotApiEmulator
) -> None:
    tg = shared_emulator
    wa.send_text(HANDED_OVER, "I want to talk to a human", name="Bob")
    tg.wait_until(lambda: len(tg.topics(FORUM)) == 1, timeout=60, what="the customer's topic")
    [(thread, name)] = tg.topics(FORUM).items()
    assert HANDED_OVER not in name
    seen = len(wa.messages(HANDED_OVER))
    tg.send_text(FORUM, "Hi Bob, a rep here", user_id=REP, message_thread_id=thread)
    wa.wait_until(
        lambda: any("Hi Bob, a rep here" in wa.text(m) for m in wa.messages(HANDED_OVER)[seen:]),
        timeout=60,
        what="the rep's reply on WhatsApp",
    )
    # The topic's opening and the relay name the customer's chat masked in the log.
    assert HANDED_OVER not in whatsapp_bot.log
