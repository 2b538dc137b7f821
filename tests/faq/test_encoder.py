"""The on-disk cache of phrasing vectors."""

from __future__ import annotations

import os
from pathlib import Path

from faq.encoder import KEPT_EMBEDDINGS, Encoder, UniversalEncoder


def stored_vectors(cache: Path) -> set[str]:
    return {path.name for path in cache.glob("embeddings-*.npz")}


def test_the_vectors_of_models_no_longer_used_are_dropped(tmp_path: Path) -> None:
    """A model's file counts as used when it is read, not only when it is written: a bot
    whose KB has not changed for months keeps its vectors when `faq train` adds a model."""
    cache = tmp_path / "cache"
    english = Encoder(cache_dir=cache)
    english.encode(["where is my order"])
    [own] = stored_vectors(cache)
    os.utime(cache / own, (1_600_000_000, 1_600_000_000))  # older than every model below
    others = [f"embeddings-retired{number}.npz" for number in range(KEPT_EMBEDDINGS + 2)]
    for number, name in enumerate(others):  # retired0 the oldest
        (cache / name).write_bytes(b"")
        os.utime(cache / name, (1_700_000_000 + number, 1_700_000_000 + number))

    english.encode(["where is my order"])  # a restart: read, nothing to encode
    multilingual = UniversalEncoder(cache_dir=cache)
    multilingual.encode(["где мой заказ"])  # another model saves its vectors

    newest_others = others[len(others) - (KEPT_EMBEDDINGS - 2) :]
    kept = {own, f"embeddings-{multilingual.model_id}.npz", *newest_others}
    assert stored_vectors(cache) == kept
