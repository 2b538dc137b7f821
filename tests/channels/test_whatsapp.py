"""The WhatsApp adapter's pieces against the Cloud API emulator over real HTTP, in process:
no engine, no model, no bot process (part 2b drives the real bot end to end)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup
from pydantic import SecretStr

from bot.channels.whatsapp import Presence, WhatsAppFetcher, WhatsAppSender, status_failure
from bot.channels.whatsapp_api import GraphClient
from bot.channels.whatsapp_errors import OutsideWindow, TokenRejected, delivery_error, mask
from bot.channels.whatsapp_read import (
    DeliveryStatus,
    Ignored,
    Status,
    album_group,
    inbound_times,
    inbox_id,
    read,
)
from bot.channels.whatsapp_render import render
from bot.channels.whatsapp_webhook import WhatsAppWebhook, signature
from bot.channels.whatsapp_window import Purpose, SendTemplate, decide
from bot.delivery import RetryAfter, TemporaryFailure, Undeliverable
from bot.media import FetchFailed
from bot.settings import WhatsAppSettings, WhatsAppTemplateSettings, WhatsAppWebhookSettings
from domain.chats import ChatKey
from handlers.messages import Button, Incoming, Media, MediaKind, Reply
from storage.base import QueuedMessage
from tests.whatsapp_emulator import WhatsAppEmulator, sign

CUSTOMER = "15551234567"
OTHER = "15557654321"
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg " * 10

JsonDict = dict[str, Any]


@pytest.fixture
def emu() -> Iterator[WhatsAppEmulator]:
    with WhatsAppEmulator(status_delay=0, webhook_retry_delay=0.01) as emulator:
        yield emulator


def settings_for(emu: WhatsAppEmulator, **changes: Any) -> WhatsAppSettings:
    values: dict[str, Any] = {
        "phone_number_id": emu.phone_number_id,
        "api_base_url": emu.api_base_url,
        "api_version": emu.api_version,
        "access_token": SecretStr(emu.access_token),
        "app_secret": SecretStr(emu.app_secret),
        "verify_token": SecretStr(emu.verify_token),
        # Port 0: the OS picks a free one (the settings refuse it, a test needs it).
        "webhook": WhatsAppWebhookSettings().model_copy(update={"listen_port": 0}),
    }
    return WhatsAppSettings(**(values | changes))


class Inbox:
    """The runtime's side of `store`: keeps what it is given, or fails when told to."""

    def __init__(self) -> None:
        self.items: list[JsonDict] = []
        self.failures = 0

    async def __call__(self, items: list[JsonDict]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.items.extend(items)

    def events(self) -> list[Any]:
        return [read(item) for item in self.items]

    def incoming(self) -> list[Incoming]:
        return [event for event in self.events() if isinstance(event, Incoming)]


@pytest.fixture
async def inbox(emu: WhatsAppEmulator) -> AsyncIterator[Inbox]:
    """The bot's webhook, served in the test's loop; the emulator posts to it (so its
    blocking helpers run in a thread: `drive`)."""
    stored = Inbox()
    webhook = WhatsAppWebhook(settings_for(emu), stored)
    await webhook.start()
    emu.webhook_url = f"http://127.0.0.1:{webhook.port}/whatsapp/webhook"
    yield stored
    await webhook.stop()


drive = asyncio.to_thread


# --- the webhook ----------------------------------------------------------------------------


async def test_the_handshake_echoes_the_challenge_only_with_the_verify_token(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    assert await drive(emu.verify, "1158201444") == (200, "1158201444")
    assert (await drive(emu.verify, "1158201444", "guess"))[0] == 403
    assert (await drive(emu.verify, "1158201444", "", "subscribe"))[0] == 403
    assert (await drive(emu.verify, "1158201444", None, "unsubscribe"))[0] == 403
    assert (await drive(emu.verify, "x" * 1000))[0] == 403


async def test_notifications_need_metas_signature(emu: WhatsAppEmulator, inbox: Inbox) -> None:
    body = emu._envelope({"messages": [{"from": CUSTOMER, "id": "wamid.1", "type": "text"}]})
    raw = json.dumps(body).encode()
    assert (await drive(emu.post_raw, raw, None))[0] == 401
    assert (await drive(emu.post_raw, raw, ""))[0] == 401
    assert (await drive(emu.post_raw, raw, "sha256=" + "0" * 64))[0] == 403
    assert (await drive(emu.post_raw, raw, sign("another secret", raw)))[0] == 403
    assert (await drive(emu.post_raw, raw, "sha256=ü"))[0] == 403
    # Signed over other bytes (the same JSON re-encoded): refused too.
    assert (await drive(emu.post_raw, raw, sign(emu.app_secret, raw + b" ")))[0] == 403
    assert inbox.items == []
    assert (await drive(emu.post_raw, raw, signature(emu.app_secret, raw).upper()))[0] == 403
    assert (await drive(emu.post_raw, raw))[0] == 200
    assert [inbox_id(item) for item in inbox.items] == ["wamid.1"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": {}}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
        b' "value": {"messages": ["x"]}}]}]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
async def test_malformed_notifications_are_refused(
    emu: WhatsAppEmulator, inbox: Inbox, body: bytes
) -> None:
    assert (await drive(emu.post_raw, body))[0] == 400
    assert inbox.items == []


async def test_other_numbers_and_other_fields_are_acknowledged_but_not_stored(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    other_number = emu._envelope({"messages": [{"from": CUSTOMER, "id": "wamid.2"}]})
    other_number["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    template_review = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "message_template_status_update"}]}],
    }
    for body in (
        other_number,
        template_review,
        {"object": "whatsapp_business_account", "entry": []},
    ):
        assert (await drive(emu.post_raw, body))[0] == 200
    assert inbox.items == []


async def test_messages_are_stored_before_the_200_and_again_when_storing_failed(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    inbox.failures = 1
    message = await drive(lambda: emu.send_text(CUSTOMER, "my order?", check=False))
    assert emu.deliveries[-1].status == 500
    assert inbox.items == []
    # Meta sends it again until it gets a 200; each redelivery keeps the wamid.
    await drive(emu.redeliver, message)
    await drive(emu.redeliver, message)
    assert [inbox_id(item) for item in inbox.items] == [message["id"]] * 2
    assert inbox.events()[0] == inbox.events()[1]


async def test_a_notification_of_several_messages_is_stored_one_item_each(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    def three() -> list[JsonDict]:
        with emu.batch():
            return [
                emu.send_text(CUSTOMER, "one", name="Ann"),
                emu.send_text(OTHER, "two", name="Ben"),
                emu.send_text(CUSTOMER, "three"),
            ]

    sent = await drive(three)
    assert [inbox_id(item) for item in inbox.items] == [m["id"] for m in sent]
    assert [(e.chat_id, e.text, e.user_name) for e in inbox.incoming()] == [
        (CUSTOMER, "one", "Ann"),
        (OTHER, "two", "Ben"),
        (CUSTOMER, "three", "Ann"),
    ]
    times = inbound_times(inbox.items[2])
    assert times == {CUSTOMER: int(sent[2]["timestamp"])}


# --- reading what customers send ----------------------------------------------------------


async def test_text_and_replies(emu: WhatsAppEmulator, inbox: Inbox) -> None:
    first = await drive(lambda: emu.send_text(CUSTOMER, "Where is my order A-1001?", name="Alice"))
    await drive(lambda: emu.send_text(CUSTOMER, "/start", reply_to="wamid.bots-menu"))
    asked, command = inbox.incoming()
    assert asked == Incoming(
        channel="whatsapp",
        chat_id=CUSTOMER,
        user_id=CUSTOMER,
        text="Where is my order A-1001?",
        update_id=first["id"],
        user_name="Alice",
        message_id=first["id"],
        phone="+" + CUSTOMER,
    )
    assert command.command == "start"
    assert command.reply_to == "wamid.bots-menu"


async def test_button_and_list_replies_give_the_payloads_the_bot_set(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    button = {"type": "reply", "reply": {"id": "menu:orders", "title": "Track my order"}}
    rows = [{"id": f"faq:show:{i}", "title": f"Question {i}"} for i in range(4)]
    await drive(
        _send_interactive,
        emu,
        {"type": "button", "body": {"text": "Hi"}, "action": {"buttons": [button]}},
    )
    await drive(
        _send_interactive,
        emu,
        {
            "type": "list",
            "body": {"text": "More"},
            "action": {"button": "☰", "sections": [{"rows": rows}]},
        },
    )
    pressed = await drive(lambda: emu.press_button(CUSTOMER, title="Track my order"))
    chosen = await drive(lambda: emu.choose_row(CUSTOMER, "faq:show:2"))
    tap, pick = inbox.incoming()
    assert (tap.payload, tap.text, tap.reply_to) == ("menu:orders", None, pressed["context"]["id"])
    assert (pick.payload, pick.reply_to) == ("faq:show:2", chosen["context"]["id"])
    assert tap.update_id == tap.message_id == pressed["id"]


def _send_interactive(emu: WhatsAppEmulator, interactive: JsonDict) -> None:
    """A menu sent by hand, for the customer to tap (the sender has tests of its own)."""
    body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive"}
    body["interactive"] = interactive
    request = urllib.request.Request(
        f"{emu.graph_url}/{emu.phone_number_id}/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {emu.access_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def test_files_locations_contacts_and_the_rest(emu: WhatsAppEmulator, inbox: Inbox) -> None:
    def send_all() -> list[JsonDict]:
        return [
            emu.send_image(CUSTOMER, JPEG, caption="hashboard"),
            emu.send_video(CUSTOMER, b"\x00\x00\x00\x18ftypmp42"),
            emu.send_document(CUSTOMER, b"%PDF-1.4", filename="invoice.pdf", caption="paid"),
            emu.send_audio(CUSTOMER, b"OggS voice"),
            emu.send_audio(CUSTOMER, b"ID3 song", "audio/mpeg", voice=False),
            emu.send_sticker(CUSTOMER, b"RIFF....WEBP"),
            emu.send_location(CUSTOMER, 55.75, 37.62, place="Warehouse"),
            emu.send_contacts(CUSTOMER, [("Ivan Petrov", "+7 900 000-00-00")]),
            emu.send_unsupported(CUSTOMER, "poll"),
            emu.send_raw_message(CUSTOMER, {"type": "order", "order": {"catalog_id": "1"}}),
            emu.send_raw_message(
                CUSTOMER, {"type": "button", "button": {"payload": "p", "text": "Stop"}}
            ),
        ]

    sent = await drive(send_all)
    image, video, document, voice, song, sticker, location, contact, poll, order, quick = (
        inbox.events()
    )
    group = album_group(CUSTOMER)
    assert image.text == "hashboard"
    assert image.media == (
        Media(MediaKind.PHOTO, sent[0]["image"]["id"], None, "image/jpeg", group, None, "whatsapp"),
    )
    assert video.media[0].kind is MediaKind.VIDEO
    assert video.media[0].media_group_id == group
    assert (document.text, document.media[0].file_name) == ("paid", "invoice.pdf")
    assert document.media[0].mime == "application/pdf"
    assert voice.media[0].kind is MediaKind.VOICE
    assert voice.media[0].mime == "audio/ogg"  # the codec parameter dropped
    assert voice.media[0].media_group_id is None  # a voice note never waits for an album
    assert song.media[0].kind is MediaKind.AUDIO
    assert sticker.media[0].kind is MediaKind.STICKER
    assert [e.media[0].kind for e in (location, contact, poll, order)] == [
        MediaKind.LOCATION,
        MediaKind.CONTACT,
        MediaKind.OTHER,
        MediaKind.OTHER,
    ]
    assert quick.text == "Stop"
    assert all(
        e.media[0].channel == "whatsapp"
        for e in inbox.events()
        if isinstance(e, Incoming) and e.media
    )


async def test_reactions_and_system_messages_are_ignored(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    await drive(lambda: emu.send_reaction(CUSTOMER, "wamid.bot", "👍"))
    await drive(
        lambda: emu.send_raw_message(
            CUSTOMER, {"type": "system", "system": {"type": "user_changed_number"}}
        )
    )
    await drive(lambda: emu.send_raw_message(CUSTOMER, {"type": "request_welcome"}))
    assert inbox.events() == [Ignored("reaction"), Ignored("system"), Ignored("request_welcome")]


async def test_photos_sent_one_after_another_share_the_chats_album(
    emu: WhatsAppEmulator, inbox: Inbox
) -> None:
    def photos() -> None:
        emu.send_image(CUSTOMER, JPEG, caption="front")
        emu.send_image(CUSTOMER, JPEG)
        emu.send_image(OTHER, JPEG)
        emu.send_image(CUSTOMER, JPEG, mime_type="image/png")

    await drive(photos)
    groups = [(e.chat_id, e.media[0].media_group_id) for e in inbox.incoming()]
    assert groups == [
        (CUSTOMER, album_group(CUSTOMER)),
        (CUSTOMER, album_group(CUSTOMER)),
        (OTHER, album_group(OTHER)),
        (CUSTOMER, album_group(CUSTOMER)),
    ]
    assert len({inbox_id(item) for item in inbox.items}) == 4


def test_status_items_read_as_delivery_statuses() -> None:
    failed = {
        "id": "wamid.out",
        "status": "failed",
        "timestamp": "1750000000",
        "recipient_id": CUSTOMER,
        "errors": [
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "More than 24 hours have passed."},
            }
        ],
    }
    body = WhatsAppEmulator()._envelope({"statuses": [failed]})
    event = read(body)
    assert event == DeliveryStatus(
        "wamid.out",
        Status.FAILED,
        CUSTOMER,
        1750000000,
        131047,
        "Re-engagement message: More than 24 hours have passed. (#131047)",
    )
    assert isinstance(event, DeliveryStatus)
    assert event.outside_window
    assert inbox_id(body) == "wamid.out:failed"


# --- sending ------------------------------------------------------------------------------


@pytest.fixture
async def client(emu: WhatsAppEmulator) -> AsyncIterator[GraphClient]:
    graph = GraphClient(settings_for(emu))
    yield graph
    await graph.close()


class Files:
    """The runtime's `open_file`: another channel's files, by reference."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        self.files = files
        self.opened: list[str] = []

    async def __call__(self, media: Media) -> tuple[bytes, str]:
        self.opened.append(media.file_ref)
        return self.files[media.file_ref]


class Sent:
    """The runtime's `on_sent`: which part became which wamid."""

    def __init__(self) -> None:
        self.wamids: list[str] = []

    async def __call__(self, key: ChatKey, part: Any, wamid: str) -> None:
        self.wamids.append(wamid)


KEY = ChatKey("whatsapp", CUSTOMER)


async def deliver(sender: WhatsAppSender, reply: Reply) -> None:
    """Send a reply as the runtime will: its parts from the outbox's JSON, one call each.
    An album is rendered from the reply itself: the outbox's JSON keeps only each file's
    kind and id so far, not its channel (part 2b's Reply.to_json keeps it)."""
    message = QueuedMessage(1, KEY, reply.to_json())
    parts = render(reply) if reply.album else sender.parts(message)
    for part in parts:
        await sender.send(KEY, part)


async def test_replies_arrive_within_metas_limits(
    emu: WhatsAppEmulator, client: GraphClient
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    sent = Sent()
    sender = WhatsAppSender(client, on_sent=sent)
    paragraph = "<b>Shipping</b>: " + "a sentence about delivery times. " * 40
    await deliver(sender, Reply(Markup("\n\n".join([paragraph] * 3)), (_feedback(),)))
    menu = [Button(label, f"menu:{i}") for i, label in enumerate(MENU)]
    await deliver(sender, Reply(Markup("Main menu"), tuple((b,) for b in menu), replaces="wamid.x"))
    messages = emu.messages(CUSTOMER)
    kinds = [m["type"] for m in messages]
    assert kinds == ["text"] * (len(kinds) - 2) + ["interactive", "interactive"]
    assert len(kinds) > 3
    assert [m["id"] for m in messages] == sent.wamids
    assert emu.buttons(messages[-2]) == [("fb:1", "👍"), ("fb:0", "👎")]
    assert [row[0] for row in emu.rows(messages[-1])] == [f"menu:{i}" for i in range(len(MENU))]
    # Every call exactly as documented, with the token.
    assert {(c.method, c.path, c.status) for c in emu.calls()} == {
        ("POST", f"/{emu.api_version}/{emu.phone_number_id}/messages", 200)
    }


MENU = ["📦 Track my order", "🛡 Warranty check", "🔧 Repair / second return", "❓ Questions"]


def _feedback() -> tuple[Button, ...]:
    return (Button("👍", "fb:1"), Button("👎", "fb:0"))


async def test_a_list_choice_comes_back_as_its_payload(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "hi"))
    menu = tuple((Button(label, f"menu:{i}"),) for i, label in enumerate(MENU))
    await deliver(WhatsAppSender(client), Reply(Markup("Main menu"), menu))
    await drive(lambda: emu.choose_row(CUSTOMER, title="🔧 Repair / second return"))
    choice = inbox.incoming()[-1]
    assert choice.payload == "menu:2"


async def test_another_channels_files_are_uploaded_then_sent_by_id(
    emu: WhatsAppEmulator, client: GraphClient
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    files = Files({"tg-1": (JPEG, "image/jpeg"), "tg-2": (b"%PDF-1.4", "application/pdf")})
    photo = Media(MediaKind.PHOTO, "tg-1", channel="telegram")
    report = Media(MediaKind.DOCUMENT, "tg-2", file_name="report.pdf", channel="telegram")
    await deliver(
        WhatsAppSender(client, files), Reply(Markup("<i>From the rep</i>"), album=(photo, report))
    )
    image, document = emu.messages(CUSTOMER)
    uploads = emu.uploads
    assert [u.content for u in uploads] == [JPEG, b"%PDF-1.4"]
    assert image["image"] == {"id": uploads[0].id, "caption": "_From the rep_"}
    assert document["document"] == {"id": uploads[1].id, "filename": "report.pdf"}
    assert [c.path for c in emu.calls("/media")] == [
        f"/{emu.api_version}/{emu.phone_number_id}/media"
    ] * 2


async def test_whatsapps_own_files_go_by_id_without_upload(
    emu: WhatsAppEmulator, client: GraphClient
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    media_id = emu.add_media(JPEG, "image/jpeg")
    own = Media(MediaKind.PHOTO, media_id, mime="image/jpeg", channel="whatsapp")
    await deliver(WhatsAppSender(client), Reply(Markup(""), album=(own, own)))
    assert [m["image"] for m in emu.messages(CUSTOMER)] == [{"id": media_id}] * 2
    assert emu.calls("/media") == []


@pytest.mark.parametrize(
    ("content", "mime", "reason"),
    [
        (b"GIF89a", "image/gif", "does not take files of type image/gif"),
        (b"x" * (5 * 1024 * 1024 + 1), "image/jpeg", "over WhatsApp's 5 MB"),
        (b"", "image/jpeg", "empty"),
    ],
)
async def test_files_whatsapp_cannot_carry_are_undeliverable(
    emu: WhatsAppEmulator, client: GraphClient, content: bytes, mime: str, reason: str
) -> None:
    files = Files({"tg-1": (content, mime)})
    photo = Media(MediaKind.PHOTO, "tg-1", channel="telegram")
    with pytest.raises(Undeliverable, match=reason):
        await deliver(WhatsAppSender(client, files), Reply(Markup(""), album=(photo,)))
    assert emu.uploads == []
    with pytest.raises(Undeliverable, match="cannot fetch a file of the telegram channel"):
        await deliver(WhatsAppSender(client), Reply(Markup(""), album=(photo,)))


async def test_a_copy_without_text_is_refused_with_the_reason(client: GraphClient) -> None:
    with pytest.raises(Undeliverable, match="cannot copy"):
        await deliver(WhatsAppSender(client), Reply(Markup(""), copy_of=(CUSTOMER, "wamid.1")))


@pytest.mark.parametrize(
    ("code", "http_status", "expected", "seconds"),
    [
        (130429, None, RetryAfter, (2.0, 3.0)),
        (131056, None, RetryAfter, (6.0, 9.0)),
        (130429, 400, RetryAfter, (2.0, 3.0)),  # the status older tables give
        (80007, None, RetryAfter, (60.0, 90.0)),
        (131000, None, TemporaryFailure, None),
        (2, None, TemporaryFailure, None),
        (131016, None, TemporaryFailure, None),
        (1, 500, TemporaryFailure, None),
        (131026, None, Undeliverable, None),
        (131009, None, Undeliverable, None),
        (131047, None, OutsideWindow, None),
    ],
)
async def test_errors_answered_by_the_call_become_delivery_failures(
    emu: WhatsAppEmulator,
    client: GraphClient,
    code: int,
    http_status: int | None,
    expected: type[Exception],
    seconds: tuple[float, float] | None,
) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    emu.fail_next(code, http_status=http_status, via="response")
    with pytest.raises(expected) as caught:
        await deliver(WhatsAppSender(client), Reply(Markup("hello")))
    assert f"#{code}" in str(caught.value)
    if seconds is not None:
        assert isinstance(caught.value, RetryAfter)
        assert seconds[0] <= caught.value.seconds <= seconds[1]
    if expected is Undeliverable:
        assert type(caught.value) is Undeliverable
    await deliver(WhatsAppSender(client), Reply(Markup("hello again")))
    assert [emu.text(m) for m in emu.messages(CUSTOMER)] == ["hello again"]


async def test_outside_the_window_meta_accepts_then_reports_131047_in_a_status(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient
) -> None:
    sent = Sent()
    await deliver(WhatsAppSender(client, on_sent=sent), Reply(Markup("late answer")))
    [wamid] = sent.wamids
    await drive(emu.wait_status, wamid, "failed")
    await drive(emu.wait_until, lambda: len(inbox.items) == 1, 5, "the failed status")
    [status] = inbox.events()
    assert isinstance(status, DeliveryStatus)
    assert (status.message_id, status.status, status.error_code) == (wamid, Status.FAILED, 131047)
    assert status.outside_window
    assert isinstance(status_failure(status), OutsideWindow)


async def test_outside_the_window_the_synchronous_form_is_outside_window_too(
    client: GraphClient,
) -> None:
    with WhatsAppEmulator(window_error="response") as strict:
        graph = GraphClient(settings_for(strict))
        try:
            with pytest.raises(OutsideWindow, match="#131047"):
                await deliver(WhatsAppSender(graph), Reply(Markup("late answer")))
        finally:
            await graph.close()


async def test_statuses_are_recorded_as_they_come(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "hi"))
    emu.fail_next(131026, wa_id=CUSTOMER)  # Meta reports it later, in a failed status
    sent = Sent()
    sender = WhatsAppSender(client, on_sent=sent)
    await deliver(sender, Reply(Markup("first")))
    await deliver(sender, Reply(Markup("second")))
    await drive(emu.wait_until, lambda: len(inbox.items) == 5, 5, "four statuses")
    statuses = [e for e in inbox.events() if isinstance(e, DeliveryStatus)]
    by_message = {(s.message_id, s.status): s for s in statuses}
    failed = by_message[(sent.wamids[0], Status.FAILED)]
    assert failed.error_code == 131026
    assert failed.error is not None
    assert failed.error.startswith("Message undeliverable")
    assert type(status_failure(failed)) is Undeliverable
    assert [s.status for s in statuses if s.message_id == sent.wamids[1]] == [
        Status.SENT,
        Status.DELIVERED,
        Status.READ,
    ]
    assert all(s.recipient == CUSTOMER for s in statuses)


async def test_a_rejected_token_and_an_unreachable_api(emu: WhatsAppEmulator) -> None:
    emu.set_last_inbound(CUSTOMER, 60)
    wrong = GraphClient(settings_for(emu, access_token=SecretStr("EAAG-revoked")))
    try:
        with pytest.raises(TokenRejected, match="#190"):
            await deliver(WhatsAppSender(wrong), Reply(Markup("hello")))
    finally:
        await wrong.close()
    gone = GraphClient(settings_for(emu, api_base_url="http://127.0.0.1:9"))
    try:
        with pytest.raises(TemporaryFailure, match="unreachable"):
            await deliver(WhatsAppSender(gone), Reply(Markup("hello")))
    finally:
        await gone.close()


async def test_a_template_goes_outside_the_window(
    emu: WhatsAppEmulator, client: GraphClient
) -> None:
    emu.register_template("order_update", "en_US", body_params=1)
    template = {"order_update": WhatsAppTemplateSettings(name="order_update")}
    decision = decide(Purpose.ORDER_UPDATE, "<b>Order A-1</b> shipped", None, time.time(), template)
    assert isinstance(decision, SendTemplate)
    await WhatsAppSender(client).send(KEY, decision.message())
    [sent] = emu.templates_sent
    assert sent["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "*Order A-1* shipped"}
    ]
    emu.wait_status(sent["id"], "read")


# --- read receipts and typing -----------------------------------------------------------


async def test_acknowledging_marks_read_with_typing_and_typing_repeats(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "first"))
    await drive(lambda: emu.send_text(CUSTOMER, "second"))
    presence = Presence(client)
    first, second = inbox.incoming()
    await presence.acknowledge(second)
    await presence.show_typing(CUSTOMER)
    await presence.show_typing(OTHER)  # nothing received from them: nothing to show
    receipts = emu.read_receipts(CUSTOMER)
    assert (
        receipts
        == [
            {
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": second.update_id,
                "typing_indicator": {"type": "text"},
            }
        ]
        * 2
    )
    assert emu.read_receipts(OTHER) == []
    assert first.update_id != second.update_id


async def test_a_failed_read_receipt_is_logged_not_raised(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    await drive(lambda: emu.send_text(CUSTOMER, "hi"))
    emu.fail_next(131000, endpoint="read")
    caplog.set_level(logging.INFO)
    await Presence(client).acknowledge(inbox.incoming()[0])
    assert "whatsapp.read_receipt_failed chat=…4567" in caplog.text
    assert CUSTOMER not in caplog.text
    assert emu.access_token not in caplog.text


# --- the media archive's fetcher ---------------------------------------------------------


async def test_a_customers_file_is_fetched_by_its_media_id(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient, tmp_path: Path
) -> None:
    await drive(lambda: emu.send_document(CUSTOMER, b"%PDF-1.4 invoice", filename="invoice.pdf"))
    [incoming] = inbox.incoming()
    fetcher = WhatsAppFetcher(client)
    destination = tmp_path / "T-1" / "invoice-1.pdf"
    assert await fetcher.fetch(incoming.media[0].file_ref, destination, 1024 * 1024)
    assert destination.read_bytes() == b"%PDF-1.4 invoice"
    assert [c.method for c in emu.calls() if c.status == 200][-2:] == ["GET", "GET"]
    # Over the archive's cap: nothing written, not tried again.
    small = tmp_path / "T-1" / "small.pdf"
    assert not await fetcher.fetch(incoming.media[0].file_ref, small, 4)
    assert not small.exists()
    assert list(destination.parent.iterdir()) == [destination]


async def test_files_over_metas_limit_for_their_type_or_gone_are_not_fetched(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient, tmp_path: Path
) -> None:
    big = 5 * 1024 * 1024 + 1
    await drive(lambda: emu.send_image(CUSTOMER, JPEG, file_size=big))
    [photo] = inbox.incoming()
    fetcher = WhatsAppFetcher(client)
    assert not await fetcher.fetch(photo.media[0].file_ref, tmp_path / "a.jpg", 100 * 1024 * 1024)
    assert not await fetcher.fetch("1000000000000999", tmp_path / "b.jpg", 1024)
    assert not await fetcher.fetch("../../etc/passwd", tmp_path / "c.jpg", 1024)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's folder)


@pytest.mark.parametrize("endpoint", ["media_url", "download"])
async def test_meta_failing_is_a_fetch_to_try_again(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient, tmp_path: Path, endpoint: str
) -> None:
    await drive(lambda: emu.send_image(CUSTOMER, JPEG))
    [photo] = inbox.incoming()
    emu.fail_next(131000, endpoint=endpoint)
    with pytest.raises(FetchFailed):
        await WhatsAppFetcher(client).fetch(
            photo.media[0].file_ref, tmp_path / "a.jpg", 1024 * 1024
        )
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's folder)
    assert await WhatsAppFetcher(client).fetch(
        photo.media[0].file_ref, tmp_path / "a.jpg", 1024 * 1024
    )


# --- what the logs and reasons show ------------------------------------------------------


async def test_logs_never_show_secrets_or_whole_phone_numbers(
    emu: WhatsAppEmulator, inbox: Inbox, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await drive(emu.verify, "1", "guess")
    await drive(emu.post_raw, b"{}", "sha256=00")
    await drive(emu.post_raw, b"{}", None)
    await drive(emu.post_raw, b"not json")
    await drive(lambda: emu.send_text(CUSTOMER, "hi"))
    emu.fail_next(131026, via="response")
    with pytest.raises(Undeliverable):
        await deliver(WhatsAppSender(client), Reply(Markup("hello")))
    emu.fail_next(131000, endpoint="read")
    await Presence(client).acknowledge(inbox.incoming()[0])
    assert "whatsapp.webhook_bad_signature" in caplog.text
    assert "whatsapp.webhook_unsigned" in caplog.text
    for secret in (emu.access_token, emu.app_secret, emu.verify_token, CUSTOMER):
        assert secret not in caplog.text


def test_reasons_mask_phone_numbers() -> None:
    error = delivery_error(131030, 400, "Recipient +1 555-123-4567 not in allowed list (#131030)")
    assert str(error) == "Recipient …4567 not in allowed list (#131030)"
    assert mask(CUSTOMER) == "…4567"
    assert mask("12") == "…"
