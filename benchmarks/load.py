"""Load: FAQ questions from many chats, messenger emulator -> real bot process -> reply.

Usage: python benchmarks/load.py [--channel telegram|whatsapp] [--rate 50] [--duration 30]
                                 [--chats N] [--json]
       python benchmarks/load.py --max [--rate 400] [--backlog 400] [--duration 30]
Other options: --storage sqlite|postgresql, --workers N (`minerdesk run --workers N`),
--messages-per-second 1000, --faq-threads N and --model NAME (default: config.yaml's),
--seed.

The emulators run in this process; the bot runs as users start it (`python -m bot run`)
with a fresh data folder. `--channel telegram` (default): the customers write through the
Bot API emulator (`tests/emulator.py`), which the bot long-polls. `--channel whatsapp`: they
write through the Cloud API emulator (`tests/whatsapp_emulator.py`), which posts each message
to the bot's webhook, signed, and then Meta's `sent`/`delivered`/`read` statuses of each
reply, as Meta does; the bot also polls Telegram for its staff chat, as a shop runs it.
`--storage postgresql` starts a throwaway PostgreSQL server (`tests/pgserver.py`, Debian's
binaries) and points the bot at a fresh database on it. After start-up, an unmeasured
warm-up of 50 questions; then the measured phase:

* offered rate (default): questions are injected at `--rate` per second on an open-loop
  schedule (at the planned times, whatever the bot does), round-robin over the chats, for
  `--duration` seconds. Latency of a question = arrival at the emulator of the bot's
  sendMessage to that chat (`sent_log`) minus the moment the update was queued. Replies are
  matched to questions per chat in order; with enough chats a chat never has two questions
  outstanding, which is checked (`overlapping`) along with replies that match no question.
  On WhatsApp a question's clock starts before the webhook POST and the generator waits
  for the bot's 200, as Meta's servers do.
* `--max`: offered at `--rate` (default 400/s) but never more than `--backlog` questions
  unanswered, so the bot always has work queued and the drain after the end stays short.
  Throughput = replies per second over the steady window (the first and last few seconds
  left out). Latencies in this mode are mostly queueing (backlog / throughput).

Questions are the KB's own phrasings (`question` and `alternates` of `faq/kb/*.yaml`) plus
about 10% out-of-scope questions, drawn from a seeded random.Random. A chat gets a question
at most every `chats / rate` seconds (2 s or more by default), so Telegram's per-chat limit
(burst 3, then 1/s) is never what is measured. The global cap (Telegram's ~30 messages/s,
`telegram.messages_per_second`, and `whatsapp.messages_per_second`, 20/s) is raised to
`--messages-per-second` (default 1000): the emulators have no global cap, and at the defaults
the bot paces its replies at those rates by design.

Also reported: the "typing" calls against the replies (Telegram's sendChatAction,
WhatsApp's read receipts with the typing indicator; they count against the same API
limits), lost questions (no reply within 10 s after the end), the bot's peak RSS
(VmHWM, start-up included, and the largest VmRSS sampled while measuring), the bot's CPU
seconds (/proc/<pid>/stat) and those of this process (emulator + load generator), which
shares the machine with the bot. With several workers "the bot" is the supervisor and its
workers: CPU and memory are summed over them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.banking77 import machine  # noqa: E402
from tests.botprocess import BotProcess  # noqa: E402
from tests.emulator import BotApiEmulator  # noqa: E402
from tests.whatsapp_emulator import WhatsAppEmulator  # noqa: E402

KB_DIR = ROOT / "faq" / "kb"
OUT_OF_SCOPE = [
    "what is the weather in berlin tomorrow",
    "can you recommend a good pizza place",
    "who won the football match yesterday",
    "tell me a joke",
    "how do i bake sourdough bread",
    "what is the capital of australia",
    "can you help me with my math homework",
    "translate hello into french",
    "what time is it in tokyo",
    "is bitcoin going to go up next week",
    "how tall is the eiffel tower",
    "write me a poem about the sea",
]
OOS_SHARE = 0.1
SEED = 20260101
FIRST_CHAT = 100_000_000
# A WhatsApp customer's number: this prefix and the chat's number (13 digits in all).
WHATSAPP_PREFIX = "1555"
WARMUP_CHAT = 900_000_000
WARMUP_QUESTIONS = 50
# The bot starts with an empty embedding cache: on a busy machine encoding the KB alone
# can take minutes.
START_TIMEOUT = 600.0
LOST_AFTER = 10.0
STEADY_SKIP = 3.0
RSS_SAMPLE_SECONDS = 0.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ questions


def kb_phrasings(kb_dir: Path = KB_DIR) -> list[str]:
    """Every `question` and `alternates` phrasing of the KB, in file order."""
    phrasings: list[str] = []
    for path in sorted(kb_dir.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in document.get("entries", []):
            phrasings.append(str(entry["question"]))
            phrasings.extend(str(text) for text in entry.get("alternates") or [])
    return phrasings


def questions(rng: random.Random, phrasings: list[str]) -> Iterator[str]:
    """Endless customer questions: KB phrasings, about `OOS_SHARE` of them out of scope."""
    while True:
        pool = OUT_OF_SCOPE if rng.random() < OOS_SHARE else phrasings
        yield rng.choice(pool)


# ------------------------------------------------------------------ the bot process


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (a supervisor and its workers), from /proc."""
    pids, index = [pid], 0
    while index < len(pids):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pids[index]}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(child) for child in children)
        index += 1
    return pids


def proc_status(pid: int, key: str) -> float:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM) in MB, summed over the process and its
    descendants; 0 once they are gone."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1]) / 1024
    return total


def bot_backlog(bot: BotProcess) -> dict[str, int | None]:
    """Rows of the bot's inbox (updates received, not yet handled) and outbox (replies not
    yet sent), read without writing; None where the database cannot be read."""
    counts: dict[str, int | None] = {"inbox": None, "outbox": None}
    for table in counts:
        # A busy file or a refused connection is a count not known, not a failed run.
        with contextlib.suppress(sqlite3.Error, OSError, RuntimeError, asyncpg.PostgresError):
            [(rows,)] = bot.query(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(str(rows))
    return counts


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (or of one of its threads), from /proc/.../stat; 0 once
    it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()  # fields 3.. of proc(5)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants."""
    return sum(cpu_seconds(member) for member in process_tree(pid))


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process and its descendants, by thread id."""
    seconds = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member}/task").iterdir():
                seconds[int(task.name)] = cpu_seconds(member, int(task.name))
    return seconds


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting for I/O): /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def busiest_threads(
    pids: set[int], before: dict[int, float], after: dict[int, float], wall: float
) -> str:
    """The three busiest threads in cores, e.g. "main 0.45, 0.42, 0.17" (main: a process's
    main thread)."""
    used = sorted(((after[t] - before.get(t, 0.0), t) for t in after), reverse=True)[:3]
    return ", ".join(f"{'main ' if t in pids else ''}{cpu / wall:.2f}" for cpu, t in used)


class SampledBot(BotProcess):
    """The bot process with its RSS sampled in the background and the send cap raised."""

    start_timeout = START_TIMEOUT

    def __init__(
        self,
        emu: BotApiEmulator,
        data_dir: Path,
        messages_per_second: float,
        faq_threads: int | None = None,
        storage_url: str | None = None,
    ) -> None:
        super().__init__(emu, data_dir, data_dir / "embedding-cache", storage_url)
        self.cache_dir.mkdir(exist_ok=True)
        self.env["MINERDESK_TELEGRAM__MESSAGES_PER_SECOND"] = str(messages_per_second)
        self.env.pop("MINERDESK_TELEGRAM__SHUTDOWN_GRACE_SECONDS")
        if faq_threads is None:
            self.env.pop("MINERDESK_FAQ__THREADS")  # config.yaml's
        else:
            self.env["MINERDESK_FAQ__THREADS"] = str(faq_threads)
        # The PostgreSQL server's postmaster, whose CPU is the database's share of the work.
        self.database_pid: int | None = None
        self.rss_max_mb = 0.0
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def start_sampling(self) -> None:
        """Track the largest VmRSS from now on, every `RSS_SAMPLE_SECONDS`."""

        def sample() -> None:
            while not self._sampling.wait(RSS_SAMPLE_SECONDS):
                self.rss_max_mb = max(self.rss_max_mb, proc_status(self.pid, "VmRSS"))

        self.rss_max_mb = proc_status(self.pid, "VmRSS")
        self._sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join()


# ------------------------------------------------------------------ the customers' side


# Told of each reply with the chat it went to.
OnReply = Callable[[int], None]


class Customers(Protocol):
    """The messenger as the load generator sees it: questions in, replies timed out."""

    name: str

    def ask(self, chat: int, text: str) -> None:
        """The customer of `chat` writes `text` (returns once the messenger has it)."""
        ...

    def listen(self, on_reply: OnReply | None) -> None:
        """Call `on_reply` for each reply from now on (None: stop)."""
        ...

    def replies(self) -> list[tuple[float, int]]:
        """Every reply so far: (perf_counter when it reached the messenger, chat)."""
        ...

    def typing(self) -> int:
        """The "typing" calls so far."""
        ...

    def waiting_at_messenger(self) -> int | None:
        """Questions the bot has not fetched yet (polling), None when pushed to it."""
        ...

    def polls(self) -> int | None:
        """The bot's calls asking for questions so far; None when they are pushed."""
        ...


class TelegramCustomers:
    """Customers on the Bot API emulator, which the bot long-polls."""

    name = "telegram"

    def __init__(self, emu: BotApiEmulator) -> None:
        self.emu = emu

    def ask(self, chat: int, text: str) -> None:
        self.emu.send_text(chat, text)

    def listen(self, on_reply: OnReply | None) -> None:
        self.emu.on_message = None if on_reply is None else self._hook(on_reply)

    @staticmethod
    def _hook(on_reply: OnReply) -> Callable[[dict[str, Any]], None]:
        return lambda message: on_reply(int(message["chat"]["id"]))

    def replies(self) -> list[tuple[float, int]]:
        return [(arrived, chat) for arrived, chat, _ in self.emu.sent_log]

    def typing(self) -> int:
        return len(self.emu.calls("sendChatAction"))

    def waiting_at_messenger(self) -> int | None:
        return self.emu.pending_updates()

    def polls(self) -> int | None:
        return len(self.emu.calls("getUpdates"))


class WhatsAppCustomers:
    """Customers on the Cloud API emulator, which posts their messages to the bot's webhook
    (and Meta's statuses of its replies after them)."""

    name = "whatsapp"

    def __init__(self, emu: WhatsAppEmulator) -> None:
        self.emu = emu
        self._replies: list[tuple[float, int]] = []
        self._on_reply: OnReply | None = None
        emu.on_message = self._arrived

    def _arrived(self, wa_id: str, message: dict[str, Any]) -> None:
        arrived = time.perf_counter()
        chat = int(wa_id.removeprefix(WHATSAPP_PREFIX))
        self._replies.append((arrived, chat))
        hook = self._on_reply
        if hook is not None:
            hook(chat)

    def ask(self, chat: int, text: str) -> None:
        self.emu.send_text(f"{WHATSAPP_PREFIX}{chat}", text)

    def listen(self, on_reply: OnReply | None) -> None:
        self._on_reply = on_reply

    def replies(self) -> list[tuple[float, int]]:
        return list(self._replies)

    def typing(self) -> int:
        return sum("typing_indicator" in receipt for receipt in self.emu.read_receipts())

    def waiting_at_messenger(self) -> int | None:
        return None

    def polls(self) -> int | None:
        return None


@contextlib.contextmanager
def serving(args: argparse.Namespace, folder: Path) -> Iterator[tuple[SampledBot, Customers]]:
    """The emulators, the database and the bot (not started), with its customers on
    `args.channel`."""
    with contextlib.ExitStack() as stack:
        telegram = stack.enter_context(BotApiEmulator())
        storage_url, database_pid = None, None
        if args.storage == "postgresql":
            storage_url, database_pid = stack.enter_context(postgres_database())
        bot = SampledBot(telegram, folder, args.messages_per_second, args.faq_threads, storage_url)
        bot.database_pid = database_pid
        if args.model is not None:
            bot.env["MINERDESK_FAQ__MODEL"] = args.model
        if args.workers > 1:
            bot.args = ["--workers", str(args.workers)]
        channel = args.channel
        if channel == "telegram":
            yield bot, TelegramCustomers(telegram)
            return
        whatsapp = stack.enter_context(WhatsAppEmulator())
        bot.on_whatsapp(whatsapp)
        bot.env["MINERDESK_WHATSAPP__MESSAGES_PER_SECOND"] = str(args.messages_per_second)
        yield bot, WhatsAppCustomers(whatsapp)


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL server with an empty database; its URL and the server's pid."""
    from tests.pgserver import Databases, PostgresServer

    server = PostgresServer()
    server.start()
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        yield asyncio.run(Databases(server).create(migrated=False)), postmaster
    finally:
        server.stop()


# ------------------------------------------------------------------ load


@dataclass
class Tracker:
    """Questions injected and replies seen, counted live (the `on_message` hook)."""

    injected: list[tuple[float, int]] = field(default_factory=list)
    overlapping: int = 0
    _pending: collections.Counter[int] = field(default_factory=collections.Counter)
    _outstanding: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def on_reply(self, chat: int) -> None:
        with self._cond:
            if self._pending[chat] > 0:
                self._pending[chat] -= 1
                self._outstanding -= 1
                self._cond.notify_all()

    def inject(self, customers: Customers, chat: int, text: str) -> None:
        with self._cond:
            if self._pending[chat]:
                self.overlapping += 1
            self._pending[chat] += 1
            self._outstanding += 1
        sent = time.perf_counter()
        customers.ask(chat, text)
        self.injected.append((sent, chat))

    @property
    def outstanding(self) -> int:
        with self._cond:
            return self._outstanding

    def wait_below(self, limit: int, deadline: float) -> None:
        """Block until fewer than `limit` questions are unanswered (or until `deadline`)."""
        with self._cond:
            while self._outstanding >= limit:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def wait_answered(self, timeout: float) -> None:
        """Block until every question has a reply, at most `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._outstanding > 0:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)


@dataclass
class Injection:
    start: float
    end: float
    count: int
    max_lag_ms: float


def inject(
    customers: Customers,
    tracker: Tracker,
    chats: list[int],
    texts: Iterator[str],
    rate: float,
    duration: float,
    backlog: int | None = None,
) -> Injection:
    """Open loop: question i goes out at start + i / rate, whatever the replies.

    With `backlog`, injection also pauses while that many questions are unanswered, and the
    schedule restarts from the moment it resumes (lag is then not the generator's fault).
    """
    period, total = 1.0 / rate, round(rate * duration)
    start = time.perf_counter()
    end = start + duration
    anchor, anchor_count, count, max_lag = start, 0, 0, 0.0
    while count < total:
        planned = anchor + (count - anchor_count) * period
        now = time.perf_counter()
        if planned > now:
            time.sleep(planned - now)
        else:
            max_lag = max(max_lag, now - planned)
        if backlog is not None and tracker.outstanding >= backlog:
            tracker.wait_below(backlog, end)
            now = time.perf_counter()
            if now >= end:
                break
            if now > planned:
                anchor, anchor_count = now, count
        tracker.inject(customers, chats[count % len(chats)], next(texts))
        count += 1
    return Injection(start, max(time.perf_counter(), end), count, max_lag * 1000)


def warm_up(customers: Customers, texts: Iterator[str]) -> None:
    """Unmeasured questions (first encodes, allocator growth), each answered once."""
    tracker = Tracker()
    customers.listen(tracker.on_reply)
    chats = [WARMUP_CHAT + i for i in range(WARMUP_QUESTIONS)]
    inject(customers, tracker, chats, texts, rate=25, duration=WARMUP_QUESTIONS / 25)
    tracker.wait_answered(60)
    if tracker.outstanding:
        raise RuntimeError(f"warm-up: {tracker.outstanding} questions got no reply in 60 s")
    time.sleep(0.5)
    extra = [chat for _, chat in customers.replies() if chat >= WARMUP_CHAT]
    if len(extra) != WARMUP_QUESTIONS:
        raise RuntimeError(f"warm-up: {len(extra)} replies to {WARMUP_QUESTIONS} questions")


# ------------------------------------------------------------------ figures


@dataclass
class Matched:
    latencies_ms: list[float]
    reply_times: list[float]
    lost: int
    unmatched_replies: int


def match_replies(
    injected: list[tuple[float, int]], replies: list[tuple[float, int]], chats: set[int]
) -> Matched:
    """Pair each chat's replies with its questions, in order (a reply after its question)."""
    waiting: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)
    for sent, chat in injected:
        waiting[chat].append(sent)
    latencies, reply_times, unmatched = [], [], 0
    for arrived, chat in replies:
        if chat not in chats:
            continue
        queue = waiting[chat]
        if queue and queue[0] <= arrived:
            latencies.append((arrived - queue.popleft()) * 1000)
            reply_times.append(arrived)
        else:
            unmatched += 1
    lost = sum(len(queue) for queue in waiting.values())
    return Matched(latencies, reply_times, lost, unmatched)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile, in ms rounded to 0.1; None without values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 1)


def steady_throughput(reply_times: list[float], start: float, end: float) -> tuple[float, float]:
    """Replies per second between start + skip and end - skip; returns (rate, window s)."""
    skip = min(STEADY_SKIP, (end - start) / 5)
    low, high = start + skip, end - skip
    window = high - low
    inside = sum(1 for t in reply_times if low <= t < high)
    return (inside / window if window > 0 else 0.0), window


# ------------------------------------------------------------------ the run


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds at one moment: the bot's, its threads', the database server's (PostgreSQL),
    this generator's, the machine's."""

    bot: float
    threads: dict[int, float]
    database: float
    own: float
    busy: float

    @classmethod
    def take(cls, pid: int, database_pid: int | None) -> CpuSample:
        database = 0.0 if database_pid is None else tree_cpu(database_pid)
        return cls(
            tree_cpu(pid), thread_cpu(pid), database, time.process_time(), busy_cpu_seconds()
        )


@dataclass
class Measured:
    """What one measured run leaves behind, read once the bot has stopped."""

    tracker: Tracker
    injection: Injection
    replies: list[tuple[float, int]]
    before: CpuSample
    mid: CpuSample
    bot_pids: set[int]
    database_pid: int | None
    backlog_at_end: dict[str, int | None]
    typing: int
    typing_in_all: int
    polls: int | None


def run(args: argparse.Namespace) -> dict[str, Any]:
    rate: float = args.rate if args.rate is not None else (400.0 if args.max else 50.0)
    chat_count: int = args.chats or max(500, math.ceil(2.5 * rate))
    chats = [FIRST_CHAT + i for i in range(chat_count)]
    backlog = args.backlog if args.max else None
    if chat_count / rate < 2:
        say(
            f"warning: {chat_count} chats at {rate:g}/s: "
            f"a chat asks every {chat_count / rate:.2f} s (Telegram allows 1/s per chat)"
        )
    results: dict[str, Any] = {
        "channel": args.channel,
        "storage": args.storage,
        "workers": args.workers,
        "mode": "max" if args.max else "offered rate",
        "offered_rate": rate,
        "duration_s": args.duration,
        "chats": chat_count,
        "seconds_between_questions_per_chat": round(chat_count / rate, 2),
        "backlog_cap": backlog,
        "messages_per_second_cap": args.messages_per_second,
        "faq_threads": "config.yaml" if args.faq_threads is None else args.faq_threads,
        "model": args.model or "config.yaml",
    }
    measured = measure(args, results, chats, rate, backlog)
    results.update(figures(measured, set(chats), args.max))
    return results


def measure(
    args: argparse.Namespace,
    results: dict[str, Any],
    chats: list[int],
    rate: float,
    backlog: int | None,
) -> Measured:
    """Start the bot, warm it up, offer the load, wait for the replies, stop it; the bot's
    start-up time, memory and exit code go into `results`."""
    texts = questions(random.Random(args.seed), kb_phrasings())
    with (
        tempfile.TemporaryDirectory(prefix="minerdesk-load-") as folder,
        serving(args, Path(folder)) as (bot, customers),
    ):
        say(f"starting the bot (data dir {folder})")
        try:
            results["startup_s"] = round(bot.start(*bot.args), 1)
            say(f"bot ready in {results['startup_s']} s; warm-up: {WARMUP_QUESTIONS} questions")
            warm_up(customers, texts)

            tracker = Tracker()
            customers.listen(tracker.on_reply)
            log_start = len(customers.replies())
            polls_before = customers.polls()
            typing_before = customers.typing()
            bot.start_sampling()
            before = CpuSample.take(bot.pid, bot.database_pid)
            say(f"measuring: {results['mode']}, {rate:g}/s offered, {args.duration:g} s")
            injection = inject(customers, tracker, chats, texts, rate, args.duration, backlog)
            mid = CpuSample.take(bot.pid, bot.database_pid)
            backlog_at_end = bot_backlog(bot)
            backlog_at_end["messenger queue"] = customers.waiting_at_messenger()
            typing = customers.typing() - typing_before
            tracker.wait_answered(LOST_AFTER)
            # Over the same span as the replies counted below: injection and drain.
            typing_in_all = customers.typing() - typing_before
            bot.stop_sampling()
            polls_after = customers.polls()
            measured = Measured(
                tracker,
                injection,
                customers.replies()[log_start:],
                before,
                mid,
                set(process_tree(bot.pid)),
                bot.database_pid,
                backlog_at_end,
                typing,
                typing_in_all,
                None if polls_after is None or polls_before is None else polls_after - polls_before,
            )
            results["bot_peak_rss_mb"] = round(proc_status(bot.pid, "VmHWM"))
            results["bot_rss_max_measured_mb"] = round(bot.rss_max_mb)
            results["bot_cpu_s_total"] = round(tree_cpu(bot.pid), 1)
        finally:
            customers.listen(None)
            say("stopping the bot (SIGTERM)")
            code = bot.terminate()
        results["bot_exit_code"] = code
        if code != 0:
            say(f"the bot exited with {code}:\n{bot.tail()}")
    return measured


def figures(measured: Measured, chats: set[int], max_mode: bool) -> dict[str, Any]:
    """The replies' latencies and throughput, and where the CPU went, from one run."""
    injection, before, mid = measured.injection, measured.before, measured.mid
    matched = match_replies(measured.tracker.injected, measured.replies, chats)
    latencies = sorted(matched.latencies_ms)
    wall = injection.end - injection.start
    throughput, window = steady_throughput(matched.reply_times, injection.start, injection.end)
    bot_cpu, own_cpu = mid.bot - before.bot, mid.own - before.own
    database_cpu = mid.database - before.database
    return dict(
        injected=injection.count,
        injected_per_s=round(injection.count / wall, 1),
        generator_max_lag_ms=None if max_mode else round(injection.max_lag_ms, 1),
        completed=len(latencies),
        lost=matched.lost,
        overlapping=measured.tracker.overlapping,
        unmatched_replies=matched.unmatched_replies,
        throughput_per_s=round(throughput, 1),
        steady_window_s=round(window, 1),
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        max_ms=percentile(latencies, 100),
        bot_cpu_s_measured=round(bot_cpu, 1),
        bot_cpu_cores_measured=round(bot_cpu / wall, 2),
        bot_busiest_threads_cores=busiest_threads(
            measured.bot_pids, before.threads, mid.threads, wall
        ),
        database_server_cpu_cores=(
            round(database_cpu / wall, 2) if measured.database_pid is not None else None
        ),
        generator_cpu_s_measured=round(own_cpu, 1),
        other_processes_cpu_cores=round(
            max(0.0, (mid.busy - before.busy) - bot_cpu - database_cpu - own_cpu) / wall, 2
        ),
        unanswered_at_end=injection.count - sum(t < injection.end for t in matched.reply_times),
        bot_backlog_at_end=", ".join(
            f"{k} {v}" for k, v in measured.backlog_at_end.items() if v is not None
        ),
        typing_actions=measured.typing,
        typing_actions_per_reply=(
            round(measured.typing_in_all / len(latencies), 3) if latencies else None
        ),
        updates_per_get_updates=(
            round(injection.count / measured.polls, 1) if measured.polls else None
        ),
        cpu_count=os.cpu_count(),
        platform=platform.platform(),
        machine=machine(),
    )


LABELS = {
    "channel": "channel",
    "storage": "storage",
    "workers": "worker processes",
    "mode": "mode",
    "offered_rate": "offered rate (questions/s)",
    "duration_s": "measured for (s)",
    "chats": "chats (round-robin)",
    "seconds_between_questions_per_chat": "seconds between a chat's questions",
    "backlog_cap": "unanswered questions cap (--max)",
    "messages_per_second_cap": "bot's global send cap (messages/s)",
    "faq_threads": "faq.threads (model CPU threads; 0 = every core)",
    "model": "faq.model",
    "startup_s": "bot start-up (s)",
    "injected": "questions injected",
    "injected_per_s": "injected per second (achieved)",
    "generator_max_lag_ms": "generator's worst lateness (ms)",
    "completed": "completed (replied)",
    "lost": f"lost (no reply {LOST_AFTER:g} s after the end)",
    "overlapping": "questions sent while the chat's previous one was unanswered",
    "unmatched_replies": "replies matching no question",
    "throughput_per_s": "throughput, steady window (replies/s)",
    "steady_window_s": "steady window (s)",
    "p50_ms": "latency p50 (ms)",
    "p90_ms": "latency p90 (ms)",
    "p99_ms": "latency p99 (ms)",
    "max_ms": "latency max (ms)",
    "bot_peak_rss_mb": "bot peak RSS, VmHWM incl. start-up (MB)",
    "bot_rss_max_measured_mb": "bot max VmRSS while measuring (MB)",
    "bot_cpu_s_measured": "bot CPU while injecting (s)",
    "bot_cpu_cores_measured": "bot CPU while injecting (cores)",
    "bot_cpu_s_total": "bot CPU since start (s)",
    "bot_busiest_threads_cores": "bot's 3 busiest threads while injecting (cores)",
    "generator_cpu_s_measured": "emulator + generator CPU while injecting (s)",
    "database_server_cpu_cores": "PostgreSQL server's CPU while injecting (cores)",
    "other_processes_cpu_cores": "other processes' CPU while injecting (cores)",
    "unanswered_at_end": "unanswered when injection ended",
    "bot_backlog_at_end": "where they were: bot's inbox / outbox rows, messenger's queue",
    "typing_actions": "typing calls while injecting",
    "typing_actions_per_reply": "typing calls per reply",
    "updates_per_get_updates": "questions per getUpdates call",
    "bot_exit_code": "bot exit code after SIGTERM",
    "cpu_count": "os.cpu_count()",
    "platform": "platform",
    "machine": "machine",
}


def print_table(results: dict[str, Any]) -> None:
    print(
        f"note: the bot's global send cap is raised to {results['messages_per_second_cap']:g}"
        " messages/s (telegram.messages_per_second, whatsapp.messages_per_second): the"
        " emulators have no global cap, and with the defaults (Telegram's 30/s, WhatsApp's"
        " 20/s) the replies would be paced at those rates by design."
    )
    print("| figure | value |")
    print("| --- | --- |")
    for key, label in LABELS.items():
        value = results.get(key)
        if value is not None:
            print(f"| {label} | {value} |")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--channel",
        choices=("telegram", "whatsapp"),
        default="telegram",
        help="the customers' messenger (telegram)",
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the bot's database (sqlite; postgresql: a throwaway server)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="minerdesk run --workers N (1: in-process)"
    )
    parser.add_argument("--rate", type=float, help="questions offered per second (50; --max 400)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (30)")
    parser.add_argument("--chats", type=int, help="chats to spread over (max(500, 2.5 * rate))")
    parser.add_argument("--max", action="store_true", help="measure the sustained throughput")
    parser.add_argument(
        "--backlog", type=int, default=400, help="--max: cap on unanswered questions (400)"
    )
    parser.add_argument(
        "--messages-per-second", type=float, default=1000.0, help="bot's global send cap (1000)"
    )
    parser.add_argument(
        "--faq-threads", type=int, help="MINERDESK_FAQ__THREADS for the bot (config.yaml's)"
    )
    parser.add_argument(
        "--model", help="faq.model for the bot, e.g. all-MiniLM-L6-v2 (config.yaml's)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    if results["bot_exit_code"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
