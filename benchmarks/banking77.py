"""BANKING77 through `minerdesk faq bench`: 10 shots, the full training set, and out of scope.

Usage: python benchmarks/banking77.py DATASETS_DIR [--only 10shot|full|oos] [--fine-tune]

With --fine-tune, each setting first fine-tunes the model on its training texts, as
`minerdesk faq train` does on a KB (faq/train.py), then matches with the fine-tuned model.

DATASETS_DIR holds banking77_train.csv and banking77_test.csv (CC BY 4.0, PolyAI). The test
file is only read by `faq bench`, which fits everything on the training file.

Out of scope: the 15 categories `sorted(categories)[::5][:15]` (listed in BENCHMARKS.md) lose
their training texts and their test texts are labelled `oos`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

OOS_LABEL = "oos"
HELD_OUT_EVERY, HELD_OUT_COUNT = 5, 15


def held_out_categories(train: Path) -> list[str]:
    with train.open(newline="", encoding="utf-8") as handle:
        categories = sorted({row["category"] for row in csv.DictReader(handle)})
    return categories[::HELD_OUT_EVERY][:HELD_OUT_COUNT]


def write_oos_split(train: Path, test: Path, folder: Path) -> tuple[Path, Path]:
    """Training texts of the held-out categories removed; their test texts labelled oos."""
    held_out = set(held_out_categories(train))
    oos_train, oos_test = folder / "train_oos.csv", folder / "test_oos.csv"
    for source, target, relabel in ((train, oos_train, False), (test, oos_test, True)):
        with (
            source.open(newline="", encoding="utf-8") as src,
            target.open("w", newline="", encoding="utf-8") as dst,
        ):
            writer = csv.writer(dst)
            writer.writerow(["text", "category"])
            for row in csv.DictReader(src):
                if row["category"] not in held_out:
                    writer.writerow([row["text"], row["category"]])
                elif relabel:
                    writer.writerow([row["text"], OOS_LABEL])
    return oos_train, oos_test


def bench(train: Path, test: Path, *extra: str) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "bot",
        "faq",
        "bench",
        "--train",
        str(train),
        "--test",
        str(test),
        "--json",
        *extra,
    ]
    print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
    # stderr passes through: it says how long a fine-tune took.
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--only", choices=["10shot", "full", "oos"])
    parser.add_argument("--fine-tune", action="store_true", help="fine-tune on each training set")
    args = parser.parse_args()
    tuning = ("--fine-tune",) if args.fine_tune else ()
    train, test = args.datasets / "banking77_train.csv", args.datasets / "banking77_test.csv"
    runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "10shot"):
            runs["10 shots"] = bench(train, test, "--shots", "10", *tuning)
        if args.only in (None, "full"):
            runs["full training set"] = bench(train, test, *tuning)
        if args.only in (None, "oos"):
            oos_train, oos_test = write_oos_split(train, test, Path(folder))
            runs["out of scope, 10 shots"] = bench(
                oos_train, oos_test, "--shots", "10", "--oos-label", OOS_LABEL, *tuning
            )
    print(f"machine: {machine()}")
    print(f"held-out categories: {', '.join(held_out_categories(train))}")
    print(f"peak RSS of a bench process: {peak_rss_mb():.0f} MB")
    print("| setting | accuracy | in_scope_accuracy | oos_recall | answer_rate | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, f in runs.items():
        print(
            f"| {name} | {f['accuracy']:.4f} | {f['in_scope_accuracy']:.4f} | "
            f"{f['oos_recall']:.4f} | {f['answer_rate']:.4f} | {f['p50_ms']} | {f['p99_ms']} |"
        )


if __name__ == "__main__":
    main()
