"""`minerdesk faq train`: fine-tune the English sentence model on the KB's own phrasings.

Why: a frozen all-MiniLM-L6-v2 places two phrasings of one entry no nearer to each other than
it places many phrasings of different entries; a short contrastive fine-tune pulls each
entry's phrasings together and pushes the others apart, so the matcher ranks better and is
surer when a question belongs to no entry (BENCHMARKS.md, "Fine-tuned encoder").

The loss is supervised contrastive (Khosla et al. 2020) over batches of `ENTRIES_PER_BATCH`
entries x `PHRASINGS_PER_ENTRY` phrasings: in a batch, each phrasing's positives are the
other phrasings of its entry and everything else is a negative, so no negative is a hidden
positive. It runs on torch and sentence-transformers (CPU), which only this command imports.
The result is an ordinary sentence-transformers folder: the bot runs it on ONNX Runtime like
the shipped model, and without it the shipped model serves (at the lower figures).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faq.models import VERIFIED

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Written into the fine-tuned folder: what it was trained from, on what, and how.
RECORD = "minerdesk-train.json"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters, chosen by cross-validation on BANKING77's training data only."""

    epochs: int = 3
    learning_rate: float = 2e-5
    temperature: float = 0.05
    entries_per_batch: int = 16
    phrasings_per_entry: int = 4
    # Phrasings of an entry seen per epoch (a new sample each epoch): bounds the training
    # time of a big KB (BANKING77's full training set: 130 an entry) to minutes on a CPU.
    max_phrasings_per_epoch: int = 16
    warmup_share: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class TrainReport:
    phrasings: int
    entries: int
    steps: int
    seconds: float


def trained_from(folder: Path) -> str | None:
    """The `faq.model` setting a fine-tuned folder was trained from ("" for the shipped
    model), or None when `folder` holds no fine-tuned model."""
    try:
        return str(json.loads((folder / RECORD).read_text())["base"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fine_tune(
    base: str,
    phrasings: Mapping[str, list[str]],
    out: Path,
    config: TrainConfig | None = None,
    threads: int = 0,
) -> TrainReport:
    """Fine-tune the model `base` (a `faq.model` value: "" for the shipped model) on entry
    id -> phrasings and save it to `out`, replacing what was there only once complete."""
    import torch

    from faq.encoder import load_sentence_transformer, model_folder

    config = config or TrainConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    base_folder = model_folder(base)
    model = load_sentence_transformer(base_folder, base, threads or os.cpu_count() or 1)
    groups = [list(dict.fromkeys(texts)) for texts in phrasings.values()]
    groups = [texts for texts in groups if len(texts) >= 2]  # an only phrasing has no positive
    # One generator for every epoch, so each epoch deals a new sample in a new order.
    rng = random.Random(config.seed)
    epochs = [_batches(groups, config, rng) for _ in range(config.epochs)]
    steps = sum(map(len, epochs))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    warmup = max(1, int(steps * config.warmup_share))
    # Linear warm-up, then linear decay to zero.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))),
    )
    model.train()
    for batches in epochs:
        for texts, labels in batches:
            features = model.preprocess(texts)
            vectors = model(features)["sentence_embedding"]
            loss = _supervised_contrastive(vectors, torch.tensor(labels), config.temperature)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
    model.eval()
    seconds = time.perf_counter() - started
    report = TrainReport(sum(map(len, groups)), len(groups), steps, seconds)
    record = {"base": base, "config": asdict(config), "report": asdict(report)}
    _save(model, base_folder, out, record)
    logger.info(
        "faq.trained phrasings=%d entries=%d steps=%d seconds=%.0f out=%s",
        report.phrasings,
        report.entries,
        report.steps,
        report.seconds,
        out,
    )
    return report


def _save(model: Any, base_folder: Path | None, out: Path, record: dict[str, Any]) -> None:
    """Write the model beside `out`, then swap it in: a bot starting meanwhile reads the old
    model or the new one, never half of one.

    Only the weights changed, so a base folder is copied as it is (its layout and settings,
    the 256-token cut among them) with the new weights: sentence-transformers' own `save`
    writes a newer layout, with other defaults, that the ONNX runner does not read.
    """
    from safetensors.torch import save_file

    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if base_folder is None:  # a cached model name: no folder to copy
        model.save(str(partial))
    else:
        weights = shutil.ignore_patterns(
            "*.safetensors", "*.bin", ".git*", "onnx", "openvino", VERIFIED
        )
        shutil.copytree(base_folder, partial, ignore=weights)
        state = model[0].auto_model.state_dict()
        save_file(
            {name: tensor.contiguous() for name, tensor in state.items()},
            partial / "model.safetensors",
        )
    (partial / RECORD).write_text(json.dumps(record, indent=2))
    retired = out.with_name(f"{out.name}.{os.getpid()}.old")
    if out.exists():
        out.replace(retired)
    partial.replace(out)
    shutil.rmtree(retired, ignore_errors=True)


def _batches(
    groups: list[list[str]], config: TrainConfig, rng: random.Random
) -> list[tuple[list[str], list[int]]]:
    """One epoch: each phrasing (up to `max_phrasings_per_epoch` an entry) once, in batches
    of up to `entries_per_batch` entries with up to `phrasings_per_entry` phrasings each (an
    entry's phrasings are dealt in chunks)."""
    chunks: list[tuple[int, list[str]]] = []
    for label, texts in enumerate(groups):
        shuffled = rng.sample(texts, min(len(texts), config.max_phrasings_per_epoch))
        size = config.phrasings_per_entry
        count = max(1, math.ceil(len(shuffled) / size))
        # Even chunks of at least two, so every phrasing in a batch has a positive.
        for part in range(count):
            chunk = shuffled[part::count]
            if len(chunk) >= 2:
                chunks.append((label, chunk))
    rng.shuffle(chunks)
    batches: list[tuple[list[str], list[int]]] = []
    while chunks:
        taken: list[tuple[int, list[str]]] = []
        rest: list[tuple[int, list[str]]] = []
        seen: set[int] = set()
        for label, chunk in chunks:
            if len(taken) < config.entries_per_batch and label not in seen:
                taken.append((label, chunk))
                seen.add(label)
            else:
                rest.append((label, chunk))
        chunks = rest
        batches.append(
            (
                [text for _, chunk in taken for text in chunk],
                [label for label, chunk in taken for _ in chunk],
            )
        )
    return batches


def _supervised_contrastive(
    vectors: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over anchors of the mean -log softmax of its positives among all the others."""
    import torch
    import torch.nn.functional as functional

    unit = functional.normalize(vectors, dim=1)
    logits = unit @ unit.T / temperature
    itself = torch.eye(len(labels), dtype=torch.bool)
    logits = logits.masked_fill(itself, -1e9)
    positives = (labels[:, None] == labels[None, :]) & ~itself
    log_probability = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = (log_probability * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -per_anchor.mean()
