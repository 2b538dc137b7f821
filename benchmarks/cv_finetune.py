"""Does `faq train` help? Cross-validation of the fine-tune on BANKING77's training data only.

Usage: python benchmarks/cv_finetune.py DATASETS_DIR [--model NAME] [--folds 0,1,2,3,4]
    [KEY=VALUE ...]

The 10-shot KB (first 10 training texts per category) is split into 5 folds per entry as in
benchmarks/cv_banking77.py; for each fold, the model (`faq.model` value; default the shipped
default) is fine-tuned on the other phrasings only (faq/train.py, TrainConfig with the
KEY=VALUE overrides) and the held-out phrasings are asked against a matcher on the frozen
model and on the fine-tuned one. Prints top-1 accuracy per fold and in all, and the CPU time
of each fine-tune. No test file is read.

Both models are run by sentence-transformers on torch in float (a fine-tune's ONNX export
would take a minute and gigabytes per fold); the bot runs them on ONNX Runtime, int8 for
MPNet, whose vectors are within noise of these (BENCHMARKS.md, "English encoder").
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.bench import phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Vectors, load_sentence_transformer, model_folder  # noqa: E402
from faq.matcher import Matcher  # noqa: E402
from faq.train import TrainConfig, fine_tune  # noqa: E402

FOLDS = 5


class TorchEncoder:
    """A sentence-transformers model on torch, as a matcher's encoder (no cache)."""

    def __init__(self, model: str, threads: int) -> None:
        self._model = load_sentence_transformer(model_folder(model), model, threads)
        self.model_id = model or "default"
        self.known_words = frozenset(
            word for word in self._model.tokenizer.get_vocab() if word.isascii() and word.isalpha()
        )

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors: Vectors = self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self.encode(texts)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--model", default="", help="faq.model value (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    defaults = TrainConfig()
    changes = {}
    for override in args.overrides:
        key, value = override.split("=", 1)
        changes[key] = type(getattr(defaults, key))(value)
    config = dataclasses.replace(defaults, **changes)
    print(config)
    kb = phrasings_by_category(read_examples(args.datasets / "banking77_train.csv"), shots=10)
    frozen = TorchEncoder(args.model, args.threads)
    totals = {"frozen": [0, 0], "fine-tuned": [0, 0]}
    for fold in (int(f) for f in args.folds.split(",")):
        train = {c: [t for i, t in enumerate(ts) if i % FOLDS != fold] for c, ts in kb.items()}
        asked = [(c, t) for c, ts in kb.items() for t in ts[fold::FOLDS]]
        with tempfile.TemporaryDirectory() as folder:
            started = cpu_seconds()
            report = fine_tune(args.model, train, Path(folder) / "model", config, args.threads)
            cpu = cpu_seconds() - started
            tuned = TorchEncoder(str(Path(folder) / "model"), args.threads)
            for name, encoder in (("frozen", frozen), ("fine-tuned", tuned)):
                matcher = Matcher(encoder, train)
                right = sum(matcher.rank(text, 1)[0].entry_id == c for c, text in asked)
                totals[name][0] += right
                totals[name][1] += len(asked)
                print(
                    f"fold {fold} {name:>10}: top-1 {right / len(asked):.4f} "
                    f"(fine-tune {report.seconds:.0f} s wall, {cpu:.0f} s CPU, "
                    f"{report.steps} steps)",
                    flush=True,
                )
    for name, (right, asked) in totals.items():
        print(f"all folds {name:>10}: top-1 {right / asked:.4f} (n={asked})")


if __name__ == "__main__":
    main()
