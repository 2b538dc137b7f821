"""Load faq/kb/*.yaml into a KnowledgeBase, reporting every problem with its file and line."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from rapidfuzz import fuzz, process

from faq.schema import (
    LANGUAGES,
    MIN_ALTERNATES,
    TRANSLATED_LANGUAGES,
    Entry,
    KbFile,
    SmallTalkKind,
)
from faq.small_talk import SmallTalk, phrase_key
from faq.text import normalize, script_language

# Phrasings of two different entries this similar (rapidfuzz ratio on normalised text)
# make the matcher's choice between them a coin toss.
CONFLICT_SIMILARITY = 92.0
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-spoiler",
    "span",
}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);)")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """Something wrong in a KB file, located for the person who has to fix it."""

    path: Path
    line: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


class KbInvalid(Exception):
    """The knowledge base has errors; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class KnowledgeBase:
    """The validated entries, with placeholders filled in from the settings."""

    entries: tuple[Entry, ...]
    # Questions no entry answers, in any of the KB's languages (faq/matcher.py).
    off_topic: tuple[str, ...] = ()
    # Greetings, thanks, goodbyes...: read before the matcher (faq/small_talk.py).
    small_talk: SmallTalk = field(default_factory=SmallTalk)
    by_id: Mapping[str, Entry] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {entry.id: entry for entry in self.entries})

    def phrasings(self, language: str = "en") -> dict[str, list[str]]:
        """Entry id -> the texts customers may use for it in `language` (what the matcher
        learns from); entries without that translation are left out."""
        by_entry = {entry.id: entry.phrasings_in(language) for entry in self.entries}
        return {entry_id: texts for entry_id, texts in by_entry.items() if texts}

    def matched_phrasings(self, language: str) -> dict[str, list[str]]:
        """Entry id -> what the matcher of `language` learns it from (`Entry.matched_phrasings`)."""
        return {entry.id: entry.matched_phrasings(language) for entry in self.entries}

    def off_topic_in(self, language: str) -> list[str]:
        """The off-topic phrasings the matcher of `language` learns from: those in Latin
        script, and those in the language's own (as its entries have the English phrasings
        besides their own)."""
        own = None if language == "en" else language
        return [text for text in self.off_topic if script_language(text) in (None, own)]


def kb_files(path: Path) -> list[Path]:
    """The YAML files of a KB folder (sorted), or the single file given."""
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def load_kb(path: Path, placeholders: Mapping[str, str]) -> KnowledgeBase:
    """Load and validate the KB at `path` (folder or file); raise KbInvalid on any error."""
    return load_kb_with_warnings(path, placeholders)[0]


def load_kb_with_warnings(
    path: Path, placeholders: Mapping[str, str]
) -> tuple[KnowledgeBase, list[Problem]]:
    """`load_kb`, also returning the warnings: problems that do not stop it serving."""
    kb, problems = check_kb(path, placeholders)
    errors = [p for p in problems if p.severity == "error"]
    if errors or kb is None:
        raise KbInvalid(errors)
    return kb, [p for p in problems if p.severity == "warning"]


def check_kb(
    path: Path, placeholders: Mapping[str, str]
) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Validate the KB at `path`; return it (None if unusable) and every problem found."""
    files = kb_files(path)
    if not path.exists():
        return None, [Problem(path, 0, "no such file or folder")]
    if not files:
        return None, [Problem(path, 0, "no *.yaml files in this folder")]
    problems: list[Problem] = []
    contents = _Contents()
    for file in files:
        contents.extend(_load_file(file, problems))
    located, off_topic = contents.entries, contents.off_topic
    problems.extend(_cross_entry_problems(located))
    problems.extend(_off_topic_conflicts(located, off_topic))
    for item in located:
        problems.extend(_answer_problems(item, placeholders))
        problems.extend(_translation_problems(item))
    small_talk = _small_talk(contents, placeholders, problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    entries = tuple(_with_placeholders(item.entry, placeholders) for item in located)
    return KnowledgeBase(entries, tuple(item.text for item in off_topic), small_talk), problems


@dataclass(frozen=True)
class _Located:
    entry: Entry
    path: Path
    lines: _LineMap
    index: int

    def line(self, *keys: str | int) -> int:
        return self.lines.line(("entries", self.index, *keys))


@dataclass(frozen=True)
class _Listed:
    """An item of a plain list: an off-topic question, a filler word."""

    text: str
    path: Path
    line: int


@dataclass(frozen=True)
class _SmallTalkLocated:
    kind: SmallTalkKind
    path: Path
    lines: _LineMap
    index: int

    def line(self, *keys: str | int) -> int:
        return self.lines.line(("small_talk", self.index, *keys))


@dataclass
class _Contents:
    """What the KB's files hold, each item with where it is written."""

    entries: list[_Located] = field(default_factory=list)
    off_topic: list[_Listed] = field(default_factory=list)
    small_talk: list[_SmallTalkLocated] = field(default_factory=list)
    filler: list[_Listed] = field(default_factory=list)

    def extend(self, other: _Contents) -> None:
        self.entries += other.entries
        self.off_topic += other.off_topic
        self.small_talk += other.small_talk
        self.filler += other.filler


class _LineMap:
    """Finds the line of a value inside a YAML document from its key path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, loc: Iterable[str | int]) -> int:
        node = self.root
        if node is None:
            return 1
        found = node.start_mark.line + 1
        for key in loc:
            step = _child(node, key)
            if step is None:
                break
            found, node = step
        return found


def _child(node: yaml.Node, key: str | int) -> tuple[int, yaml.Node] | None:
    """The line where `key` stands inside `node`, and the node it leads to."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item.start_mark.line + 1, item
    return None


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one parse; with libyaml when
    PyYAML has it (ten times faster: the shipped KB's files take 20 ms, not 200)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def _load_file(path: Path, problems: list[Problem]) -> _Contents:
    """The file's entries, off-topic phrasings and small talk; its problems are added to
    `problems`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, 0, f"cannot read: {exc}"))
        return _Contents()
    try:
        root, data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problems.append(Problem(path, line, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return _Contents()
    lines = _LineMap(root)
    if not isinstance(data, dict):
        problems.append(
            Problem(
                path,
                1,
                "expected a mapping with an `entries:`, `off_topic:` or `small_talk:` list at "
                "the top",
            )
        )
        return _Contents()
    try:
        kb_file = KbFile.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"unknown key (allowed: {_allowed_keys(error['loc'])})"
            problems.append(Problem(path, lines.line(error["loc"]), f"{where}: {message}"))
        return _Contents()
    return _Contents(
        entries=[
            _Located(entry, path, lines, index) for index, entry in enumerate(kb_file.entries)
        ],
        off_topic=[
            _Listed(text, path, lines.line(("off_topic", index)))
            for index, text in enumerate(kb_file.off_topic)
        ],
        small_talk=[
            _SmallTalkLocated(kind, path, lines, index)
            for index, kind in enumerate(kb_file.small_talk)
        ],
        filler=[
            _Listed(text, path, lines.line(("small_talk_filler", index)))
            for index, text in enumerate(kb_file.small_talk_filler)
        ],
    )


def _allowed_keys(location: tuple[int | str, ...]) -> str:
    """The keys a KB file allows where an unknown one was found, for its problem line."""
    if len(location) == 1:
        return "entries, off_topic, small_talk, small_talk_filler"
    if location[0] == "small_talk":
        if "reply" in location:
            return ", ".join(LANGUAGES)
        return "kind, phrases, reply, show_menu, action"
    if "translations" in location:
        return "question, alternates, answer"
    return "id, category, question, alternates, answer, related, action, translations"


def _cross_entry_problems(located: list[_Located]) -> list[Problem]:
    problems: list[Problem] = []
    first_by_id: dict[str, _Located] = {}
    for item in located:
        earlier = first_by_id.setdefault(item.entry.id, item)
        if earlier is not item:
            problems.append(
                Problem(
                    item.path,
                    item.line("id"),
                    f"duplicate id {item.entry.id!r} (first defined at {earlier.path}:"
                    f"{earlier.line('id')})",
                )
            )
    for item in located:
        for position, related_id in enumerate(item.entry.related):
            if related_id not in first_by_id:
                problems.append(
                    Problem(
                        item.path,
                        item.line("related", position),
                        f"related: no entry has the id {related_id!r}",
                    )
                )
            elif related_id == item.entry.id:
                problems.append(
                    Problem(
                        item.path,
                        item.line("related", position),
                        "related: an entry cannot relate to itself",
                    )
                )
    problems.extend(_conflicting_phrasings(located))
    return problems


def _conflicting_phrasings(located: list[_Located]) -> list[Problem]:
    """Pairs of near-identical phrasings, in one language, that belong to different entries."""
    problems: list[Problem] = []
    for language in LANGUAGES:
        texts: list[str] = []
        owners: list[tuple[_Located, tuple[str | int, ...], str]] = []
        for item in located:
            for loc, phrasing in _phrasing_locations(item.entry, language):
                texts.append(normalize(phrasing))
                owners.append((item, loc, phrasing))
        if not texts:
            continue
        scores = process.cdist(
            texts, texts, scorer=fuzz.ratio, score_cutoff=CONFLICT_SIMILARITY, workers=-1
        )
        for i, j in zip(*scores.nonzero(), strict=True):
            (item_a, loc_a, text_a), (item_b, loc_b, text_b) = owners[i], owners[j]
            if i >= j or item_a.entry.id == item_b.entry.id:
                continue
            problems.append(
                Problem(
                    item_b.path,
                    item_b.line(*loc_b),
                    f"phrasing {text_b!r} of {item_b.entry.id!r} is near-identical to "
                    f"{text_a!r} of {item_a.entry.id!r} ({item_a.path}:{item_a.line(*loc_a)}); "
                    "the matcher could not tell them apart",
                )
            )
    return problems


def _off_topic_conflicts(located: list[_Located], off_topic: list[_Listed]) -> list[Problem]:
    """Off-topic phrasings near-identical to an entry's phrasing (in any language): the
    matcher could not tell answering from not answering."""
    if not off_topic:
        return []
    owners = [
        (item, loc, phrasing)
        for item in located
        for language in LANGUAGES
        for loc, phrasing in _phrasing_locations(item.entry, language)
    ]
    scores = process.cdist(
        [normalize(item.text) for item in off_topic],
        [normalize(phrasing) for _, _, phrasing in owners],
        scorer=fuzz.ratio,
        score_cutoff=CONFLICT_SIMILARITY,
        workers=-1,
    )
    problems: list[Problem] = []
    for i, j in zip(*scores.nonzero(), strict=True):
        item, loc, phrasing = owners[j]
        problems.append(
            Problem(
                off_topic[i].path,
                off_topic[i].line,
                f"off-topic phrasing {off_topic[i].text!r} is near-identical to {phrasing!r} of "
                f"{item.entry.id!r} ({item.path}:{item.line(*loc)}); the matcher could not "
                "tell whether to answer",
            )
        )
    return problems


def _phrasing_locations(entry: Entry, language: str) -> list[tuple[tuple[str | int, ...], str]]:
    """Each phrasing of `entry` in `language` with its key path inside the entry."""
    prefix: tuple[str, ...] = () if language == "en" else ("translations", language)
    texts = entry.phrasings_in(language)
    return [
        ((*prefix, "question") if position == 0 else (*prefix, "alternates", position - 1), text)
        for position, text in enumerate(texts)
    ]


def _answer_problems(item: _Located, placeholders: Mapping[str, str]) -> list[Problem]:
    """Unknown placeholders and HTML Telegram would refuse, in the answer and its translations."""
    answers: list[tuple[tuple[str, ...], str]] = [(("answer",), item.entry.answer)]
    answers += [
        (("translations", language, "answer"), translation.answer)
        for language, translation in item.entry.translations.items()
    ]
    return [
        Problem(item.path, item.line(*loc), f"{'.'.join(loc)}: {message}")
        for loc, answer in answers
        for message in _markup_problems(answer, placeholders)
    ]


def _markup_problems(text: str, placeholders: Mapping[str, str]) -> list[str]:
    """Unknown placeholders and HTML Telegram would refuse, in a text the bot sends."""
    return _placeholder_problems(text, placeholders) + _telegram_html_problems(text)


def _placeholder_problems(text: str, placeholders: Mapping[str, str]) -> list[str]:
    known = ", ".join(f"{{{key}}}" for key in sorted(placeholders))
    return [
        f"unknown placeholder {{{name}}} (known: {known})"
        for name in PLACEHOLDER.findall(text)
        if name not in placeholders
    ]


def _small_talk(
    contents: _Contents, placeholders: Mapping[str, str], problems: list[Problem]
) -> SmallTalk:
    """The small talk with placeholders filled; its problems are added to `problems`.

    Errors: a kind defined twice, a phrase with nothing to recognise or in two kinds, a
    reply Telegram would refuse, and a phrase that makes an entry's phrasing or an
    off-topic question small talk (its customers would never get an answer). Warnings: a
    reply missing in a language.
    """
    # What each phrase and filler word is compared as -> what it is, and where.
    owners: dict[str, tuple[str, Path, int]] = {}
    filler: list[str] = []
    for listed in contents.filler:
        text = _fill_plain(listed.text, placeholders)
        problems += _listed_problems(listed, "small_talk_filler", placeholders)
        if not phrase_key(text):
            problems.append(
                Problem(
                    listed.path,
                    listed.line,
                    f"small_talk_filler: {listed.text!r} has no words or emoji to recognise",
                )
            )
        else:
            owners.setdefault(phrase_key(text), ("filler", listed.path, listed.line))
        filler.append(text)
    first_by_kind: dict[str, _SmallTalkLocated] = {}
    kinds: list[SmallTalkKind] = []
    for item in contents.small_talk:
        kind = item.kind
        earlier = first_by_kind.setdefault(kind.kind, item)
        if earlier is not item:
            problems.append(
                Problem(
                    item.path,
                    item.line("kind"),
                    f"small talk {kind.kind!r} is defined twice (first at {earlier.path}:"
                    f"{earlier.line('kind')})",
                )
            )
        problems += _phrase_problems(item, owners, placeholders)
        problems += _reply_problems(item, placeholders)
        kinds.append(_small_talk_with_placeholders(kind, placeholders))
    questions = [
        (item, loc, text)
        for item in contents.entries
        for language in LANGUAGES
        for loc, text in _phrasing_locations(item.entry, language)
    ]
    small_talk = SmallTalk(
        kinds,
        filler,
        [text for _, _, text in questions] + [listed.text for listed in contents.off_topic],
    )
    if small_talk:
        problems += _read_as_small_talk(small_talk, contents, questions)
    return small_talk


def _listed_problems(listed: _Listed, where: str, placeholders: Mapping[str, str]) -> list[Problem]:
    return [
        Problem(listed.path, listed.line, f"{where}: {message}")
        for message in _placeholder_problems(listed.text, placeholders)
    ]


def _phrase_problems(
    item: _SmallTalkLocated,
    owners: dict[str, tuple[str, Path, int]],
    placeholders: Mapping[str, str],
) -> list[Problem]:
    """A phrase with nothing to recognise, an unknown placeholder, or a phrase that is
    also filler or another kind's phrase (`owners` holds those read so far)."""
    problems: list[Problem] = []
    mine = f"a phrase of {item.kind.kind!r}"
    for index, phrase in enumerate(item.kind.phrases):
        line, where = item.line("phrases", index), f"small talk {item.kind.kind!r}"
        problems += [
            Problem(item.path, line, f"{where}: {message}")
            for message in _placeholder_problems(phrase, placeholders)
        ]
        key = phrase_key(_fill_plain(phrase, placeholders))
        if not key:
            problems.append(
                Problem(item.path, line, f"{where}: {phrase!r} has no words or emoji to recognise")
            )
            continue
        owner, path, owner_line = owners.setdefault(key, (mine, item.path, line))
        if owner != mine:
            problems.append(
                Problem(
                    item.path, line, f"{where}: {phrase!r} is also {owner} ({path}:{owner_line})"
                )
            )
    return problems


def _reply_problems(item: _SmallTalkLocated, placeholders: Mapping[str, str]) -> list[Problem]:
    kind = item.kind
    problems = [
        Problem(item.path, item.line("reply", language), f"small talk {kind.kind!r}: {message}")
        for language in LANGUAGES
        if (reply := getattr(kind.reply, language)) is not None
        for message in _markup_problems(reply, placeholders)
    ]
    missing = [language for language in TRANSLATED_LANGUAGES if not getattr(kind.reply, language)]
    if missing:
        problems.append(
            Problem(
                item.path,
                item.line("reply"),
                f"small talk {kind.kind!r}: no reply in {', '.join(missing)} (customers "
                "writing in it get the English reply)",
                "warning",
            )
        )
    return problems


def _read_as_small_talk(
    small_talk: SmallTalk,
    contents: _Contents,
    questions: list[tuple[_Located, tuple[str | int, ...], str]],
) -> list[Problem]:
    """Entries' phrasings and off-topic questions the small talk would answer instead:
    customers asking them would never get the answer, or the honest fallback."""
    problems: list[Problem] = []
    read: list[tuple[str, str]] = [
        (text, f"{text!r} of {item.entry.id!r} ({item.path}:{item.line(*loc)})")
        for item, loc, text in questions
    ]
    read += [
        (listed.text, f"the off-topic question {listed.text!r} ({listed.path}:{listed.line})")
        for listed in contents.off_topic
    ]
    for text, what in read:
        reading = small_talk.read(text)
        if reading.kind is None:
            continue
        kind_index, phrase_index = reading.phrases[0]
        item = contents.small_talk[kind_index]
        problems.append(
            Problem(
                item.path,
                item.line("phrases", phrase_index),
                f"small talk {item.kind.kind!r}: {item.kind.phrases[phrase_index]!r} makes "
                f"{what} small talk, so it would never be answered as a question",
            )
        )
    return problems


def _translation_problems(item: _Located) -> list[Problem]:
    """Warnings: a language the entry is not translated into, a translation with too few
    phrasings to be matched well, or one that lost a placeholder (a link, an e-mail)."""
    entry, problems = item.entry, []
    missing = [language for language in TRANSLATED_LANGUAGES if language not in entry.translations]
    if missing:
        problems.append(
            Problem(
                item.path,
                item.line("id"),
                f"{entry.id}: no translation for {', '.join(missing)} (customers writing in it "
                "get the English answer)",
                "warning",
            )
        )
    english_placeholders = set(PLACEHOLDER.findall(entry.answer))
    for language, translation in entry.translations.items():
        where = ("translations", language)
        if len(translation.alternates) < MIN_ALTERNATES:
            problems.append(
                Problem(
                    item.path,
                    item.line(*where),
                    f"translations.{language}: {len(translation.alternates)} alternates; "
                    f"{MIN_ALTERNATES} or more let the matcher recognise questions in it",
                    "warning",
                )
            )
        lost = english_placeholders - set(PLACEHOLDER.findall(translation.answer))
        if lost:
            names = ", ".join(f"{{{name}}}" for name in sorted(lost))
            problems.append(
                Problem(
                    item.path,
                    item.line(*where, "answer"),
                    f"translations.{language}.answer: {names} of the English answer is missing",
                    "warning",
                )
            )
    return problems


def _telegram_html_problems(text: str) -> list[str]:
    """What Telegram would reject in an HTML-formatted message."""
    checker = _TagChecker()
    checker.feed(PLACEHOLDER.sub("x", text))
    checker.close()
    problems = checker.problems
    problems += [f"unclosed <{tag}>" for tag in reversed(checker.open_tags)]
    if BARE_AMPERSAND.search(text):
        problems.append("a bare '&' must be written &amp;")
    return problems


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_tags: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(
                f"Telegram does not support <{tag}> (use b, i, u, s, a, code, "
                "pre, blockquote; write a literal '<' as &lt;)"
            )
            return
        if tag == "a" and not any(name == "href" and value for name, value in attrs):
            self.problems.append("<a> needs an href")
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS:
            return
        if not self.open_tags or self.open_tags[-1] != tag:
            self.problems.append(f"</{tag}> does not close the innermost open tag")
            return
        self.open_tags.pop()


def _with_placeholders(entry: Entry, placeholders: Mapping[str, str]) -> Entry:
    translations = {
        language: translation.model_copy(
            update={"answer": fill_placeholders(translation.answer, placeholders)}
        )
        for language, translation in entry.translations.items()
    }
    return entry.model_copy(
        update={
            "answer": fill_placeholders(entry.answer, placeholders),
            "translations": translations,
        }
    )


def _small_talk_with_placeholders(
    kind: SmallTalkKind, placeholders: Mapping[str, str]
) -> SmallTalkKind:
    replies = {
        language: fill_placeholders(reply, placeholders)
        for language in LANGUAGES
        if (reply := getattr(kind.reply, language)) is not None
    }
    return kind.model_copy(
        update={
            "phrases": [_fill_plain(phrase, placeholders) for phrase in kind.phrases],
            "reply": kind.reply.model_copy(update=replies),
        }
    )


def _fill_plain(text: str, placeholders: Mapping[str, str]) -> str:
    """`{name}` replaced by its value as written, for text that is matched, not shown."""
    return PLACEHOLDER.sub(lambda m: placeholders.get(m.group(1), m.group(0)), text)


def fill_placeholders(text: str, placeholders: Mapping[str, str]) -> str:
    """`{name}` replaced by its value, HTML-escaped; an unknown name stays as written."""
    return PLACEHOLDER.sub(
        lambda m: (
            html.escape(placeholders[m.group(1)]) if m.group(1) in placeholders else m.group(0)
        ),
        text,
    )
