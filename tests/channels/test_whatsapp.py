"""The WhatsApp adapter's pieces against the Cloud API emulator over real HTTP, in process:
no engine, no model, no bot process (part 2b drives the real bot end to end)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.channels.whatsapp_read import (
    DeliveryStatus,
    Ignored,
    Status,
    album_group,
    inbound_times,
    inbox_id,
    read,
)
from bot.channels.whatsapp_webhook import WhatsAppWebhook, signature
from bot.settings import WhatsAppSettings, WhatsAppWebhookSettings
from handlers.messages import Incoming, Media, MediaKind
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
