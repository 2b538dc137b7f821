"""What do the KB's off-topic phrasings buy, and cost? On training and development data only.

Usage: python benchmarks/cv_off_topic.py [--seeds N] [--margins M1,M2,...]

1. Cross-validation on the KB itself.
The shipped KB's English phrasings and its Latin-script off-topic phrasings
(faq/kb/off_topic.yaml). In each of 5 folds a fifth of the entries is removed (their phrasings
play in-domain questions nobody wrote an entry for), a fifth of every other entry's phrasings
is held out (customers' questions, asked as written and wrapped in chatter), and a fifth of
the off-topic phrasings is held out (off-topic questions). The matcher is fitted on the rest,
with and without the off-topic class. Printed: in-scope questions answered right and wrong,
removed entries' questions answered, off-topic questions answered. No test file or held-out
customer question is read. The off-topic phrasings held out were written with the others, by
the same hand, so this flatters them.

2. The development questions (tests/data/dev_questions.yaml: 512 questions in English, Russian
and Chinese, in scope with their entry or out of scope, written in three batches by hands that
saw neither the off-topic phrasings nor the held-out questions; the third is out-of-scope
questions next to an entry), asked to the shipped KB's matcher
of their language with and without the off-topic phrasings. Designs are chosen on these two;
the held-out check (benchmarks/shipped_kb.py) is the independent one.

`--margins`: instead of with and without, the off-topic rule's margin (`off_topic_margin`: an
off-topic phrasing catches a question when its cosine exceeds the nearest entry phrasing's plus
the margin), both parts, English development questions only, each with the score designs are
chosen by: missed + 2 x wrong (shares of the in-scope questions, as written and in chatter
pooled) + answered (share of the out-of-scope ones, removed entries' and off-topic pooled).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cv_typos import in_chatter  # noqa: E402
from faq.encoder import Encoder, TextEncoder, UniversalEncoder  # noqa: E402
from faq.loader import KnowledgeBase  # noqa: E402
from faq.matcher import Decision, Matcher, MatcherConfig  # noqa: E402

FOLDS = 5
DEV_QUESTIONS = ROOT / "tests" / "data" / "dev_questions.yaml"


def cross_validate(
    encoder: Encoder,
    kb: dict[str, list[str]],
    off_topic: list[str],
    use_off_topic: bool,
    seed: int,
    config: MatcherConfig | None = None,
) -> dict[str, float]:
    rng, fold_rng = random.Random(seed), np.random.default_rng(seed)
    entry_fold = dict(zip(kb, fold_rng.permutation(len(kb)) % FOLDS, strict=True))
    off_topic_fold = fold_rng.permutation(len(off_topic)) % FOLDS
    asked = dict.fromkeys(("in scope", "in chatter", "removed", "off topic"), 0)
    right = dict.fromkeys(("in scope", "in chatter"), 0)
    answered = dict.fromkeys(asked, 0)
    for fold in range(FOLDS):
        training = {
            entry: [text for i, text in enumerate(texts) if i % FOLDS != fold]
            for entry, texts in kb.items()
            if entry_fold[entry] != fold
        }
        held_out_off_topic = [
            text for text, f in zip(off_topic, off_topic_fold, strict=True) if f == fold
        ]
        kept_off_topic = [text for text in off_topic if text not in held_out_off_topic]
        matcher = Matcher(
            encoder, training, config, off_topic=kept_off_topic if use_off_topic else ()
        )
        held_out = [
            (entry, text)
            for entry, texts in kb.items()
            if entry_fold[entry] != fold
            for text in texts[fold::FOLDS]
        ]
        questions = {
            "in scope": [text for _, text in held_out],
            "in chatter": [in_chatter(text, rng) for _, text in held_out],
            "removed": [
                text for entry, texts in kb.items() if entry_fold[entry] == fold for text in texts
            ],
            "off topic": held_out_off_topic,
        }
        for kind, texts in questions.items():
            matches = matcher.match_many(texts)
            asked[kind] += len(texts)
            for position, match in enumerate(matches):
                if match.decision is not Decision.ANSWER:
                    continue
                answered[kind] += 1
                if kind in right and match.best and match.best.entry_id == held_out[position][0]:
                    right[kind] += 1
    figures = {f"{kind} answered": answered[kind] / asked[kind] for kind in asked}
    for kind in right:
        figures[f"{kind} right"] = right[kind] / asked[kind]
        figures[f"{kind} wrong"] = (answered[kind] - right[kind]) / asked[kind]
    in_scope = asked["in scope"] + asked["in chatter"]
    right_in_scope = right["in scope"] + right["in chatter"]
    wrong_in_scope = answered["in scope"] + answered["in chatter"] - right_in_scope
    out_of_scope = asked["removed"] + asked["off topic"]
    figures["score"] = score(
        right_in_scope / in_scope,
        wrong_in_scope / in_scope,
        (answered["removed"] + answered["off topic"]) / out_of_scope,
    )
    return figures


def score(right: float, wrong: float, out_of_scope_answered: float) -> float:
    """What designs are chosen by: missed + 2 x wrong + out of scope answered (shares)."""
    return 1 - right + 2 * wrong + out_of_scope_answered


def development_figures(
    kb: KnowledgeBase,
    encoders: dict[str, TextEncoder],
    use_off_topic: bool,
    config: MatcherConfig | None = None,
) -> dict[str, str]:
    """Per language: in-scope questions answered right and wrong, out-of-scope ones answered."""
    import yaml

    questions = yaml.safe_load(DEV_QUESTIONS.read_text(encoding="utf-8"))
    figures = {}
    for language, encoder in encoders.items():
        phrasings = kb.matched_phrasings(language)
        off_topic = kb.off_topic_in(language) if use_off_topic else []
        matcher = Matcher(encoder, phrasings, config, off_topic=off_topic)
        asked = [row for row in questions if row["language"] == language]
        matches = matcher.match_many([row["text"] for row in asked])
        answered = [
            (row["entry_id"], match.best.entry_id if match.best else None)
            for row, match in zip(asked, matches, strict=True)
            if match.decision is Decision.ANSWER
        ]
        in_scope = sum(row["entry_id"] is not None for row in asked)
        right = sum(expected == got for expected, got in answered)
        wrong = sum(expected not in (None, got) for expected, got in answered)
        unknown = sum(expected is None for expected, _ in answered)
        out_of_scope = len(asked) - in_scope
        figures[language] = (
            f"{right}/{in_scope} right, {wrong} wrong, "
            f"{unknown}/{out_of_scope} out of scope answered, score "
            f"{score(right / in_scope, wrong / in_scope, unknown / out_of_scope):.3f}"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--margins", type=lambda text: [float(m) for m in text.split(",")])
    args = parser.parse_args()
    from bot.settings import CompanySettings, bundled_kb_path
    from faq.loader import load_kb

    cache = ROOT / "data" / "cache"
    encoder = Encoder(cache_dir=cache)
    kb = load_kb(bundled_kb_path(), CompanySettings().placeholders())
    phrasings, off_topic = kb.phrasings(), kb.off_topic_in("en")
    print(f"{len(phrasings)} entries, {len(off_topic)} off-topic phrasings, {args.seeds} seeds")
    if args.margins:
        margins(kb, encoder, args.margins, args.seeds)
        return
    columns = [
        "in scope right",
        "in scope wrong",
        "in chatter right",
        "in chatter wrong",
        "removed answered",
        "off topic answered",
    ]
    print("| design | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---" for _ in columns) + " |")
    for design, use_off_topic in (
        ("without off-topic questions", False),
        ("with them (shipped)", True),
    ):
        runs = [
            cross_validate(encoder, phrasings, off_topic, use_off_topic, seed)
            for seed in range(args.seeds)
        ]
        mean = {key: np.mean([run[key] for run in runs]) for key in runs[0]}
        print(f"| {design} | " + " | ".join(f"{mean[c]:.3f}" for c in columns) + " |", flush=True)

    multilingual = UniversalEncoder(cache)
    encoders: dict[str, TextEncoder] = {"en": encoder, "ru": multilingual, "zh": multilingual}
    print(f"\nDevelopment questions ({DEV_QUESTIONS.name}):")
    print("| design | " + " | ".join(encoders) + " |")
    print("| --- | " + " | ".join("---" for _ in encoders) + " |")
    for design, use_off_topic in (
        ("without off-topic questions", False),
        ("with them (shipped)", True),
    ):
        figures = development_figures(kb, encoders, use_off_topic)
        print(f"| {design} | " + " | ".join(figures.values()) + " |", flush=True)


def margins(kb: KnowledgeBase, encoder: Encoder, values: list[float], seeds: int) -> None:
    """The off-topic rule's margin, on training data and the English development questions."""
    phrasings, off_topic = kb.phrasings(), kb.off_topic_in("en")
    columns = ["in scope right", "in scope wrong", "in chatter right", "in chatter wrong"]
    columns += ["removed answered", "off topic answered", "score"]
    print("| margin | " + " | ".join(columns) + " | development (en) |")
    print("| --- | " + " | ".join("---" for _ in columns) + " | --- |")
    for margin in values:
        config = MatcherConfig(off_topic_margin=margin)
        runs = [
            cross_validate(encoder, phrasings, off_topic, True, seed, config)
            for seed in range(seeds)
        ]
        mean = {key: np.mean([run[key] for run in runs]) for key in runs[0]}
        development = development_figures(kb, {"en": encoder}, True, config)["en"]
        cells = " | ".join(f"{mean[c]:.3f}" for c in columns)
        print(f"| {margin:g} | {cells} | {development} |", flush=True)


if __name__ == "__main__":
    main()
