"""How the Russian and Chinese matchers were chosen, on training data only.

Usage: python benchmarks/cv_languages.py

The KB's own translated phrasings: 30 % of each entry's alternates in a language are held out
as questions (3 seeds), the matcher learns from the rest. Compares the model and the phrasings
the matcher for that language learns from, then a few hyper-parameters of the shipped design.
Never reads the held-out question files (tests/data/holdout_questions_*.yaml).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import CompanySettings, bundled_kb_path  # noqa: E402
from faq.encoder import Encoder, TextEncoder, UniversalEncoder  # noqa: E402
from faq.loader import KnowledgeBase, load_kb  # noqa: E402
from faq.matcher import Decision, Matcher, MatcherConfig  # noqa: E402
from faq.schema import Entry  # noqa: E402

SEEDS = 3
HELD_OUT = 0.3

Training = Callable[[Entry, list[str]], list[str]]


def own_only(entry: Entry, kept: list[str]) -> list[str]:
    return kept


def own_and_english(entry: Entry, kept: list[str]) -> list[str]:
    return kept + entry.phrasings


def evaluate(
    kb: KnowledgeBase,
    language: str,
    encoder: TextEncoder,
    training: Training,
    config: MatcherConfig,
) -> tuple[float, float, float]:
    """Top-1 accuracy, share answered right, share answered wrong."""
    top1 = right = wrong = total = 0
    for seed in range(SEEDS):
        rng = random.Random(seed)
        phrasings, questions = {}, []
        for entry in kb.entries:
            own = entry.phrasings_in(language)
            alternates = own[1:]
            rng.shuffle(alternates)
            held = max(1, round(len(alternates) * HELD_OUT))
            questions += [(text, entry.id) for text in alternates[:held]]
            phrasings[entry.id] = training(entry, [own[0], *alternates[held:]])
        matcher = Matcher(encoder, phrasings, config)
        for match, (_, expected) in zip(
            matcher.match_many([text for text, _ in questions]), questions, strict=True
        ):
            total += 1
            best = match.best.entry_id if match.best else None
            top1 += best == expected
            if match.decision is Decision.ANSWER:
                right += best == expected
                wrong += best != expected
    return top1 / total, right / total, wrong / total


def main() -> None:
    kb = load_kb(bundled_kb_path(), CompanySettings().placeholders())
    cache = ROOT / "data" / "cache"
    english_model, multilingual = Encoder(cache_dir=cache), UniversalEncoder(cache)
    designs: list[tuple[str, TextEncoder, Training, MatcherConfig]] = [
        ("MiniLM, own + English", english_model, own_and_english, MatcherConfig()),
        ("USE-m3, own only", multilingual, own_only, MatcherConfig()),
        ("USE-m3, own + English (shipped)", multilingual, own_and_english, MatcherConfig()),
        ("  near_scale 30", multilingual, own_and_english, MatcherConfig(near_scale=30.0)),
        ("  near_scale 40", multilingual, own_and_english, MatcherConfig(near_scale=40.0)),
        ("  lexical_weight 0.2", multilingual, own_and_english, MatcherConfig(lexical_weight=0.2)),
        ("  head_weight 0.5", multilingual, own_and_english, MatcherConfig(head_weight=0.5)),
        ("  head_c 30", multilingual, own_and_english, MatcherConfig(head_c=30.0)),
    ]
    print(f"{'design':<34} {'lang':<4} {'top-1':>6} {'right':>6} {'wrong':>6}")
    for language in ("ru", "zh"):
        for name, encoder, training, config in designs:
            top1, right, wrong = evaluate(kb, language, encoder, training, config)
            print(f"{name:<34} {language:<4} {top1:6.3f} {right:6.3f} {wrong:6.3f}", flush=True)


if __name__ == "__main__":
    main()
