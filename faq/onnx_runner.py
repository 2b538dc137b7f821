"""Sentence-transformers BERT and MPNet models (both shipped models, and their fine-tunes) run
on ONNX Runtime instead of torch.

Why: importing torch and sentence-transformers takes seconds of the bot's start, and ONNX
Runtime's fused kernels run a one-question batch several times faster (BENCHMARKS.md).

The graph comes from maintained tools only, once per model: `torch.onnx.export` of the model
as sentence-transformers loads it, with its pooling; ONNX Runtime's transformer optimiser
(`onnxruntime.transformers.optimizer`: fused layer norms, GELU and, where the pattern allows,
attention); and, for the 12-layer MPNet, ONNX Runtime's dynamic int8 quantisation of the
weight products (`Quantisation`). The export runs in a child process (torch, and the few GB
it takes for MPNet, stay out of the bot's), and its graph is stored in the model store, so
later starts only load it. A model folder of another shape returns None from
`OnnxModel.load` and is run by sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from faq.encoder import keep_recent, touch, write_atomically
from faq.models import ModelNotFound

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, np.dtype[np.float32]]
# Rows x tokens per forward pass: similar lengths together, so a pass pads little, and
# small enough that a pass's activations stay in the CPU's cache. A longer text goes alone.
TOKEN_BUDGET = 256
# Graphs kept in the model store, which every data folder on the machine shares: both
# shipped models, a fine-tune or two and a benchmark's variants, without re-exporting.
KEPT_GRAPHS = 6
# Part of a stored graph's name; bumped whenever `_export` builds a different graph.
GRAPH_VERSION = 2
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
# Architectures exported and checked against sentence-transformers (tests/faq/test_onnx.py);
# ONNX Runtime's optimiser fuses both with its BERT rules.
SUPPORTED = frozenset({"bert", "mpnet"})


@dataclass(frozen=True)
class Quantisation:
    """Dynamic int8 quantisation of the products with a weight matrix (per output channel:
    each has its own scale, or one per matrix), keeping in float those whose node names hold
    any of `keep`."""

    keep: tuple[str, ...] = ()
    per_channel: bool = True

    @property
    def tag(self) -> str:
        """Part of the stored graph's name."""
        kept = hashlib.sha256("|".join(self.keep).encode()).hexdigest()[:8]
        return f"int8{'c' if self.per_channel else 't'}-{kept}"


# MPNet keeps the feed-forward output product of layers 6-10 in float: its input, after the
# GELU, has outliers that one 8-bit scale per question cannot hold, and in these layers it
# moves the vectors most (docs/benchmarks-history.md: cosine to the float graph 0.99 with
# them kept, 0.88 without; accuracy the same).
MPNET_QUANTISATION = Quantisation(keep=tuple(f"/layer.{n}/output/dense/" for n in range(6, 11)))
# The recipe each architecture runs with by default (None: float, as exported and fused).
DEFAULT_QUANTISATION: dict[str, Quantisation | None] = {
    "bert": None,
    "mpnet": MPNET_QUANTISATION,
}


class OnnxModel:
    """A sentence-transformers model folder: text in, pooled (not normalised) vectors out."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        max_tokens: int,
        session: Any,
        variant: str,
    ) -> None:
        from tokenizers import Tokenizer

        self.dim = int(config["hidden_size"])
        # "" for a float graph (the same vectors as sentence-transformers, to 1e-6), else
        # what tells a quantised graph's vectors apart (the embedding cache keys them by it).
        self.variant = variant
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The file may carry fixed padding and a shorter cut: sentence-transformers ignores
        # both, and pads each pass to its longest text (so do we, in `_forward`).
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self._session = session
        self._inputs = {item.name: item.type for item in session.get_inputs()}
        # One encode at a time: each takes all the threads.
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        folder: Path,
        threads: int,
        store: Path | None = None,
        model_id: str = "",
        quantisation: Quantisation | Literal["default"] | None = "default",
    ) -> OnnxModel | None:
        """The model in `folder`, or None when it is not a BERT or MPNet model with mean or
        CLS pooling (sentence-transformers runs those). Its graph is stored in `store`,
        named by `model_id`, the graph version and the quantisation (`"default"`: the
        architecture's, `DEFAULT_QUANTISATION`; None: float)."""
        shape = _shape(folder)
        if shape is None:
            return None
        config, pooling, max_tokens = shape
        recipe = (
            DEFAULT_QUANTISATION[config["model_type"]]
            if quantisation == "default"
            else quantisation
        )
        tag = recipe.tag if recipe else "fp32"
        graph_file = (
            store / f"onnx-{model_id}-{GRAPH_VERSION}-{tag}.onnx"
            if store is not None and model_id
            else None
        )
        session = _session(folder, config, pooling, recipe, graph_file, threads)
        variant = f"{GRAPH_VERSION}-{tag}" if recipe else ""
        return cls(folder, config, max_tokens, session, variant)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.tokenizer.get_vocab())

    def encode(self, texts: Sequence[str]) -> Array:
        """Pooled vectors of `texts`, in order; shortest first in passes of similar length.

        A quantised graph scales its activations per pass, so there each text goes alone:
        a text's vector must not depend on the texts beside it (cached phrasings, and
        questions batched together, would otherwise get other answers than alone)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = [len(encoding.ids) for encoding in encodings]
        passes = [[row] for row in range(len(texts))] if self.variant else _passes(lengths)
        with self._lock:
            for rows in passes:
                vectors[rows] = self._forward([encodings[i] for i in rows])
        return vectors

    def _forward(self, encodings: Sequence[Any]) -> Array:
        count, length = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.zeros((count, length), dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        pooled: Array = self._session.run(["pooled"], feeds)[0]
        return pooled


def _shape(folder: Path) -> tuple[dict[str, Any], str, int] | None:
    """The model's config, pooling and token cut, or None when this module cannot run it."""
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
    weights = any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))
    if (
        config.get("model_type") not in SUPPORTED
        or not (folder / "tokenizer.json").is_file()
        or not weights
        or pooling is None
        or settings.get("do_lower_case")
    ):
        return None
    positions = int(config.get("max_position_embeddings") or 512)
    max_tokens = min(int(settings.get("max_seq_length") or 512), positions, 512)
    return config, pooling, max_tokens


def _session(
    folder: Path,
    config: dict[str, Any],
    pooling: str,
    recipe: Quantisation | None,
    graph_file: Path | None,
    threads: int,
) -> Any:
    """An ONNX Runtime session on the model's graph: the one stored in `graph_file` when it is
    there and readable, else one exported now (and stored there for the next start)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1

    def session(path: Path) -> Any:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    if graph_file is not None and graph_file.is_file():
        try:
            loaded = session(graph_file)
            touch(graph_file)
            return loaded
        except Exception as exc:  # ONNX Runtime's errors derive from Exception only
            logger.warning("faq.graph_unreadable path=%s error=%s", graph_file, exc)
    with tempfile.TemporaryDirectory(prefix="minerdesk-export-") as work:
        exported = Path(work) / "graph.onnx"
        _export(folder, config, pooling, recipe, threads, exported)
        if graph_file is None:
            return session(exported)
        try:
            # Through a file beside it, so a reader never sees half a graph.
            write_atomically(graph_file, lambda file: _copy(exported, file))
            keep_recent(graph_file.parent, "onnx-*.onnx", KEPT_GRAPHS)
        except OSError as exc:
            logger.warning("faq.graph_not_saved path=%s error=%s", graph_file, exc)
            return session(exported)
    return session(graph_file)


def _copy(source: Path, target: BinaryIO) -> None:
    with source.open("rb") as file:
        shutil.copyfileobj(file, target, 1 << 22)


def _export(
    folder: Path,
    config: dict[str, Any],
    pooling: str,
    recipe: Quantisation | None,
    threads: int,
    target: Path,
) -> None:
    """Write the model's graph to `target`, in a child process: torch, and the few GB an
    export of MPNet takes at its peak, never enter the bot's own."""
    started = time.perf_counter()
    job = {
        "folder": str(folder),
        "heads": int(config["num_attention_heads"]),
        "hidden": int(config["hidden_size"]),
        "pooling": pooling,
        "keep": list(recipe.keep) if recipe else None,
        "per_channel": bool(recipe and recipe.per_channel),
        "threads": threads,
        "target": str(target),
    }
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(  # noqa: S603 (this interpreter, this module, a job built here)
        [sys.executable, "-m", "faq.onnx_runner", json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode or not target.is_file():
        logger.error("faq.graph_export_failed folder=%s output=%s", folder, done.stderr)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelNotFound(f"faq.model: exporting {folder} to ONNX failed: {last}")
    logger.info(
        "faq.graph_exported folder=%s quantisation=%s seconds=%.1f",
        folder,
        recipe.tag if recipe else "fp32",
        time.perf_counter() - started,
    )


def _export_here(
    folder: str,
    heads: int,
    hidden: int,
    pooling: str,
    keep: list[str] | None,
    per_channel: bool,
    threads: int,
    target: str,
) -> None:
    """The export itself (`python -m faq.onnx_runner JOB`): the model and its pooling as one
    graph, weights inside, exported by torch, fused by ONNX Runtime's optimiser, quantised
    when `keep` is given. Inputs are (rows, tokens) int64 token ids and mask; the output,
    `pooled`, is (rows, hidden size)."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    from faq.encoder import load_sentence_transformer

    # Eager attention: the exported pattern is the one ONNX Runtime's fusions know.
    model = load_sentence_transformer(Path(folder), "", threads, attention="eager")
    pooled = _pooled(model[0].auto_model, pooling)
    example = model.tokenizer(["where is my order"], return_tensors="pt")
    axes = {0: "rows", 1: "tokens"}
    work = Path(target).parent
    exported, fused = work / "exported.onnx", work / "fused.onnx"
    with torch.inference_mode(), warnings.catch_warnings():
        # The TorchScript exporter (the one whose graphs the fusions match) says it is
        # deprecated in favour of the dynamo one.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pooled,
            (example["input_ids"], example["attention_mask"]),
            str(exported),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["pooled"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "pooled": {0: "rows"}},
            opset_version=17,
        )
    del model, pooled
    optimised = optimize_model(
        str(exported), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    exported.unlink()
    if keep is None:
        optimised.save_model_to_file(target)
        return
    optimised.save_model_to_file(str(fused))
    del optimised
    _quantise(fused, Path(target), Quantisation(tuple(keep), per_channel))
    fused.unlink()


def _quantise(source: Path, target: Path, recipe: Quantisation) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    products = [node for node in graph.node if node.op_type == "MatMul"]
    # Products of two activations (attention scores and their use) stay float: only weight
    # matrices have a fixed range to quantise.
    kept = [
        node.name
        for node in products
        if node.input[1] not in weights or any(part in node.name for part in recipe.keep)
    ]
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=recipe.per_channel,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=kept,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _pooled(transformer: Any, pooling: str) -> Any:
    """The transformer and sentence-transformers' pooling as one torch module."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            output = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
            hidden = output.last_hidden_state
            if pooling == "cls":
                return hidden[:, 0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return Pooled().eval()


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


if __name__ == "__main__":
    _export_here(**json.loads(sys.argv[1]))
