"""The WhatsApp Cloud API emulator, driven over real HTTP as the bot would (no bot process).

The bot's side is played by `Receiver`, a small threaded HTTP server that accepts a webhook
POST only with a valid X-Hub-Signature-256, and by plain urllib/aiohttp calls to the Graph API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests import whatsapp_emulator
from tests.whatsapp_emulator import GraphError, WebhookRejected, WhatsAppEmulator, sign

APP_SECRET = "app-secret-for-tests"
TOKEN = "EAAG-token-for-tests"
PHONE_ID = "106540352242922"
VERIFY_TOKEN = "verify-me"
CUSTOMER = "15551234567"
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg " * 10

JsonDict = dict[str, Any]


# ------------------------------------------------------------------ the bot's side


class Receiver:
    """A stand-in for the bot's webhook: checks the signature, records what it accepted."""

    def __init__(self, app_secret: str = APP_SECRET, verify_token: str = VERIFY_TOKEN) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.raw: list[bytes] = []
        self.refused = 0
        self.fail_next = 0  # answer 500 to this many valid POSTs
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(self.path.partition("?")[2]))
                ok = (
                    query.get("hub.mode") == "subscribe"
                    and query.get("hub.verify_token") == receiver.verify_token
                )
                self._answer(200 if ok else 403, query.get("hub.challenge", "") if ok else "no")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = sign(receiver.app_secret, raw)
                given = self.headers.get("X-Hub-Signature-256", "")
                with receiver.lock:
                    if not hmac.compare_digest(given, expected):
                        receiver.refused += 1
                        self._answer(401, "bad signature")
                        return
                    if receiver.fail_next:
                        receiver.fail_next -= 1
                        self._answer(500, "busy")
                        return
                    receiver.raw.append(raw)
                self._answer(200, "ok")

            def _answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/whatsapp/webhook"

    def values(self) -> list[JsonDict]:
        with self.lock:
            bodies = [json.loads(raw) for raw in self.raw]
        return [change["value"] for b in bodies for e in b["entry"] for change in e["changes"]]

    def messages(self) -> list[JsonDict]:
        return [m for v in self.values() for m in v.get("messages", [])]

    def statuses(self, wamid: str | None = None) -> list[JsonDict]:
        found = [s for v in self.values() for s in v.get("statuses", [])]
        return [s for s in found if wamid in (None, s["id"])]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    bot = Receiver()
    bot.thread.start()
    yield bot
    bot.server.shutdown()
    bot.server.server_close()


def make_emulator(**kwargs: Any) -> WhatsAppEmulator:
    return WhatsAppEmulator(
        app_secret=APP_SECRET,
        access_token=TOKEN,
        phone_number_id=PHONE_ID,
        verify_token=VERIFY_TOKEN,
        status_delay=0,
        webhook_retry_delay=0.01,
        **kwargs,
    )


@pytest.fixture
def emu(receiver: Receiver) -> Iterator[WhatsAppEmulator]:
    with make_emulator() as emulator:
        emulator.webhook_url = receiver.url
        yield emulator


def graph(
    emu: WhatsAppEmulator,
    method: str,
    path: str,
    body: JsonDict | None = None,
    token: str | None = TOKEN,
) -> tuple[int, Any]:
    """One Graph call as the bot makes it: (HTTP status, decoded JSON or bytes)."""
    url = path if path.startswith("http") else f"{emu.graph_url}/{path}"
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, kind = (
                response.status,
                response.read(),
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else raw


def send(
    emu: WhatsAppEmulator, kind: str, payload: JsonDict, to: str = CUSTOMER
) -> tuple[int, Any]:
    body = {"messaging_product": "whatsapp", "to": to, "type": kind, kind: payload}
    return graph(emu, "POST", f"{PHONE_ID}/messages", body)


def error_of(answer: tuple[int, Any]) -> tuple[int, int]:
    status, body = answer
    return status, body["error"]["code"]


def buttons_payload(*titles: str) -> JsonDict:
    buttons = [
        {"type": "reply", "reply": {"id": f"b{i}", "title": t}} for i, t in enumerate(titles)
    ]
    return {"type": "button", "body": {"text": "Choose"}, "action": {"buttons": buttons}}


def list_payload(*sections: list[JsonDict], label: str = "Menu") -> JsonDict:
    return {
        "type": "list",
        "body": {"text": "Pick one"},
        "action": {
            "button": label,
            "sections": [{"title": f"S{i}", "rows": rows} for i, rows in enumerate(sections)],
        },
    }


def rows(count: int, start: int = 0, **row: Any) -> list[JsonDict]:
    return [{"id": f"r{i}", "title": f"Row {i}", **row} for i in range(start, start + count)]


# ------------------------------------------------------------------ sending


def test_text_is_accepted_with_a_wamid_and_statuses_follow(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    emu.send_text(CUSTOMER, "hi", name="Alice")
    status, answer = send(emu, "text", {"body": "Hello Alice"}, to="+1 555-123-4567")
    assert status == 200
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+1 555-123-4567", "wa_id": CUSTOMER}]
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    [sent] = emu.wait_messages(CUSTOMER, 1)
    assert sent["id"] == wamid
    assert emu.text(sent) == "Hello Alice"
    emu.wait_status(wamid, "read")
    emu.wait_until(lambda: len(receiver.statuses(wamid)) == 3, what="three statuses posted")
    posted = receiver.statuses(wamid)
    assert [s["status"] for s in posted] == ["sent", "delivered", "read"]
    assert all(s["recipient_id"] == CUSTOMER for s in posted)
    assert posted[0]["pricing"]["category"] == "service"
    assert emu.messages(CUSTOMER)[0]["status"] == "read"


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("text", {"body": "x" * 4096, "preview_url": False}),
        ("interactive", buttons_payload("Yes", "No", "A" * 20)),
        ("interactive", list_payload(rows(6), rows(4, 6, description="d" * 72))),
        ("image", {"link": "https://example.com/a.jpg", "caption": "look"}),
        ("video", {"link": "https://example.com/a.mp4"}),
        ("audio", {"link": "https://example.com/a.ogg"}),
        ("document", {"link": "https://example.com/a.pdf", "filename": "invoice.pdf"}),
        ("sticker", {"link": "https://example.com/a.webp"}),
    ],
)
def test_each_message_type_is_accepted(emu: WhatsAppEmulator, kind: str, payload: JsonDict) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    status, answer = send(emu, kind, payload)
    assert status == 200, answer
    [sent] = emu.messages(CUSTOMER)
    assert sent["type"] == kind
    assert sent[kind] == payload


def test_reply_context_and_helpers_read_interactive_messages(emu: WhatsAppEmulator) -> None:
    incoming = emu.send_text(CUSTOMER, "menu")
    body = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "interactive",
        "context": {"message_id": incoming["id"]},
        "interactive": buttons_payload("Track", "Talk"),
    }
    assert graph(emu, "POST", f"{PHONE_ID}/messages", body)[0] == 200
    send(emu, "interactive", list_payload(rows(2, description="about")))
    buttons, listing = emu.messages(CUSTOMER)
    assert buttons["context"] == {"message_id": incoming["id"]}
    assert emu.buttons(buttons) == [("b0", "Track"), ("b1", "Talk")]
    assert emu.rows(listing) == [("r0", "Row 0", "about"), ("r1", "Row 1", "about")]
    assert emu.text(listing) == "Pick one"
    assert emu.rows(buttons) == []
    assert emu.buttons(listing) == []


@pytest.mark.parametrize(
    ("kind", "payload", "code"),
    [
        ("text", {"body": "x" * 4097}, 100),
        ("text", {"body": ""}, 131008),
        ("interactive", buttons_payload("1", "2", "3", "4"), 131009),
        ("interactive", buttons_payload(), 131009),
        ("interactive", buttons_payload("A" * 21), 131009),
        ("interactive", buttons_payload("Same", "Same"), 131009),
        ("interactive", list_payload(rows(6), rows(5, 6)), 131009),
        ("interactive", list_payload(rows(1, title="T" * 25)), 131009),
        ("interactive", list_payload(rows(1, description="d" * 73)), 131009),
        ("interactive", list_payload(rows(1), label="L" * 21), 131009),
        ("interactive", list_payload(*[rows(1, i) for i in range(11)]), 131009),
        ("interactive", {**buttons_payload("Ok"), "body": {"text": "b" * 1025}}, 100),
        ("interactive", {**buttons_payload("Ok"), "type": "cta_url"}, 131009),
        ("image", {"link": "https://example.com/a.jpg", "caption": "c" * 1025}, 100),
        ("image", {"id": "123", "link": "https://example.com/a.jpg"}, 100),
        ("audio", {"link": "https://example.com/a.ogg", "caption": "no"}, 100),
        ("image", {"id": "999999"}, 131009),
        ("location", {"latitude": 1, "longitude": 2}, 100),
    ],
)
def test_limits_are_refused_with_metas_codes(
    emu: WhatsAppEmulator, kind: str, payload: JsonDict, code: int
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    status, answer = send(emu, kind, payload)
    assert (status, answer["error"]["code"]) == (400, code)
    error = answer["error"]
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert emu.messages(CUSTOMER, include_failed=True) == []


def test_list_sections_need_titles_when_there_are_several(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    payload = list_payload(rows(1), [{"id": "x", "title": "X"}])
    payload["action"]["sections"][1].pop("title")
    assert error_of(send(emu, "interactive", payload)) == (400, 131008)
    single = list_payload(rows(3))
    single["action"]["sections"][0].pop("title")
    assert send(emu, "interactive", single)[0] == 200


def test_messaging_product_and_recipient_are_required(emu: WhatsAppEmulator) -> None:
    path = f"{PHONE_ID}/messages"
    bodies: list[JsonDict] = [
        {"to": CUSTOMER, "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}},
        {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text"},
    ]
    assert [error_of(graph(emu, "POST", path, b))[1] for b in bodies] == [100, 100, 131008]


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_a_missing_or_wrong_token_is_190(emu: WhatsAppEmulator, token: str | None) -> None:
    status, answer = graph(emu, "POST", f"{PHONE_ID}/messages", {"x": 1}, token=token)
    assert (status, answer["error"]["code"]) == (401, 190)
    assert answer["error"]["type"] == "OAuthException"
    assert emu.calls("/messages")[-1].error_code == 190


def test_unknown_ids_and_paths_answer_like_graph(emu: WhatsAppEmulator) -> None:
    status, answer = graph(emu, "POST", "123/messages", {"messaging_product": "whatsapp"})
    assert (status, answer["error"]["code"]) == (400, 100)
    assert answer["error"]["type"] == "GraphMethodException"
    assert answer["error"]["error_subcode"] == 33
    # The Cloud API has no edits: any other path is unknown.
    status, answer = graph(emu, "POST", f"{PHONE_ID}/messages/wamid.x/edit", {"a": 1})
    assert (status, answer["error"]["code"]) == (400, 2500)
    assert error_of(graph(emu, "GET", "1000")) == (400, 100)


# ------------------------------------------------------------------ read receipts


def test_mark_as_read_with_the_typing_indicator(emu: WhatsAppEmulator) -> None:
    incoming = emu.send_text(CUSTOMER, "hello")
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": incoming["id"],
        "typing_indicator": {"type": "text"},
    }
    assert graph(emu, "POST", f"{PHONE_ID}/messages", body) == (200, {"success": True})
    assert emu.read_receipts(CUSTOMER) == [body]
    assert emu.messages(CUSTOMER) == []  # a receipt is not a message
    unknown = {**body, "message_id": "wamid.nope"}
    assert error_of(graph(emu, "POST", f"{PHONE_ID}/messages", unknown)) == (400, 100)
    odd = {**body, "typing_indicator": {"type": "voice"}}
    assert error_of(graph(emu, "POST", f"{PHONE_ID}/messages", odd)) == (400, 131009)


# ------------------------------------------------------------------ media


def upload_form(content: bytes, mime: str, *, kind: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", kind or mime)
    form.add_field("file", io.BytesIO(content), filename="file.bin", content_type=mime)
    return form


async def upload(
    http: aiohttp.ClientSession, emu: WhatsAppEmulator, form: aiohttp.FormData
) -> tuple[int, JsonDict]:
    async with http.post(
        f"{emu.graph_url}/{PHONE_ID}/media",
        data=form,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        return response.status, await response.json()


async def test_upload_then_get_then_download(emu: WhatsAppEmulator) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        status, answer = await upload(http, emu, upload_form(JPEG, "image/jpeg"))
        assert status == 200
        media_id = answer["id"]
        async with http.get(f"{emu.graph_url}/{media_id}", headers=auth) as response:
            assert response.status == 200
            info = await response.json()
        assert info["id"] == media_id
        assert info["mime_type"] == "image/jpeg"
        assert info["file_size"] == len(JPEG)
        assert info["sha256"] == hashlib.sha256(JPEG).hexdigest()
        assert info["messaging_product"] == "whatsapp"
        async with http.get(info["url"], headers=auth) as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
            assert await response.read() == JPEG
        async with http.get(info["url"]) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == 190
        async with http.get(info["url"].replace("hash=", "hash=x"), headers=auth) as response:
            assert response.status == 404
    assert [m.id for m in emu.uploads] == [media_id]
    assert emu.uploads[0].content == JPEG
    emu.set_last_inbound(CUSTOMER, 60)
    assert send(emu, "image", {"id": media_id, "caption": "your miner"})[0] == 200
    # An image id is not a video.
    assert error_of(send(emu, "video", {"id": media_id})) == (400, 131009)


@pytest.mark.parametrize(
    ("content", "mime", "kind", "code"),
    [
        (b"x" * (5 * 1024 * 1024 + 1), "image/jpeg", None, 131053),
        (b"x" * (500 * 1024 + 1), "image/webp", None, 131053),
        (b"GIF89a", "image/gif", None, 131053),
        (b"", "application/pdf", None, 131053),
    ],
)
async def test_upload_limits(
    emu: WhatsAppEmulator, content: bytes, mime: str, kind: str | None, code: int
) -> None:
    async with aiohttp.ClientSession() as http:
        status, answer = await upload(http, emu, upload_form(content, mime, kind=kind))
    assert (status, answer["error"]["code"]) == (400, code)
    assert emu.uploads == []


async def test_upload_arriving_in_uneven_pieces(emu: WhatsAppEmulator) -> None:
    """TCP may hand the server a field in slivers and then a large piece at once.

    aiohttp's multipart reader then pushes the surplus back with a deprecated call;
    the suite must not turn that library warning into a failed upload (pyproject.toml).
    """
    form = upload_form(JPEG * 100, "image/jpeg")  # the file follows: > 8 KiB after the field
    payload = form()
    body = io.BytesIO()

    class Sink:
        async def write(self, data: bytes) -> None:
            body.write(data)

    await payload.write(Sink())  # type: ignore[arg-type]
    raw = body.getvalue()
    value_at = raw.index(b"whatsapp")
    host, port = "127.0.0.1", int(emu.api_base_url.rsplit(":", 1)[1])
    head = (
        f"POST /{emu.api_version}/{PHONE_ID}/media HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: {payload.content_type}\r\n"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    for piece in (head + raw[: value_at + 3], raw[value_at + 3 : value_at + 5]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.2)  # lets the server read this sliver on its own
    writer.write(raw[value_at + 5 :])
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert len(emu.uploads) == 1


async def test_upload_needs_its_form_fields(emu: WhatsAppEmulator) -> None:
    bare = aiohttp.FormData()
    bare.add_field("file", JPEG, filename="a.jpg", content_type="image/jpeg")
    no_type = aiohttp.FormData()
    no_type.add_field("messaging_product", "whatsapp")
    no_type.add_field("file", JPEG, filename="a.jpg", content_type="image/jpeg")
    no_file = aiohttp.FormData()
    no_file.add_field("messaging_product", "whatsapp")
    no_file.add_field("type", "image/jpeg")
    no_file.add_field("other", b"x", filename="a.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as http:
        codes = [
            (await upload(http, emu, form))[1]["error"]["code"] for form in (bare, no_type, no_file)
        ]
    assert codes == [100, 131008, 131008]


def test_media_urls_expire_and_media_can_be_deleted(
    emu: WhatsAppEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    media_id = emu.add_media(b"%PDF-1.4 price list", "application/pdf", "prices.pdf")
    status, info = graph(emu, "GET", media_id)
    assert status == 200
    assert graph(emu, "GET", info["url"]) == (200, b"%PDF-1.4 price list")
    monkeypatch.setattr(whatsapp_emulator, "MEDIA_URL_TTL", -1)
    _, stale = graph(emu, "GET", media_id)
    assert graph(emu, "GET", stale["url"])[0] == 404
    assert graph(emu, "GET", f"{media_id}?phone_number_id=42")[0] == 400
    assert graph(emu, "DELETE", media_id) == (200, {"success": True})
    assert error_of(graph(emu, "GET", media_id)) == (400, 100)
    assert graph(emu, "GET", info["url"])[0] == 404


def test_a_customers_media_downloads_through_its_id(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    photo = emu.send_image(CUSTOMER, JPEG, caption="broken fan")
    [posted] = receiver.messages()
    assert posted == photo
    image = posted["image"]
    assert image["caption"] == "broken fan"
    assert image["sha256"] == base64.b64encode(hashlib.sha256(JPEG).digest()).decode()
    status, info = graph(emu, "GET", image["id"])
    assert (status, info["file_size"], info["mime_type"]) == (200, len(JPEG), "image/jpeg")
    assert graph(emu, "GET", info["url"]) == (200, JPEG)
    assert emu.uploads == []  # the customer's, not the bot's
    big = emu.send_document(CUSTOMER, b"%PDF", file_size=120 * 1024 * 1024)
    assert graph(emu, "GET", big["document"]["id"])[1]["file_size"] == 120 * 1024 * 1024
    assert big["document"]["filename"] == "document.pdf"


# ------------------------------------------------------------------ the 24-hour window


def test_free_form_outside_the_window_fails_with_131047(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    status, answer = send(emu, "text", {"body": "never wrote to us"})
    assert status == 200  # Meta accepts it, then reports the failure
    wamid = answer["messages"][0]["id"]
    failed = emu.wait_status(wamid, "failed")
    assert failed["errors"][0]["code"] == 131047
    assert failed["errors"][0]["title"] == "Re-engagement message"
    emu.wait_until(lambda: receiver.statuses(wamid) != [], what="the failed status posted")
    assert [s["status"] for s in receiver.statuses(wamid)] == ["failed"]
    assert emu.messages(CUSTOMER) == []
    [kept] = emu.messages(CUSTOMER, include_failed=True)
    assert kept["status"] == "failed"
    assert kept["errors"][0]["code"] == 131047

    emu.set_last_inbound(CUSTOMER, 25 * 3600)
    assert send(emu, "interactive", buttons_payload("Yes"))[0] == 200
    assert emu.messages(CUSTOMER) == []
    emu.set_last_inbound(CUSTOMER, 23 * 3600)
    assert send(emu, "text", {"body": "within the window"})[0] == 200
    assert [emu.text(m) for m in emu.messages(CUSTOMER)] == ["within the window"]
    # Outside it, only a template gets through.
    emu.set_last_inbound(CUSTOMER, None)
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    status, answer = send(emu, "template", template)
    assert status == 200
    assert answer["messages"][0]["message_status"] == "accepted"
    assert emu.wait_status(answer["messages"][0]["id"], "sent")["pricing"]["billable"] is True


def test_a_customer_message_opens_the_window(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 30 * 3600)
    emu.send_reaction(CUSTOMER, "wamid.any", "🙏")
    assert send(emu, "text", {"body": "thanks"})[0] == 200
    assert len(emu.messages(CUSTOMER)) == 1


def test_window_errors_can_be_synchronous(receiver: Receiver) -> None:
    with make_emulator(window_error="response") as emu:
        status, answer = send(emu, "text", {"body": "late"})
        assert (status, answer["error"]["code"]) == (400, 131047)
        assert answer["error"]["message"] == "(#131047) Re-engagement message"
        assert emu.messages(CUSTOMER, include_failed=True) == []


# ------------------------------------------------------------------ templates


def test_templates_must_be_registered_with_their_parameters(emu: WhatsAppEmulator) -> None:
    def template(name: str, language: str, *params: str) -> JsonDict:
        parameters = [{"type": "text", "text": p} for p in params]
        return {
            "name": name,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": parameters}],
        }

    assert error_of(send(emu, "template", template("order_ready", "en_US"))) == (404, 132001)
    emu.register_template("order_ready", "en_US", body_params=2)
    assert error_of(send(emu, "template", template("order_ready", "ru", "A", "B"))) == (404, 132001)
    assert error_of(send(emu, "template", template("order_ready", "en_US", "A"))) == (400, 132000)
    assert send(emu, "template", template("order_ready", "en_US", "A-1", "Antminer S21"))[0] == 200
    assert [t["template"]["name"] for t in emu.templates_sent] == ["order_ready"]
    assert error_of(send(emu, "template", {"name": "x"})) == (400, 131008)
    odd = {"name": "hello_world", "language": {"code": "en_US"}, "components": "body"}
    assert error_of(send(emu, "template", odd)) == (400, 100)


# ------------------------------------------------------------------ injected errors


@pytest.mark.parametrize(
    ("code", "http_status", "expected_status"),
    [
        (130429, None, 429),
        (131056, None, 429),
        (131056, 400, 400),
        (131000, 500, 500),
        (131016, None, 503),
        (2, None, 503),
    ],
)
def test_injected_errors_answer_the_call(
    emu: WhatsAppEmulator, code: int, http_status: int | None, expected_status: int
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    emu.fail_next(code, http_status=http_status)
    status, answer = send(emu, "text", {"body": "x"})
    assert (status, answer["error"]["code"]) == (expected_status, code)
    assert answer["error"]["error_data"]["details"]
    assert answer["error"].get("is_transient", False) == (expected_status >= 500)
    assert send(emu, "text", {"body": "retried"})[0] == 200
    assert [emu.text(m) for m in emu.messages(CUSTOMER)] == ["retried"]


def test_rate_limit_message_reads_like_metas(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    emu.fail_next(130429, times=2)
    first, second = send(emu, "text", {"body": "1"}), send(emu, "text", {"body": "2"})
    assert first[1]["error"]["message"] == "(#130429) Rate limit hit"
    assert error_of(second) == (429, 130429)
    assert emu.pending_faults() == 0


@pytest.mark.parametrize("code", [131026, 131047])
def test_injected_delivery_failures_arrive_as_failed_statuses(
    emu: WhatsAppEmulator, receiver: Receiver, code: int
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    emu.fail_next(code)
    status, answer = send(emu, "text", {"body": "x"})
    assert status == 200
    wamid = answer["messages"][0]["id"]
    emu.wait_until(lambda: receiver.statuses(wamid) != [], what="a failed status")
    [failed] = receiver.statuses(wamid)
    assert failed["status"] == "failed"
    error = failed["errors"][0]
    assert error["code"] == code
    assert error["title"] == GraphError(code).title
    assert error["error_data"]["details"]
    assert emu.messages(CUSTOMER) == []


def test_faults_can_target_a_customer_or_an_endpoint(emu: WhatsAppEmulator) -> None:
    other = "15557654321"
    for who in (CUSTOMER, other):
        emu.set_last_inbound(who, 60)
    emu.fail_next(131056, wa_id=other)
    assert send(emu, "text", {"body": "x"})[0] == 200
    assert error_of(send(emu, "text", {"body": "x"}, to=other)) == (429, 131056)
    media_id = emu.add_media(JPEG, "image/jpeg")
    emu.fail_next(131016, endpoint="media_url")
    assert error_of(graph(emu, "GET", media_id)) == (503, 131016)
    assert graph(emu, "GET", media_id)[0] == 200
    emu.fail_next(131047, via="response")
    assert error_of(send(emu, "text", {"body": "x"})) == (400, 131047)
    with pytest.raises(ValueError, match="endpoint"):
        emu.fail_next(1, endpoint="edits")
    with pytest.raises(ValueError, match="status"):
        emu.fail_next(131026, endpoint="media")
    with pytest.raises(ValueError, match="customer"):
        emu.fail_next(131016, endpoint="download", wa_id=other)


def test_a_refused_request_does_not_consume_a_fault(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    emu.fail_next(130429)
    assert error_of(send(emu, "text", {"body": "x" * 5000})) == (400, 100)
    assert error_of(send(emu, "text", {"body": "ok"})) == (429, 130429)


# ------------------------------------------------------------------ webhooks to the bot


def test_webhook_posts_are_signed_over_the_raw_body(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    emu.send_text(CUSTOMER, "привет, 你好")  # Meta escapes non-ASCII: \\uXXXX
    emu.set_last_inbound(CUSTOMER, 60)
    send(emu, "text", {"body": "ok"})
    emu.wait_until(lambda: len(receiver.raw) == 4, what="a message and three statuses")
    assert receiver.refused == 0
    raw = receiver.raw[0]
    assert b"\\u043f" in raw
    digest = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert emu.sign(raw) == f"sha256={digest}"
    assert receiver.messages()[0]["text"]["body"] == "привет, 你好"
    assert all(d.status == 200 for d in emu.deliveries)


def test_wrong_or_missing_signatures_are_refused_by_the_bot(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    body = {"object": "whatsapp_business_account", "entry": []}
    assert emu.post_raw(body)[0] == 200
    assert emu.post_raw(body, signature=None)[0] == 401
    assert emu.post_raw(body, signature="")[0] == 401
    assert emu.post_raw(body, signature="sha256=" + "0" * 64)[0] == 401
    assert emu.post_raw(b"{}", signature=sign("another-secret", b"{}"))[0] == 401
    assert receiver.refused == 4
    # The helpers check the bot's answer: a bot with another secret refuses them all.
    stranger = WhatsAppEmulator(app_secret="not-the-bots-secret")
    stranger.webhook_url = receiver.url
    with pytest.raises(WebhookRejected, match="401"):
        stranger.send_text(CUSTOMER, "hi")
    assert receiver.refused == 5


def test_the_envelope_is_metas(emu: WhatsAppEmulator, receiver: Receiver) -> None:
    emu.send_text(CUSTOMER, "hello", name="Alice")
    [body] = [json.loads(raw) for raw in receiver.raw]
    assert body["object"] == "whatsapp_business_account"
    [entry] = body["entry"]
    assert entry["id"] == emu.waba_id
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {
        "display_phone_number": emu.display_phone_number,
        "phone_number_id": PHONE_ID,
    }
    assert value["contacts"] == [{"profile": {"name": "Alice"}, "wa_id": CUSTOMER}]
    [message] = value["messages"]
    assert message["from"] == CUSTOMER
    assert message["id"].startswith("wamid.")
    assert abs(int(message["timestamp"]) - time.time()) < 60
    assert message["type"] == "text"
    assert message["text"] == {"body": "hello"}


def test_every_inbound_type(emu: WhatsAppEmulator, receiver: Receiver) -> None:
    emu.send_text(CUSTOMER, "hi", name="Bob")
    emu.send_video(CUSTOMER, b"\x00\x00\x00\x18ftypmp42", caption="noise")
    emu.send_document(CUSTOMER, b"%PDF", filename="invoice.pdf", caption="paid")
    emu.send_audio(CUSTOMER, b"OggS voice")
    emu.send_sticker(CUSTOMER, b"RIFF....WEBP", animated=True)
    emu.send_location(CUSTOMER, 55.75, 37.62, place="Warehouse", address="Moscow")
    emu.send_contacts(CUSTOMER, [("Ivan Petrov", "+7 900 000-00-00")])
    emu.send_reaction(CUSTOMER, "wamid.bot", "")
    emu.send_unsupported(CUSTOMER, "poll")
    emu.send_raw_message(CUSTOMER, {"type": "button", "button": {"payload": "p", "text": "Stop"}})
    posted = receiver.messages()
    assert [m["type"] for m in posted] == [
        "text", "video", "document", "audio", "sticker", "location", "contacts",
        "reaction", "unsupported", "button",
    ]  # fmt: skip
    assert all(v["contacts"][0]["profile"]["name"] == "Bob" for v in receiver.values())
    _, video, document, audio, sticker, location, contacts, reaction, unsupported, _ = posted
    assert video["video"]["caption"] == "noise"
    assert video["video"]["mime_type"] == "video/mp4"
    assert document["document"]["filename"] == "invoice.pdf"
    assert audio["audio"]["voice"] is True
    assert audio["audio"]["mime_type"] == "audio/ogg; codecs=opus"
    assert sticker["sticker"]["animated"] is True
    assert location["location"] == {
        "latitude": 55.75, "longitude": 37.62, "name": "Warehouse", "address": "Moscow",
    }  # fmt: skip
    [card] = contacts["contacts"]
    assert card["name"]["formatted_name"] == "Ivan Petrov"
    assert card["phones"][0]["wa_id"] == "79000000000"
    assert reaction["reaction"] == {"message_id": "wamid.bot", "emoji": ""}
    assert unsupported["errors"][0]["code"] == 131051
    assert unsupported["unsupported"] == {"type": "poll"}
    assert emu.inbound(CUSTOMER) == posted
    for media in (video, document, audio, sticker):
        assert graph(emu, "GET", media[media["type"]]["id"])[0] == 200


def test_pressing_buttons_and_choosing_rows(emu: WhatsAppEmulator, receiver: Receiver) -> None:
    emu.send_text(CUSTOMER, "menu")
    _, answer = send(emu, "interactive", buttons_payload("Track order", "Talk to us"))
    buttons_id = answer["messages"][0]["id"]
    send(emu, "interactive", list_payload(rows(3, description="Antminer")))
    pressed = emu.press_button(CUSTOMER, title="Talk to us")
    assert pressed["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b1", "title": "Talk to us"},
    }
    assert pressed["context"] == {"from": emu.display_phone_number, "id": buttons_id}
    chosen = emu.choose_row(CUSTOMER, "r2")
    assert chosen["interactive"]["list_reply"] == {
        "id": "r2", "title": "Row 2", "description": "Antminer",
    }  # fmt: skip
    assert receiver.messages()[-2:] == [pressed, chosen]
    assert emu.press_button(CUSTOMER, "b0", context_message_id=buttons_id)["context"]["id"] == (
        buttons_id
    )
    with pytest.raises(LookupError, match="no button"):
        emu.press_button(CUSTOMER, title="Not there")
    with pytest.raises(LookupError, match="no interactive list"):
        emu.choose_row("15550000000", "r0")


def test_redelivery_sends_the_same_bytes_again(emu: WhatsAppEmulator, receiver: Receiver) -> None:
    message = emu.send_text(CUSTOMER, "once")
    emu.redeliver(message)
    assert len(receiver.raw) == 2
    assert receiver.raw[0] == receiver.raw[1]
    assert [m["id"] for m in receiver.messages()] == [message["id"]] * 2
    with pytest.raises(KeyError):
        emu.redeliver({"id": "wamid.unknown"})


def test_a_batch_carries_several_messages_in_one_notification(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    other = "15557654321"
    with emu.batch():
        first = emu.send_text(CUSTOMER, "one", name="Ann")
        second = emu.send_text(other, "two", name="Ben")
        third = emu.send_text(CUSTOMER, "three")
        assert receiver.raw == []
    [value] = receiver.values()
    assert value["messages"] == [first, second, third]
    assert value["contacts"] == [
        {"profile": {"name": "Ann"}, "wa_id": CUSTOMER},
        {"profile": {"name": "Ben"}, "wa_id": other},
    ]
    emu.redeliver(second)  # the whole notification again
    assert receiver.raw[1] == receiver.raw[0]
    with pytest.raises(RuntimeError, match="nest"), emu.batch(), emu.batch():
        pass


def test_verification_handshake(emu: WhatsAppEmulator) -> None:
    assert emu.verify("1158201444") == (200, "1158201444")
    assert emu.verify("1158201444", token="guess")[0] == 403
    assert emu.verify("1158201444", mode="unsubscribe")[0] == 403


def test_helpers_raise_when_the_bot_does_not_answer_200(
    emu: WhatsAppEmulator, receiver: Receiver
) -> None:
    receiver.fail_next = 1
    with pytest.raises(WebhookRejected, match="HTTP 500"):
        emu.send_text(CUSTOMER, "first")
    receiver.fail_next = 1
    message = emu.send_text(CUSTOMER, "second", check=False)
    emu.redeliver(message)  # Meta tries again; this time the bot takes it
    assert [m["text"]["body"] for m in receiver.messages()] == ["second"]
    emu.webhook_url = "http://127.0.0.1:9/nowhere"
    with pytest.raises(WebhookRejected, match="no connection"):
        emu.send_text(CUSTOMER, "third")
    emu.webhook_url = None
    with pytest.raises(RuntimeError, match="webhook_url"):
        emu.send_text(CUSTOMER, "fourth")


def test_rejected_statuses_are_retried(emu: WhatsAppEmulator, receiver: Receiver) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    receiver.fail_next = 1
    _, answer = send(emu, "text", {"body": "x"})
    wamid = answer["messages"][0]["id"]
    emu.wait_until(lambda: len(receiver.statuses(wamid)) == 3, what="statuses after a retry")
    attempts = [(d.ref, d.status) for d in emu.deliveries if d.kind == "status"]
    assert attempts[:2] == [(f"{wamid}:sent", 500), (f"{wamid}:sent", 200)]


def test_statuses_echo_the_bots_tracker(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    body = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "text",
        "text": {"body": "tracked"},
        "biz_opaque_callback_data": "outbox:42",
    }
    _, answer = graph(emu, "POST", f"{PHONE_ID}/messages", body)
    sent = emu.wait_status(answer["messages"][0]["id"], "sent")
    assert sent["biz_opaque_callback_data"] == "outbox:42"


def test_statuses_can_be_limited(receiver: Receiver) -> None:
    with make_emulator(auto_statuses=("sent",)) as emu:
        emu.webhook_url = receiver.url
        emu.send_text(CUSTOMER, "hi")
        _, answer = send(emu, "text", {"body": "x"})
        wamid = answer["messages"][0]["id"]
        emu.wait_status(wamid, "sent")
        time.sleep(0.05)
        assert [s["status"] for s in emu.statuses(wamid)] == ["sent"]


def test_waiting_explains_what_is_missing(emu: WhatsAppEmulator) -> None:
    send(emu, "text", {"body": "x" * 5000})
    with pytest.raises(AssertionError, match=r"(?s)expected 1 message.*got 0.*#100"):
        emu.wait_messages(CUSTOMER, 1, timeout=0.1)


def test_restart_keeps_state_and_port(receiver: Receiver) -> None:
    emu = make_emulator()
    with emu:
        url = emu.api_base_url
        media_id = emu.add_media(JPEG, "image/jpeg")
    with emu:
        assert emu.api_base_url == url
        assert graph(emu, "GET", media_id)[0] == 200
    with pytest.raises(RuntimeError):
        WhatsAppEmulator().api_base_url  # noqa: B018


async def test_helpers_from_an_async_test_whose_loop_serves_the_webhook() -> None:
    """A bot in the test's own loop: blocking helpers go through asyncio.to_thread."""
    received: list[JsonDict] = []

    async def webhook(request: web.Request) -> web.Response:
        raw = await request.read()
        if not hmac.compare_digest(
            request.headers.get("X-Hub-Signature-256", ""), sign(APP_SECRET, raw)
        ):
            return web.Response(status=401)
        received.append(json.loads(raw))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/whatsapp/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with make_emulator() as emu:
            emu.webhook_url = f"http://127.0.0.1:{port}/whatsapp/webhook"
            message = await asyncio.to_thread(emu.send_text, CUSTOMER, "from a thread")
            assert received[0]["entry"][0]["changes"][0]["value"]["messages"] == [message]
            _, answer = await asyncio.to_thread(send, emu, "text", {"body": "hi"})
            wamid = answer["messages"][0]["id"]
            await asyncio.to_thread(emu.wait_status, wamid, "read")
            await asyncio.to_thread(emu.wait_until, lambda: len(received) == 4, 5, "statuses")
    finally:
        await runner.cleanup()
    statuses = [v["statuses"][0]["status"] for v in map(first_value, received[1:])]
    assert statuses == ["sent", "delivered", "read"]


def first_value(body: JsonDict) -> JsonDict:
    value: JsonDict = body["entry"][0]["changes"][0]["value"]
    return value
