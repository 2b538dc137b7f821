"""The console channel: a local chat on stdin/stdout over the same engine as the messengers."""

from __future__ import annotations

import asyncio
import getpass
import html
import re
from typing import TextIO

from handlers.engine import Engine
from handlers.messages import Button, Incoming, Reply

CHANNEL = "console"
_LINK = re.compile(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def to_plain_text(text: str) -> str:
    """Telegram HTML as a terminal shows it: tags dropped, links as `text (url)`."""
    text = _LINK.sub(
        lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(2)} ({m.group(1)})", text
    )
    return html.unescape(_TAG.sub("", text))


class ConsoleChannel:
    """Reads one message per line; a number picks the button shown with that number."""

    def __init__(self, engine: Engine, stdin: TextIO, stdout: TextIO, prompt: bool) -> None:
        self.engine = engine
        self.stdin = stdin
        self.stdout = stdout
        self.prompt = prompt
        self.chat_id = getpass.getuser()
        self._buttons: list[Button] = []

    async def run(self) -> None:
        """Greet, then converse until end of input."""
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
        if line.isdigit() and 1 <= int(line) <= len(self._buttons):
            payload = self._buttons[int(line) - 1].payload
            return Incoming(CHANNEL, self.chat_id, self.chat_id, payload=payload)
        return Incoming(CHANNEL, self.chat_id, self.chat_id, text=line)

    async def _send(self, incoming: Incoming) -> None:
        replies = await self.engine.handle(incoming)
        self._buttons = []
        for reply in replies:
            self._render(reply)
        self.stdout.flush()

    def _render(self, reply: Reply) -> None:
        self.stdout.write(f"bot> {to_plain_text(reply.text)}\n")
        for button in reply.flat_buttons:
            self._buttons.append(button)
            self.stdout.write(f"  [{len(self._buttons)}] {button.label}\n")
