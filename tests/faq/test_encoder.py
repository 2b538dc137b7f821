"""The on-disk cache of phrasing vectors (a stand-in model: the cache is under test)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from faq.encoder import KEPT_EMBEDDINGS, Vectors, _CachedEncoder, keep_recent


class StandInModel(_CachedEncoder):
    """Encodes every text as the same vector, and records what it was asked to encode."""

    dim = 3

    def __init__(self, cache_dir: Path | None, model_id: str) -> None:
        self.model_id = model_id
        self.encoded: list[str] = []
        super().__init__(cache_dir)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        self.encoded.extend(texts)
        return np.ones((len(texts), self.dim), dtype=np.float32)


def stored_vectors(cache: Path) -> set[str]:
    return {path.name for path in cache.glob("embeddings-*.npz")}


def test_the_vectors_of_models_no_longer_used_are_dropped(tmp_path: Path) -> None:
    """A model's file counts as used when it is read, not only when it is written: a bot
    whose KB has not changed for months keeps its vectors when `faq train` adds a model."""
    cache = tmp_path / "cache"
    english = StandInModel(cache, "english")
    english.encode(["where is my order"])
    os.utime(cache / "embeddings-english.npz", (1_600_000_000, 1_600_000_000))  # the oldest
    retired = [f"embeddings-retired{number}.npz" for number in range(KEPT_EMBEDDINGS + 2)]
    for number, name in enumerate(retired):  # retired0 the oldest of them
        (cache / name).write_bytes(b"")
        os.utime(cache / name, (1_700_000_000 + number, 1_700_000_000 + number))

    restarted = StandInModel(cache, "english")
    restarted.encode(["where is my order"])  # read, nothing to encode
    StandInModel(cache, "multilingual").encode(["где мой заказ"])  # saved: the oldest go

    assert restarted.encoded == []
    newest_retired = retired[len(retired) - (KEPT_EMBEDDINGS - 2) :]
    assert stored_vectors(cache) == {
        "embeddings-english.npz",
        "embeddings-multilingual.npz",
        *newest_retired,
    }


def test_a_file_deleted_by_another_process_meanwhile_is_passed_over(tmp_path: Path) -> None:
    # A link to nothing is listed, then cannot be read: as a file deleted between the two.
    (tmp_path / "embeddings-gone.npz").symlink_to(tmp_path / "nowhere")
    for number in range(3):
        (tmp_path / f"embeddings-{number}.npz").write_bytes(b"")
        os.utime(tmp_path / f"embeddings-{number}.npz", (1_700_000_000 + number,) * 2)
    keep_recent(tmp_path, "embeddings-*.npz", 2)
    assert stored_vectors(tmp_path) == {
        "embeddings-gone.npz",  # the link, left as it was
        "embeddings-1.npz",
        "embeddings-2.npz",
    }


def test_a_cache_that_cannot_be_written_still_gives_the_vectors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    model = StandInModel(not_a_folder, "english")
    with caplog.at_level(logging.WARNING):
        vectors = model.encode(["where is my order", "when will it ship"])
    assert vectors.shape == (2, StandInModel.dim)
    assert "faq.cache_not_saved" in caplog.text
