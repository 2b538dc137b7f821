"""Copies of ticket files on disk (`media.store_path`), so staff keep them whatever the
messenger does with its own copies.

Tickets reference files by the channel's id (a Telegram file id, a console path). The
archive asks storage for files not copied yet, has the channel's `Fetcher` copy each to
`<store_path>/<ticket id>/<question>-<position><ext>` and records where it went. A file
too big or gone is marked so it is never tried again; any other failure is retried on
the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import AsyncIterable
from contextlib import suppress
from pathlib import Path
from typing import IO, Protocol

from domain.tickets import TicketMedia
from storage.tickets import MediaToStore, TicketStore

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# How often the archive looks for files to copy when nobody wakes it (seconds).
POLL_SECONDS = 5.0
# Files asked for per pass; a full batch is followed by another pass at once.
BATCH = 50
CHUNK_BYTES = 256 * 1024
_KIND_EXTENSIONS = {"photo": ".jpg", "video": ".mp4"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")


class FetchFailed(Exception):
    """The file could not be copied this time (network, server): try again later."""


class Fetcher(Protocol):
    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        """Copy the file to `destination` (its folder may not exist yet); False when it is
        bigger than `max_bytes` or gone, so nothing was written. A failure worth retrying
        raises FetchFailed or OSError."""
        ...


class MediaArchive:
    """Keeps copies of one channel's ticket files; `run()` until cancelled."""

    def __init__(
        self,
        storage: TicketStore,
        channel: str,
        fetcher: Fetcher,
        root: Path,
        max_bytes: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.storage = storage
        self.channel = channel
        self.fetcher = fetcher
        self.root = root
        self.max_bytes = max_bytes
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for new files now (a turn just saved some) instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Copy files as they come, until cancelled."""
        while True:
            self._wake.clear()
            try:
                settled, full = await self._pass()
            except Exception:
                # Storage trouble: the next pass tries again; the channel keeps serving.
                logger.exception("media.archive_failed channel=%s", self.channel)
                settled, full = 0, False
            if settled and full:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        """One pass over the files waiting; returns how many were settled (copied, or
        marked as never to be copied)."""
        settled, _ = await self._pass()
        return settled

    async def _pass(self) -> tuple[int, bool]:
        # Another channel's file ids mean nothing to this channel's fetcher.
        waiting = await self.storage.media_to_store(self.channel, self.max_bytes, BATCH)
        settled = 0
        for item in waiting:
            if await self._store(item):
                settled += 1
        return settled, len(waiting) >= BATCH

    async def _store(self, item: MediaToStore) -> bool:
        """Copy one file; False when it failed and stays waiting for the next pass."""
        destination = self.root / _safe(item.ticket_id) / file_name(item)
        try:
            copied = await self.fetcher.fetch(item.media.file_ref, destination, self.max_bytes)
        except (FetchFailed, OSError) as exc:
            logger.warning(
                "media.copy_failed ticket=%s name=%s position=%d reason=%r",
                item.ticket_id,
                item.name,
                item.position,
                exc,
            )
            return False
        except Exception:
            logger.exception(
                "media.copy_failed ticket=%s name=%s position=%d",
                item.ticket_id,
                item.name,
                item.position,
            )
            return False
        if copied:
            logger.info("media.copied ticket=%s path=%s", item.ticket_id, destination)
        else:
            logger.info(
                "media.not_copied ticket=%s name=%s position=%d reason=too_big_or_gone",
                item.ticket_id,
                item.name,
                item.position,
            )
        path = str(destination) if copied else ""
        await self.storage.set_stored_path(item, path)
        return True


def file_name(item: MediaToStore) -> str:
    """`<question>-<position><ext>`, the extension from the file's name, else its type,
    else its kind."""
    return f"{_safe(item.name)}-{item.position}{extension(item.media)}"


def extension(media: TicketMedia) -> str:
    if media.file_name:
        suffix = Path(media.file_name).suffix
        if _EXTENSION.fullmatch(suffix):
            return suffix.lower()
    if media.mime:
        guessed = mimetypes.guess_extension(media.mime, strict=False)
        if guessed:
            return guessed
    return _KIND_EXTENSIONS.get(media.kind, "")


def _safe(part: str) -> str:
    """A name that stays one path component whatever it was given."""
    return _UNSAFE.sub("_", part).strip(".") or "_"


class LocalFileFetcher:
    """For the console, whose file refs are paths on this machine."""

    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        return await asyncio.to_thread(_copy_local, Path(file_ref), destination, max_bytes)


def _copy_local(source: Path, destination: Path, max_bytes: int) -> bool:
    if not source.is_file():
        return False
    return copy_capped(source, destination, max_bytes)


def copy_capped(source: Path, destination: Path, max_bytes: int) -> bool:
    """Copy `source` to `destination` through a temporary file beside it; False (nothing
    written) when it is bigger than `max_bytes`. Blocking: call it in a worker thread."""
    with source.open("rb") as reader:
        if os.fstat(reader.fileno()).st_size > max_bytes:
            return False
        partial = open_partial(destination)
        try:
            written = 0
            # The file may grow while it is copied: the cap holds whatever stat said.
            while chunk := reader.read(CHUNK_BYTES):
                written += len(chunk)
                if written > max_bytes:
                    return False
                partial.write(chunk)
            finish_partial(partial, b"", destination)
            return True
        finally:
            drop_partial(partial)


def open_partial(destination: Path) -> IO[bytes]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Closed by finish_partial or drop_partial; a partial file never has the final name.
    return tempfile.NamedTemporaryFile(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part", delete=False
    )


# Chunks are gathered into writes this big, each off the event loop.
WRITE_BYTES = 4 * CHUNK_BYTES


async def write_bounded(
    chunks: AsyncIterable[bytes], partial: IO[bytes], destination: Path, max_bytes: int
) -> bool:
    """Write a download's chunks into `partial` and give it `destination`'s name; False,
    renaming nothing, once they pass `max_bytes`."""
    received, buffer = 0, bytearray()
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            return False
        buffer += chunk
        if len(buffer) >= WRITE_BYTES:
            await asyncio.to_thread(partial.write, bytes(buffer))
            buffer.clear()
    await asyncio.to_thread(finish_partial, partial, bytes(buffer), destination)
    return True


def finish_partial(partial: IO[bytes], tail: bytes, destination: Path) -> None:
    partial.write(tail)
    partial.close()
    os.replace(partial.name, destination)


def drop_partial(partial: IO[bytes]) -> None:
    partial.close()
    with suppress(FileNotFoundError):
        os.unlink(partial.name)
