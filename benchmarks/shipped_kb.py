"""Answer quality of the shipped KB on held-out questions (tests/data/holdout_questions.yaml).

Usage: python benchmarks/shipped_kb.py [--questions FILE] [--show-misses]

The questions were written independently of the entries' alternates. Prints, for in-scope
questions: answered correctly, answered wrongly, suggested (right entry among the choices or
not), fell back; for out-of-scope questions: how many were answered (they should not be).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.holdout import HoldoutReport, evaluate_holdout, load_holdout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--questions", type=Path, default=ROOT / "tests" / "data" / "holdout_questions.yaml"
    )
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()

    from bot.app import build_faq
    from bot.settings import load_settings

    service = build_faq(load_settings(ROOT / "config.yaml"))
    try:
        report = evaluate_holdout(service, load_holdout(args.questions))
    finally:
        service.close()
    print_report(report, args.show_misses)


def print_report(report: HoldoutReport, show_misses: bool) -> None:
    in_scope, oos = report.in_scope, report.out_of_scope
    counts = Counter(outcome.kind for outcome in in_scope)
    print(f"in scope: {len(in_scope)} questions")
    for kind in ("correct", "wrong", "suggested_right", "suggested_wrong", "fallback"):
        print(f"  {kind:>16}: {counts[kind]:4d}  {counts[kind] / len(in_scope):7.1%}")
    answered_oos = sum(outcome.kind == "wrong" for outcome in oos)
    print(
        f"out of scope: {len(oos)} questions, answered (should not be): {answered_oos} "
        f"({answered_oos / len(oos):.1%})"
    )
    by_style: dict[str, Counter[str]] = {}
    for outcome in in_scope:
        by_style.setdefault(outcome.style, Counter())[outcome.kind] += 1
    print(
        "correct by style: "
        + ", ".join(
            f"{style} {c['correct']}/{sum(c.values())}" for style, c in sorted(by_style.items())
        )
    )
    if show_misses:
        for outcome in [*in_scope, *oos]:
            if outcome.kind != "correct" and not (
                outcome.expected is None and outcome.kind != "wrong"
            ):
                print(
                    f"  {outcome.kind:>16} want={outcome.expected} got={outcome.got} "
                    f"score={outcome.score:.3f} :: {outcome.text[:90]}"
                )


if __name__ == "__main__":
    main()
