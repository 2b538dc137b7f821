"""Choose matcher hyper-parameters by cross-validation on training data only.

Usage: python benchmarks/cv_banking77.py DATASETS_DIR

Two KBs: BANKING77's 10-shot KB (first 10 training texts per category) and the shipped KB's
own phrasings (its alternates carry the typos and short forms customers use). Each is split
into 5 folds per entry; each fold's phrasings are asked against a matcher fitted on the rest.
Prints top-1 accuracy per lexical weight. No test file or held-out question is read.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.bench import phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Encoder  # noqa: E402
from faq.matcher import Matcher, MatcherConfig  # noqa: E402

FOLDS = 5
LEXICAL_WEIGHTS = (0.0, 0.05, 0.1, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    args = parser.parse_args()
    from bot.settings import CompanySettings, bundled_kb_path
    from faq.loader import load_kb

    encoder = Encoder(cache_dir=ROOT / "data" / "cache")
    banking = phrasings_by_category(read_examples(args.datasets / "banking77_train.csv"), shots=10)
    shipped = load_kb(bundled_kb_path(), CompanySettings().placeholders()).phrasings()
    for name, kb in (("banking77 10-shot", banking), ("shipped KB", shipped)):
        print(name)
        cross_validate(encoder, kb)


def cross_validate(encoder: Encoder, kb: dict[str, list[str]]) -> None:
    for weight in LEXICAL_WEIGHTS:
        config = dataclasses.replace(MatcherConfig(), lexical_weight=weight)
        right = asked = 0
        for fold in range(FOLDS):
            train = {c: [t for i, t in enumerate(ts) if i % FOLDS != fold] for c, ts in kb.items()}
            matcher = Matcher(encoder, train, config)
            for category, texts in kb.items():
                for text in texts[fold::FOLDS]:
                    best = matcher.rank(text, 1)
                    right += bool(best) and best[0].entry_id == category
                    asked += 1
        print(
            f"  lexical_weight={weight:<5} cv top-1 accuracy={right / asked:.4f} (n={asked})",
            flush=True,
        )


if __name__ == "__main__":
    main()
