"""Speed and memory of the FAQ matcher: one query at a time, KBs of growing size, start-up.

Usage: python benchmarks/latency.py DATASETS_DIR [--queries N] [--only NAME ...] [--model NAME]

Each scenario runs in a fresh process of its own, so its peak RSS is its own:

- `banking77-10shot`: BANKING77's 10-shot KB (77 entries, 770 phrasings), its test texts asked;
- `synthetic-770x10` and `synthetic-5000x10`: entries of 10 made-up phrasings each (random
  customer-like sentences from the words of the shipped KB and BANKING77), asked with other
  such sentences; content does not matter here, size does;
- `reload`: a staff edit to the shipped KB (a new alternate), from saving the file to the bot
  serving the new KB: `FaqService` and its watcher (`faq.reload_interval_seconds`) as the bot
  runs them, with a warm cache; three edits, each a new phrasing to encode and a new fit;
- `startup`: start to first answer with an empty cache (the default model extracted and
  checked, its graph exported, the KB encoded and fitted), then with the warm cache:
  - `minerdesk faq ask` from a cold process: imports, both models, the shipped KB in three
    languages, its matchers, the answer (the console channel's start, without the console);
  - `minerdesk run` on Telegram (long polling, against the Bot API emulator of
    tests/emulator.py on 127.0.0.1) with a customer's question waiting: the process's start
    to the emulator receiving the bot's reply.

Latency is per single query through `Matcher.match`, encoding included. `--model` measures
another `faq.model` (default: the configured one, all-mpnet-base-v2). Figures go to
BENCHMARKS.md with the machine they ran on. The synthetic KBs' phrasings are cached in
data/cache like any KB's, so the first run spends minutes encoding 50,000 phrasings. `reload`
and `startup` use a temporary data folder instead, whose cache holds what a deployment's
holds (the shipped KB's phrasings), warmed by an untimed first start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "data" / "cache"
SCENARIOS = ("banking77-10shot", "synthetic-770x10", "synthetic-5000x10", "reload", "startup")
# Timed from the outside and printed after the table, not as a row of it.
TIMED = ("reload", "startup")
SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--model", default=os.environ.get("MINERDESK_FAQ__MODEL", ""))
    parser.add_argument("--scenario", help=argparse.SUPPRESS)  # the child process's part
    args = parser.parse_args()
    os.environ["MINERDESK_FAQ__MODEL"] = args.model or "all-mpnet-base-v2"
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.datasets, args.queries)))
        return
    from benchmarks.banking77 import machine

    print(f"machine: {machine()}, faq.model: {os.environ['MINERDESK_FAQ__MODEL']}")
    print("| scenario | entries | phrasings | fit s | p50 ms | p99 ms | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.only:
        if name in TIMED:
            continue
        command = [sys.executable, __file__, str(args.datasets), "--queries", str(args.queries)]
        result = subprocess.run([*command, "--scenario", name], capture_output=True, text=True)
        if result.returncode:
            print(f"| {name} | failed: {result.stderr.strip().splitlines()[-1]} |||||")
            continue
        f = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"| {name} | {f['entries']:,} | {f['phrasings']:,} | {f['fit_s']:.1f} | "
            f"{f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['rss_mb']:.0f} |",
            flush=True,
        )
    if not set(TIMED) & set(args.only):
        return
    import tempfile

    # A deployment's own data folder: its cache holds the shipped KB's phrasings only, not the
    # benchmarks' 50,000 synthetic ones (reading and rewriting those would be measured).
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        if "reload" in args.only:
            seconds = ", ".join(f"{s:.1f}" for s in reload_seconds(data))
            print(f"staff edit saved to new KB serving (shipped KB, warm cache): {seconds} s")
        if "startup" in args.only:
            cold, warm = startup_seconds(data / "fresh")
            print(f"start to first answer, empty cache, `faq ask`: {cold:.1f} s")
            print(f"start to first answer, warm cache, `faq ask`: {warm:.1f} s")
            telegram = telegram_startup_seconds(data / "cache")
            print(f"start to first answer, warm cache, Telegram: {telegram:.1f} s")


def run_scenario(name: str, datasets: Path, queries: int) -> dict[str, float]:
    from faq.encoder import Encoder
    from faq.matcher import Matcher

    encoder = Encoder(os.environ["MINERDESK_FAQ__MODEL"], cache_dir=CACHE)
    if name == "banking77-10shot":
        from faq.bench import phrasings_by_category, read_examples

        kb = phrasings_by_category(read_examples(datasets / "banking77_train.csv"), shots=10)
        asked = [e.text for e in read_examples(datasets / "banking77_test.csv")][:queries]
    else:
        entries = int(name.split("-")[1].split("x")[0])
        sentences = random_sentences(datasets, entries * 10 + queries)
        kb = {f"entry-{i}": sentences[i * 10 : i * 10 + 10] for i in range(entries)}
        asked = sentences[entries * 10 :]
    encoder.encode([text for texts in kb.values() for text in texts])  # cache, not timed
    started = time.perf_counter()
    matcher = Matcher(encoder, kb)
    fit_seconds = time.perf_counter() - started
    for text in asked[:20]:  # warm-up: first calls allocate
        matcher.match(text)
    latencies = []
    for text in asked:
        started = time.perf_counter()
        matcher.match(text)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "entries": len(kb),
        "phrasings": sum(len(texts) for texts in kb.values()),
        "fit_s": fit_seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def random_sentences(datasets: Path, count: int) -> list[str]:
    """`count` distinct sentences of 4-16 words drawn from real customer vocabulary."""
    from faq.bench import read_examples

    words = sorted(
        {
            word
            for example in read_examples(datasets / "banking77_train.csv")
            for word in re.findall(r"[a-z']+", example.text.lower())
        }
        | {word for path in (ROOT / "faq" / "kb").glob("*.yaml") for word in _yaml_words(path)}
    )
    rng = random.Random(SEED)
    sentences: set[str] = set()
    while len(sentences) < count:
        sentences.add(" ".join(rng.choices(words, k=rng.randint(4, 16))))
    ordered = sorted(sentences)
    rng.shuffle(ordered)
    return ordered


def _yaml_words(path: Path) -> set[str]:
    return set(re.findall(r"[a-z]{3,}", path.read_text(encoding="utf-8").lower()))


def reload_seconds(data: Path, edits: int = 3) -> list[float]:
    """Seconds from saving an edit of a copy of the shipped KB to the watcher's reload report,
    the FAQ built as the bot builds it with its data folder at `data`; the first build warms
    the cache (not timed)."""
    import asyncio
    import shutil
    import tempfile

    from bot.app import build_faq
    from bot.settings import bundled_kb_path, load_settings
    from faq.service import ReloadReport, watch_kb

    settings = load_settings(ROOT / "config.yaml")
    with tempfile.TemporaryDirectory() as folder:
        kb = Path(folder) / "kb"
        shutil.copytree(bundled_kb_path(), kb)
        faq = settings.faq.model_copy(update={"kb_path": kb})
        service = build_faq(settings.model_copy(update={"data_dir": data, "faq": faq}))

        async def measure() -> list[float]:
            reports: asyncio.Queue[ReloadReport] = asyncio.Queue()
            interval = settings.faq.reload_interval_seconds
            watcher = asyncio.create_task(watch_kb(service, interval, reports.put_nowait))
            seconds = []
            for edit in range(edits):
                await asyncio.sleep(interval * random.random())  # staff save at any moment
                edited = kb / "warranty.yaml"
                text = edited.read_text(encoding="utf-8")
                phrasing = f"is the warranty the same for batch {edit} {time.time()}"
                new = f"alternates:\n      - {phrasing}\n"
                started = time.perf_counter()
                edited.write_text(text.replace("alternates:\n", new, 1), encoding="utf-8")
                report = await reports.get()
                assert report.accepted, report.problems
                seconds.append(time.perf_counter() - started)
            watcher.cancel()
            return seconds

        try:
            return asyncio.run(measure())
        finally:
            service.close()


def startup_seconds(data: Path) -> tuple[float, float]:
    """Wall times of `minerdesk faq ask` with its data folder at `data` (start to first
    answer): with the empty cache, then with the cache that run filled."""
    command = [sys.executable, "-m", "bot", "faq", "ask", "how long is the warranty on an s19"]
    env = {**os.environ, "MINERDESK_DATA_DIR": str(data)}
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1]


def telegram_startup_seconds(cache: Path) -> float:
    """`minerdesk run` against the emulator, to its reply to a question already waiting; the
    first run warms `cache`."""
    import tempfile

    from tests.botprocess import BotProcess
    from tests.emulator import BotApiEmulator

    with tempfile.TemporaryDirectory() as folder, BotApiEmulator() as emulator:
        data = Path(folder) / "data"
        data.mkdir()
        cache.mkdir(parents=True, exist_ok=True)
        bot = BotProcess(emulator, data, cache)
        bot.env.pop("MINERDESK_FAQ__THREADS")  # the configured threads, as users run it
        for chat in (1001, 1002):
            emulator.send_text(chat, "how long is the warranty on an s19")
            started = time.perf_counter()
            bot.start(wait=False)
            emulator.wait_until(
                lambda chat=chat: any(to == chat for _, to, _ in emulator.sent_log),
                timeout=300,
                what="the bot's answer",
            )
            answered = min(at for at, to, _ in emulator.sent_log if to == chat)
            bot.terminate()
    return answered - started


if __name__ == "__main__":
    main()
