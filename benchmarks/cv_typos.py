"""Does the matcher survive typos and chatty questions? Cross-validation on training data only.

Usage: python benchmarks/cv_typos.py DATASETS_DIR [--seeds N]

Two KBs: the shipped KB's English phrasings and BANKING77's 10-shot KB. In each of 5 folds a
fifth of the entries is removed (their phrasings play questions nobody wrote an entry for)
and a fifth of every other entry's phrasings is held out and asked three ways: as written,
with one or two typos added (a letter dropped, added, replaced or two swapped, in words of 4
letters or more), and wrapped in chatter ("hello, ... thanks in advance!"). Printed per
matcher design: top-1 accuracy, answered right, answered wrong, unknown questions answered.
No test file or held-out customer question is read.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import string
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.bench import phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Encoder  # noqa: E402
from faq.matcher import Decision, LongMessages, Matcher, MatcherConfig  # noqa: E402

FOLDS = 5
GREETINGS = (
    "hi there, hope you are doing well.",
    "hello, I bought some machines from your company last month and I have a question.",
    "good morning team,",
    "sorry to bother you again but",
    "I run a small farm with about 40 units in a container, quick question:",
    "hey, I already asked your colleague yesterday but got no reply.",
)
SIGN_OFFS = (
    "thanks in advance!",
    "please reply asap, it is urgent.",
    "thank you very much for your help.",
    "my english is not so good sorry",
    "let me know please",
    "cheers",
)
Variant = Callable[[str, random.Random], str]


def as_written(text: str, rng: random.Random) -> str:
    return text


def with_typos(text: str, rng: random.Random) -> str:
    words = text.split()
    long_words = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    for i in rng.sample(long_words, min(len(long_words), rng.choice((1, 2)))):
        letters, at = list(words[i]), rng.randrange(1, len(words[i]))
        edit = rng.choice(("drop", "add", "replace", "swap"))
        if edit == "drop":
            del letters[at]
        elif edit == "add":
            letters.insert(at, rng.choice(string.ascii_lowercase))
        elif edit == "replace":
            letters[at] = rng.choice(string.ascii_lowercase)
        elif at < len(letters) - 1:
            letters[at], letters[at + 1] = letters[at + 1], letters[at]
        words[i] = "".join(letters)
    return " ".join(words)


def in_chatter(text: str, rng: random.Random) -> str:
    return f"{rng.choice(GREETINGS)} {text[:1].lower()}{text[1:]} {rng.choice(SIGN_OFFS)}"


VARIANTS: dict[str, Variant] = {
    "as written": as_written,
    "typos": with_typos,
    "chatter": in_chatter,
}


def cross_validate(
    encoder: Encoder, kb: dict[str, list[str]], config: MatcherConfig, seed: int
) -> dict[str, float]:
    rng, entry_rng = random.Random(seed), np.random.default_rng(seed)
    entry_fold = dict(zip(kb, entry_rng.permutation(len(kb)) % FOLDS, strict=True))
    counts = {name: np.zeros(4) for name in VARIANTS}  # asked, top-1 right, answered right/wrong
    unknown_asked = unknown_answered = 0
    for fold in range(FOLDS):
        training = {
            entry: [text for i, text in enumerate(texts) if i % FOLDS != fold]
            for entry, texts in kb.items()
            if entry_fold[entry] != fold
        }
        matcher = Matcher(encoder, training, config)
        held_out = [
            (entry, text)
            for entry, texts in kb.items()
            if entry_fold[entry] != fold
            for text in texts[fold::FOLDS]
        ]
        for name, variant in VARIANTS.items():
            asked = [variant(text, rng) for _, text in held_out]
            for (entry, _), match in zip(held_out, matcher.match_many(asked), strict=True):
                right = match.best is not None and match.best.entry_id == entry
                answered = match.decision is Decision.ANSWER
                counts[name] += (1, right, answered and right, answered and not right)
        unknown = [
            text for entry, texts in kb.items() if entry_fold[entry] == fold for text in texts
        ]
        unknown_asked += len(unknown)
        unknown_answered += sum(m.decision is Decision.ANSWER for m in matcher.match_many(unknown))
    figures = {"unknown answered": unknown_answered / unknown_asked}
    for name, (asked, top1, right, wrong) in counts.items():
        figures |= {
            f"{name} top-1": top1 / asked,
            f"{name} right": right / asked,
            f"{name} wrong": wrong / asked,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    from bot.settings import CompanySettings, bundled_kb_path
    from faq.loader import load_kb

    encoder = Encoder(cache_dir=ROOT / "data" / "cache")
    kbs = {
        "shipped KB": load_kb(bundled_kb_path(), CompanySettings().placeholders()).phrasings(),
        "BANKING77 10-shot": phrasings_by_category(
            read_examples(args.datasets / "banking77_train.csv"), shots=10
        ),
    }
    before = dataclasses.replace(MatcherConfig(), head_weight=0.7, long_messages=LongMessages.WHOLE)
    designs = {
        "without the speller": dataclasses.replace(before, correct_typos=False),
        "speller, head weight 0.7 (shipped to 2026-12-02)": before,
        "+ head weight chosen per KB": dataclasses.replace(before, head_weight=None),
        "+ question sentence backs long messages (shipped)": MatcherConfig(),
    }
    columns = [f"{v} {m}" for v in VARIANTS for m in ("top-1", "right", "wrong")]
    print("| KB | design | " + " | ".join(columns) + " | unknown answered |")
    print("| --- | --- | " + " | ".join("---" for _ in columns) + " | --- |")
    for kb_name, kb in kbs.items():
        for design, config in designs.items():
            runs = [cross_validate(encoder, kb, config, seed) for seed in range(args.seeds)]
            mean = {key: np.mean([run[key] for run in runs]) for key in runs[0]}
            cells = " | ".join(f"{mean[c]:.3f}" for c in [*columns, "unknown answered"])
            print(f"| {kb_name} | {design} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
