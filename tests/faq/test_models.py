"""A model shipped in parts is joined, extracted and checked file by file, and refused in one
line when anything differs (a small stand-in model: the checks are under test)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from pathlib import Path

import pytest

from faq import models
from faq.models import (
    MPNET,
    VERIFIED,
    ModelMismatch,
    ModelNotFound,
    PackagedModel,
    part_files,
    unpacked,
)

FILES = {
    "config.json": b'{"model_type": "mpnet"}',
    "model.safetensors": bytes(range(256)) * 64,
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stand_in(tmp_path: Path, parts: int = 3) -> tuple[PackagedModel, list[Path]]:
    """A model zipped into a folder of its own and cut into `parts` files, like the packages."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in FILES.items():
            archive.writestr(f"stand-in/{name}", data)
        archive.writestr("stand-in/../../escaped.txt", b"must not land outside")
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    paths = []
    for number in range(parts):
        path = tmp_path / "site-packages" / f"stand-in.zip.{number + 1:03d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data[number * size : (number + 1) * size])
        paths.append(path)
    model = PackagedModel(
        name="stand-in",
        parts=tuple(f"stand-in-part-{n:03d}" for n in range(1, parts + 1)),
        folder="stand-in",
        files={name: sha256(data) for name, data in FILES.items()},
    )
    return model, paths


def test_the_parts_join_into_a_folder_holding_exactly_the_pinned_files(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    folder = unpacked(model, parts, tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / model.key
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        *FILES,
        VERIFIED,
    }
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == [model.key]


def test_a_file_that_differs_from_its_pinned_hash_is_refused_in_one_line(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    pinned = "0" * 64
    tampered = PackagedModel(
        model.name, model.parts, model.folder, {**model.files, "config.json": pinned}
    )
    with pytest.raises(ModelMismatch) as refused:
        unpacked(tampered, parts, tmp_path / "cache")
    message = str(refused.value)
    assert "\n" not in message
    assert "config.json" in message
    assert pinned in message
    assert sha256(FILES["config.json"]) in message
    assert isinstance(refused.value, ModelNotFound)  # the CLI prints these as one line
    assert not (tmp_path / "cache" / "models" / tampered.key).exists()
    assert list((tmp_path / "cache" / "models").iterdir()) == []  # nothing half-extracted


def test_a_file_not_in_the_model_is_refused(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    fewer = PackagedModel(
        model.name,
        model.parts,
        model.folder,
        {name: digest for name, digest in model.files.items() if name != "config.json"},
    )
    with pytest.raises(ModelMismatch, match=r"config\.json has SHA-256 \w+, expected none"):
        unpacked(fewer, parts, tmp_path / "cache")


def test_a_file_changed_after_the_check_is_caught_on_the_next_start(tmp_path: Path) -> None:
    """Same size, and its modification time set back: the change time still tells."""
    model, parts = stand_in(tmp_path)
    folder = unpacked(model, parts, tmp_path / "cache")
    weights = folder / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(bytes(reversed(FILES["model.safetensors"])))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_size == before.st_size
    with pytest.raises(ModelMismatch, match=r"model\.safetensors has SHA-256 [0-9a-f]{64}"):
        unpacked(model, parts, tmp_path / "cache")


def test_a_file_deleted_after_the_check_is_caught_on_the_next_start(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    folder = unpacked(model, parts, tmp_path / "cache")
    (folder / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ModelMismatch, match="none \\(missing\\)"):
        unpacked(model, parts, tmp_path / "cache")


def test_an_unchanged_folder_is_not_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, parts = stand_in(tmp_path)
    unpacked(model, parts, tmp_path / "cache")
    hashed: list[Path] = []
    real = models._sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(models, "_sha256", counting)
    unpacked(model, parts, tmp_path / "cache")
    assert hashed == []
    os.utime(unpacked(model, parts, tmp_path / "cache") / "config.json")  # touched only
    unpacked(model, parts, tmp_path / "cache")
    assert len(hashed) == len(FILES)  # hashed again, found the same, and trusted
    unpacked(model, parts, tmp_path / "cache")
    assert len(hashed) == len(FILES)


def test_a_missing_part_is_refused(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    with pytest.raises(ModelNotFound, match="part 1 is not installed"):
        part_files(model)  # no such packages
    with pytest.raises(ModelMismatch, match="do not join into a zip"):
        unpacked(model, [parts[0], parts[2]], tmp_path / "cache")


def test_two_first_starts_at_once_both_get_the_verified_folder(tmp_path: Path) -> None:
    model, parts = stand_in(tmp_path)
    found: list[Path] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            found.append(unpacked(model, parts, tmp_path / "cache"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    starts = [threading.Thread(target=start) for _ in range(4)]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    assert errors == []
    assert len(set(found)) == 1
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == [model.key]


def test_the_shipped_mpnet_pins_the_publishers_weights() -> None:
    assert MPNET.files["model.safetensors"] == (
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    )
    assert len(part_files(MPNET)) == 5


def test_the_cli_refuses_a_tampered_model_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cli_env: dict[str, str],
) -> None:
    model, parts = stand_in(tmp_path)
    pinned = PackagedModel(
        model.name, model.parts, model.folder, {**model.files, "config.json": "0" * 64}
    )
    monkeypatch.setattr(models, "MPNET", pinned)  # the stand-in, shipped as the default is
    monkeypatch.setattr(models, "part_files", lambda _model: parts)
    for key, value in {**cli_env, "MINERDESK_FAQ__MODEL": model.name}.items():
        monkeypatch.setenv(key, value)
    from bot.cli import main

    assert main(["faq", "ask", "where is my order"]) == 2
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 1, printed
    assert "config.json has SHA-256" in printed[0]
    assert "0" * 64 in printed[0]
