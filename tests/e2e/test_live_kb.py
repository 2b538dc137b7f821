"""Live KB edits end to end: the real bot serves a copy of the KB, staff edit it while it
runs, and the staff chat on the Bot API emulator hears how each edit went."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.settings import bundled_kb_path
from tests.botprocess import BotProcess
from tests.emulator import BotApiEmulator
from tests.kb_edits import RELOAD_TIMEOUT, cut_alternates

pytestmark = [pytest.mark.e2e, pytest.mark.model]

FORUM = -1001234567890
ADMIN = 555
REP = 556
CUSTOMER = 3001
QUESTION = "Can I pay for my order in instalments?"
OLD_ANSWER = "full payment is required"
NEW_ANSWER = "full payment is due when you order"
OLD_THANKS = "You're welcome! If anything else comes up, just write here."
NEW_THANKS = "Glad to help, any time."


def texts(emu: BotApiEmulator, chat: int) -> list[str]:
    return [str(m.get("text") or "") for m in emu.messages(chat)]


def wait_new_text(
    emu: BotApiEmulator, chat: int, fragment: str, seen: int, timeout: float = 15
) -> str:
    """The first text containing `fragment` among the bot's messages after the first `seen`."""

    def found() -> list[str]:
        return [text for text in texts(emu, chat)[seen:] if fragment in text]

    emu.wait_until(lambda: bool(found()), timeout, what=f"{fragment!r} in chat {chat}")
    return found()[0]


def ask(emu: BotApiEmulator, text: str, fragment: str, chat: int = CUSTOMER) -> str:
    seen = len(emu.messages(chat))
    emu.send_text(chat, text)
    return wait_new_text(emu, chat, fragment, seen)


def staff_says(emu: BotApiEmulator, user: int, text: str, fragment: str) -> str:
    seen = len(emu.messages(FORUM))
    emu.send_text(FORUM, text, user_id=user, first_name="Bob")
    return wait_new_text(emu, FORUM, fragment, seen)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_staff_edit_the_kb_while_the_bot_answers(
    bot: BotProcess, emulator: BotApiEmulator, tmp_path: Path
) -> None:
    emu = emulator
    emu.add_forum(FORUM)
    for user in (ADMIN, REP):
        emu.set_member(FORUM, user, "member")
    kb = tmp_path / "kb"
    shutil.copytree(bundled_kb_path(), kb)
    payment = kb / "payment.yaml"
    good = payment.read_text(encoding="utf-8")
    bot.env.update(
        MINERDESK_FAQ__KB_PATH=str(kb),
        MINERDESK_FAQ__RELOAD_INTERVAL_SECONDS="0.5",
        MINERDESK_HANDOFF__STAFF_CHAT_ID=str(FORUM),
        MINERDESK_HANDOFF__ADMIN_IDS=f"[{ADMIN}]",
    )
    bot.start()
    ask(emu, QUESTION, OLD_ANSWER)

    # A valid edit: served without a restart, and the staff chat is told.
    seen = len(emu.messages(FORUM))
    edit(payment, OLD_ANSWER, NEW_ANSWER)
    report = wait_new_text(emu, FORUM, "FAQ updated", seen, timeout=RELOAD_TIMEOUT)
    assert "Changed: payment.yaml" in report
    ask(emu, QUESTION, NEW_ANSWER)
    assert bot.starts == 1

    # An invalid edit: the staff chat gets the file, line and problem; customers still get
    # the last good version.
    seen = len(emu.messages(FORUM))
    line = cut_alternates(payment, "instalments")
    report = wait_new_text(emu, FORUM, "FAQ edit rejected", seen)
    assert "the previous version keeps answering" in report
    assert f"payment.yaml line {line}: entries.3.alternates: List should have at least 6" in report
    ask(emu, QUESTION, NEW_ANSWER)

    # Staff admins reload and test questions; other staff are refused, customers never learn
    # of these commands.
    report = staff_says(emu, ADMIN, "/reload@minerdesk_test_bot", "FAQ edit rejected")
    assert f"payment.yaml line {line}" in report
    test = staff_says(emu, ADMIN, "/faq_test can i pay in parts", "FAQ test")
    assert "Decision: answer" in test
    assert "1. instalments" in test
    staff_says(emu, REP, "/reload", "Only staff admins can use /reload")
    ask(emu, "/faq_test can i pay in parts", "I don't know that command")

    # Fixed: served again, and said so.
    seen = len(emu.messages(FORUM))
    payment.write_text(good, encoding="utf-8")
    wait_new_text(emu, FORUM, "FAQ updated", seen)
    ask(emu, QUESTION, OLD_ANSWER)

    # Small talk is a KB file like the others: an edited reply is served after the reload.
    ask(emu, "thanks!", OLD_THANKS)
    seen = len(emu.messages(FORUM))
    edit(kb / "small_talk.yaml", OLD_THANKS, NEW_THANKS)
    report = wait_new_text(emu, FORUM, "FAQ updated", seen, timeout=RELOAD_TIMEOUT)
    assert "Changed: small_talk.yaml" in report
    ask(emu, "thanks!", NEW_THANKS)
    assert bot.starts == 1
    bot.wait_outbox_empty()
