"""Telegram's side of the media archive (bot/media.py): fetching a file by its file id.

Apart from bot/media.py so that a bot without the Telegram channel never imports aiogram
(seconds of its start).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from pathlib import Path

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNotFound

from bot.media import (
    CHUNK_BYTES,
    FetchFailed,
    copy_capped,
    drop_partial,
    open_partial,
    write_bounded,
)

logger = logging.getLogger(__name__)

# Downloaded chunks are written to disk (in a worker thread) a few at a time.
# Telegram's files are at most 20 MB (2 GB with a local Bot API server): a slow link needs time.
DOWNLOAD_TIMEOUT_SECONDS = 600


class TelegramFetcher:
    """Downloads Telegram files by file id: over HTTP from the cloud Bot API, or straight
    from the disk of a local Bot API server (`telegram.local_bot_api`)."""

    def __init__(self, bot: Bot, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.bot = bot
        self.chunk_bytes = chunk_bytes

    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        try:
            file = await self.bot.get_file(file_ref)
        except (TelegramBadRequest, TelegramNotFound) as exc:
            # "file is too big" (over 20 MB on the cloud Bot API) or an id Telegram forgot.
            logger.info("media.telegram_refused file=%s reason=%s", file_ref, exc.message)
            return False
        except TelegramAPIError as exc:
            raise FetchFailed(exc.message) from exc
        if file.file_path is None or (file.file_size or 0) > max_bytes:
            return False
        api = self.bot.session.api
        if api.is_local:
            # A local server has already written the file to its disk: copy it from there
            # (aiogram's `wrap_local_file` maps the server's paths to this machine's).
            local = Path(api.wrap_local_file.to_local(file.file_path))
            return await asyncio.to_thread(copy_capped, local, destination, max_bytes)
        url = api.file_url(self.bot.token, file.file_path)
        try:
            return await self._download(url, destination, max_bytes)
        except aiohttp.ClientResponseError as exc:
            if exc.status == 404:
                return False
            raise FetchFailed(f"HTTP {exc.status} {exc.message}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchFailed(repr(exc)) from exc

    async def _download(self, url: str, destination: Path, max_bytes: int) -> bool:
        """Stream into a temporary file beside `destination`, renamed once complete."""
        partial = await asyncio.to_thread(open_partial, destination)
        try:
            stream = self.bot.session.stream_content(
                url, timeout=DOWNLOAD_TIMEOUT_SECONDS, chunk_size=self.chunk_bytes
            )
            async with aclosing(stream) as chunks:
                return await write_bounded(chunks, partial, destination, max_bytes)
        finally:
            # Deletes what is left of an unfinished download; a no-op after the rename.
            await asyncio.to_thread(drop_partial, partial)
