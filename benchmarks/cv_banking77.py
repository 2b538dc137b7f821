"""Choose matcher hyper-parameters by cross-validation on training data only.

Usage: python benchmarks/cv_banking77.py DATASETS_DIR [--only lexical|head|target|c_scale]
    [--kbs NAME,...] [--folds 0,1,...]

Three KBs: BANKING77's 10-shot KB (first 10 training texts per category), its full training
set (about 130 an entry), and the shipped KB's own phrasings (its alternates carry the typos
and short forms customers use). Each is split into 5 folds per entry; each fold's phrasings
are asked against a matcher fitted on the rest. Prints top-1 accuracy per lexical weight (the
10-shot and shipped KBs) and per head weight, fixed or chosen per KB by the matcher's own
cross-validation (all three). No test file or held-out question is read.

`--only target`: the out-of-scope operating point (`target_unanswered`) on training data. The
benchmark's 15 out-of-scope categories are left out whole; of the other 62, 15 drawn at random
play out of scope; the KB is the first 10 texts of the remaining 47; the questions are the
next 40 training texts of all 62 (unused by the 10-shot KB). Prints out-of-scope recall and
in_scope_accuracy (answered right / in-scope questions) per target, for 3 draws.

`--only c_scale`: the head's C (`HEAD_CS`, the scale at today's) and the nearest phrasing's
softmax scale (`NEAR_SCALES`, C at today's), top-1 accuracy on the three KBs; the full
training set on fold 0 only (each of its fits takes minutes on two cores). Ranking never reads
the confidence model, so its fit is skipped (`ranking_only`): half of each matcher's fit.
`--kbs` and `--folds` cut the run (the full set always asks its first fold only).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.bench import phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Encoder  # noqa: E402
from faq.matcher import Decision, Matcher, MatcherConfig  # noqa: E402

FOLDS = 5
LEXICAL_WEIGHTS = (0.0, 0.05, 0.1, 0.2)
HEAD_WEIGHTS: tuple[float | None, ...] = (0.3, 0.5, 0.7, 0.9, None)  # None: chosen per KB
HEAD_CS = (3.0, 10.0, 30.0, 100.0)
NEAR_SCALES = (10.0, 20.0, 30.0, 40.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--only", choices=["lexical", "head", "target", "c_scale"])
    parser.add_argument("--kbs", default="", help="comma-separated KB names (default: all)")
    parser.add_argument("--folds", default="", help="comma-separated folds (default: all)")
    args = parser.parse_args()
    if args.only == "target":
        operating_points(Encoder(cache_dir=ROOT / "data" / "cache"), args.datasets)
        return
    from bot.settings import CompanySettings, bundled_kb_path
    from faq.loader import load_kb

    encoder = Encoder(cache_dir=ROOT / "data" / "cache")
    examples = read_examples(args.datasets / "banking77_train.csv")
    kbs = {
        "banking77 10-shot": phrasings_by_category(examples, shots=10),
        "banking77 full": phrasings_by_category(examples),
        "shipped KB": load_kb(bundled_kb_path(), CompanySettings().placeholders()).phrasings(),
    }
    if args.kbs:
        kbs = {name: kbs[name] for name in args.kbs.split(",")}
    folds = tuple(int(fold) for fold in args.folds.split(",")) if args.folds else None
    for name, kb in kbs.items():
        print(name, flush=True)
        if args.only in (None, "lexical") and name != "banking77 full":
            for weight in LEXICAL_WEIGHTS:
                config = dataclasses.replace(
                    MatcherConfig(), head_weight=0.7, lexical_weight=weight
                )
                cross_validate(encoder, kb, config, f"lexical_weight={weight}")
        if args.only == "c_scale":
            ranking_only()
            head_c_and_near_scale(
                encoder, kb, (folds or (0,))[:1] if name == "banking77 full" else folds
            )
        if args.only in (None, "head"):
            for head in HEAD_WEIGHTS:
                config = dataclasses.replace(MatcherConfig(), head_weight=head)
                cross_validate(encoder, kb, config, f"head_weight={head or 'chosen per KB'}")


def ranking_only() -> None:
    """Matchers fitted from here on skip the confidence model and thresholds (answer nothing):
    for benchmarks of the ranking only."""
    import faq.matcher as matcher_module

    def no_calibration(scorer: object) -> tuple[object, object]:
        return matcher_module._Confidence(np.zeros(0), 0.0), matcher_module.Thresholds(1.0, 0.0)

    matcher_module._calibrate = no_calibration  # type: ignore[assignment]


def head_c_and_near_scale(
    encoder: Encoder, kb: dict[str, list[str]], folds: tuple[int, ...] | None
) -> None:
    """Each C at today's scale, then each other scale at today's C."""
    defaults = MatcherConfig()
    for c in HEAD_CS:
        config = dataclasses.replace(defaults, head_c=c)
        cross_validate(encoder, kb, config, f"head_c={c:g}", folds)
    for scale in NEAR_SCALES:
        if scale != defaults.near_scale:
            config = dataclasses.replace(defaults, near_scale=scale)
            cross_validate(encoder, kb, config, f"near_scale={scale:g}", folds)


def cross_validate(
    encoder: Encoder,
    kb: dict[str, list[str]],
    config: MatcherConfig,
    design: str,
    folds: tuple[int, ...] | None = None,
) -> None:
    right = asked = 0
    for fold in folds or range(FOLDS):
        train = {c: [t for i, t in enumerate(ts) if i % FOLDS != fold] for c, ts in kb.items()}
        matcher = Matcher(encoder, train, config)
        for category, texts in kb.items():
            for text in texts[fold::FOLDS]:
                best = matcher.rank(text, 1)
                right += bool(best) and best[0].entry_id == category
                asked += 1
    print(f"  {design:<28} cv top-1 accuracy={right / asked:.4f} (n={asked})", flush=True)


TARGETS = (0.65, 0.7, 0.75, 0.8)
DRAWS, PLAYING_OOS, SHOTS, QUESTIONS_PER_CATEGORY = 3, 15, 10, 40


def operating_points(encoder: Encoder, datasets: Path) -> None:
    from benchmarks.banking77 import held_out_categories

    train = datasets / "banking77_train.csv"
    texts: dict[str, list[str]] = {}
    for example in read_examples(train):
        texts.setdefault(example.category, []).append(example.text)
    left_out = set(held_out_categories(train))
    categories = sorted(category for category in texts if category not in left_out)
    print("| draw | target_unanswered | oos_recall | in_scope_accuracy |")
    print("| --- | --- | --- | --- |")
    for draw in range(DRAWS):
        rng = np.random.default_rng(100 + draw)
        playing_oos = set(rng.choice(categories, PLAYING_OOS, replace=False).tolist())
        kb = {c: texts[c][:SHOTS] for c in categories if c not in playing_oos}
        questions = [
            (text, None if category in playing_oos else category)
            for category in categories
            for text in texts[category][SHOTS : SHOTS + QUESTIONS_PER_CATEGORY]
        ]
        for target in TARGETS:
            config = dataclasses.replace(MatcherConfig(), target_unanswered=target)
            matches = Matcher(encoder, kb, config).match_many([text for text, _ in questions])
            answered = [match.decision is Decision.ANSWER for match in matches]
            oos = [not a for a, (_, c) in zip(answered, questions, strict=True) if c is None]
            in_scope_right = [
                a and match.best is not None and match.best.entry_id == c
                for a, match, (_, c) in zip(answered, matches, questions, strict=True)
                if c is not None
            ]
            print(
                f"| {draw} | {target} | {np.mean(oos):.4f} | {np.mean(in_scope_right):.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
