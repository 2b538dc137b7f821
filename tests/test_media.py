"""Copies of ticket files on disk: the fetchers against real files and the Bot API emulator,
the archive against a real SQLite database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram import Bot
from pydantic import SecretStr

from bot.channels.telegram import make_bot
from bot.channels.telegram_files import TelegramFetcher
from bot.delivery import TemporaryFailure
from bot.media import (
    MB,
    CrossChannelFiles,
    FetchFailed,
    FileNotCarried,
    LocalFileFetcher,
    MediaArchive,
    extension,
)
from bot.settings import Settings, TelegramSettings
from domain.chats import ChatKey, ConversationState
from domain.tickets import Ticket, TicketKind, TicketMedia, TicketMediaSet, TicketOpened
from handlers.messages import Media, MediaKind
from storage.sqlite import SqliteStorage
from tests.emulator import BotApiEmulator

CHAT = 42
AT = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
VIDEO = b"\x00\x00\x00\x18ftypmp42 a miner that will not hash " * 100


def leftovers(folder: Path) -> list[str]:
    """Temporary files a copy left behind (there should be none)."""
    return sorted(path.name for path in folder.rglob("*.part"))


# ------------------------------------------------------------------ LocalFileFetcher


async def test_a_local_file_is_copied_into_a_new_folder(tmp_path: Path) -> None:
    source = tmp_path / "fan noise.mp4"
    source.write_bytes(VIDEO)
    destination = tmp_path / "store" / "R-1" / "video-0.mp4"
    assert await LocalFileFetcher().fetch(str(source), destination, len(VIDEO))
    assert destination.read_bytes() == VIDEO
    assert leftovers(tmp_path) == []


async def test_a_local_file_over_the_cap_or_gone_is_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(VIDEO)
    destination = tmp_path / "store" / "video-0.mp4"
    fetcher = LocalFileFetcher()
    assert not await fetcher.fetch(str(source), destination, len(VIDEO) - 1)
    assert not await fetcher.fetch(str(tmp_path / "missing.mp4"), destination, MB)
    assert not await fetcher.fetch(str(tmp_path), destination, MB)  # a folder is no file
    assert not destination.exists()
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ TelegramFetcher


@pytest.fixture
def emulator() -> Iterator[BotApiEmulator]:
    with BotApiEmulator() as emu:
        yield emu


def bot_for(emu: BotApiEmulator, local: bool = False) -> Bot:
    telegram = TelegramSettings(
        token=SecretStr(emu.token), api_base_url=emu.base_url, local_bot_api=local
    )
    return make_bot(Settings(telegram=telegram))


@pytest.fixture
async def bot(emulator: BotApiEmulator) -> AsyncIterator[Bot]:
    client = bot_for(emulator)
    yield client
    await client.session.close()


async def test_a_telegram_file_is_downloaded_by_file_id(
    emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    update = emulator.send_media(CHAT, "video", content=VIDEO)
    file_id = update["message"]["video"]["file_id"]
    destination = tmp_path / "R-1" / "video-0.mp4"
    # Small chunks: the download is written piece by piece.
    assert await TelegramFetcher(bot, chunk_bytes=512).fetch(file_id, destination, MB)
    assert destination.read_bytes() == VIDEO
    assert leftovers(tmp_path) == []


async def test_a_telegram_file_too_big_or_gone_is_not_downloaded(
    emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    fetcher = TelegramFetcher(bot, chunk_bytes=512)
    destination = tmp_path / "video-0.mp4"
    video = emulator.send_media(CHAT, "video", content=VIDEO)["message"]["video"]["file_id"]
    # Known to be too big from getFile: nothing is downloaded.
    assert not await fetcher.fetch(video, destination, len(VIDEO) - 1)
    assert [c.method for c in emulator.calls()] == ["getFile"]
    # Over the cloud Bot API's 20 MB: getFile refuses.
    big = emulator.send_media(CHAT, "video", file_size=25 * MB, content=b"\x00")
    assert not await fetcher.fetch(big["message"]["video"]["file_id"], destination, 50 * MB)
    # A size that lied: the download stops at the cap.
    liar = emulator.send_media(CHAT, "document", file_size=10, content=VIDEO)
    assert not await fetcher.fetch(liar["message"]["document"]["file_id"], destination, 2048)
    assert not await fetcher.fetch("no-such-file-id", destination, MB)
    assert not destination.exists()
    assert leftovers(tmp_path) == []


async def test_a_telegram_outage_is_a_failure_to_retry(
    emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    video = emulator.send_media(CHAT, "video", content=VIDEO)["message"]["video"]["file_id"]
    emulator.fail("getFile", error_code=502)
    with pytest.raises(FetchFailed):
        await TelegramFetcher(bot).fetch(video, tmp_path / "video-0.mp4", MB)
    assert await TelegramFetcher(bot).fetch(video, tmp_path / "video-0.mp4", MB)


# ------------------------------------------------------------------ CrossChannelFiles


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_another_channels_file_is_a_temporary_copy_while_it_is_sent(
    emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    files = CrossChannelFiles(scratch=tmp_path)
    files.serve("telegram", TelegramFetcher(bot))
    photo = emulator.send_media(CHAT, "photo", content=VIDEO)["message"]["photo"][-1]
    media = Media(MediaKind.PHOTO, photo["file_id"], channel="telegram")
    async with files.open(media, MB, "WhatsApp") as copy:
        assert copy.path.read_bytes() == VIDEO
        # Telegram's photos are JPEG without saying so.
        assert (copy.mime, copy.size, copy.name) == ("image/jpeg", len(VIDEO), "photo.jpg")
    assert names_in(tmp_path) == []


async def test_a_file_over_the_destinations_limit_or_gone_is_not_carried_with_the_reason(
    tmp_path: Path,
) -> None:
    files = CrossChannelFiles(scratch=tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    files.serve("console", LocalFileFetcher())
    source = tmp_path / "hashboard.mp4"
    source.write_bytes(VIDEO)
    video = Media(MediaKind.VIDEO, str(source), mime="video/mp4", channel="console")
    with pytest.raises(FileNotCarried, match="video is over the 1 KB Telegram takes"):
        async with files.open(video, 1024, "Telegram"):
            pass
    gone = Media(MediaKind.VIDEO, str(tmp_path / "deleted.mp4"), channel="console")
    with pytest.raises(FileNotCarried, match="or is gone from console"):
        async with files.open(gone, MB, "Telegram"):
            pass
    stranger = Media(MediaKind.PHOTO, "wamid.1", channel="whatsapp")
    with pytest.raises(FileNotCarried, match="cannot fetch a file of the whatsapp channel"):
        async with files.open(stranger, MB, "Telegram"):
            pass
    assert names_in(tmp_path / "scratch") == []


async def test_a_fetch_that_failed_is_retried_by_delivery(
    emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    files = CrossChannelFiles(scratch=tmp_path)
    files.serve("telegram", TelegramFetcher(bot))
    video = emulator.send_media(CHAT, "video", content=VIDEO)["message"]["video"]["file_id"]
    media = Media(MediaKind.VIDEO, video, mime="video/mp4", channel="telegram")
    emulator.fail("getFile", error_code=502)
    with pytest.raises(TemporaryFailure, match="could not fetch the video from telegram"):
        async with files.open(media, MB, "WhatsApp"):
            pass
    async with files.open(media, MB, "WhatsApp") as copy:
        assert copy.path.read_bytes() == VIDEO
    assert names_in(tmp_path) == []


async def test_a_local_bot_api_server_file_is_copied_from_its_disk(tmp_path: Path) -> None:
    with BotApiEmulator(local_mode=True) as local:
        bot = bot_for(local, local=True)
        try:
            big = 25 * MB  # more than the cloud Bot API would hand out
            update = local.send_media(CHAT, "video", file_size=big, content=VIDEO)
            file_id = update["message"]["video"]["file_id"]
            on_disk = (await bot.get_file(file_id)).file_path
            assert on_disk is not None
            # The emulator would serve the old bytes over HTTP: these can only come from disk.
            await asyncio.to_thread(Path(on_disk).write_bytes, b"as the server wrote it")
            destination = tmp_path / "video-0.mp4"
            assert await TelegramFetcher(bot).fetch(file_id, destination, 50 * MB)
            assert destination.read_bytes() == b"as the server wrote it"
            assert not await TelegramFetcher(bot).fetch(file_id, tmp_path / "capped", 10 * MB)
        finally:
            await bot.session.close()


# ------------------------------------------------------------------ MediaArchive


def test_the_extension_comes_from_the_name_else_the_type_else_the_kind() -> None:
    assert extension(TicketMedia("document", "x", file_name="Kernel.LOG")) == ".log"
    assert extension(TicketMedia("document", "x", file_name="no-ext", mime="text/plain")) == ".txt"
    assert extension(TicketMedia("photo", "x", mime="image/jpeg")) == ".jpg"
    assert extension(TicketMedia("video", "x")) == ".mp4"
    assert extension(TicketMedia("photo", "x")) == ".jpg"
    assert extension(TicketMedia("voice", "x")) == ""


async def open_ticket(
    storage: SqliteStorage, key: ChatKey, ticket_id: str, *files: TicketMedia
) -> None:
    await storage.save(
        key,
        ConversationState(),
        None,
        records=[
            TicketOpened(ticket_id, TicketKind.REPAIR, AT),
            TicketMediaSet(ticket_id, "photos", files, AT),
        ],
    )


async def stored_paths(storage: SqliteStorage, ticket_id: str) -> list[str | None]:
    ticket = await storage.ticket(ticket_id)
    assert isinstance(ticket, Ticket)
    return [media.stored_path for media in ticket.media["photos"]]


async def test_the_archive_copies_a_tickets_files_once(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    sources = tmp_path / "customer"
    sources.mkdir()
    (sources / "front.jpg").write_bytes(b"\xff\xd8front")
    (sources / "label").write_bytes(b"\xff\xd8label")
    (sources / "huge.mov").write_bytes(VIDEO)
    files = (
        TicketMedia("photo", str(sources / "front.jpg"), 7, "image/jpeg", "front.jpg"),
        TicketMedia("photo", str(sources / "label"), None, "image/png"),
        TicketMedia("video", str(sources / "huge.mov"), None, "video/quicktime", "huge.mov"),
        TicketMedia("photo", str(sources / "deleted.jpg"), 10, "image/jpeg", "deleted.jpg"),
    )
    await open_ticket(storage, ChatKey("console", "ann"), "R-7KQ4-M2XP", *files)
    # A Telegram ticket's file ids mean nothing to the console's fetcher: left for its archive.
    telegram = TicketMedia("photo", "AgAD-telegram", 100, "image/jpeg")
    await open_ticket(storage, ChatKey("telegram", "42"), "R-0000-0001", telegram)
    store = tmp_path / "store"
    archive = MediaArchive(storage, "console", LocalFileFetcher(), store, max_bytes=1024)

    assert await archive.run_once() == 4

    folder = store / "R-7KQ4-M2XP"
    assert await stored_paths(storage, "R-7KQ4-M2XP") == [
        str(folder / "photos-0.jpg"),
        str(folder / "photos-1.png"),
        "",  # bigger than the cap once looked at: never tried again
        "",  # gone
    ]
    assert (folder / "photos-0.jpg").read_bytes() == b"\xff\xd8front"
    assert (folder / "photos-1.png").read_bytes() == b"\xff\xd8label"
    assert sorted(path.name for path in folder.iterdir()) == ["photos-0.jpg", "photos-1.png"]
    assert await archive.run_once() == 0
    assert await stored_paths(storage, "R-0000-0001") == [None]


class Flaky:
    """Fails the first time, then copies like the console's fetcher."""

    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise FetchFailed("502 Bad Gateway")
        return await LocalFileFetcher().fetch(file_ref, destination, max_bytes)


async def test_a_failed_copy_is_logged_and_tried_again_on_the_next_pass(
    storage: SqliteStorage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "front.jpg"
    source.write_bytes(b"\xff\xd8front")
    await open_ticket(
        storage, ChatKey("telegram", "42"), "R-7KQ4-M2XP", TicketMedia("photo", str(source))
    )
    archive = MediaArchive(storage, "telegram", Flaky(), tmp_path / "store", max_bytes=MB)
    with caplog.at_level(logging.WARNING, logger="bot.media"):
        assert await archive.run_once() == 0
    assert [r.getMessage().split()[0] for r in caplog.records] == ["media.copy_failed"]
    assert "ticket=R-7KQ4-M2XP" in caplog.records[0].getMessage()
    assert await stored_paths(storage, "R-7KQ4-M2XP") == [None]

    assert await archive.run_once() == 1
    assert await stored_paths(storage, "R-7KQ4-M2XP") == [
        str(tmp_path / "store" / "R-7KQ4-M2XP" / "photos-0.jpg")
    ]


async def test_a_woken_archive_copies_at_once_from_telegram(
    storage: SqliteStorage, emulator: BotApiEmulator, bot: Bot, tmp_path: Path
) -> None:
    archive = MediaArchive(
        storage, "telegram", TelegramFetcher(bot), tmp_path / "store", 5 * MB, poll_seconds=60
    )
    running = asyncio.create_task(archive.run())
    try:
        await asyncio.sleep(0.05)  # the first pass found nothing; the next is a minute away
        update = emulator.send_media(CHAT, "photo", content=b"\xff\xd8photo")
        photo = update["message"]["photo"][-1]
        media = TicketMedia("photo", photo["file_id"], photo["file_size"], "image/jpeg")
        await open_ticket(storage, ChatKey("telegram", str(CHAT)), "R-7KQ4-M2XP", media)
        archive.wake()
        copy = tmp_path / "store" / "R-7KQ4-M2XP" / "photos-0.jpg"
        for _ in range(200):
            if await stored_paths(storage, "R-7KQ4-M2XP") == [str(copy)]:
                break
            await asyncio.sleep(0.01)
        assert await stored_paths(storage, "R-7KQ4-M2XP") == [str(copy)]
        assert copy.read_bytes() == b"\xff\xd8photo"
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
