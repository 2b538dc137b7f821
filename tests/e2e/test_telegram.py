"""The real bot process over real HTTP against the Bot API emulator: what customers see."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.botprocess import START_TIMEOUT, BotProcess, free_port
from tests.e2e.conftest import sqlite_only
from tests.emulator import BotApiEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.model]

MENU = [
    "❓ Ask a question",
    "📦 Track my order",
    "🛡 Warranty check",
    "🔧 Repair / second return",
    "👤 Talk to a human",
]


def labels(emu: BotApiEmulator, message: dict[str, object]) -> list[str]:
    return [label for label, _ in emu.buttons(message)]


def test_start_shows_the_menu_and_a_question_gets_its_answer(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, chat = shared_emulator, 1001
    assert [c["command"] for c in emu.my_commands()] == [
        "start",
        "menu",
        "orders",
        "tickets",
        "language",
        "help",
        "cancel",
    ]
    emu.send_text(chat, "/start")
    [greeting] = emu.wait_messages(chat, 1)
    assert "Apexto support assistant" in greeting["text"]
    assert labels(emu, greeting) == MENU

    emu.press(chat, "❓ Ask a question")
    [_, prompt] = emu.wait_messages(chat, 2)
    assert "Type your question" in prompt["text"]

    emu.send_text(chat, "Can I pay for my order in instalments?")
    answer = emu.wait_messages(chat, 3)[-1]
    assert "deposit" in answer["text"]
    assert labels(emu, answer)[-2:] == ["👍", "👎"]

    emu.press(chat, "👍", message=answer)
    emu.wait_until(
        lambda: "👍" not in labels(emu, emu.messages(chat)[-1]),
        what="the vote buttons to be removed from the answer",
    )
    assert len(emu.messages(chat)) == 3
    emu.wait_until(lambda: not emu.unanswered_callbacks(), what="every callback answered")
    assert "Thanks for the feedback!" in [a.get("text") for a in emu.callback_answers.values()]
    rows = running_bot.query("SELECT entry_id, helpful FROM faq_feedback")
    assert rows == [("instalments", 1)]


def test_the_same_update_delivered_twice_gets_one_reply(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, chat = shared_emulator, 1002
    update = emu.send_text(chat, "/help")
    emu.wait_messages(chat, 1)
    emu.redeliver(update)
    emu.send_text(chat, "/menu")
    emu.wait_messages(chat, 2)
    emu.wait_until(lambda: emu.pending_updates() == 0, what="all updates fetched")
    [help_text, menu] = emu.messages(chat)
    assert "/cancel" in help_text["text"]
    assert labels(emu, menu) == MENU


def test_a_run_of_429s_delays_but_loses_and_reorders_nothing(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, chat = shared_emulator, 1003
    emu.fail("sendMessage", times=4, error_code=429, retry_after=1, chat_id=chat)
    for command in ("/help", "/menu", "/cancel", "/start"):
        emu.send_text(chat, command)
    replies = emu.wait_messages(chat, 4, timeout=60)
    assert "/cancel" in replies[0]["text"]
    assert replies[1]["text"] == "How can I help?"
    assert "nothing to cancel" in replies[2]["text"]
    assert "support assistant" in replies[3]["text"]
    rejected = [c for c in emu.calls("sendMessage") if c.status == 429]
    assert len(rejected) == 4
    assert "delivery.rate_limited" in running_bot.log


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("sticker", "only read text"),
        ("voice", "can't listen"),
        ("location", "don't need that"),
        ("contact", "don't need that"),
        ("document", "Repair / second return"),
    ],
)
def test_media_out_of_place_gets_a_clear_answer(
    running_bot: BotProcess, shared_emulator: BotApiEmulator, kind: str, expected: str
) -> None:
    chat = 1100 + [
        "sticker",
        "voice",
        "location",
        "contact",
        "document",
    ].index(kind)
    shared_emulator.send_media(chat, kind)
    [reply] = shared_emulator.wait_messages(chat, 1)
    assert expected in reply["text"]


def test_awkward_texts_and_buttons_get_sensible_answers(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, chat = shared_emulator, 1004
    emu.send_text(chat, "x" * 10_000)
    assert "too long" in emu.wait_messages(chat, 1)[-1]["text"]

    question = emu.send_text(chat, "How long does delivery take?", forward_from_name="A friend")
    assert emu.buttons(emu.wait_messages(chat, 2)[-1])  # answered like a typed question

    emu.press_data(chat, "faq:fb:../../etc/passwd:1")
    assert "no longer valid" in emu.wait_messages(chat, 3)[-1]["text"]
    emu.press_data(chat, "flow:teleport")
    assert "no longer valid" in emu.wait_messages(chat, 4)[-1]["text"]

    first_answer = emu.messages(chat)[1]
    # Ignored: answering an edit would answer the same question twice.
    emu.edit_text(chat, question["message"]["message_id"], "edited question")
    emu.send_text(chat, "/help")
    assert "/cancel" in emu.wait_messages(chat, 5)[-1]["text"]
    assert emu.messages(chat)[1] == first_answer
    emu.wait_until(lambda: not emu.unanswered_callbacks(), what="the forged presses answered")
    assert "telegram.ignored" in running_bot.log


def test_server_errors_on_updates_and_button_answers_are_retried(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu, chat = shared_emulator, 1006
    emu.send_text(chat, "/menu")
    [menu] = emu.wait_messages(chat, 1)
    emu.fail("getUpdates", times=2, error_code=502)
    emu.fail("answerCallbackQuery", times=2, error_code=502)
    emu.press(chat, "❓ Ask a question", message=menu)
    assert "Type your question" in emu.wait_messages(chat, 2)[-1]["text"]
    emu.wait_until(lambda: not emu.unanswered_callbacks(), what="the press answered at last")
    assert "telegram.poll_failed attempt=2" in running_bot.log


def test_a_strangers_group_is_left_and_group_chatter_ignored(
    running_bot: BotProcess, shared_emulator: BotApiEmulator
) -> None:
    emu = shared_emulator
    emu.bot_added_to_group(-5001, by_user_id=77)
    emu.wait_until(
        lambda: any(c.params.get("chat_id") == -5001 for c in emu.calls("leaveChat")),
        what="the bot to leave the stranger's group",
    )
    emu.send_text(-5002, "hello bot", user_id=77, chat_type="group", chat_title="Chatter")
    emu.send_text(1005, "/start")
    emu.wait_messages(1005, 1)
    assert emu.messages(-5002) == []


def test_sigkill_in_the_middle_of_a_flow_and_the_flow_goes_on(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    chat = 2001
    bot.start()
    emulator.send_text(chat, "Can I pay for my order in instalments?")
    answer = emulator.wait_messages(chat, 1)[-1]
    emulator.press(chat, "👎", message=answer)
    assert "What were you looking for?" in emulator.wait_messages(chat, 2)[-1]["text"]
    # Killed between turns. (Killed between a send and its delivered mark, the one message
    # in flight would go out again after the restart: delivery is at least once.)
    bot.wait_outbox_empty()
    bot.kill()
    emulator.send_text(chat, "Which coins can I pay with?")  # waits while the bot is down
    bot.start()
    reply = emulator.wait_messages(chat, 3)[-1]
    assert "👍" in labels(emulator, reply)  # an FAQ answer
    assert bot.query("SELECT question, reason, entry_id FROM faq_misses") == [
        ("Can I pay for my order in instalments?", "not_helpful", "instalments")
    ]
    # The rephrasing was answered after the restart like any question.
    assert bot.query("SELECT question, decision FROM faq_questions ORDER BY asked_at") == [
        ("Can I pay for my order in instalments?", "answer"),
        ("Which coins can I pay with?", "answer"),
    ]
    assert len(emulator.messages(chat)) == 3


def test_a_reply_that_could_not_go_out_before_a_crash_goes_out_after_it(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    chat = 2002
    bot.start()
    emulator.fail("sendMessage", times=4, error_code=502, retry_after=None, chat_id=chat)
    emulator.send_text(chat, "/help")
    emulator.wait_until(
        lambda: len([c for c in emulator.calls("sendMessage") if c.status == 502]) >= 2,
        what="two failed attempts",
    )
    bot.kill()
    assert emulator.messages(chat) == []
    bot.start()
    [reply] = emulator.wait_messages(chat, 1, timeout=60)
    assert "/cancel" in reply["text"]
    bot.wait_outbox_empty()
    assert len(emulator.messages(chat)) == 1


def test_sigterm_finishes_the_work_under_way_and_exits_cleanly(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    bot.start()
    for chat in (2101, 2102, 2103):
        emulator.send_text(chat, "How long does delivery take?")
    emulator.wait_until(lambda: emulator.pending_updates() == 0, what="updates fetched")
    assert bot.terminate() == 0
    for chat in (2101, 2102, 2103):
        assert len(emulator.messages(chat)) == 1
    assert "telegram.stopped" in bot.log


WEBHOOK_SECRET = "s3cret-value-of-at-least-32-characters"


def webhook_env(bot: BotProcess, secret: str) -> str:
    """Webhook mode on a free port with this secret; returns the webhook's URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    bot.env.update(
        MINERDESK_TELEGRAM__WEBHOOK__URL=url,
        MINERDESK_TELEGRAM__WEBHOOK__LISTEN_PORT=str(port),
        MINERDESK_TELEGRAM__WEBHOOK__SECRET=secret,
    )
    return url


def forged_post(url: str, headers: dict[str, str]) -> int:
    """POST an update as someone who is not Telegram; returns the HTTP status."""
    forged = urllib.request.Request(
        url,
        data=json.dumps({"update_id": 1, "message": {}}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    refused.value.close()
    return refused.value.code


def test_webhook_mode_checks_the_secret_and_answers(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    url = webhook_env(bot, WEBHOOK_SECRET)
    bot.start("--webhook")
    assert emulator.webhook is not None
    assert emulator.webhook["url"] == url
    emulator.send_text(3001, "/start")
    [greeting] = emulator.wait_messages(3001, 1)
    assert labels(emulator, greeting) == MENU

    assert forged_post(url, {"X-Telegram-Bot-Api-Secret-Token": "no"}) == 401
    assert forged_post(url, {}) == 401
    assert forged_post(url, {"X-Telegram-Bot-Api-Secret-Token": ""}) == 401
    assert bot.terminate() == 0


@sqlite_only
def test_an_empty_webhook_secret_stops_start_up_with_one_line(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    webhook_env(bot, "")
    bot.start("--webhook", wait=False)
    assert bot.process is not None
    assert bot.process.wait(timeout=120) == 2
    [line] = bot.output().splitlines()
    assert line.startswith("minerdesk: configuration error: telegram.webhook.secret: ")
    assert emulator.calls("setWebhook") == []


@sqlite_only
def test_a_second_poller_stops_with_one_clear_line(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    """Telegram ends the older of two long polls with 409 Conflict: the process that gets it
    stops rather than take turns with the other."""
    emulator.fail(
        "getUpdates",
        error_code=409,
        description="Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )
    bot.start(wait=False)
    assert bot.process is not None
    assert bot.process.wait(timeout=START_TIMEOUT) == 2
    assert "another process is polling with this token" in bot.output()


@sqlite_only
def test_a_rejected_token_stops_with_one_clear_line(
    bot: BotProcess, emulator: BotApiEmulator
) -> None:
    bot.env["MINERDESK_TELEGRAM__TOKEN"] = "999:WRONG"
    bot.start(wait=False)
    assert bot.process is not None
    assert bot.process.wait(timeout=120) == 2
    assert "telegram.token: rejected by Telegram" in bot.output()
    assert "999:WRONG" not in bot.output() + bot.log
