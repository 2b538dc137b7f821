"""The console channel: a local chat on stdin/stdout over the same engine as the messengers."""

from __future__ import annotations

import asyncio
import getpass
import html
import itertools
import mimetypes
import re
import shlex
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TextIO

from bot.app import App
from bot.delivery import Delivery
from bot.media import LocalFileFetcher
from domain.chats import ChatKey
from handlers.messages import Button, Incoming, Media, MediaKind, Reply
from storage.base import QueuedMessage

CHANNEL = "console"
_LINK = re.compile(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def to_plain_text(text: str) -> str:
    """Telegram HTML as a terminal shows it: tags dropped, links as `text (url)`."""
    text = _LINK.sub(
        lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(2)} ({m.group(1)})", text
    )
    return html.unescape(_TAG.sub("", text))


def read_line(
    line: str, chat_id: str, buttons: Sequence[Button], album_id: Callable[[], str]
) -> Incoming | None:
    """What a typed line means: the number of a button shown, files (several are an album
    with the id `album_id()` gives), or text."""
    if not line:
        return None
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        return Incoming(CHANNEL, chat_id, chat_id, payload=buttons[int(line) - 1].payload)
    paths = file_paths(line)
    if paths:
        media = file_media(paths, album_id() if len(paths) > 1 else None)
        return Incoming(CHANNEL, chat_id, chat_id, media=media)
    return Incoming(CHANNEL, chat_id, chat_id, text=line)


def file_paths(line: str) -> list[Path]:
    """The files a line names when every word of it is the path of an existing file
    (`~` allowed; quote a path with spaces, or escape them as a shell does); else []."""
    try:
        words = shlex.split(line)
    except ValueError:  # an unpaired quote, as in "it's broken": plain text
        return []
    paths = [Path(word).expanduser() for word in words]
    if not paths or not all(path.is_file() for path in paths):
        return []
    return [path.resolve() for path in paths]


def file_media(paths: list[Path], media_group_id: str | None = None) -> tuple[Media, ...]:
    """Files on disk as a customer's photos, videos and documents, referenced by path."""
    media = []
    for path in paths:
        mime = mimetypes.guess_type(path.name)[0]
        size = path.stat().st_size
        media.append(Media(_kind(mime), str(path), size, mime, media_group_id, path.name))
    return tuple(media)


def _kind(mime: str | None) -> MediaKind:
    kinds = {"image": MediaKind.PHOTO, "video": MediaKind.VIDEO, "audio": MediaKind.AUDIO}
    return kinds.get((mime or "").partition("/")[0], MediaKind.DOCUMENT)


class ConsoleSender:
    """Prints replies; a number typed later presses the button shown with that number."""

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout
        self.buttons: list[Button] = []

    def parts(self, message: QueuedMessage) -> list[Reply]:
        return [Reply.from_json(message.body, message.key.channel)]

    async def send(self, key: ChatKey, part: Reply) -> None:
        text = to_plain_text(part.text)
        if part.album:
            count = len(part.album)
            text = f"[{count} file{'' if count == 1 else 's'}] {text}".rstrip()
        self.stdout.write(f"bot> {text}\n")
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
        self.archive = app.media_archive(CHANNEL, LocalFileFetcher())
        # Albums get ids of their own, unlike any of an earlier run.
        self._albums = (f"console-{time.time_ns()}-{n}" for n in itertools.count(1))

    async def run(self) -> None:
        """Greet, then converse until end of input; order updates are printed as they come."""
        await self.delivery.start()
        notifying = asyncio.create_task(self.notifier.run())
        archiving = asyncio.create_task(self.archive.run()) if self.archive else None
        try:
            await self._converse()
        finally:
            notifying.cancel()
            if archiving is not None:
                archiving.cancel()
                with suppress(asyncio.CancelledError):
                    await archiving
            await self.delivery.join()
        if self.archive is not None:
            # A console session is short: copy what the last turns gave before leaving.
            await self.archive.run_once()

    async def _converse(self) -> None:
        await self._send(Incoming(CHANNEL, self.chat_id, self.chat_id, text="/start"))
        while True:
            if self.prompt:
                self.stdout.write("you> ")
                self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                return
            # In a worker thread: a line may name files to look at on disk.
            incoming = await asyncio.to_thread(self._incoming, line.strip())
            if incoming is not None:
                await self._send(incoming)

    def _incoming(self, line: str) -> Incoming | None:
        return read_line(line, self.chat_id, self.sender.buttons, lambda: next(self._albums))

    async def _send(self, incoming: Incoming) -> None:
        outcome = await self.engine.handle(incoming)
        self.sender.buttons = []
        if outcome.notice:
            self.stdout.write(f"bot> ({to_plain_text(outcome.notice)})\n")
        for message in outcome.queued:
            self.delivery.enqueue(message)
        if incoming.media and self.archive is not None:
            self.archive.wake()
        await self.delivery.join()
