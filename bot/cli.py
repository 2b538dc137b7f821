"""`minerdesk ...`: the command line operators, staff and tests use."""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, suppress
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from bot.channels import CHANNELS, ChannelKind
from bot.settings import Settings, SettingsError, kb_path, load_settings
from domain.tickets import TicketStatus
from storage.open import SQLITE_PREFIX, check_storage_url, open_storage, safe_url

if TYPE_CHECKING:
    from typing import TypeAlias

    from domain.faq_log import LoggedMiss
    from domain.tickets import Ticket
    from faq.holdout import Outcome
    from faq.matcher import LongMessages
    from faq.service import FaqResult
    from storage.sql import SqlStorage

logger = logging.getLogger("minerdesk")
# What argparse's add_subparsers returns (generic only for type checkers).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
# The longest period `stats` and `faq gaps` look back: a century covers any bot's history,
# while a period reaching back before year 1 is one a datetime cannot hold.
MAX_DAYS = 36_500

# What `tickets export` writes without --status: everything staff have seen.
EXPORTED_STATUSES = tuple(
    status for status in TicketStatus if status not in {TicketStatus.DRAFT, TicketStatus.CANCELLED}
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"minerdesk: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(settings, quiet=args.command != "run")
    from faq.encoder import ModelNotFound
    from faq.loader import KbInvalid
    from storage.base import DatabaseMissing, StorageUnavailable

    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except KbInvalid as exc:
        print(
            f"minerdesk: the knowledge base has errors (run `minerdesk faq validate`):\n{exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (_Fatal, ModelNotFound) as exc:
        print(f"minerdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseMissing as exc:
        made_by = (
            "`minerdesk run`, `chat` and `orders import` create it"
            if settings.storage_url.startswith(SQLITE_PREFIX)
            else "createdb makes it, `minerdesk db upgrade` its tables"
        )
        print(f"minerdesk: storage.url: {exc} (mistyped? {made_by})", file=sys.stderr)
        return EXIT_USAGE
    except StorageUnavailable as exc:
        print(f"minerdesk: storage.url: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _Fatal(Exception):
    """An error the user can fix, printed as one line without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minerdesk", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $MINERDESK_CONFIG or ./config.yaml)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serving(commands)
    _add_orders(commands)
    _add_stats(commands)
    _add_tickets(commands)
    _add_db(commands)
    faq = commands.add_parser(
        "faq", help="knowledge base tools", description="Knowledge base tools."
    ).add_subparsers(dest="faq_command", metavar="FAQ_COMMAND", required=True)
    _add_faq_editing(faq)
    _add_faq_measuring(faq)
    return parser


def _command(
    commands: Commands, name: str, summary: str, details: str = ""
) -> argparse.ArgumentParser:
    """A sub-command whose `--help` gives the summary and then the details."""
    return commands.add_parser(
        name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {details}".strip()
    )


def _add_serving(commands: Commands) -> None:
    _command(
        commands,
        "chat",
        "talk to the bot in this terminal",
        "Type a button's number to press it, or a file path to send a photo or video "
        "(several paths on one line are an album). State is kept in the database, so the "
        "next run resumes. Ctrl-D or Ctrl-C ends it.",
    ).set_defaults(handler=_chat)
    run = _command(
        commands,
        "run",
        "serve customers on every configured channel (Telegram, WhatsApp)",
        "Telegram's token comes from MINERDESK_TELEGRAM__TOKEN; WhatsApp serves when "
        "whatsapp.phone_number_id is set. SIGTERM or Ctrl-C finish the turns "
        "and deliveries under way (up to telegram.shutdown_grace_seconds) and exit 0.",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve with N worker processes on one database (PostgreSQL), restarted when "
        "one dies (default: 1, in this process)",
    )
    run.add_argument(
        "--channel",
        choices=tuple(CHANNELS),
        help="serve only this channel (default: every configured channel)",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates on telegram.webhook.url instead of long polling",
    )
    run.set_defaults(handler=_run)


def _add_orders(commands: Commands) -> None:
    orders = commands.add_parser(
        "orders", help="the shop's orders", description="The shop's orders."
    ).add_subparsers(dest="orders_command", metavar="ORDERS_COMMAND", required=True)
    import_orders = _command(
        orders,
        "import",
        "add or update orders from a CSV, JSON or JSON Lines file",
        "Idempotent: an unchanged order changes nothing. A bad record is reported as "
        "FILE:LINE: ... and the rest still imports (exit 1 if anything was reported). The "
        "running bot tells linked chats about status changes.",
    )
    import_orders.add_argument("file", type=Path, help="orders file (.csv, .json, .jsonl)")
    import_orders.set_defaults(handler=_orders_import)


def _add_stats(commands: Commands) -> None:
    stats = _command(
        commands,
        "stats",
        "handoff and FAQ figures: volume, reply times, ratings, answers, misses",
        "Handoffs per day, the share of conversations handed off, time to the first staff "
        "reply (median, p90), satisfaction; FAQ questions by decision and language, the "
        "most answered entries, the most missed questions, votes per entry.",
    )
    stats.add_argument("--days", type=_days, default=30, help="the period, ending now (default 30)")
    stats.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    stats.set_defaults(handler=_stats)


def _add_tickets(commands: Commands) -> None:
    tickets = commands.add_parser(
        "tickets", help="repair and second-return tickets", description="Tickets."
    ).add_subparsers(dest="tickets_command", metavar="TICKETS_COMMAND", required=True)
    export = _command(
        tickets,
        "export",
        "write tickets as CSV for the service centre",
        "UTF-8, one row per ticket, oldest first: id, kind, status, chat, times (ISO 8601 "
        "UTC), revision, the last staff decision and note, one column per answer and one "
        "media:<question> column per file question. Cells that would start a spreadsheet "
        "formula get a leading '. Does not load the model.",
    )
    export.add_argument(
        "--status",
        action="extend",
        nargs="+",
        choices=[status.value for status in TicketStatus],
        metavar="STATUS",
        help=(
            f"only tickets with these statuses ({', '.join(TicketStatus)}; "
            "default: all but draft and cancelled)"
        ),
    )
    export.add_argument(
        "--since",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="only tickets created on or after this day (in company.timezone)",
    )
    export.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="CSV file to write (default or -: stdout)",
    )
    export.set_defaults(handler=_tickets_export)


def _add_db(commands: Commands) -> None:
    db = commands.add_parser(
        "db", help="the database: upgrade, copy", description="The database (storage.url)."
    ).add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    _command(
        db,
        "upgrade",
        "apply the migrations storage.url's database has not had yet",
        "Prints the schema version before and after. Every command also does this when it "
        "opens the database; this one does only that, e.g. before starting several workers. "
        "Processes starting together migrate once (PostgreSQL: under an advisory lock).",
    ).set_defaults(handler=_db_upgrade)
    copy = _command(
        db,
        "copy",
        "copy every row of one database into another, e.g. SQLite to PostgreSQL",
        "Both URLs as storage.url takes them (sqlite:///PATH, postgresql://USER:PASSWORD@"
        "HOST:PORT/DATABASE). The source must be at the latest schema (`minerdesk db "
        "upgrade` it first) and is only read; the target is migrated, must hold no rows, and "
        "gets every table in one transaction (a failed copy leaves it empty), ids kept. Row "
        "counts are compared per table at the end. Stop the bot first.",
    )
    copy.add_argument(
        "--from", dest="source", required=True, type=_storage_url, metavar="URL", help="source"
    )
    copy.add_argument(
        "--to", dest="target", required=True, type=_storage_url, metavar="URL", help="target"
    )
    copy.set_defaults(handler=_db_copy)


def _storage_url(text: str) -> str:
    try:
        return check_storage_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_faq_editing(faq: Commands) -> None:
    """The commands staff use while editing the KB."""
    validate = _command(
        faq,
        "validate",
        "check the KB files; exit 1 on any error",
        "Prints file:line: error: ... for every problem (YAML, unknown keys, missing fields, "
        "duplicate ids, HTML Telegram would reject, unknown placeholders, near-identical "
        "phrasings of two entries) and warnings for missing translations.",
    )
    validate.add_argument(
        "path", nargs="?", type=Path, help="KB folder or file (default: faq.kb_path)"
    )
    validate.set_defaults(handler=_faq_validate)
    ask = _command(
        faq,
        "ask",
        "match a question (or one per stdin line)",
        "With --json: {decision, language, small_talk, entry_id, score, answer, suggestions}. "
        "Without TEXT: one question per stdin line, the model loaded once.",
    )
    ask.add_argument(
        "text",
        nargs="?",
        type=_utf8_text,
        help="the question; omitted: read one per line from stdin",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.set_defaults(handler=_faq_ask)
    gaps = _command(
        faq,
        "gaps",
        "group what the FAQ missed by meaning; print a YAML draft for the KB",
        "New alternates for existing entries and new entries for questions no entry covers, "
        "each with how often, in how many chats, why and in which languages it was missed.",
    )
    gaps.add_argument("--days", type=_days, default=30, help="the period, ending now (default 30)")
    gaps.add_argument(
        "--min-count",
        type=int,
        default=2,
        metavar="K",
        help="leave out groups asked fewer than K times (default 2)",
    )
    gaps.add_argument(
        "--output", "-o", default="-", metavar="FILE", help="YAML file to write (default: stdout)"
    )
    gaps.set_defaults(handler=_faq_gaps)
    _command(
        faq,
        "train",
        "fine-tune the English model on the KB's phrasings (CPU, minutes)",
        "Saves it to <data_dir>/models/tuned; the bot uses it from its next start, while "
        "faq.model is the model it was trained from. Delete the folder to go back.",
    ).set_defaults(handler=_faq_train)


def _add_faq_measuring(faq: Commands) -> None:
    """The commands that measure how well the FAQ answers."""
    check = _command(
        faq,
        "check",
        "ask labelled questions (YAML) and count, per language, right and wrong answers "
        "and out-of-scope questions answered",
        "The file is a YAML list of {text, entry_id} (entry_id null: no entry should answer). "
        "A malformed file or an unknown entry_id stops it before the model loads (exit 2).",
    )
    check.add_argument(
        "questions",
        type=Path,
        help="YAML list of {text, entry_id (null: out of scope), style (optional)}",
    )
    check.add_argument(
        "--targets",
        type=_targets,
        default=None,
        metavar="T1,T2,...",
        help="compare these values of faq.target_unanswered (each for every language) "
        "instead of the configured ones",
    )
    check.add_argument(
        "--long-messages",
        type=_designs,
        default=None,
        metavar="D1,D2,...",
        help="compare these ways of reading a message of several sentences (whole, "
        "question_backs, clauses_back, question_alone, best_part) instead of the shipped one",
    )
    check.add_argument(
        "--misses",
        action="store_true",
        help="also list the questions that went wrong, worst first: wrong answers, out-of-scope "
        "questions answered, wrong suggestions, fallbacks, right suggestions",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object per row")
    check.set_defaults(handler=_faq_check)
    bench = _command(
        faq,
        "bench",
        "accuracy and latency on a labelled train/test pair",
        "Thresholds are fitted on the training file only.",
    )
    bench.add_argument("--train", type=Path, required=True, help="CSV with columns text,category")
    bench.add_argument("--test", type=Path, required=True, help="CSV with columns text,category")
    bench.add_argument("--shots", type=int, default=None, help="use the first N texts per category")
    bench.add_argument("--oos-label", default=None, help="test category that means out of scope")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument(
        "--fine-tune",
        action="store_true",
        help="fine-tune the model on the training file first, as `faq train` does on the KB",
    )
    bench.set_defaults(handler=_faq_bench)


def _configure_logging(settings: Settings, quiet: bool) -> None:
    # Interactive commands keep stdout/stderr for the user; their log goes to a file.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(settings.data_dir / "minerdesk.log")]
    if not quiet:
        handlers.append(logging.StreamHandler(sys.stderr))
    else:
        warnings = logging.StreamHandler(sys.stderr)
        warnings.setLevel(logging.WARNING)
        handlers.append(warnings)
    logging.basicConfig(
        level=settings.logging.level,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def _faq_validate(args: argparse.Namespace, settings: Settings) -> int:
    from faq.loader import check_kb, kb_files

    path = args.path or kb_path(settings)
    kb, problems = check_kb(path, settings.company.placeholders())
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    if errors or kb is None:
        print(f"{errors} error(s) in {path}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(
        f"OK: {len(kb.entries)} entries in {len(kb_files(path))} file(s), "
        f"{sum(len(e.phrasings) for e in kb.entries)} phrasings, "
        f"{len(kb.off_topic)} off-topic questions, {len(kb.small_talk.kinds)} kinds of small talk"
    )
    return EXIT_OK


def _faq_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_faq

    service = build_faq(settings)
    skipped = 0
    try:
        questions = [(1, args.text)] if args.text is not None else _stdin_lines()
        for number, question in questions:
            if question is None:
                print(
                    f"minerdesk: stdin line {number}: not UTF-8 text, skipped",
                    file=sys.stderr,
                    flush=True,
                )
                skipped += 1
            elif question.strip():
                result = service.ask(question.rstrip("\r\n"))
                if args.json:
                    print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
                else:
                    _print_result(result)
    finally:
        service.close()
    return EXIT_PROBLEMS if skipped else EXIT_OK


def _utf8_text(text: str) -> str:
    # Python hands on an argument's undecodable bytes as lone surrogates.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("not UTF-8 text") from None
    return text


def _stdin_lines() -> Iterator[tuple[int, str | None]]:
    """Each line of stdin with its number; None for one that is not UTF-8, so one bad
    line does not end the batch."""
    for number, line in enumerate(sys.stdin.buffer, start=1):
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None


def _print_result(result: FaqResult) -> None:
    from bot.channels.console import to_plain_text

    best, language = result.match.best, result.language
    print(f"{result.decision.value} (score {best.score if best else 0:.3f}, {language})")
    if result.small_talk is not None:
        print(f"[{result.small_talk.kind}]")
        print(to_plain_text(result.small_talk.reply_in(language)))
    if result.matched_text is not None:
        print(f"small talk left out, matched as: {result.matched_text!r}")
    if result.match.off_topic is not None:
        print(f"off-topic: nearest to {result.match.off_topic!r} in the KB's off-topic questions")
    if result.entry:
        entry = result.entry
        print(f"[{entry.id}] {entry.question_in(language)}")
        print(to_plain_text(entry.answer_in(language)))
    for entry, candidate in zip(result.suggestions, result.match.candidates, strict=False):
        print(f"  ? [{entry.id}] {entry.question_in(language)} ({candidate.score:.3f})")


def _days(text: str) -> int:
    days = int(text) if text.isdecimal() else 0
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_DAYS} days, got {text!r}")
    return days


def _targets(text: str) -> list[float]:
    try:
        targets = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("expected numbers such as 0.75,0.85") from None
    if not all(0 < target < 1 for target in targets):
        raise argparse.ArgumentTypeError("each target must be between 0 and 1")
    return targets


def _designs(text: str) -> list[LongMessages]:
    from faq.matcher import LongMessages  # only when asked: the CLI starts without numpy

    try:
        return [LongMessages(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(LongMessages)}") from None


def _faq_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_faq
    from faq.holdout import QuestionsInvalid, evaluate_holdout, load_holdout, miss_line
    from faq.loader import load_kb
    from faq.service import TARGET_UNANSWERED

    try:
        questions = load_holdout(args.questions)
    except QuestionsInvalid as exc:
        raise _Fatal(str(exc)) from None
    # Checked before the model loads: a typo in an id should not cost a minute.
    known = {
        entry.id for entry in load_kb(kb_path(settings), settings.company.placeholders()).entries
    }
    unknown = sorted({q.expected for q in questions if q.expected is not None} - known)
    if unknown:
        raise _Fatal(f"{args.questions}: entry_id not in the KB: {', '.join(unknown)}")
    configured = build_faq(settings)
    try:
        # None: the configured targets (the shipped design); a value: that one (for every
        # language).
        for target, design in itertools.product(
            args.targets or [None], args.long_messages or [None]
        ):
            service = (
                configured
                if target is None and design is None
                else configured.variant(
                    None if target is None else dict.fromkeys(TARGET_UNANSWERED, target), design
                )
            )
            try:
                report = evaluate_holdout(service, questions)
            finally:
                if service is not configured:
                    service.close()
            misses = report.misses() if args.misses else []
            label = "configured" if target is None else f"{target:g}"
            for language, tally in report.by_language().items():
                in_language = [outcome for outcome in misses if outcome.language == language]
                if args.json:
                    row: dict[str, object] = {"target": target, "language": language, **tally}
                    if design is not None:
                        row = {"long_messages": str(design), **row}
                    if args.misses:
                        row["misses"] = [_miss_as_json(outcome) for outcome in in_language]
                    print(json.dumps(row, ensure_ascii=False), flush=True)
                else:
                    _print_tally(label if design is None else f"{label}, {design}", language, tally)
                    for outcome in in_language:
                        print(miss_line(outcome), flush=True)
    finally:
        configured.close()
    return EXIT_OK


def _miss_as_json(outcome: Outcome) -> dict[str, object]:
    return {
        "kind": outcome.miss,
        "text": outcome.text,
        "expected": outcome.expected,
        "got": outcome.got,
        "score": outcome.score,
    }


def _print_tally(target: str, language: str, tally: dict[str, int]) -> None:
    def share(count: int, of: int) -> str:
        return f"{count} ({count / of:.1%})" if of else "0"

    in_scope, out_of_scope = tally["in_scope"], tally["out_of_scope"]
    answered_out_of_scope = share(tally["out_of_scope_answered"], out_of_scope)
    print(
        f"target {target}, {language}: {in_scope} in scope: "
        f"correct {share(tally['correct'], in_scope)}, "
        f"wrong {share(tally['wrong'], in_scope)}, "
        f"right entry suggested {share(tally['suggested_right'], in_scope)}, "
        f"wrong entries suggested {share(tally['suggested_wrong'], in_scope)}, "
        f"fallback {share(tally['fallback'], in_scope)}; "
        f"{out_of_scope} out of scope: answered {answered_out_of_scope}",
        flush=True,
    )


def _faq_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from faq.gaps import Gap, NewEntry, entry_files, find_gaps, gaps_yaml

    if args.min_count < 1:
        raise _Fatal("--min-count: expected 1 or more")
    until = datetime.now(UTC)
    since = until - timedelta(days=args.days)

    async def read() -> list[LoggedMiss]:
        async with open_storage(settings.storage_url, create=False) as storage:
            return await storage.misses(since, until)

    misses = asyncio.run(read())
    gaps: list[Gap] = []
    files: dict[str, str] = {}
    if misses:  # else nothing to group, and no need to load the model
        from bot.app import build_faq

        service = build_faq(settings)
        try:
            gaps = find_gaps(misses, service, args.min_count)
        finally:
            service.close()
        files = entry_files(kb_path(settings))
    drafts = sum(isinstance(gap, NewEntry) for gap in gaps)
    header = [
        f"minerdesk faq gaps: {len(misses)} misses from {since:%Y-%m-%d} to {until:%Y-%m-%d} "
        f"(UTC), grouped by meaning; groups asked fewer than {args.min_count} times left out.",
        f"Entries with new alternates: {len(gaps) - drafts}. New entries drafted: {drafts}.",
        "alternates: add each list to the `alternates` of the entry it names (in the file given);",
        "translations: add each list to that translation's `alternates` of the entry it names.",
        "entries: write each answer and the alternates a comment asks for, paste the entries",
        "under `entries:` in a KB file, then run `minerdesk faq validate`.",
        "",
    ]
    text = gaps_yaml(gaps, header, files)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        path = Path(args.output)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _Fatal(f"{path}: {exc.strerror or exc}") from None
        print(
            f"{path}: {len(gaps) - drafts} entries with new alternates, {drafts} new",
            file=sys.stderr,
        )
    logger.info("faq.gaps misses=%d gaps=%d new_entries=%d", len(misses), len(gaps), drafts)
    return EXIT_OK


def _faq_bench(args: argparse.Namespace, settings: Settings) -> int:
    from faq.bench import evaluate, phrasings_by_category, read_examples
    from faq.encoder import Encoder
    from faq.matcher import Matcher

    try:
        train, test = read_examples(args.train), read_examples(args.test)
    except (OSError, ValueError) as exc:
        raise _Fatal(str(exc)) from None
    kb = phrasings_by_category(train, args.shots, args.oos_label)
    with tempfile.TemporaryDirectory() as folder:
        if args.fine_tune:
            from faq.train import fine_tune

            tuned = Path(folder) / "model"
            report = fine_tune(settings.faq.model, kb, tuned, threads=settings.faq.threads)
            print(f"fine-tuned in {report.seconds:.0f} s ({report.steps} steps)", file=sys.stderr)
            # A throw-away model: its vectors are not worth caching.
            encoder = Encoder(str(tuned), None, settings.faq.threads)
        else:
            encoder = Encoder(settings.faq.model, settings.cache_dir, settings.faq.threads)
        matcher = Matcher(encoder, kb)
        figures = evaluate(matcher.match, test, args.oos_label)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>18}: {value}")
    return EXIT_OK


def _faq_train(args: argparse.Namespace, settings: Settings) -> int:
    from faq.loader import load_kb
    from faq.train import fine_tune

    kb = load_kb(kb_path(settings), settings.company.placeholders())
    out = settings.tuned_model_dir
    print(f"fine-tuning on {kb_path(settings)} (CPU; minutes)...", file=sys.stderr, flush=True)
    report = fine_tune(settings.faq.model, kb.phrasings(), out, threads=settings.faq.threads)
    print(
        f"fine-tuned on {report.phrasings} phrasings of {report.entries} entries in "
        f"{report.seconds:.0f} s: {out}\n"
        "The bot uses it from its next start. Delete that folder to go back to the base model."
    )
    return EXIT_OK


def _orders_import(args: argparse.Namespace, settings: Settings) -> int:
    from domain.order_feed import OrdersFileError, read_orders_file

    try:
        parsed = read_orders_file(args.file)
    except OrdersFileError as exc:
        raise _Fatal(str(exc)) from None

    async def save() -> Counter[str]:
        outcomes: Counter[str] = Counter()
        async with open_storage(settings.storage_url) as storage:
            for _line, order in parsed.orders:
                result = await storage.save_order(order, datetime.now(UTC))
                outcome = "created" if result.created else "updated" if result.changed else "same"
                outcomes[outcome] += 1
        return outcomes

    outcomes = asyncio.run(save())
    for problem in parsed.problems:
        print(f"{args.file}:{problem.line}: {problem.message}", file=sys.stderr)
    print(
        f"{args.file}: {outcomes['created']} created, {outcomes['updated']} updated, "
        f"{outcomes['same']} unchanged, {len(parsed.problems)} problem(s)"
    )
    logger.info(
        "orders.imported created=%d updated=%d unchanged=%d problems=%d",
        outcomes["created"],
        outcomes["updated"],
        outcomes["same"],
        len(parsed.problems),
    )
    return EXIT_PROBLEMS if parsed.problems else EXIT_OK


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from bot.stats import faq_figures, format_faq_figures, format_figures, handoff_figures
    from faq.loader import check_kb

    async def read() -> dict[str, object]:
        async with open_storage(settings.storage_url, create=False) as storage:
            since = datetime.now(UTC) - timedelta(days=args.days)
            handoffs = await storage.handoff_stats(since)
            faq = await storage.faq_stats(since)
        # The entries' questions only: a KB with errors leaves the ids to speak for them.
        kb, _problems = check_kb(kb_path(settings), settings.company.placeholders())
        questions = {entry.id: entry.question for entry in kb.entries} if kb else {}
        return {**handoff_figures(handoffs, args.days), "faq": faq_figures(faq, questions)}

    figures = asyncio.run(read())
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        faq = figures["faq"]
        assert isinstance(faq, dict)
        print(format_figures(figures) + "\n\n" + format_faq_figures(faq, args.days))
    return EXIT_OK


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _start_of_day(day: date, zone: tzinfo) -> datetime | None:
    """When `day` begins in `zone`, in UTC; None (no bound) when that is before 0001-01-01
    UTC, the first moment a datetime holds (east of UTC, 0001-01-01 starts a day earlier)."""
    try:
        return datetime.combine(day, time(), zone).astimezone(UTC)
    except OverflowError:
        return None


def _tickets_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tickets_export import write_tickets_csv
    from handlers.tickets import EXPORT_ANSWER_ORDER

    statuses = [TicketStatus(value) for value in args.status or EXPORTED_STATUSES]
    since = None if args.since is None else _start_of_day(args.since, settings.company.zone)

    async def read() -> list[Ticket]:
        async with open_storage(settings.storage_url, create=False) as storage:
            return await storage.tickets(since, statuses)

    tickets = asyncio.run(read())
    if args.output == "-":
        if isinstance(sys.stdout, io.TextIOWrapper):
            # The csv module ends rows with \r\n itself; customers write in any script.
            sys.stdout.reconfigure(encoding="utf-8", newline="")
        written = write_tickets_csv(tickets, sys.stdout, EXPORT_ANSWER_ORDER)
    else:
        path = Path(args.output)
        try:
            with path.open("w", encoding="utf-8", newline="") as out:
                written = write_tickets_csv(tickets, out, EXPORT_ANSWER_ORDER)
        except OSError as exc:
            raise _Fatal(f"{path}: {exc.strerror or exc}") from None
        print(f"{path}: {written} ticket(s) written", file=sys.stderr)
    logger.info("tickets.exported count=%d", written)
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async def upgrade() -> tuple[int, int, int]:
        async with open_storage(settings.storage_url, migrate=False) as storage:
            before = await storage.schema_version()
            return before, await storage.upgrade(), len(storage.MIGRATIONS)

    before, after, latest = asyncio.run(upgrade())
    where = safe_url(settings.storage_url)
    if before == after:
        print(f"{where}: schema version {after} of {latest}, nothing to do")
    else:
        print(f"{where}: schema version {before} -> {after} of {latest}")
    return EXIT_OK


def _db_copy(args: argparse.Namespace, settings: Settings) -> int:
    from storage.base import DatabaseMissing, StorageUnavailable
    from storage.copy import CopyRefused, copy_rows

    def copied(table: str, rows: int) -> None:
        print(f"{table}: {rows}", flush=True)

    async def copy() -> dict[str, int]:
        async with AsyncExitStack() as stack:

            async def opened(option: str, url: str, *, target: bool) -> SqlStorage:
                # The source is only read; the target gets the schema if it has none.
                try:
                    return await stack.enter_async_context(
                        open_storage(url, create=target, migrate=target)
                    )
                except (DatabaseMissing, StorageUnavailable) as exc:
                    raise _Fatal(f"{option}: {exc}") from None

            source = await opened("--from", args.source, target=False)
            target = await opened("--to", args.target, target=True)
            try:
                return await copy_rows(source, target, progress=copied)
            except CopyRefused as exc:
                raise _Fatal(f"db copy: {exc}") from None

    counts = asyncio.run(copy())
    print(
        f"{sum(counts.values())} rows in {len(counts)} tables copied from "
        f"{safe_url(args.source)} to {safe_url(args.target)}; row counts match"
    )
    logger.info("db.copied rows=%d tables=%d", sum(counts.values()), len(counts))
    return EXIT_OK


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from bot.channels.console import ConsoleChannel

    async def converse() -> None:
        async with build_app(settings) as app:
            channel = ConsoleChannel(app, sys.stdin, sys.stdout, prompt=sys.stdin.isatty())
            await channel.run()

    asyncio.run(converse())
    return EXIT_OK


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of workers, 1 or more: {text!r}")
    return int(text)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    kinds = _channels_to_run(args, settings)
    if args.webhook and "telegram" not in (kind.name for kind in kinds):
        raise _Fatal("--webhook is Telegram's: WhatsApp always receives on its webhook")
    if args.webhook and settings.telegram.webhook.url is None:
        raise _Fatal(
            "telegram.webhook.url: not set; give the public HTTPS address Telegram should "
            "post to (or run without --webhook for long polling)"
        )
    if args.workers > 1:
        return _supervise(args, settings)
    from bot.api import serve_orders_api
    from bot.app import build_app
    from bot.media import CrossChannelFiles
    from bot.runtime import CannotServe, Runtime

    async def serve() -> None:
        async with build_app(settings) as app, AsyncExitStack() as channels:
            # A rep's Telegram photo for a WhatsApp customer, a WhatsApp customer's video
            # for the staff topic: each fetched by its own channel, uploaded by the other.
            files = CrossChannelFiles()
            running = [
                await channels.enter_async_context(
                    kind.opener()(app, files.open, webhook=args.webhook)
                )
                for kind in kinds
            ]
            for channel in running:
                files.serve(channel.name, channel.fetcher)
            api = settings.orders.api
            serving_api = None
            if api.token is not None:
                serving_api = asyncio.create_task(
                    serve_orders_api(
                        app.storage,
                        api.token.get_secret_value(),
                        app.orders_changed,
                        api.listen_host,
                        api.listen_port,
                    )
                )
            try:
                runtime = Runtime(app, running)
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, runtime.stop)
                await runtime.run()
            finally:
                if serving_api is not None:
                    serving_api.cancel()
                    with suppress(asyncio.CancelledError):
                        await serving_api

    try:
        asyncio.run(serve())
    except CannotServe as exc:
        raise _Fatal(str(exc)) from None
    return EXIT_OK


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """`run --workers N`: N processes of the same `run`, each one worker."""
    from bot.supervisor import Supervisor, WorkersKeepDying

    if settings.storage_url.startswith(SQLITE_PREFIX):
        logger.warning(
            "supervisor.sqlite workers=%d: they take turns writing one file; PostgreSQL is "
            "the backend for several workers",
            args.workers,
        )
    command = [sys.executable, "-m", "bot"]
    if args.config is not None:
        command += ["--config", str(args.config)]
    command.append("run")
    if args.channel is not None:
        command += ["--channel", args.channel]
    if args.webhook:
        command.append("--webhook")
    try:
        return Supervisor(command, args.workers).run()
    except WorkersKeepDying as exc:
        raise _Fatal(str(exc)) from None


def _channels_to_run(args: argparse.Namespace, settings: Settings) -> list[ChannelKind]:
    """The channels `run` starts: the one `--channel` names, else every configured one."""
    if args.channel is not None:
        kind = CHANNELS[args.channel]
        if not kind.configured(settings):
            raise _Fatal(kind.missing)
        return [kind]
    configured = [kind for kind in CHANNELS.values() if kind.configured(settings)]
    if not configured:
        raise _Fatal(
            "no channel configured: export MINERDESK_TELEGRAM__TOKEN (from @BotFather) or set "
            "whatsapp.phone_number_id and its secrets; or try the bot locally with "
            "`minerdesk chat`"
        )
    return configured


if __name__ == "__main__":
    sys.exit(main())
