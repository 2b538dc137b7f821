"""The console channel: a local chat on stdin/stdout over the same engine as the messengers."""

from __future__ import annotations

import asyncio
import getpass
import html
import re
from typing import TextIO

from bot.app import App
from bot.delivery import Delivery
from handlers.messages import Button, Incoming, Reply
from storage.base import ChatKey, QueuedMessage

CHANNEL = "console"
_LINK = re.compile(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def to_plain_text(text: str) -> str:
    """Telegram HTML as a terminal shows it: tags dropped, links as `text (url)`."""
    text = _LINK.sub(
        lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(2)} ({m.group(1)})", text
    )
    return html.unescape(_TAG.sub("", text))


class ConsoleSender:
    """Prints replies; a number typed later presses the button shown with that number."""

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout
        self.buttons: list[Button] = []

    def parts(self, message: QueuedMessage) -> list[Reply]:
        return [Reply.from_json(message.body)]

    async def send(self, key: ChatKey, part: Reply) -> None:
        self.stdout.write(f"bot> {to_plain_text(part.text)}\n")
        for button in part.flat_buttons:
            self.buttons.append(button)
            self.stdout.write(f"  [{len(self.buttons)}] {button.label}\n")
        self.stdout.flush()

    def is_group(self, chat_id: str) -> bool:
        return False


class ConsoleChannel:
    """Reads one message per line and delivers the replies through the outbox like any channel."""

    def __init__(self, app: App, stdin: TextIO, stdout: TextIO, prompt: bool) -> None:
        self.engine = app.engine
        self.stdin = stdin
        self.stdout = stdout
        self.prompt = prompt
        self.chat_id = getpass.getuser()
        self.sender = ConsoleSender(stdout)
        self.delivery = Delivery(app.storage, CHANNEL, self.sender)
        self.notifier = app.order_notifier(CHANNEL, self.delivery)

    async def run(self) -> None:
        """Greet, then converse until end of input; order updates are printed as they come."""
        await self.delivery.start()
        notifying = asyncio.create_task(self.notifier.run())
        try:
            await self._converse()
        finally:
            notifying.cancel()
            await self.delivery.join()

    async def _converse(self) -> None:
        await self._send(Incoming(CHANNEL, self.chat_id, self.chat_id, text="/start"))
        while True:
            if self.prompt:
                self.stdout.write("you> ")
                self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                return
            incoming = self._incoming(line.strip())
            if incoming is not None:
                await self._send(incoming)

    def _incoming(self, line: str) -> Incoming | None:
        if not line:
            return None
        buttons = self.sender.buttons
        if line.isdigit() and 1 <= int(line) <= len(buttons):
            payload = buttons[int(line) - 1].payload
            return Incoming(CHANNEL, self.chat_id, self.chat_id, payload=payload)
        return Incoming(CHANNEL, self.chat_id, self.chat_id, text=line)

    async def _send(self, incoming: Incoming) -> None:
        outcome = await self.engine.handle(incoming)
        self.sender.buttons = []
        if outcome.notice:
            self.stdout.write(f"bot> ({to_plain_text(outcome.notice)})\n")
        for message in outcome.queued:
            self.delivery.enqueue(message)
        await self.delivery.join()
