"""BERT sentence models (all-MiniLM-L6-v2 and its kin) run with numpy instead of torch.

Why: importing torch and sentence-transformers takes 3.5 s of the bot's start, against 0.2 s
to load this; and it encodes a single query faster (p50 8.7 against 10.8 ms on the 2-core
machine, a dozen tokens), batches too (BENCHMARKS.md). The vectors agree with
sentence-transformers' to within 1e-6 (tests/faq/test_bert.py), so cached vectors stay valid
either way.

Only what sentence-transformers does for such a model is done here: the tokenizer's
`tokenizer.json`, the BERT encoder, mean or CLS pooling. A model folder of any other shape
returns None from `NumpyBert.load` and is run by sentence-transformers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

Array = np.ndarray[Any, np.dtype[np.float32]]
# Rows x tokens per forward pass. Small enough that a pass's activations stay in the CPU's
# cache (256 x 1,536 floats: 1.5 MB): passes of 4,096 ran twice slower per text on the
# 2-core machine, passes of 128-256 fastest. A longer text goes alone.
TOKEN_BUDGET = 256
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class NumpyBert:
    """A sentence-transformers BERT model folder: text in, pooled (not normalised) vectors out."""

    def __init__(
        self, folder: Path, config: dict[str, Any], pooling: str, max_tokens: int, threads: int
    ) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.epsilon = float(config["layer_norm_eps"])
        self.pooling = pooling
        _keep_freed_memory()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The file may carry fixed padding and a shorter cut: sentence-transformers ignores
        # both, and pads each batch to its longest text (so do we, in `_forward`).
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        weights = {
            name.removeprefix("bert."): tensor.astype(np.float32, copy=False)
            for name, tensor in load_file(str(folder / "model.safetensors")).items()
        }
        self.word = weights["embeddings.word_embeddings.weight"]
        self.position = weights["embeddings.position_embeddings.weight"]
        self.token_type = weights["embeddings.token_type_embeddings.weight"]
        self.embedding_norm = _norm(weights, "embeddings.LayerNorm")
        layers = range(config["num_hidden_layers"])
        self.layers = [_Layer(weights, f"encoder.layer.{i}.") for i in layers]
        # The process keeps BLAS on one thread (the matcher's products are small); the
        # model's are not, and take `threads` while it runs, one encode at a time.
        self.threads = threads
        self._blas = ThreadpoolController()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, threads: int) -> NumpyBert | None:
        """The model in `folder`, or None when it is not a BERT model with mean or CLS
        pooling (sentence-transformers runs those)."""
        try:
            modules = json.loads((folder / "modules.json").read_text())
            config = json.loads((folder / "config.json").read_text())
            types = [module["type"] for module in modules]
            if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
                return None
            if modules[0]["path"] != "":
                return None
            pooling = _pooling_mode(_read_json(folder / modules[1]["path"] / "config.json"))
            settings = _read_json(folder / "sentence_bert_config.json")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        plain_bert = (
            config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
        )
        files = all((folder / name).is_file() for name in ("tokenizer.json", "model.safetensors"))
        if not (plain_bert and files and pooling) or settings.get("do_lower_case"):
            return None
        max_tokens = min(
            int(settings.get("max_seq_length") or config["max_position_embeddings"]),
            int(config["max_position_embeddings"]),
        )
        return cls(folder, config, pooling, max_tokens, threads)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.tokenizer.get_vocab())

    def encode(self, texts: Sequence[str]) -> Array:
        """Pooled vectors of `texts`, in order; shortest first in passes of similar length."""
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock, self._blas.limit(limits=self.threads, user_api="blas"):
            for rows in _passes([len(encoding.ids) for encoding in encodings]):
                vectors[rows] = self._forward([encodings[i] for i in rows])
        return vectors

    def _forward(self, encodings: Sequence[Any]) -> Array:
        count, length = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.zeros((count, length), dtype=np.int64)
        types = np.zeros((count, length), dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            types[row, : len(encoding.ids)] = encoding.type_ids
            mask[row, : len(encoding.ids)] = 1.0
        hidden = self.word[ids] + self.position[:length] + self.token_type[types]
        hidden = _layer_norm(hidden, *self.embedding_norm, self.epsilon)
        # Padding gets no attention: a large negative logit before the softmax.
        padding = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in self.layers:
            hidden = layer.forward(hidden, padding, self.heads, self.epsilon)
        if self.pooling == "cls":
            pooled: Array = hidden[:, 0]
            return pooled
        summed = (hidden * mask[..., None]).sum(axis=1)
        mean: Array = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return mean


class _Layer:
    """One transformer block: self-attention, then the feed-forward part, each with a
    residual connection and layer norm (post-norm, as BERT)."""

    def __init__(self, weights: dict[str, Array], prefix: str) -> None:
        attention = prefix + "attention."

        def dense(name: str) -> tuple[Array, Array]:
            # Stored as (out, in); transposed once so every product is rows @ (in, out).
            return (
                np.ascontiguousarray(weights[f"{name}.weight"].T),
                weights[f"{name}.bias"],
            )

        projections = [dense(f"{attention}self.{part}") for part in ("query", "key", "value")]
        # Query, key and value in one product.
        self.qkv = np.ascontiguousarray(np.concatenate([w for w, _ in projections], axis=1))
        self.qkv_bias = np.concatenate([b for _, b in projections])
        self.attention_out = dense(f"{attention}output.dense")
        self.attention_norm = _norm(weights, f"{attention}output.LayerNorm")
        self.intermediate = dense(f"{prefix}intermediate.dense")
        self.output = dense(f"{prefix}output.dense")
        self.output_norm = _norm(weights, f"{prefix}output.LayerNorm")

    def forward(self, hidden: Array, padding: Array, heads: int, epsilon: float) -> Array:
        count, length, dim = hidden.shape
        size = dim // heads
        flat = hidden.reshape(count * length, dim)  # one matrix product for the whole batch
        qkv = (flat @ self.qkv + self.qkv_bias).reshape(count, length, 3, heads, size)
        query = qkv[:, :, 0].transpose(0, 2, 1, 3)
        key = qkv[:, :, 1].transpose(0, 2, 3, 1)
        value = qkv[:, :, 2].transpose(0, 2, 1, 3)
        logits = query @ key / np.float32(math.sqrt(size)) + padding
        logits -= logits.max(axis=-1, keepdims=True)
        attention = np.exp(logits)
        attention /= attention.sum(axis=-1, keepdims=True)
        context = (attention @ value).transpose(0, 2, 1, 3).reshape(count * length, dim)
        weight, bias = self.attention_out
        flat = _layer_norm(context @ weight + bias + flat, *self.attention_norm, epsilon)
        weight, bias = self.intermediate
        inner = _gelu(flat @ weight + bias)
        weight, bias = self.output
        flat = _layer_norm(inner @ weight + bias + flat, *self.output_norm, epsilon)
        result: Array = flat.reshape(count, length, dim)
        return result


def _passes(lengths: Sequence[int]) -> Iterator[list[int]]:
    """Row numbers by pass: shortest first, each pass within `TOKEN_BUDGET` once padded to
    its longest row (a longer row goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    rows: list[int] = []
    for index in order:
        # Sorted by length, so the row joining is the pass's longest.
        if rows and (len(rows) + 1) * lengths[index] > TOKEN_BUDGET:
            yield rows
            rows = []
        rows.append(index)
    if rows:
        yield rows


def _keep_freed_memory() -> None:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse (process-wide).

    A pass allocates temporaries of a few MB. By default glibc returns such blocks to the
    system and its threshold for doing so moves with what the process freed last (the USE
    model's first call moves it), so the same batch took 1.6 or 3.3 ms per text depending
    on what ran before: every temporary started as fresh pages. A fixed threshold keeps it
    at the fast figure. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def _pooling_mode(config: dict[str, Any]) -> str | None:
    modes = {name for name, on in config.items() if name.startswith("pooling_mode_") and on}
    return {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
        modes.pop() if len(modes) == 1 else ""
    )


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _norm(weights: dict[str, Array], name: str) -> tuple[Array, Array]:
    return weights[f"{name}.weight"], weights[f"{name}.bias"]


def _layer_norm(x: Array, gain: Array, bias: Array, epsilon: float) -> Array:
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    result: Array = centred / np.sqrt(variance + epsilon) * gain + bias
    return result


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x·Φ(x), with erf to 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy
    has no erf, and scipy's is slower than this on float32. In place where it can be: on a
    batch these passes over memory cost as much as the matrix products."""
    z = np.abs(x)
    z *= np.float32(1 / math.sqrt(2))
    # Past 4, erf is 1 in float32, and exp(-z²) would go subnormal (slow arithmetic).
    np.minimum(z, np.float32(4), out=z)
    t = z * np.float32(0.3275911)
    t += np.float32(1)
    np.reciprocal(t, out=t)
    tail = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        tail += np.float32(coefficient)
        tail *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z
    # tail is now 2·(1 - Φ(|x|)); Φ(x) = 1/2 + sign(x)·(1/2 - (1 - Φ(|x|))), no branch.
    np.subtract(np.float32(0.5), tail * np.float32(0.5), out=tail)
    np.copysign(tail, x, out=tail)
    tail += np.float32(0.5)
    tail *= x
    return tail
