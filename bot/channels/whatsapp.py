"""The WhatsApp Cloud API channel's parts, for the channel-neutral runtime to wire:

- `WhatsAppWebhook` (whatsapp_webhook): receives Meta's notifications, hands each message and
  status to the runtime's `store` before the 200;
- `read` (whatsapp_read): a stored item as an `Incoming`, a `DeliveryStatus` or `Ignored`;
- `WhatsAppSender`: the `Sender` of `bot.delivery`, replies rendered by whatsapp_render and
  Meta's errors turned into delivery failures (whatsapp_errors);
- `WhatsAppFetcher`: the media archive's `Fetcher`, by media id;
- `Presence`: read receipts with the typing indicator while a turn runs;
- `decide` (whatsapp_window): free-form, template, or kept for the staff, by the 24-hour
  customer-service window; `WindowGate` (whatsapp_outbound) applies it to every reply
  before delivery sends it, and records each message sent by its wamid;
- `StatusBook` (whatsapp_outbound): Meta's statuses kept against those records, a
  `failed` one reported to the staff as an undelivered reply;
- `WhatsAppChannel`: the runtime's `Channel`, made of the parts above; `minerdesk run`
  starts it when `whatsapp.phone_number_id` is set.

Plain aiohttp against Meta's documented calls (whatsapp_api) rather than pywa: pywa's
client fixes its base URL to graph.facebook.com (an emulator is reachable only by patching
its private session), brings httpx beside aiohttp, and serves webhooks through its own
framework integrations; the four calls and the signature check are short.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.channels.whatsapp_api import (
    LARGEST_MEDIA,
    MEDIA_TYPES,
    GraphClient,
    GraphError,
    media_type,
    size_limit,
)
from bot.channels.whatsapp_errors import delivery_error, mask
from bot.channels.whatsapp_outbound import StatusBook, WindowGate, WindowStore
from bot.channels.whatsapp_read import (
    CHANNEL,
    DeliveryStatus,
    Ignored,
    Status,
    inbox_id,
    read,
)
from bot.channels.whatsapp_render import (
    LIST_LABEL,
    FileMessage,
    Message,
    Part,
    Refused,
    render,
)
from bot.channels.whatsapp_webhook import Store, WhatsAppWebhook
from bot.channels.whatsapp_window import (
    Decision,
    KeepForStaff,
    Purpose,
    SendAsIs,
    SendTemplate,
    decide,
)
from bot.delivery import DeliveryError, Undeliverable
from bot.media import FetchFailed, OpenFile, upload_name
from bot.runtime import Aside, CannotServe, Pace, Undelivered
from bot.settings import Settings, WhatsAppSettings
from domain.chats import ChatKey
from domain.privacy import mask_phone
from handlers.messages import Incoming, MediaKind, Reply
from storage.base import InboxUpdate, QueuedMessage

__all__ = [
    "CHANNEL",
    "Decision",
    "DeliveryStatus",
    "GraphClient",
    "Ignored",
    "KeepForStaff",
    "OpenFile",
    "Presence",
    "Purpose",
    "SendAsIs",
    "SendTemplate",
    "StatusBook",
    "Store",
    "WhatsAppChannel",
    "WhatsAppFetcher",
    "WhatsAppSender",
    "WhatsAppWebhook",
    "WindowGate",
    "decide",
    "read",
    "receive",
    "status_failure",
]

if TYPE_CHECKING:
    from bot.app import App

logger = logging.getLogger(__name__)

# A status reports a message Meta had accepted: only the error code tells what went wrong.
HTTP_OK = 200
_TYPES_BY_KIND = {
    MediaKind.PHOTO: "image",
    MediaKind.VIDEO: "video",
    MediaKind.VOICE: "audio",
    MediaKind.AUDIO: "audio",
    MediaKind.STICKER: "sticker",
    MediaKind.DOCUMENT: "document",
}


async def receive(settings: WhatsAppSettings, store: Store) -> None:
    """Serve the webhook until cancelled (see `WhatsAppWebhook`)."""
    await WhatsAppWebhook(settings, store).serve()


def status_failure(status: DeliveryStatus) -> DeliveryError | None:
    """What a `failed` status means for the message it names, as the same delivery error a
    call answering with that code would give (131047: `OutsideWindow`); None unless failed."""
    if status.status is not Status.FAILED:
        return None
    reason = status.error or "failed without a reason"
    return delivery_error(status.error_code, HTTP_OK, reason)


class WhatsAppSender:
    """Turns queued replies into Cloud API calls and Meta's errors into delivery errors:
    131047 is `OutsideWindow` (the gate may send a template instead), rate limits are
    `RetryAfter`, Meta's outages `TemporaryFailure`, the rest `Undeliverable` with Meta's
    reason. `send` returns the message's wamid, what Meta's later statuses name."""

    def __init__(
        self,
        client: GraphClient,
        open_file: OpenFile | None = None,
        list_label: str = LIST_LABEL,
    ) -> None:
        self.client = client
        self.open_file = open_file
        self.list_label = list_label

    def parts(self, message: QueuedMessage) -> list[Part]:
        return render(Reply.from_json(message.body, message.key.channel), self.list_label)

    def is_group(self, chat_id: str) -> bool:
        return False  # customers only: WhatsApp's staff chat is Telegram's

    async def send(self, key: ChatKey, part: Part) -> str:
        if isinstance(part, Refused):
            raise Undeliverable(part.reason)
        try:
            payload = part.payload if isinstance(part, Message) else await self._file_payload(part)
            wamid = await self.client.send(key.chat_id, payload)
        except GraphError as exc:
            raise exc.delivery_error() from exc
        if payload.get("type") == "template":
            logger.info(
                "whatsapp.template_sent chat=%s template=%s message=%s",
                mask(key.chat_id),
                payload["template"]["name"],
                wamid,
            )
        return wamid

    async def _file_payload(self, part: FileMessage) -> dict[str, Any]:
        media = part.media
        if media.channel == CHANNEL:
            # WhatsApp's own file: sent by its id, no upload.
            kind = _TYPES_BY_KIND.get(media.kind, "document")
            if media.kind is not MediaKind.DOCUMENT and media.mime:
                kind = media_type(media.mime) or kind
            media_id = media.file_ref
        else:
            if self.open_file is None:
                raise Undeliverable(f"cannot fetch a file of the {media.channel or '?'} channel")
            # Fetched by its own channel into a temporary file, then uploaded from there.
            async with self.open_file(media, LARGEST_MEDIA, "WhatsApp") as file:
                kind = upload_type(media.kind, file.mime, file.size)
                media_id = await self.client.upload(file.path, file.mime, file.name)
        item: dict[str, Any] = {"id": media_id}
        if part.caption and kind in ("image", "video", "document"):
            item["caption"] = part.caption
        if kind == "document":
            item["filename"] = upload_name(media, media.mime or "")
        return {"type": kind, kind: item}


def upload_type(kind: MediaKind, mime: str, size: int) -> str:
    """The message type a file of another channel goes as; Undeliverable when WhatsApp
    does not take its type or size. A document stays one (any file can go as a document)."""
    natural = media_type(mime)
    base = mime.split(";")[0].strip() or "an unknown type"
    if natural is None:
        raise Undeliverable(f"WhatsApp does not take files of type {base}")
    limit = MEDIA_TYPES[natural][0]
    if size > limit:
        raise Undeliverable(
            f"a {natural} of {size / (1024 * 1024):.1f} MB is over WhatsApp's "
            f"{limit / (1024 * 1024):g} MB"
        )
    if size == 0:
        raise Undeliverable("the file is empty")
    return "document" if kind is MediaKind.DOCUMENT else natural


class WhatsAppFetcher:
    """The media archive's `Fetcher`: `GET {media_id}` for a short-lived URL, then the file
    from it with the token, streamed, never more than `max_bytes` or Meta's limit for its
    type."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def fetch(self, file_ref: str, destination: Path, max_bytes: int) -> bool:
        try:
            info = await self.client.media_info(file_ref)
        except GraphError as exc:
            if exc.gone:
                logger.info("media.whatsapp_gone file=%s reason=%s", file_ref, exc.reason)
                return False
            raise FetchFailed(exc.reason) from exc
        limit = min(max_bytes, size_limit(info.mime))
        if info.size is not None and info.size > limit:
            return False
        try:
            return await self.client.download(info.url, destination, limit)
        except GraphError as exc:
            raise FetchFailed(exc.reason) from exc


# How many chats' latest message ids Presence keeps for "typing…" (a few bytes each).
PRESENCE_CHATS = 10_000


class Presence:
    """Read receipts and "typing…". WhatsApp ties both to a customer's message: `acknowledge`
    marks an incoming message read and shows "typing…" (up to 25 s, or until the bot's next
    message); `show_typing` shows it again for the chat's latest message while a turn runs
    long. Failures are logged and dropped: a missing tick is no reason to fail a turn."""

    def __init__(self, client: GraphClient, chats: int = PRESENCE_CHATS) -> None:
        self.client = client
        self.chats = chats
        self._latest: OrderedDict[str, str] = OrderedDict()

    async def acknowledge(self, incoming: Incoming, typing: bool = True) -> None:
        message_id = self.note(incoming)
        if message_id is not None:
            await self._read(incoming.chat_id, message_id, typing)

    def note(self, incoming: Incoming) -> str | None:
        """Remember the chat's latest message (what "typing…" is shown for); returns its id,
        None if it is no WhatsApp message."""
        if incoming.channel != CHANNEL or not incoming.update_ids:
            return None
        # Marking the latest of them read marks the earlier ones too.
        message_id = incoming.update_ids[-1]
        self._latest[incoming.chat_id] = message_id
        self._latest.move_to_end(incoming.chat_id)
        while len(self._latest) > self.chats:
            self._latest.popitem(last=False)
        return message_id

    async def show_typing(self, chat_id: str) -> None:
        message_id = self._latest.get(chat_id)
        if message_id is not None:
            await self._read(chat_id, message_id)

    async def _read(self, chat_id: str, message_id: str, typing: bool = True) -> None:
        try:
            await self.client.mark_read(message_id, typing=typing)
        except GraphError as exc:
            logger.info("whatsapp.read_receipt_failed chat=%s reason=%s", mask(chat_id), exc.reason)


class WhatsAppChannel:
    """The WhatsApp adapter the runtime runs: the webhook receives, `read` reads, the sender
    and fetcher do the rest, the gate applies the 24-hour window and the status book keeps
    Meta's statuses (both in `store`). Chat ids are phone numbers: logged masked. Paced by
    `whatsapp.messages_per_second`, `inbound_per_minute`, `inbound_burst` and
    `shutdown_grace_seconds`."""

    name = CHANNEL
    # Meta posts to the webhook: any number of workers may listen.
    receives_alone = False

    def __init__(
        self,
        settings: Settings,
        store: WindowStore,
        client: GraphClient | None = None,
        open_file: OpenFile | None = None,
    ) -> None:
        self.settings = settings.whatsapp
        self.client = client if client is not None else GraphClient(self.settings)
        # `open_file`: other channels' files (a rep's photo), uploaded when sent.
        self.sender = WhatsAppSender(self.client, open_file)
        self.fetcher = WhatsAppFetcher(self.client)
        self.presence = Presence(self.client)
        templates = {
            str(purpose): template for purpose, template in self.settings.templates.items()
        }
        self.gate = WindowGate(store, templates)
        self.statuses = StatusBook(store)
        # The webhook server while receiving (its `port` is the one bound).
        self.webhook: WhatsAppWebhook | None = None
        own = self.settings
        self.pace = Pace(
            messages_per_second=own.messages_per_second,
            inbound_per_minute=own.inbound_per_minute,
            inbound_burst=own.inbound_burst,
            shutdown_grace_seconds=own.shutdown_grace_seconds,
        )

    async def start(self) -> None:
        logger.info("whatsapp.started phone_number_id=%s", self.settings.phone_number_id)

    async def receive(self, store: Store) -> None:
        hook = self.settings.webhook
        webhook = WhatsAppWebhook(self.settings, store)
        try:
            await webhook.start()
            self.webhook = webhook
        except OSError as exc:
            raise CannotServe(
                f"whatsapp.webhook: cannot listen on {hook.listen_host}:{hook.listen_port} "
                f"({exc.strerror or exc})"
            ) from None
        try:
            await asyncio.Event().wait()
        finally:
            self.webhook = None
            await webhook.stop()

    async def close(self) -> None:
        await self.client.close()

    def inbox_id(self, body: dict[str, Any]) -> str:
        return inbox_id(body)

    def read(self, stored: InboxUpdate) -> Incoming | Aside:
        event = read(stored.body)
        match event:
            case Incoming():
                # What "typing…" is shown for while its turn runs long.
                self.presence.note(event)
                return event
            case DeliveryStatus():
                return Aside(f"status:{event.status.value}", event=event)
            case Ignored(reason=reason):
                return Aside(reason)

    async def set_aside(self, stored: InboxUpdate, aside: Aside) -> Undelivered | None:
        status = aside.event
        if not isinstance(status, DeliveryStatus):
            logger.info("whatsapp.ignored item=%s reason=%s", stored.update_id, aside.reason)
            return None
        failed = await self.statuses.keep(status, self.name)
        failure = status_failure(status)
        if failure is None:
            return None
        logger.warning(
            "whatsapp.message_failed chat=%s message=%s reason=%s",
            mask_phone(status.recipient),
            status.message_id,
            failure,
        )
        if failed is None or failed.outbox_id is None or failed.body is None:
            # Reported already (another part of the reply), or no reply of ours is known.
            return None
        message = QueuedMessage(failed.outbox_id, failed.key, failed.body)
        return Undelivered(message, str(failure))

    async def answered(self, stored: InboxUpdate, incoming: Incoming, notice: str | None) -> None:
        """Blue ticks once the turn is over, without "typing…": the replies are out."""
        await self.presence.acknowledge(incoming, typing=False)

    async def show_typing(self, chat_id: str) -> None:
        await self.presence.show_typing(chat_id)


@asynccontextmanager
async def open_channel(
    app: App, open_file: OpenFile, *, webhook: bool = False
) -> AsyncIterator[WhatsAppChannel]:
    """The channel `minerdesk run` serves (`bot.channels.CHANNELS`); WhatsApp always
    receives on its webhook."""
    channel = WhatsAppChannel(app.settings, app.storage, open_file=open_file)
    try:
        yield channel
    finally:
        await channel.close()
