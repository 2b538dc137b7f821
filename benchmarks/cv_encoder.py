"""Choose the English model's ONNX graph (float or which int8 quantisation) on training data.

Usage: python benchmarks/cv_encoder.py DATASETS_DIR [--model NAME] [--only VARIANT ...]

For each variant: cosine of its vectors to the float graph's over 300 BANKING77 training texts
(mean and min), p50/p99 of one short query's encoding, and top-1 accuracy of a 10-shot KB
(BANKING77's first 10 training texts per category, as `benchmarks/banking77.py` builds it)
asked the next 20 training texts of each category (1,540 questions). No test file is read.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.bench import phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Encoder  # noqa: E402
from faq.matcher import Matcher  # noqa: E402
from faq.onnx_runner import MPNET_QUANTISATION, Quantisation  # noqa: E402

SHOTS, ASKED = 10, 20
SENSITIVE = tuple(range(6, 11))  # the layers whose feed-forward products quantise worst


def _layers(part: str, layers: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"/layer.{layer}/{part}/" for layer in layers)


VARIANTS: dict[str, Quantisation | None] = {
    "fp32": None,
    "int8 per-tensor, all weight products": Quantisation(per_channel=False),
    "int8 per-channel, all weight products": Quantisation(),
    "int8 per-channel, FFN output kept fp32": Quantisation(keep=("/output/dense/",)),
    # The default.
    "int8 per-channel, FFN output of layers 6-10 kept fp32": MPNET_QUANTISATION,
    "int8 per-channel, FFN of layers 6-10 kept fp32": Quantisation(
        keep=_layers("output/dense", SENSITIVE) + _layers("intermediate/dense", SENSITIVE)
    ),
    "int8 per-channel, FFN output + FFN of layers 6-10 kept fp32": Quantisation(
        keep=("/output/dense/", *_layers("intermediate/dense", SENSITIVE))
    ),
    "int8 per-channel, FFN kept fp32": Quantisation(
        keep=("/output/dense/", "/intermediate/dense/")
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--model", default="all-mpnet-base-v2")
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    cache = ROOT / "data" / "cache"
    examples = read_examples(args.datasets / "banking77_train.csv")
    by_category: dict[str, list[str]] = {}
    for example in examples:
        by_category.setdefault(example.category, []).append(example.text)
    kb = phrasings_by_category(examples, shots=SHOTS)
    questions = [
        (text, category)
        for category, texts in by_category.items()
        for text in texts[SHOTS : SHOTS + ASKED]
    ]
    probes = [example.text for example in examples[::30]][:300]
    reference = Encoder(args.model, cache, quantisation=None).encode_queries(probes)
    print(f"model: {args.model}")
    print("| variant | cosine to fp32 mean / min | p50 ms | p99 ms | 10-shot top-1 (train CV) |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.only:
        encoder = Encoder(args.model, cache, quantisation=VARIANTS[name])
        cosines = np.sum(encoder.encode_queries(probes) * reference, axis=1)
        p50, p99 = _latency(encoder)
        matcher = Matcher(encoder, kb)
        right = 0
        for text, category in questions:
            best = matcher.rank(text, 1)
            right += bool(best) and best[0].entry_id == category
        print(
            f"| {name} | {cosines.mean():.4f} / {cosines.min():.4f} | {p50:.1f} | {p99:.1f} | "
            f"{right / len(questions):.4f} (n={len(questions)}) |",
            flush=True,
        )


def _latency(encoder: Encoder, runs: int = 300) -> tuple[float, float]:
    query = ["how long is the warranty on my s19 pro"]
    for _ in range(10):
        encoder.encode_queries(query)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        encoder.encode_queries(query)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


if __name__ == "__main__":
    main()
