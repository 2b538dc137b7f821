"""`minerdesk faq gaps`: what customers asked that the KB did not answer well, grouped by
meaning, as a YAML draft staff complete and paste into the KB.

Misses are grouped per language (the chat's). Each distinct question (same normalised words)
is embedded and the questions are clustered agglomeratively: average linkage on cosine
distance. Where to stop merging is calibrated on the KB itself, in the same encoder's space:
at the distance where as many of the KB's entries would fall apart (their own phrasings lie
farther apart on average) as pairs of entries would be merged (they lie closer on average).
So it follows the KB and the model; nothing is tuned to one log.

A cluster whose questions the matcher mostly gives to one entry, at least as a suggestion and
never an entry that got a 👎 for that question, proposes new alternates for that entry; any
other cluster is drafted as a new entry.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rapidfuzz import fuzz, process
from sklearn.cluster import AgglomerativeClustering

from domain.chats import ChatKey
from domain.faq_log import LoggedMiss
from faq.encoder import TextEncoder, Vectors
from faq.loader import CONFLICT_SIMILARITY, KnowledgeBase, kb_files
from faq.matcher import Decision, Match
from faq.schema import MIN_ALTERNATES, Entry
from faq.service import FaqService
from faq.text import normalize

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]
EncoderFor = Callable[[str], TextEncoder]
# The order reasons are listed in: from "no answer at all" to "the answer did not help".
REASONS = ("fallback", "suggested", "none_of_these", "not_helpful")
# Agglomerative clustering keeps a distance matrix: past this many distinct questions in
# one language (about 70 MB), the least asked are left out.
MAX_QUESTIONS_PER_LANGUAGE = 3000
# Calibrating on more entries than this costs memory and changes nothing: a fixed sample.
MAX_CALIBRATION_ENTRIES = 1000
NEAREST_ENTRIES = 3
# What the schema accepts as an entry's question.
QUESTION_CHARS = range(3, 121)
MAX_ID_CHARS = 36  # the schema's 40, less room for a "_2" that keeps ids unique
MAX_ID_WORDS = 5
# Words that make an id longer, not clearer.
_ID_SKIP = frozenset(
    {
        *("a", "an", "the", "and", "or", "to", "of", "for", "in", "on", "at", "with", "it"),
        *("i", "im", "my", "me", "we", "our", "you", "your", "u", "this", "that", "there"),
        *("do", "does", "did", "is", "are", "am", "be", "can", "could", "would", "will"),
        *("what", "how", "why", "when", "where", "which", "who", "any", "get"),
        *("please", "pls", "plz", "hi", "hello"),
    }
)
# Staff replace it; until then `minerdesk faq validate` refuses it as an unknown placeholder.
ANSWER_PLACEHOLDER = "{TODO: write the answer}"
# A new entry first asked in another language still needs its English question.
ENGLISH_PLACEHOLDER = "{TODO: the question in English}"


@dataclass(frozen=True)
class Asked:
    """How often a group of missed questions came, and why they were misses."""

    questions: frozenset[str]
    chats: frozenset[ChatKey]
    # Misses by reason (a suggestion then rejected is two), questions by language, and the
    # entries whose answers got a 👎 for these questions.
    reasons: Counter[str]
    languages: Counter[str]
    voted_down: Counter[str]

    @property
    def times(self) -> int:
        return len(self.questions)

    def __or__(self, other: Asked) -> Asked:
        return Asked(
            self.questions | other.questions,
            self.chats | other.chats,
            self.reasons + other.reasons,
            self.languages + other.languages,
            self.voted_down + other.voted_down,
        )


@dataclass(frozen=True)
class NewAlternates:
    """Questions the matcher gives to an existing entry: add them to its alternates (in
    `language`: the English ones, or those of its translation)."""

    entry: Entry
    alternates: tuple[str, ...]
    asked: Asked
    language: str = "en"


@dataclass(frozen=True)
class NewEntry:
    """Questions of one meaning that no entry covers: a draft staff write the answer of."""

    id: str
    category: str
    question: str
    alternates: tuple[str, ...]
    # The closest existing entries, best first: context for staff, and the category's source.
    nearest: tuple[str, ...]
    asked: Asked
    # The language the question and alternates are written in.
    language: str = "en"

    @property
    def alternates_needed(self) -> int:
        return max(0, MIN_ALTERNATES - len(self.alternates))


Gap = NewAlternates | NewEntry


@dataclass
class _Question:
    """One distinct question (its normalised words) and the misses it was part of."""

    text: str
    # (question key, miss): one question may have been missed twice (suggested, rejected).
    misses: list[tuple[str, LoggedMiss]]

    @property
    def weight(self) -> int:
        """How many times it was asked."""
        return len({key for key, _ in self.misses})

    def voted_down(self, entry_id: str) -> bool:
        return any(m.reason == "not_helpful" and m.entry_id == entry_id for _, m in self.misses)


@dataclass
class _Cluster:
    """Questions of one meaning in one language, their vectors, and the KB in that space."""

    questions: list[_Question]
    vectors: Vectors
    space: _KbSpace
    language: str

    @cached_property
    def asked(self) -> Asked:
        return _asked(self.questions)


def find_gaps(
    misses: Sequence[LoggedMiss],
    service: FaqService,
    min_count: int = 2,
    encoder_for: EncoderFor | None = None,
) -> list[Gap]:
    """Group `misses` by meaning, per language, and say what the KB should gain from each
    group asked at least `min_count` times; most asked first. `encoder_for(language)` embeds
    a language's questions (default: the service's encoder)."""
    kb = service.kb
    encoder_for = encoder_for or (lambda language: service.matcher_for(language).encoder)
    phrasings: dict[str, _Phrasings] = {}
    groups: list[_Cluster] = []
    for language, questions in _questions_by_language(misses).items():
        space = _KbSpace(encoder_for(language), kb, language)
        phrasings[language] = _Phrasings(kb, language)
        vectors = space.encoder.encode_queries([question.text for question in questions])
        for members in _clusters(vectors, space.threshold):
            cluster = _Cluster([questions[i] for i in members], vectors[members], space, language)
            if cluster.asked.times >= min_count:
                groups.append(cluster)
    texts = [question.text for cluster in groups for question in cluster.questions]
    # Each question goes to the matcher of the language it is written in, as it did live.
    results = service.ask_many(texts)
    matches = {text: result.match for text, result in zip(texts, results, strict=True)}
    gaps: list[Gap] = []
    for cluster in groups:
        gap = _propose(cluster, matches, kb, phrasings[cluster.language])
        if gap is not None:
            gaps.append(gap)
    return sorted(_merged_by_entry(gaps), key=lambda gap: -gap.asked.times)


def calibrated_threshold(vectors: Vectors, labels: Array) -> float:
    """The cosine distance at which average linkage should stop merging, from phrasings
    (`vectors`, unit length) labelled with their entries: where the share of entries whose
    own phrasings lie farther apart on average equals the share of entry pairs lying closer
    on average than that."""
    entries = np.unique(labels)
    sums = np.stack([vectors[labels == entry].sum(axis=0) for entry in entries])
    counts = np.array([np.count_nonzero(labels == entry) for entry in entries], dtype=float)
    norms = np.array([np.square(vectors[labels == entry]).sum() for entry in entries])
    several = counts > 1
    # Mean cosine over pairs of different phrasings: (|sum|^2 - sum of |v|^2) / n(n - 1).
    within = 1 - ((sums * sums).sum(axis=1) - norms)[several] / (
        counts[several] * (counts[several] - 1)
    )
    if len(entries) > MAX_CALIBRATION_ENTRIES:
        sample = np.random.default_rng(0).choice(len(entries), MAX_CALIBRATION_ENTRIES, False)
        sums, counts = sums[sample], counts[sample]
    upper = np.triu_indices(len(sums), k=1)
    between = 1 - ((sums @ sums.T) / np.outer(counts, counts))[upper]
    if not len(between):
        # One entry: questions belong together as far as its own phrasings do.
        return float(within.max())
    within, between = np.sort(within), np.sort(between)
    candidates = np.unique(np.concatenate([within, between]))
    split = 1 - np.searchsorted(within, candidates, side="right") / len(within)
    merged = np.searchsorted(between, candidates, side="right") / len(between)
    return float(candidates[np.argmin(np.maximum(split, merged))])


class _KbSpace:
    """The KB's phrasings as the matcher of `language` knows them (that language's and the
    English ones) in one encoder's space, and the threshold they calibrate."""

    def __init__(self, encoder: TextEncoder, kb: KnowledgeBase, language: str) -> None:
        self.encoder = encoder
        self.entries = kb.entries
        known = [entry.matched_phrasings(language) for entry in kb.entries]
        texts = [text for phrasings in known for text in phrasings]
        self.labels = np.array(
            [i for i, phrasings in enumerate(known) for _ in phrasings], dtype=np.int64
        )
        # Cached on disk: the KB's phrasings are no personal data.
        self.vectors = encoder.encode(texts)
        self.threshold = calibrated_threshold(self.vectors, self.labels)
        logger.info("faq.gaps_threshold model=%s distance=%.3f", encoder.model_id, self.threshold)

    def nearest(self, vector: Array, limit: int) -> list[tuple[Entry, float]]:
        """The entries with the phrasings closest to `vector`, best first, and the cosine."""
        best = np.full(len(self.entries), -1.0)
        np.maximum.at(best, self.labels, self.vectors @ vector)
        order = np.argsort(-best)[:limit]
        return [(self.entries[i], float(best[i])) for i in order]


def _questions_by_language(misses: Sequence[LoggedMiss]) -> dict[str, list[_Question]]:
    """Misses as distinct questions per language, most asked first (as many as fit)."""
    grouped: dict[str, dict[str, list[tuple[str, LoggedMiss]]]] = {}
    for number, miss in enumerate(misses):
        words = normalize(miss.question)
        if words:
            # A miss from before the question log is a question of its own.
            key = miss.question_id or f"#{number}"
            grouped.setdefault(miss.language, {}).setdefault(words, []).append((key, miss))
    result = {}
    for language, by_words in grouped.items():
        questions = [
            # Shown as most often written (ties: the first written so).
            _Question(Counter(m.question.strip() for _, m in found).most_common(1)[0][0], found)
            for found in by_words.values()
        ]
        questions.sort(key=lambda question: (-question.weight, question.text))
        if len(questions) > MAX_QUESTIONS_PER_LANGUAGE:
            logger.warning(
                "faq.gaps_truncated language=%s kept=%d of=%d",
                language,
                MAX_QUESTIONS_PER_LANGUAGE,
                len(questions),
            )
        result[language] = questions[:MAX_QUESTIONS_PER_LANGUAGE]
    return result


def _clusters(vectors: Vectors, threshold: float) -> list[list[int]]:
    """Indices of `vectors` grouped by average-linkage clustering on cosine distance."""
    if len(vectors) < 2:
        return [list(range(len(vectors)))] if len(vectors) else []
    labels = (
        AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average"
        )
        .fit(vectors)
        .labels_
    )
    return [np.flatnonzero(labels == label).tolist() for label in np.unique(labels)]


def _asked(cluster: Iterable[_Question]) -> Asked:
    questions: dict[str, LoggedMiss] = {}
    reasons: Counter[str] = Counter()
    voted_down: Counter[str] = Counter()
    for question in cluster:
        for key, miss in question.misses:
            questions.setdefault(key, miss)
            reasons[miss.reason] += 1
            if miss.reason == "not_helpful" and miss.entry_id:
                voted_down[miss.entry_id] += 1
    return Asked(
        frozenset(questions),
        frozenset(miss.key for miss in questions.values()),
        reasons,
        Counter(miss.language for miss in questions.values()),
        voted_down,
    )


def _propose(
    cluster: _Cluster, matches: Mapping[str, Match], kb: KnowledgeBase, phrasings: _Phrasings
) -> Gap | None:
    """New alternates for the entry the matcher agrees on, else a new entry; None when
    nothing is left to propose (every question already in the KB)."""
    entry_id = _agreed_entry(cluster, matches)
    if entry_id is None:
        return _draft_entry(cluster, phrasings)
    entry = kb.by_id[entry_id]
    texts = [question.text for question in cluster.questions if not question.voted_down(entry_id)]
    alternates = phrasings.claim(entry.id, texts)
    if not alternates:
        return None
    return NewAlternates(entry, tuple(alternates), cluster.asked, cluster.language)


def _agreed_entry(cluster: _Cluster, matches: Mapping[str, Match]) -> str | None:
    """The entry the matcher gives most of the cluster's questions to, if it is a majority;
    a question only counts when the matcher would at least suggest the entry, and not for
    an entry whose answer got a 👎 for it."""
    votes: Counter[str] = Counter()
    for question in cluster.questions:
        match = matches[question.text]
        best = match.best
        if (
            best
            and match.decision is not Decision.FALLBACK
            and not question.voted_down(best.entry_id)
        ):
            votes[best.entry_id] += question.weight
    if votes:
        entry_id, count = votes.most_common(1)[0]
        if 2 * count > cluster.asked.times:
            return entry_id
    return None


def _draft_entry(cluster: _Cluster, phrasings: _Phrasings) -> NewEntry | None:
    """A new entry: the most central question asks it, the others are its alternates."""
    vectors = cluster.vectors
    weights = np.array([question.weight for question in cluster.questions], dtype=np.float32)
    # Closest to the rest of the cluster, counting each question as often as it was asked.
    centrality = (vectors @ vectors.T) @ weights
    ordered = [cluster.questions[i].text for i in np.argsort(-centrality, kind="stable")]
    question = next(
        (
            _as_question(text)
            for text in ordered
            if len(text) >= QUESTION_CHARS.start and phrasings.fits(None, _as_question(text))
        ),
        None,
    )
    if question is None:
        return None
    entry_id = phrasings.unique_id(_slug(question))
    # The question fits, so it is taken first.
    [question, *alternates] = phrasings.claim(
        entry_id, [question, *(text for text in ordered if _as_question(text) != question)]
    )
    centroid = vectors.mean(axis=0)
    nearest = cluster.space.nearest(
        centroid / max(float(np.linalg.norm(centroid)), 1e-12), NEAREST_ENTRIES
    )
    categories: dict[str, float] = {}
    for entry, similarity in nearest:
        categories[entry.category] = categories.get(entry.category, 0.0) + max(similarity, 0.0)
    return NewEntry(
        id=entry_id,
        category=max(categories, key=categories.__getitem__),
        question=question,
        alternates=tuple(alternates),
        nearest=tuple(entry.id for entry, _ in nearest),
        asked=cluster.asked,
        language=cluster.language,
    )


class _Phrasings:
    """The KB's phrasings and those proposed so far, normalised, with their entries: a new
    phrasing must not repeat its entry's, nor be near-identical to another entry's (the
    validator refuses that: the matcher could not tell them apart)."""

    def __init__(self, kb: KnowledgeBase, language: str) -> None:
        self.texts: list[str] = []
        self.owners: list[str] = []
        self.ids = set(kb.by_id)
        for entry in kb.entries:
            for text in entry.phrasings_in(language):
                self._add(entry.id, text)

    def _add(self, owner: str, text: str) -> None:
        self.texts.append(normalize(text))
        self.owners.append(owner)

    def fits(self, owner: str | None, text: str) -> bool:
        """Whether `owner` (None: an entry still without phrasings) may take `text`."""
        words = normalize(text)
        similar = process.extract(
            words, self.texts, scorer=fuzz.ratio, score_cutoff=CONFLICT_SIMILARITY, limit=None
        )
        return bool(words) and not any(
            self.owners[i] != owner or self.texts[i] == words for _, _, i in similar
        )

    def claim(self, owner: str, texts: Iterable[str]) -> list[str]:
        """Of `texts`, in order, those `owner` may take; they are taken."""
        taken = []
        for text in texts:
            if self.fits(owner, text):
                self._add(owner, text)
                taken.append(text)
        return taken

    def unique_id(self, slug: str) -> str:
        """`slug`, or `slug_2`, `slug_3`...: the first no entry has."""
        taken = set(self.owners) | self.ids
        entry_id, number = slug, 1
        while entry_id in taken:
            number += 1
            entry_id = f"{slug}_{number}"
        return entry_id


def _slug(question: str) -> str:
    """An entry id from a question's words: "how do I host my miner?" -> "host_miner"."""
    words = [word for word in normalize(question).split() if word.isascii() and word.isalnum()]
    slug = ""
    for word in [word for word in words if word not in _ID_SKIP][:MAX_ID_WORDS] or words:
        longer = f"{slug}_{word}" if slug else word
        if len(longer) > MAX_ID_CHARS:
            break
        slug = longer
    return slug or "new_entry"


def _as_question(text: str) -> str:
    """`text` short enough for an entry's question, cut at a word if it must be."""
    if len(text) < QUESTION_CHARS.stop:
        return text
    return text[: QUESTION_CHARS.stop - 2].rsplit(" ", 1)[0] + "…"


def _merged_by_entry(gaps: list[Gap]) -> list[Gap]:
    """One proposal per existing entry and language, however many clusters led to it."""
    merged: list[Gap] = []
    by_entry: dict[tuple[str, str], int] = {}
    for gap in gaps:
        if not isinstance(gap, NewAlternates):
            merged.append(gap)
            continue
        key = (gap.entry.id, gap.language)
        if key in by_entry:
            index = by_entry[key]
            earlier = merged[index]
            assert isinstance(earlier, NewAlternates)
            merged[index] = NewAlternates(
                gap.entry,
                earlier.alternates + gap.alternates,
                earlier.asked | gap.asked,
                gap.language,
            )
            continue
        by_entry[key] = len(merged)
        merged.append(gap)
    return merged


def entry_files(kb_path: Path) -> dict[str, str]:
    """Entry id -> the name of the KB file that holds it, for staff to find where to paste."""
    files = {}
    for path in kb_files(kb_path):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in data.get("entries", []) if isinstance(data, dict) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                files[entry["id"]] = path.name
    return files


def gaps_yaml(gaps: Sequence[Gap], header: Sequence[str], files: Mapping[str, str]) -> str:
    """The draft staff paste from: `alternates` (entry id -> new English phrasings),
    `translations` (language -> entry id -> new phrasings of that translation) and `entries`
    (new entries, valid KB entries once their answers are written), each with comments on
    how often and why they were missed; `header` lines become the opening comment."""
    lines = [f"# {line}".rstrip() for line in header]
    additions = [gap for gap in gaps if isinstance(gap, NewAlternates)]
    english = [gap for gap in additions if gap.language == "en"]
    translated = [gap for gap in additions if gap.language != "en"]
    drafts = [gap for gap in gaps if isinstance(gap, NewEntry)]
    lines.append("alternates:" if english else "alternates: {}")
    for gap in english:
        lines += _addition_lines(gap, files, "  ")
    lines.append("translations:" if translated else "translations: {}")
    for language in sorted({gap.language for gap in translated}):
        lines.append(f"  {language}:")
        for gap in translated:
            if gap.language == language:
                lines += _addition_lines(gap, files, "    ")
    lines.append("entries:" if drafts else "entries: []")
    for draft in drafts:
        lines += _draft_lines(draft)
    return "\n".join(lines) + "\n"


def _addition_lines(gap: NewAlternates, files: Mapping[str, str], indent: str) -> list[str]:
    where = f"{files[gap.entry.id]}: " if gap.entry.id in files else ""
    return [
        f"{indent}# {_summary(gap.asked)}",
        f"{indent}# {where}{gap.entry.question_in(gap.language)}",
        f"{indent}{gap.entry.id}:",
        *[f"{indent}  - {_yaml_text(text)}" for text in gap.alternates],
    ]


def _draft_lines(draft: NewEntry) -> list[str]:
    """A new entry; one asked in another language gets its question and alternates as that
    translation, and the English ones for staff to write."""
    lines = [f"  # {_summary(draft.asked)}", f"  # nearest entries: {', '.join(draft.nearest)}"]
    if draft.alternates_needed:
        lines.append(
            f"  # write {_times(draft.alternates_needed, 'more alternate')}: an entry "
            f"needs at least {MIN_ALTERNATES}"
        )
    asked = [
        f"question: {_yaml_text(draft.question)}",
        "alternates:" if draft.alternates else "alternates: []",
        *[f"  - {_yaml_text(text)}" for text in draft.alternates],
        f"answer: {_yaml_text(ANSWER_PLACEHOLDER)}",
    ]
    lines += [f"  - id: {draft.id}", f"    category: {draft.category}"]
    if draft.language == "en":
        return lines + [f"    {line}" for line in asked]
    lines += [
        f"    question: {_yaml_text(ENGLISH_PLACEHOLDER)}",
        "    alternates: []",
        f"    answer: {_yaml_text(ANSWER_PLACEHOLDER)}",
        "    translations:",
        f"      {draft.language}:",
    ]
    return lines + [f"        {line}" for line in asked]


def _summary(asked: Asked) -> str:
    reasons = ", ".join(
        f"{reason} {asked.reasons[reason]}" for reason in REASONS if asked.reasons[reason]
    )
    if asked.voted_down:
        entries = ", ".join(f"{entry} {n}" for entry, n in asked.voted_down.most_common())
        reasons += f" (👎 on {entries})"
    languages = ", ".join(f"{language} {n}" for language, n in asked.languages.most_common())
    return (
        f"asked {_times(asked.times, 'time')} in {_times(len(asked.chats), 'chat')}; "
        f"{reasons}; languages: {languages}"
    )


def _times(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _yaml_text(text: str) -> str:
    """`text` as a YAML scalar: plain when it reads back the same, else double-quoted."""
    try:
        if yaml.safe_load(text) == text and "\n" not in text:
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text, ensure_ascii=False)
