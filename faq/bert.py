"""BERT sentence models (all-MiniLM-L6-v2 and its kin) run on ONNX Runtime instead of torch.

Why: importing torch and sentence-transformers takes 3.5 s of the bot's start, against well
under a second for this; and a single query encodes about twice as fast as on numpy or torch
(p50 5.5 against 13 ms on the 2-core machine, BENCHMARKS.md): ONNX Runtime's fused attention,
layer-norm and GELU kernels, and its small-matrix products, are what a one-question batch
needs. The vectors agree with sentence-transformers' to within 1e-6
(tests/faq/test_bert.py), so cached vectors stay valid either way.

Only what sentence-transformers does for such a model is done here: the tokenizer's
`tokenizer.json`, the BERT encoder, mean or CLS pooling. The graph is built from the folder's
`model.safetensors` (`_graph`), once per model: it is stored in the cache folder, so later
starts neither build it nor import the `onnx` package (1.2 s). A model folder of any other
shape returns None from `OnnxBert.load` and is run by sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faq.encoder import keep_recent, touch, write_atomically

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[np.float32]]
# Rows x tokens per forward pass: similar lengths together, so a pass pads little, and
# small enough that a pass's activations stay in the CPU's cache. A longer text goes alone.
TOKEN_BUDGET = 256
# Graphs kept in the cache folder: each `faq train` makes a new model, and each graph holds
# the whole model (90 MB for all-MiniLM-L6-v2).
KEPT_GRAPHS = 3
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class OnnxBert:
    """A sentence-transformers BERT model folder: text in, pooled (not normalised) vectors out."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        pooling: str,
        max_tokens: int,
        threads: int,
        graph_file: Path | None,
    ) -> None:
        from tokenizers import Tokenizer

        self.dim = int(config["hidden_size"])
        self.pooling = pooling
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The file may carry fixed padding and a shorter cut: sentence-transformers ignores
        # both, and pads each pass to its longest text (so do we, in `_forward`).
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self._session = _session(folder, config, pooling, graph_file, threads)
        # One encode at a time: each takes all `threads`.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, threads: int, graph_file: Path | None = None) -> OnnxBert | None:
        """The model in `folder`, or None when it is not a BERT model with mean or CLS
        pooling (sentence-transformers runs those). Its graph is stored in `graph_file`."""
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
        return cls(folder, config, pooling, max_tokens, threads, graph_file)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.tokenizer.get_vocab())

    def encode(self, texts: Sequence[str]) -> Array:
        """Pooled vectors of `texts`, in order; shortest first in passes of similar length."""
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for rows in _passes([len(encoding.ids) for encoding in encodings]):
                vectors[rows] = self._forward([encodings[i] for i in rows])
        return vectors

    def _forward(self, encodings: Sequence[Any]) -> Array:
        count, length = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.zeros((count, length), dtype=np.int64)
        types = np.zeros((count, length), dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.int32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            types[row, : len(encoding.ids)] = encoding.type_ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
        pooled: Array = self._session.run(["pooled"], feeds)[0]
        return pooled


def _session(
    folder: Path, config: dict[str, Any], pooling: str, graph_file: Path | None, threads: int
) -> Any:
    """An ONNX Runtime session on the model's graph: the one stored in `graph_file` when it is
    there and readable, else one built now (and stored there for the next start)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    def session(model: bytes | str) -> Any:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    if graph_file is not None and graph_file.is_file():
        try:
            loaded = session(str(graph_file))
            touch(graph_file)
            return loaded
        except Exception as exc:  # ONNX Runtime's errors derive from Exception only
            logger.warning("faq.graph_unreadable path=%s error=%s", graph_file, exc)
    graph = _graph(folder, config, pooling)
    if graph_file is not None:
        try:
            write_atomically(graph_file, lambda file: file.write(graph))
            keep_recent(graph_file.parent, "bert-*.onnx", KEPT_GRAPHS)
        except OSError as exc:
            logger.warning("faq.graph_not_saved path=%s error=%s", graph_file, exc)
    return session(graph)


def _graph(folder: Path, config: dict[str, Any], pooling: str) -> bytes:
    """The BERT encoder and its pooling as a serialised ONNX model, weights inside.

    Post-norm BERT as in the `transformers` code, with ONNX Runtime's fused operators
    (com.microsoft Attention, SkipLayerNormalization, BiasGelu: exact erf GELU). Inputs are
    (rows, tokens) token ids, token types and an int32 mask; the output, `pooled`, is
    (rows, hidden size).
    """
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    weights = {
        name.removeprefix("bert."): tensor.astype(np.float32, copy=False)
        for name, tensor in load_file(str(folder / "model.safetensors")).items()
    }
    dim, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    epsilon = float(config["layer_norm_eps"])
    initializers: list[Any] = []
    nodes: list[Any] = []

    def constant(name: str, value: Any) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], output: str = "", **attributes: Any) -> str:
        output = output or f"{kind}_{len(nodes)}"
        domain = "" if kind in _STANDARD_OPS else "com.microsoft"
        nodes.append(helper.make_node(kind, inputs, [output], domain=domain, **attributes))
        return output

    def tensor(name: str) -> str:
        return constant(name, weights[name])

    def matrix(name: str) -> str:
        # Stored as (out, in); products here are rows @ (in, out).
        return constant(name, np.ascontiguousarray(weights[name].T))

    def norm(prefix: str) -> list[str]:
        return [tensor(f"{prefix}.weight"), tensor(f"{prefix}.bias")]

    def dense_add_norm(x: str, residual: str, prefix: str) -> str:
        """layer_norm(x @ dense + bias + residual), as one fused operator after the product."""
        return op(
            "SkipLayerNormalization",
            [
                op("MatMul", [x, matrix(f"{prefix}.dense.weight")]),
                residual,
                *norm(f"{prefix}.LayerNorm"),
                tensor(f"{prefix}.dense.bias"),
            ],
            epsilon=epsilon,
        )

    shape = op("Shape", ["input_ids"])
    length = op("Gather", [shape, constant("axis_one", np.array(1, np.int64))], axis=0)
    positions = op(
        "Range",
        [constant("zero", np.array(0, np.int64)), length, constant("one", np.array(1, np.int64))],
    )

    def embedding(table: str, indices: str) -> str:
        return op("Gather", [tensor(f"embeddings.{table}.weight"), indices])

    embedded = op(
        "Add",
        [
            op(
                "Add",
                [
                    embedding("word_embeddings", "input_ids"),
                    embedding("position_embeddings", positions),
                ],
            ),
            embedding("token_type_embeddings", "token_type_ids"),
        ],
    )
    hidden = op(
        "LayerNormalization",
        [embedded, *norm("embeddings.LayerNorm")],
        axis=-1,
        epsilon=epsilon,
    )
    for layer in range(int(config["num_hidden_layers"])):
        prefix = f"encoder.layer.{layer}."
        parts = [f"{prefix}attention.self.{part}" for part in ("query", "key", "value")]
        qkv = constant(
            f"{prefix}qkv.weight",
            np.concatenate([weights[f"{part}.weight"].T for part in parts], axis=1),
        )
        qkv_bias = constant(
            f"{prefix}qkv.bias", np.concatenate([weights[f"{part}.bias"] for part in parts])
        )
        # Padding gets no attention: the operator reads the int32 mask itself.
        context = op("Attention", [hidden, qkv, qkv_bias, "attention_mask"], num_heads=heads)
        hidden = dense_add_norm(context, hidden, f"{prefix}attention.output")
        inner = op(
            "BiasGelu",
            [
                op("MatMul", [hidden, matrix(f"{prefix}intermediate.dense.weight")]),
                tensor(f"{prefix}intermediate.dense.bias"),
            ],
        )
        hidden = dense_add_norm(inner, hidden, f"{prefix}output")
    if pooling == "cls":
        first = op("Gather", [hidden, constant("token_zero", np.array(0, np.int64))], axis=1)
        op("Identity", [first], "pooled")
    else:
        mask = op(
            "Unsqueeze",
            [
                op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                constant("last", np.array([-1], np.int64)),
            ],
        )
        tokens_axis = constant("tokens_axis", np.array([1], np.int64))
        summed = op("ReduceSum", [op("Mul", [hidden, mask]), tokens_axis], keepdims=0)
        counted = op("ReduceSum", [mask, tokens_axis], keepdims=0)
        counted = op("Max", [counted, constant("tiny", np.array(1e-9, np.float32))])
        op("Div", [summed, counted], "pooled")
    inputs = [
        helper.make_tensor_value_info(name, kind, ["rows", "tokens"])
        for name, kind in (
            ("input_ids", TensorProto.INT64),
            ("token_type_ids", TensorProto.INT64),
            ("attention_mask", TensorProto.INT32),
        )
    ]
    output = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["rows", dim])
    model = helper.make_model(
        helper.make_graph(nodes, "sentence_bert", inputs, [output], initializers),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        # IR 8: read by every ONNX Runtime since 1.14.
        ir_version=8,
    )
    serialised: bytes = model.SerializeToString()
    return serialised


_STANDARD_OPS = frozenset(
    {
        "Add",
        "Cast",
        "Div",
        "Gather",
        "Identity",
        "LayerNormalization",
        "MatMul",
        "Max",
        "Mul",
        "Range",
        "ReduceSum",
        "Shape",
        "Unsqueeze",
    }
)


# Part of a stored graph's name; bumped whenever `_graph` builds a different graph.
GRAPH_VERSION = 1


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


def _pooling_mode(config: dict[str, Any]) -> str | None:
    modes = {name for name, on in config.items() if name.startswith("pooling_mode_") and on}
    return {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
        modes.pop() if len(modes) == 1 else ""
    )


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}
