"""Answer quality of the shipped KB on held-out questions, per language.

Usage: python benchmarks/shipped_kb.py [--questions FILE] [--show-misses]

Without --questions: English (tests/data/holdout_questions.yaml) and its Russian and Chinese
translations (holdout_questions_ru.yaml, _zh.yaml), then a summary line per language.
The questions were written independently of the entries' alternates, and translated
independently of the entries' translations. Prints, for in-scope questions: answered
correctly, answered wrongly, suggested (right entry among the choices or not), fell back;
for out-of-scope questions: how many were answered (they should not be).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.holdout import HoldoutReport, evaluate_holdout, load_holdout, miss_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, help="one YAML file of questions")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    data = ROOT / "tests" / "data"
    files = (
        {"": args.questions}
        if args.questions
        else {
            "en": data / "holdout_questions.yaml",
            "ru": data / "holdout_questions_ru.yaml",
            "zh": data / "holdout_questions_zh.yaml",
        }
    )

    from bot.app import build_faq
    from bot.settings import load_settings

    service = build_faq(load_settings(ROOT / "config.yaml"))
    reports = {}
    try:
        for language, path in files.items():
            print(f"== {language or path}")
            reports[language] = evaluate_holdout(service, load_holdout(path))
            print_report(reports[language], args.show_misses)
    finally:
        service.close()
    if len(reports) > 1:
        print("language  correct  correct-or-suggested  out-of-scope answered")
        for language, report in reports.items():
            tally = report.tally()
            n = tally["in_scope"]
            print(
                f"{language:>8}  {tally['correct'] / n:7.1%}  "
                f"{(tally['correct'] + tally['suggested_right']) / n:20.1%}  "
                f"{tally['out_of_scope_answered'] / tally['out_of_scope']:22.1%}"
            )


def print_report(report: HoldoutReport, show_misses: bool) -> None:
    tally = report.tally()
    in_scope, oos = tally["in_scope"], tally["out_of_scope"]
    print(f"in scope: {in_scope} questions")
    for kind in ("correct", "wrong", "suggested_right", "suggested_wrong", "fallback"):
        print(f"  {kind:>16}: {tally[kind]:4d}  {tally[kind] / max(in_scope, 1):7.1%}")
    answered_oos = tally["out_of_scope_answered"]
    print(
        f"out of scope: {oos} questions, answered (should not be): {answered_oos} "
        f"({answered_oos / max(oos, 1):.1%})"
    )
    by_style: dict[str, Counter[str]] = {}
    for outcome in report.in_scope:
        by_style.setdefault(outcome.style, Counter())[outcome.kind] += 1
    print(
        "correct by style: "
        + ", ".join(
            f"{style} {c['correct']}/{sum(c.values())}" for style, c in sorted(by_style.items())
        )
    )
    if show_misses:
        for outcome in report.misses():
            print(miss_line(outcome))


if __name__ == "__main__":
    main()
