"""`minerdesk faq bench`: answer quality and speed on a labelled train/test pair of CSV files."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faq.encoder import TextEncoder, Vectors
from faq.matcher import Decision, Match


@dataclass(frozen=True)
class Example:
    text: str
    category: str


def read_examples(path: Path) -> list[Example]:
    """Rows of a `text,category` CSV file, in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "category"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected the columns text,category")
        return [Example(row["text"], row["category"]) for row in reader]


def phrasings_by_category(
    examples: list[Example], shots: int | None = None, oos_label: str | None = None
) -> dict[str, list[str]]:
    """One KB entry per category, its first `shots` texts (all when None) as phrasings."""
    phrasings: dict[str, list[str]] = {}
    for example in examples:
        if example.category == oos_label:
            continue
        texts = phrasings.setdefault(example.category, [])
        if shots is None or len(texts) < shots:
            texts.append(example.text)
    return phrasings


def evaluate(
    match: Callable[[str], Match], test: list[Example], oos_label: str | None = None
) -> dict[str, float | int]:
    """Answer every test row one at a time; the figures `faq bench --json` prints."""
    in_scope = top_right = answered_right = oos = oos_held = answered = 0
    latencies = []
    for example in test:
        started = time.perf_counter()
        result = match(example.text)
        latencies.append((time.perf_counter() - started) * 1000)
        is_answer = result.decision is Decision.ANSWER
        answered += is_answer
        if example.category == oos_label:
            oos += 1
            oos_held += not is_answer
            continue
        in_scope += 1
        right = result.best is not None and result.best.entry_id == example.category
        top_right += right
        answered_right += right and is_answer
    return {
        "n": len(test),
        "accuracy": _share(top_right, in_scope),
        "in_scope_accuracy": _share(answered_right, in_scope),
        "oos_recall": _share(oos_held, oos),
        "answer_rate": _share(answered, len(test)),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if latencies else 0.0,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if latencies else 0.0,
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class QueriesCached:
    """An encoder whose query vectors go through its on-disk cache like phrasings', and that
    counts the queries it is asked to encode: for benchmarks, which ask the same labelled
    texts under many designs. Never for the bot (customers' questions are personal data)."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.model_id = encoder.model_id
        self.known_words = encoder.known_words
        # Query texts asked for, cached or not: what a live bot's model would have run on.
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self.encoder.encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        self.texts += len(texts)
        return self.encoder.encode(texts)
