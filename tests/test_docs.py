"""The docs tell the truth: every command, option, config key, environment variable, bot
command, log event and Makefile target they name exists, and every relative link resolves.

Claims are read from code, where the docs name things (inline `code` and fenced blocks); prose
is not parsed. Nothing loads a model or starts a process: the CLI's argparse parser and the
settings model are walked in memory.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import types
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.cli import _parser
from bot.settings import CONFIG_ENV, ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "docs" / "benchmarks-history.md"
OPERATORS = ROOT / "docs" / "operators.md"
ALL_DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
# The history records what was true on its day: its links are checked, its claims are not.
DOCS = [doc for doc in ALL_DOCS if doc != HISTORY]

# Dotted names ending so are files (`handoff.mmd`, `orders.csv`), not keys or log events.
FILE_EXTENSIONS = frozenset(
    {"csv", "db", "env", "ini", "json", "jsonl", "log", "md", "mmd", "po", "pot", "py", "sh"}
    | {"toml", "txt", "yaml", "yml"}
)
# @BotFather's commands, which the Telegram set-up names; not the bot's own.
BOTFATHER_COMMANDS = frozenset({"newbot", "setdescription", "setuserpic"})
# Where a shell command starts: the start of the code, or after a pipe, `;`, `&&` or `$(`.
COMMAND_STARTS = ("|", ";", "&&", "$(")
SHELL_STOPS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "2>&1", "\\"})
# A command word as the docs write it; anything else (`CMD`, `<sub>`, `...`) is a placeholder.
COMMAND_WORD = re.compile(r"[a-z][a-z0-9_-]*(?:\|[a-z][a-z0-9_-]*)*")
DOTTED = re.compile(r"[a-z][a-z0-9_]*(?:\.(?:[a-z0-9_]+|\*))+")
LOG_LINE = re.compile(r"([a-z_]+)\.([a-z_]+)(?:\s+[a-z_]+=.*)?")
BOT_COMMAND = re.compile(r"/([a-z_]+)(?:@\w+)?(?:\s.*)?")
ENV_VAR = re.compile(r"\b" + ENV_PREFIX + r"[A-Z0-9_]*[A-Z0-9]")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
FENCE = re.compile(r"\s*(`{3,}|~{3,})")
LOGGER_EVENT = re.compile(r"logger\.\w+\(\s*[\"']([a-z_]+\.[a-z_]+)[ \"']")


@dataclass(frozen=True)
class Code:
    """A piece of code in a doc: an inline span, or one line of a fenced block."""

    doc: Path
    line: int
    text: str
    inline: bool

    def where(self) -> str:
        return f"{_name(self.doc)}:{self.line}: `{self.text.strip()}`"


def _name(doc: Path) -> str:
    return str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else doc.name


def code_in(doc: Path) -> Iterator[Code]:
    """Inline spans, and the lines of fenced blocks with a shell's `\\` continuations joined."""
    fence: str | None = None
    continued: tuple[int, str] | None = None
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1).startswith(fence):
                fence = None
            elif line.rstrip().endswith("\\"):
                start, text = continued or (number, "")
                continued = start, text + line.rstrip()[:-1] + " "
            else:
                start, text = continued or (number, "")
                continued = None
                yield Code(doc, start, text + line, inline=False)
        elif opening:
            fence = opening.group(1)
        else:
            for span in INLINE_CODE.finditer(line):
                yield Code(doc, number, span.group(2).strip(), inline=True)


def prose_lines(doc: Path) -> Iterator[tuple[int, str]]:
    """The lines outside fenced blocks."""
    fence: str | None = None
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1).startswith(fence):
                fence = None
        elif opening:
            fence = opening.group(1)
        else:
            yield number, line


def _all_code(docs: Sequence[Path]) -> Iterator[Code]:
    for doc in docs:
        yield from code_in(doc)


# --- commands and options ---------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


@functools.cache
def command_groups() -> frozenset[str]:
    """The commands that have commands of their own: faq, orders, tickets."""
    commands = _subcommands(_parser()) or {}
    return frozenset(name for name, parser in commands.items() if _subcommands(parser))


def _invocations(code: Code, program: str) -> Iterator[list[str]]:
    """The words after each `program` that starts a shell command in `code`."""
    text = code.text
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    if code.inline and program == "minerdesk" and first in command_groups() and " " in text:
        # "`faq gaps`", "`orders import`": a command named without the program.
        text = f"minerdesk {text}"
    for match in re.finditer(rf"(?<![\w.-]){program}(?=[ \t])", text):
        before = text[: match.start()]
        starts = before.endswith("/") or not before.strip()
        if not (starts or before.rstrip().endswith(COMMAND_STARTS)):
            continue  # `docker run --name minerdesk`, `docker build -t minerdesk .`
        rest = text[match.end() :]
        try:
            words = shlex.split(rest, comments=not code.inline)
        except ValueError:  # an unpaired quote: take the words as they are
            words = rest.split()
        command: list[str] = []
        for word in words:
            if word in SHELL_STOPS or word.startswith("`"):
                break
            command.append(word.strip("[]"))
        yield [word for word in command if word]


@dataclass
class Walk:
    """Where the words of one invocation led: the command path, the parsers of the command
    (several for `faq validate|ask`), whether a command was reached, and what is false."""

    path: list[str]
    parsers: list[argparse.ArgumentParser]
    reached: bool
    problems: list[str]


def _check_option(code: Code, walk: Walk, word: str) -> int:
    """Report an option the command lacks; how many words after it are its value (-1: every
    word up to the next option)."""
    option = word.split("=", 1)[0]
    values = 0
    for parser in walk.parsers:
        action = parser._option_string_actions.get(option)
        if action is None:
            walk.problems.append(f"{code.where()}: `{' '.join(walk.path)}` has no {option}")
        elif action.nargs != 0 and "=" not in word:
            values = -1 if action.nargs in ("+", "*") else 1
    return values


def walk_command(code: Code, words: list[str], root: argparse.ArgumentParser) -> Walk:
    walk = Walk(["minerdesk"], [root], reached=True, problems=[])
    values = 0
    for word in words:
        if word.startswith("-") and len(word) > 1:
            values = _check_option(code, walk, word)
            continue
        if values:  # the option's value, not a command (-1: up to the next option)
            if values > 0:
                values -= 1
            continue
        children = [_subcommands(parser) for parser in walk.parsers]
        if any(choices is None for choices in children):
            continue  # a positional argument of a command
        if not COMMAND_WORD.fullmatch(word):
            walk.reached = False  # a placeholder such as CMD: nothing more to check
            break
        found: list[argparse.ArgumentParser] = []
        for name in word.split("|"):
            for choices in children:
                assert choices is not None
                if name in choices:
                    found.append(choices[name])
                else:
                    walk.problems.append(
                        f"{code.where()}: `{' '.join(walk.path)}` has no command {name!r} "
                        f"(it has: {', '.join(sorted(choices))})"
                    )
        if not found:
            walk.reached = False
            break
        walk.path.append(word)
        walk.parsers = found
    walk.reached = walk.reached and not walk.problems and len(walk.path) > 1
    return walk


def command_problems(code: Code, root: argparse.ArgumentParser) -> list[str]:
    return [
        p
        for words in _invocations(code, "minerdesk")
        for p in walk_command(code, words, root).problems
    ]


def option_problems(doc: Path, root: argparse.ArgumentParser) -> list[str]:
    """An option in code of its own (`--days N`) belongs to the last command named before it
    in the same paragraph, list item or table row (`minerdesk stats` ... `--days N`)."""
    problems: list[str] = []
    last: Walk | None = None
    for number, line in prose_lines(doc):
        if not line.strip() or re.match(r"\s*(#|\||[-*] |\d+\. )", line):
            last = None
        for span in INLINE_CODE.finditer(line):
            code = Code(doc, number, span.group(2).strip(), inline=True)
            walks = [walk_command(code, words, root) for words in _invocations(code, "minerdesk")]
            if walks:
                last = walks[-1] if walks[-1].reached else None
            elif last is not None and code.text.startswith("--"):
                _check_option(code, last, code.text.split()[0])
                problems += last.problems
                last.problems = []
    return problems


# --- config keys and environment variables -------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The type under `X | None` and `Annotated[X, ...]`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def key_problem(key: str) -> str | None:
    """Why `key` (dotted, `*` for any key of a section) is not a setting; None if it is.

    A mapping's keys count when its key type allows them (a Literal such as the languages)
    or, for free-form keys, when the default has them (`company.warranty_check_urls.bitmain`).
    """
    annotation: Any = Settings
    field: FieldInfo | None = None
    parts = key.split(".")
    for depth, part in enumerate(parts):
        so_far = ".".join(parts[:depth])
        if _is_model(annotation):
            if part == "*" and depth == len(parts) - 1:
                return None
            fields = annotation.model_fields
            if part not in fields:
                where = f"{so_far} has" if so_far else "the settings have"
                return f"{where} no key {part!r} (known: {', '.join(fields)})"
            field = fields[part]
            annotation = _unwrap(field.annotation)
        elif get_origin(annotation) is dict and field is not None:
            key_type = _unwrap(get_args(annotation)[0])
            if get_origin(key_type) is Literal:
                allowed = {str(value) for value in get_args(key_type)}
            else:
                allowed = set(field.get_default(call_default_factory=True) or {})
            if part not in allowed:
                return f"{so_far} has no key {part!r} (known: {', '.join(sorted(allowed))})"
            annotation = _unwrap(get_args(annotation)[1])
            field = None
        else:
            return f"{so_far} has no keys under it"
    return None


def setting_leaves(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every key that holds a value (a mapping is one value)."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = _unwrap(field.annotation)
        if _is_model(annotation):
            keys += setting_leaves(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


@functools.cache
def log_events() -> frozenset[str]:
    """The event names the code logs: `logger.info("faq.reloaded ...")`."""
    events: set[str] = set()
    for package in ("bot", "handlers", "faq", "storage", "domain"):
        for source in (ROOT / package).rglob("*.py"):
            events.update(LOGGER_EVENT.findall(source.read_text(encoding="utf-8")))
    return frozenset(events)


SECTIONS = frozenset(Settings.model_fields)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def _is_file_name(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in FILE_EXTENSIONS


def dotted_problems(code: Code) -> list[str]:
    """Dotted names in code under a settings section (`handoff.staff_chat_id`) are keys,
    unless they are a log event, a file or a module of ours; a call (`storage.receive(...)`)
    is code. A whole span shaped like a log line (`delivery.failed chat=...`) whose namespace
    the code logs under must name an event the code logs."""
    problems: list[str] = []
    for match in re.finditer(r"[\w.*/-]+", code.text):
        name = match.group().rstrip(".")
        if "/" in name or not DOTTED.fullmatch(name) or name.split(".", 1)[0] not in SECTIONS:
            continue
        if code.text[match.start() + len(name) :].startswith("("):
            continue
        if name in log_events() or _is_file_name(name) or _is_module(name):
            continue
        problem = key_problem(name)
        if problem is not None:
            problems.append(f"{code.where()}: {name}: {problem}")
    log_line = LOG_LINE.fullmatch(code.text) if code.inline else None
    namespaces = {event.split(".", 1)[0] for event in log_events()}
    if log_line and log_line.group(1) not in SECTIONS and log_line.group(1) in namespaces:
        event = f"{log_line.group(1)}.{log_line.group(2)}"
        if event not in log_events() and not _is_file_name(event):
            problems.append(f"{code.where()}: the code logs no event {event}")
    return problems


def env_problems(doc: Path) -> list[str]:
    problems: list[str] = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for match in ENV_VAR.finditer(line):
            variable = match.group()
            if variable == CONFIG_ENV:
                continue
            key = ".".join(variable.removeprefix(ENV_PREFIX).lower().split("__"))
            problem = key_problem(key)
            if problem is not None:
                problems.append(f"{_name(doc)}:{number}: {variable} -> {key}: {problem}")
    return problems


# --- bot commands, Makefile targets, links --------------------------------------------------


def bot_commands() -> frozenset[str]:
    """What customers and staff can send: the router's commands and the staff chat's."""
    from handlers import faq_admin, handoff
    from handlers.routes import build_router

    return frozenset([*build_router().commands, *handoff.STAFF_COMMANDS, *faq_admin.COMMANDS])


def bot_command_problems(code: Code, known: frozenset[str]) -> list[str]:
    match = BOT_COMMAND.fullmatch(code.text) if code.inline else None
    if match is None or match.group(1) in known | BOTFATHER_COMMANDS:
        return []
    return [f"{code.where()}: the bot has no command /{match.group(1)}"]


def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


def make_problems(code: Code, targets: frozenset[str]) -> list[str]:
    problems: list[str] = []
    for words in _invocations(code, "make"):
        target = next((word for word in words if not word.startswith("-")), None)
        if target is not None and "=" not in target and target not in targets:
            problems.append(f"{code.where()}: the Makefile has no target {target!r}")
    return problems


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for _number, line in prose_lines(doc):
        heading = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if heading is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def link_problems(doc: Path) -> list[str]:
    problems: list[str] = []
    for number, line in prose_lines(doc):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (doc.parent / path_part).resolve() if path_part else doc
            where = f"{_name(doc)}:{number}: ({target})"
            if not path.exists():
                problems.append(f"{where}: no file {path_part}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.append(f"{where}: {_name(path)} has no heading #{anchor}")
    return problems


# --- the tests ---------------------------------------------------------------------------


def _report(problems: list[str]) -> str:
    return "False claims in the docs:\n" + "\n".join(problems)


def test_the_docs_are_found() -> None:
    names = {_name(doc) for doc in ALL_DOCS}
    assert {"README.md", "BENCHMARKS.md", "docs/operators.md", "docs/staff.md"} <= names
    assert {"docs/architecture.md", "docs/benchmarks-history.md"} <= names


def test_every_command_and_option_named_exists() -> None:
    root = _parser()
    problems = [p for code in _all_code(DOCS) for p in command_problems(code, root)]
    problems += [p for doc in DOCS for p in option_problems(doc, root)]
    assert not problems, _report(problems)


def test_every_config_key_and_log_event_named_exists() -> None:
    problems = [p for code in _all_code(DOCS) for p in dotted_problems(code)]
    assert not problems, _report(problems)


def test_every_environment_variable_names_a_key() -> None:
    problems = [p for doc in DOCS for p in env_problems(doc)]
    assert not problems, _report(problems)


def test_every_bot_command_named_exists() -> None:
    known = bot_commands()
    problems = [p for code in _all_code(DOCS) for p in bot_command_problems(code, known)]
    assert not problems, _report(problems)


def test_every_make_target_named_exists() -> None:
    targets = make_targets()
    problems = [p for code in _all_code(DOCS) for p in make_problems(code, targets)]
    assert not problems, _report(problems)


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = [p for doc in ALL_DOCS for p in link_problems(doc)]
    assert not problems, _report(problems)


def test_the_operators_guide_lists_every_setting() -> None:
    text = OPERATORS.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", text, re.MULTILINE))
    missing = [key for key in setting_leaves() if key not in listed]
    assert not missing, "docs/operators.md's key table lacks: " + ", ".join(missing)


FALSE_CLAIMS = """\
# Title

Run `minerdesk faq nope`, `minerdesk stats --nope 3` and `faq gapz`; `minerdesk CMD --help` is fine.
`minerdesk faq gaps` groups the misses (`--days N`, `--min-count K`, `--since DAY`).

| `minerdesk stats` | the figures |
| `--since` | another row: no command to check it against |

- `minerdesk stats` in one list item,
- `--since` in the next: not checked against it.

```sh
.venv/bin/minerdesk tickets export --since 2026-01-01 --bogus | head   # `minerdesk chat`
docker run --name minerdesk -v x:/data minerdesk   # an image, not the command
docker run -e X=1 \\
  minerdesk minerdesk nope   # the image's command: docker's argument, not checked
make nope
```

Keys: `handoff.staff_chat`, `company.warranty_check_urls.bitmain`,
`company.warranty_check_urls.acme`, `faq.target_unanswered.xx`, `faq.target_unanswered.ru`,
`orders.*`, `faq/service.py`, `handoff.mmd`, `storage.receive(...)`, `{support_email}`,
`faq.reloaded`, `delivery.nope chat=1`, `make help`.
Env: MINERDESK_HANDOFF__NOPE and MINERDESK_TELEGRAM__TOKEN and MINERDESK_CONFIG.
Bot: `/nope`, `/reload@SomeBot`, `/newbot`, `/telegram/webhook`.
Links: [a](missing.md), [b](#nope), [c](#title), [d](https://example.com/#x).
"""


def test_the_checks_catch_false_claims(tmp_path: Path) -> None:
    doc = tmp_path / "claims.md"
    doc.write_text(FALSE_CLAIMS, encoding="utf-8")
    codes = list(code_in(doc))
    root, known, targets = _parser(), bot_commands(), make_targets()
    found = [
        *(p for code in codes for p in command_problems(code, root)),
        *option_problems(doc, root),
        *(p for code in codes for p in dotted_problems(code)),
        *env_problems(doc),
        *(p for code in codes for p in bot_command_problems(code, known)),
        *(p for code in codes for p in make_problems(code, targets)),
        *link_problems(doc),
    ]
    false_claims = [
        "`minerdesk faq` has no command 'nope'",
        "`minerdesk stats` has no --nope",
        "`minerdesk faq` has no command 'gapz'",
        "`minerdesk tickets export` has no --bogus",
        "`--since DAY`: `minerdesk faq gaps` has no --since",
        "the Makefile has no target 'nope'",
        "handoff has no key 'staff_chat'",
        "company.warranty_check_urls has no key 'acme'",
        "faq.target_unanswered has no key 'xx'",
        "the code logs no event delivery.nope",
        "MINERDESK_HANDOFF__NOPE -> handoff.nope",
        "the bot has no command /nope",
        "no file missing.md",
        "has no heading #nope",
    ]
    # Each false claim reported once, and nothing else: the true ones beside them pass.
    report = "\n".join(found)
    for claim in false_claims:
        assert sum(claim in problem for problem in found) == 1, f"{claim!r} in:\n{report}"
    assert len(found) == len(false_claims), report


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("## Set-up time", "set-up-time"),
        (
            "### 2026-12-03, last: each language's own caution (`x.y`)",
            "2026-12-03-last-each-languages-own-caution-xy",
        ),
        (
            "## Telegram load (`make bench-load` = `python a/b.py`)",
            "telegram-load-make-bench-load--python-abpy",
        ),
    ],
)
def test_anchors_follow_github(tmp_path: Path, heading: str, anchor: str) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"{heading}\n\n{heading}\n", encoding="utf-8")
    assert anchors(doc) == {anchor, f"{anchor}-1"}
