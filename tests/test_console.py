"""`minerdesk chat` driven through stdin/stdout of the real process."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from bot.channels.console import ConsoleSender, file_paths, read_line
from domain.chats import ChatKey
from handlers.messages import Button, Incoming, Media, MediaKind, Reply


def chat(lines: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.model
def test_a_console_conversation(cli_env: dict[str, str]) -> None:
    result = chat(
        [
            "Can I pay for my order in instalments?",  # an answer with buttons
            "3",  # the second related entry's button... numbering restarts per reply
            "who won the world cup in 1998",  # honest fallback
            "/menu",
            "1",  # Ask a question
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("bot> Hello! I'm the Apexto support assistant.")
    assert "[1] ❓ Ask a question" in out
    assert "For <b>" not in out
    assert "in-stock" in out.lower()
    assert "[1] 👍" not in out
    assert "👍" in out
    assert "Sorry, I don't know the answer to that." in out
    assert out.rstrip().endswith(
        "Type your question in your own words, for example Can I pay with USDT?"
    )


@pytest.mark.model
def test_state_is_kept_between_runs_and_eof_exits_cleanly(cli_env: dict[str, str]) -> None:
    first = chat([], cli_env)
    assert first.returncode == 0
    second = chat(["/cancel"], cli_env)
    assert second.returncode == 0
    assert "There is nothing to cancel" in second.stdout


@pytest.mark.model
def test_orders_imported_from_a_file_are_tracked_in_the_console(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(
        json.dumps(
            [
                {
                    "number": "A-1001",
                    "email": "buyer@example.com",
                    "status": "shipped",
                    "shipped_on": "2026-11-16",
                    "carrier": "DHL",
                    "tracking_number": "JD0001",
                    "items": [{"brand": "Bitmain", "model": "Antminer S21", "serials": "SN21A1"}],
                }
            ]
        ),
        encoding="utf-8",
    )
    imported = subprocess.run(
        [sys.executable, "-m", "bot", "orders", "import", str(orders)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert "1 created, 0 updated, 0 unchanged, 0 problem(s)" in imported.stdout
    result = chat(["2", "A-1001", "buyer@example.com", "/orders"], cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Order A-1001: shipped" in out
    assert "DHL, tracking number JD0001" in out
    assert "b***r@e***e.com" in out
    assert out.rstrip().endswith("[2] ☰ Main menu")
    assert "[1] Order A-1001 (shipped)" in out


def line(text: str, buttons: tuple[Button, ...] = ()) -> Incoming | None:
    return read_line(text, "ann", buttons, lambda: "console-7")


def test_a_line_of_file_paths_sends_the_files(tmp_path: Path) -> None:
    (tmp_path / "front side.JPG").write_bytes(b"\xff\xd8photo")
    (tmp_path / "fan.mp4").write_bytes(b"video" * 10)
    (tmp_path / "kernel.log").write_text("hashboard 2 failed", encoding="utf-8")
    (tmp_path / "beep.mp3").write_bytes(b"ID3")

    photo = line(f"'{tmp_path}/front side.JPG'")
    assert photo == Incoming(
        "console",
        "ann",
        "ann",
        media=(
            Media(
                MediaKind.PHOTO,
                str(tmp_path / "front side.JPG"),
                size=len(b"\xff\xd8photo"),
                mime="image/jpeg",
                file_name="front side.JPG",
            ),
        ),
    )
    album = line(f'"{tmp_path}/fan.mp4" {tmp_path}/kernel.log {tmp_path}/front\\ side.JPG')
    assert album is not None
    assert album.text is None
    assert [(m.kind, m.file_name, m.size) for m in album.media] == [
        (MediaKind.VIDEO, "fan.mp4", 50),
        (MediaKind.DOCUMENT, "kernel.log", 18),
        (MediaKind.PHOTO, "front side.JPG", 7),
    ]
    assert {m.media_group_id for m in album.media} == {"console-7"}
    audio = line(f"{tmp_path}/beep.mp3")
    assert audio is not None
    assert [m.kind for m in audio.media] == [MediaKind.AUDIO]


def test_a_path_under_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "s19.png").write_bytes(b"png")
    incoming = line("~/s19.png")
    assert incoming is not None
    assert [m.file_ref for m in incoming.media] == [str(tmp_path / "s19.png")]


def test_a_line_that_is_not_only_existing_files_is_text(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    for text in (
        f"{tmp_path}/a.jpg {tmp_path}/missing.jpg",
        f"look at {tmp_path}/a.jpg",
        str(tmp_path),  # a folder
        "it's broken",  # an unpaired quote
        "hello",
    ):
        assert line(text) == Incoming("console", "ann", "ann", text=text)
    assert file_paths("") == []
    assert line("") is None
    assert line("1", (Button("Yes", "yes"),)) == Incoming("console", "ann", "ann", payload="yes")


async def test_files_sent_back_are_counted_before_the_caption() -> None:
    out = StringIO()
    sender = ConsoleSender(out)
    key = ChatKey("console", "ann")
    photos = tuple(Media(MediaKind.PHOTO, f"/tmp/{n}.jpg") for n in range(3))
    await sender.send(key, Reply("<b>Ticket</b> R-7KQ4-M2XP", album=photos))
    await sender.send(key, Reply("", album=photos[:1]))
    assert out.getvalue() == "bot> [3 files] Ticket R-7KQ4-M2XP\nbot> [1 file]\n"


@pytest.mark.model
def test_a_repair_ticket_in_the_console_with_files_by_path(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    sticker, front, back = (tmp_path / name for name in ("sn.jpg", "a.jpg", "b.jpg"))
    for path in (sticker, front, back):
        path.write_bytes(b"\xff\xd8" + path.name.encode())
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4")
    store = tmp_path / "copies"
    cli_env["MINERDESK_MEDIA__STORE_PATH"] = str(store)
    result = chat(
        [
            "/menu",
            "4",  # 🔧 Repair / second return
            "1",  # A repair
            "1",  # Bitmain Antminer
            "S21 200T",
            str(tmp_path / "invoice.pdf"),  # not a photo: asked again
            str(sticker),  # a photo of the SN sticker
            "1",  # I don't have the order number
            "2",  # a hash board
            "One board shows 0 chips since yesterday",
            "1",
            "1",
            "1",  # three checks done
            f"{front} {back}",  # two photos at once
            "1",  # Done
            "2",
            "2",
            "2",
            "2",  # no to the four warranty questions
            "12",  # Submit, after eleven edit buttons
            "/tickets",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "That is a PDF document" in out
    assert "Got 2 so far" in out
    assert "Serial number: photo of the sticker" in out
    assert "Your repair ticket is submitted" in out
    assert "· Repair ticket · pending" in out
    copies = sorted(path.name for path in store.rglob("*") if path.is_file())
    assert copies == ["fault_photos-0.jpg", "fault_photos-1.jpg", "serial-0.jpg"]
