"""The Cloud API calls the bot makes, plain aiohttp as Meta's reference documents them, under
`{api_base_url}/{api_version}/` with `Authorization: Bearer <token>`:

- `POST {phone_number_id}/messages`: a message, or a read receipt with the typing indicator;
- `POST {phone_number_id}/media`: an upload (multipart), giving a media id to send;
- `GET {media_id}`: a file's short-lived download URL, then `GET` that URL with the token.

Every failure is a `GraphError` with Meta's code and words; `whatsapp_errors` says what it
means for delivery. The token is never logged, nor are phone numbers in full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.channels.whatsapp_errors import delivery_error, describe, mask
from bot.delivery import DeliveryError
from bot.media import CHUNK_BYTES, drop_partial, open_partial, write_bounded
from bot.settings import WhatsAppSettings

logger = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 30
# A 100 MB document on a slow link.
DOWNLOAD_TIMEOUT_SECONDS = 600
# Downloaded chunks are written to disk (in a worker thread) a few at a time.
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
# Graph's answer for an id it does not know: code 100, subcode 33.
_NO_SUCH_OBJECT = (100, 33)


MB = 1024 * 1024
_DOCUMENTS = frozenset(
    {
        "text/plain",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
# Meta's supported media: message type -> (largest file, MIME types). A sticker is 100 KB
# static, 500 KB animated; an upload cannot tell which.
MEDIA_TYPES: dict[str, tuple[int, frozenset[str]]] = {
    "image": (5 * MB, frozenset({"image/jpeg", "image/png"})),
    "video": (16 * MB, frozenset({"video/mp4", "video/3gpp"})),
    "audio": (
        16 * MB,
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    ),
    "document": (100 * MB, _DOCUMENTS),
    "sticker": (500 * 1024, frozenset({"image/webp"})),
}
LARGEST_MEDIA = max(limit for limit, _ in MEDIA_TYPES.values())


def media_type(mime: str) -> str | None:
    """The message type Meta files a MIME type under (a parameter such as "; codecs=opus"
    ignored); None when WhatsApp does not take it."""
    base = mime.split(";")[0].strip().lower()
    return next((kind for kind, (_, types) in MEDIA_TYPES.items() if base in types), None)


def size_limit(mime: str) -> int:
    """The largest file of this type WhatsApp carries (an unknown type: the largest of all)."""
    kind = media_type(mime)
    return MEDIA_TYPES[kind][0] if kind is not None else LARGEST_MEDIA


class GraphError(Exception):
    """A Graph API call that failed: Meta's error `code` (None when the answer was no Graph
    error, e.g. a network failure or a proxy's page), the HTTP status (0: no answer)."""

    def __init__(
        self, http_status: int, code: int | None, reason: str, subcode: int | None = None
    ) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.reason = reason

    @property
    def gone(self) -> bool:
        """The id is unknown to Meta (never was, expired or deleted)."""
        return self.http_status == 404 or (self.code, self.subcode) == _NO_SUCH_OBJECT

    def delivery_error(self) -> DeliveryError:
        return delivery_error(self.code, self.http_status, self.reason)


@dataclass(frozen=True)
class MediaInfo:
    """What `GET {media_id}` tells of a file: where to fetch it (for five minutes)."""

    url: str
    mime: str
    size: int | None
    sha256: str | None = None


class GraphClient:
    """The calls to one business phone number. Pass a session to share one; otherwise the
    client opens its own on first use and `close()` closes it."""

    def __init__(
        self, settings: WhatsAppSettings, session: aiohttp.ClientSession | None = None
    ) -> None:
        if settings.phone_number_id is None or settings.access_token is None:
            raise ValueError("the WhatsApp client needs the phone number id and the access token")
        self.phone_number_id = settings.phone_number_id
        self.base = f"{str(settings.api_base_url).rstrip('/')}/{settings.api_version}"
        self._token = settings.access_token
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    async def send(self, to: str, payload: dict[str, Any]) -> str:
        """Send a message (`payload`: its `type` and that type's object, optionally `context`)
        to a WhatsApp id; returns its wamid."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        answer = await self._call(
            "POST", f"{self.phone_number_id}/messages", json_body=body | payload
        )
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            if isinstance(wamid, str) and wamid:
                return wamid
        # Accepted all the same: sending again would show the customer the message twice.
        logger.warning("whatsapp.sent_without_id chat=%s", mask(to))
        return ""

    async def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Mark a customer's message read (blue ticks), showing "typing…" for up to 25 s or
        until the bot's next message."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            body["typing_indicator"] = {"type": "text"}
        await self._call("POST", f"{self.phone_number_id}/messages", json_body=body)

    async def upload(self, content: bytes, mime: str, filename: str) -> str:
        """Upload a file for sending; returns its media id."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", content, filename=filename, content_type=mime)
        answer = await self._call("POST", f"{self.phone_number_id}/media", form=form)
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(200, None, "the upload gave no media id")
        return media_id

    async def media_info(self, media_id: str) -> MediaInfo:
        """Where a customer's (or an uploaded) file can be fetched from."""
        if not media_id.isascii() or not media_id.isdigit():
            raise GraphError(404, None, "not a WhatsApp media id")
        answer = await self._call("GET", quote(media_id, safe=""))
        url, size = answer.get("url"), answer.get("file_size")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise GraphError(200, None, "the media answer has no download URL")
        mime = answer.get("mime_type")
        sha256 = answer.get("sha256")
        return MediaInfo(
            url,
            mime if isinstance(mime, str) else "application/octet-stream",
            size if isinstance(size, int) and not isinstance(size, bool) else None,
            sha256 if isinstance(sha256, str) else None,
        )

    async def download(self, url: str, destination: Path, max_bytes: int) -> bool:
        """Stream a media URL into `destination` (through a temporary file beside it); False
        when it is bigger than `max_bytes` or gone, and then nothing is written."""
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)
        partial = await asyncio.to_thread(open_partial, destination)
        try:
            async with self._http().get(url, headers=self._headers(), timeout=timeout) as response:
                if response.status == 404:
                    return False
                if response.status >= 400:
                    raise _error(response.status, await response.read())
                if (response.content_length or 0) > max_bytes:
                    return False
                chunks = response.content.iter_chunked(CHUNK_BYTES)
                return await write_bounded(chunks, partial, destination, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(0, None, f"download failed: {type(exc).__name__}") from exc
        finally:
            # Deletes what is left of an unfinished download; a no-op after the rename.
            await asyncio.to_thread(drop_partial, partial)

    async def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base}/{path}"
        timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
        try:
            async with self._http().request(
                method, url, headers=self._headers(), json=json_body, data=form, timeout=timeout
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(0, None, f"Graph API unreachable: {type(exc).__name__}") from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status >= 400 or not isinstance(answer, dict) or "error" in answer:
            raise _error(status, raw, answer)
        return answer


def _error(status: int, raw: bytes, answer: Any = None) -> GraphError:
    """Meta's error answer as a GraphError; anything else (a proxy's page) by its status."""
    if answer is None:
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return GraphError(status, None, f"HTTP {status} without a Graph error")
    code, subcode = error.get("code"), error.get("error_subcode")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    message = _CODE_PREFIX.sub("", str(error.get("message") or ""))
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    reason = describe(code, message, details if isinstance(details, str) else "")
    return GraphError(
        status,
        code,
        reason,
        subcode if isinstance(subcode, int) and not isinstance(subcode, bool) else None,
    )
