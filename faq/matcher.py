"""Find the entry a customer means, and decide whether to answer, suggest or admit not knowing.

A question is scored against every entry by three signals over unit-length sentence
embeddings and the text (a head fitted on the KB's phrasings, the nearest phrasing, a lexical
ratio), fused with a weight chosen per KB by cross-validation. A small confidence model then
decides `answer`, `suggest` (the best three) or `fallback`; a question nearest to one of the
KB's off-topic phrasings falls back. The confidence model and its thresholds are fitted on the
KB itself by simulating unknown and customers' questions, and cached under a key of all they
depend on. Why each part is as it is: docs/architecture.md, "The matcher in detail".
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

import faq.text
from faq.encoder import TextEncoder, keep_recent, save_npz, touch
from faq.spelling import Speller
from faq.text import normalize, word_count

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]
SUGGESTIONS = 3
# Lexical scores are computed for the best entries only: enough to rescue typos and
# identifiers, and cheap on a 5,000-entry KB.
LEXICAL_POOL = 10
# The head's training cost grows with phrasings x entries; past this it is left out and the
# nearest-phrasing and lexical scores carry the matching (keeps memory and fit time bounded).
HEAD_BUDGET = 4_000_000
# Simulated questions are scored this many at a time: all at once, a 5,000-entry KB's
# question x phrasing matrix alone would take gigabytes.
SIMULATION_BLOCK = 256
# Stored fits kept in the cache folder: every KB edit writes new ones (one per language).
KEPT_FITS = 24
# The head weights a KB's cross-validation chooses from. On training data 0.9 ranks best on
# BANKING77's 10 phrasings an entry and on the shipped KB, 0.5 on all of BANKING77's (about 130
# an entry). A tie goes to the weight nearest the one used before the choice existed.
HEAD_WEIGHTS = (0.3, 0.5, 0.7, 0.9)
DEFAULT_HEAD_WEIGHT = 0.7
# Where a long message is cut into sentences (Latin and Chinese punctuation, line breaks), and
# the words a sentence needs to count ("Hi there!" is not one).
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])|\n+")
MIN_SENTENCE_WORDS = 3
# Where a sentence is cut into clauses: commas, colons, dashes, and the conjunctions that
# start a new thought in English and Russian.
_CLAUSE_END = re.compile(
    r"(?<=[,:])\s+|(?<=[，：])|\s+[-–—]+\s+|\s+(?=(?:but|so|но|а|так что)\s)",
    re.IGNORECASE,
)
# The surest part's confidence is discounted unless it is the whole message or its question
# sentence (`LongMessages.BEST_PART`): a greeting or context sentence is rarely the question.
OTHER_SENTENCE_PRIOR = 0.8


class LongMessages(StrEnum):
    """What a message of several sentences is scored by (docs/architecture.md, "Long messages")."""

    # The whole message only.
    WHOLE = "whole"
    # The whole message; when unsure, its question sentence can back its best entry.
    QUESTION_BACKS = "question_backs"
    # The whole message; when unsure, each clause can back its best entry.
    CLAUSES_BACK = "clauses_back"
    # The question sentence alone, ranking included.
    QUESTION_ALONE = "question_alone"
    # The surest of the whole message and its sentences, other sentences discounted.
    BEST_PART = "best_part"


@dataclass(frozen=True)
class MatcherConfig:
    """Hyper-parameters, chosen by cross-validation on BANKING77's training data only."""

    head_c: float = 10.0
    # None: chosen per KB from HEAD_WEIGHTS; a number fixes it (benchmarks compare designs).
    head_weight: float | None = None
    near_scale: float = 20.0
    lexical_weight: float = 0.1
    lexical_scale: float = 10.0
    # Read unknown words as the KB's nearest ones (faq/spelling.py); off only to measure it.
    correct_typos: bool = True
    # What a message of several sentences is scored by (`LongMessages`).
    long_messages: LongMessages = LongMessages.QUESTION_BACKS
    # An off-topic phrasing catches a query when its cosine exceeds the nearest entry
    # phrasing's by more than this (negative: it catches a query a little nearer an entry).
    off_topic_margin: float = 0.0
    target_unanswered: float = 0.75
    fallback_quantile: float = 0.05
    folds: int = 5
    max_simulated_per_entry: int = 20
    # Enough simulated questions per fold to place the thresholds; on a big KB, scoring
    # them all would make a reload take minutes. KBs up to ~100 entries ask them all.
    max_simulated_per_fold: int = 2_000
    seed: int = 0


class Decision(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"
    # Not a question ("hi", "thanks"): decided by the service before the matcher
    # (faq/small_talk.py); the matcher itself never decides it.
    SMALL_TALK = "small_talk"


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    score: float


@dataclass(frozen=True)
class Match:
    """The matcher's verdict: the decision and the best candidates, best first."""

    decision: Decision
    candidates: tuple[Candidate, ...]
    confidence: float = 0.0
    # The KB's off-topic question nearer than every entry's phrasings (the decision is then
    # fallback), for staff asking why.
    off_topic: str | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class Thresholds:
    """Confidence at or above `answer` is answered; a top-3 score mass below `suggest` falls
    back; anything between is offered as choices."""

    answer: float
    suggest: float


class Matcher:
    """Matches questions to KB entries; fitted on entry id -> phrasings when built."""

    def __init__(
        self,
        encoder: TextEncoder,
        phrasings: Mapping[str, list[str]],
        config: MatcherConfig | None = None,
        cache_dir: Path | None = None,
        off_topic: Sequence[str] = (),
    ) -> None:
        self.encoder = encoder
        self.config = config or MatcherConfig()
        self.entry_ids = list(phrasings)
        texts = [text for entry_id in self.entry_ids for text in phrasings[entry_id]]
        labels = np.array(
            [i for i, entry_id in enumerate(self.entry_ids) for _ in phrasings[entry_id]],
            dtype=np.int64,
        )
        # Their words too: "halvign" should read "halving" before it is found off-topic.
        self._speller = Speller([*texts, *off_topic], encoder.known_words)
        self.off_topic = list(off_topic)
        # One call: each reads the encoder's on-disk cache whole.
        vectors, off_topic_vectors = np.split(
            encoder.encode([*texts, *self.off_topic]), [len(texts)]
        )
        normalized = [normalize(text) for text in texts]
        entries = len(self.entry_ids)
        store = (
            _FitStore(cache_dir, encoder.model_id, self.config, phrasings, off_topic)
            if cache_dir
            else None
        )
        fit = store.load(entries, vectors.shape[1]) if store else None
        head_weight = (
            fit.head_weight
            if fit
            else _choose_head_weight(vectors, labels, normalized, entries, self.config)
        )
        self._scorer = _Scorer(
            vectors,
            labels,
            normalized,
            entries,
            self.config,
            head_weight,
            fit.head if fit else None,
            off_topic_vectors,
        )
        if fit is None:
            confidence, thresholds = _calibrate(self._scorer)
            fit = _Fit(self._scorer.head, head_weight, confidence, thresholds)
            if store:
                store.save(fit)
        self._confidence, self.thresholds = fit.confidence, fit.thresholds

    def match(self, text: str) -> Match:
        """Rank the entries for `text` and decide what to do with the best one."""
        return self.match_many([text])[0]

    def match_many(self, texts: Sequence[str]) -> list[Match]:
        """`match` for several queries in one model call: much cheaper per query under load."""
        scores, answerable = self._score(texts)
        matches = [Match(Decision.FALLBACK, ())] * len(texts)
        if scores is None:
            return matches
        confidences = self._confidence.predict(scores)
        confidences[scores.off_topic >= 0] = 0.0
        fused, confidences, off_topic = self._long_messages(
            [texts[i] for i in answerable], scores, confidences
        )
        caught = off_topic >= 0
        masses = _top_mass(fused)
        for row, index in enumerate(answerable):
            confidence = float(confidences[row])
            if caught[row]:
                decision = Decision.FALLBACK
            elif confidence >= self.thresholds.answer:
                decision = Decision.ANSWER
            elif masses[row] < self.thresholds.suggest:
                decision = Decision.FALLBACK
            else:
                decision = Decision.SUGGEST
            candidates = self._candidates(fused[row], SUGGESTIONS)
            nearest_off_topic = self.off_topic[off_topic[row]] if caught[row] else None
            matches[index] = Match(decision, candidates, confidence, nearest_off_topic)
        return matches

    def _long_messages(
        self, texts: Sequence[str], scores: _Scores, confidences: Array
    ) -> tuple[Array, Array, Array]:
        """The fused scores, confidences and off-topic catches the decision is made on, once
        the parts of long messages have had their say (`LongMessages`)."""
        design = self.config.long_messages
        fused, confidences = scores.fused.copy(), confidences.copy()
        off_topic = scores.off_topic.copy()
        if design is LongMessages.WHOLE:
            return fused, confidences, off_topic
        # (row, part, prior): the parts of each message to score alone.
        asked: list[tuple[int, str, float]] = []
        for row, text in enumerate(texts):
            unsure = confidences[row] < self.thresholds.answer and off_topic[row] < 0
            if design is LongMessages.QUESTION_BACKS and unsure:
                sentence = question_sentence(text)
                asked += [(row, sentence, 1.0)] if sentence else []
            elif design is LongMessages.CLAUSES_BACK and unsure:
                asked += [(row, clause, 1.0) for clause in clauses(text)]
            elif design is LongMessages.QUESTION_ALONE:
                sentence = question_sentence(text)
                asked += [(row, sentence, 1.0)] if sentence else []
            elif design is LongMessages.BEST_PART and off_topic[row] < 0:
                question = question_sentence(text)
                asked += [
                    (row, part, 1.0 if part == question else OTHER_SENTENCE_PRIOR)
                    for part in sentences(text)
                ]
        if not asked:
            return fused, confidences, off_topic
        part_scores, scored = self._score([part for _, part, _ in asked])
        if part_scores is None:
            return fused, confidences, off_topic
        part_confidences = self._confidence.predict(part_scores)
        part_confidences[part_scores.off_topic >= 0] = 0.0
        part_best = part_scores.fused.argmax(axis=1)
        best = scores.fused.argmax(axis=1)
        whole = confidences.copy()
        for position, index in enumerate(scored):
            row, _, prior = asked[index]
            confidence = float(part_confidences[position])
            if design in (LongMessages.QUESTION_BACKS, LongMessages.CLAUSES_BACK):
                if part_best[position] == best[row]:
                    confidences[row] = max(confidences[row], (whole[row] + confidence) / 2)
            elif design is LongMessages.QUESTION_ALONE:
                fused[row] = part_scores.fused[position]
                confidences[row] = confidence
                off_topic[row] = part_scores.off_topic[position]
            elif part_scores.off_topic[position] < 0 and prior * confidence > confidences[row]:
                fused[row] = part_scores.fused[position]
                confidences[row] = prior * confidence
        return fused, confidences, off_topic

    def rank(self, text: str, limit: int) -> list[Candidate]:
        """The `limit` best entries for `text`, best first."""
        scores, _ = self._score([text])
        return [] if scores is None else list(self._candidates(scores.fused[0], limit))

    def _score(self, texts: Sequence[str]) -> tuple[_Scores | None, list[int]]:
        """Scores of the queries that have something to match (words, and a KB), and
        their positions in `texts`."""
        if self.config.correct_typos:
            texts = [self._speller.correct(text) for text in texts]
        queries = [normalize(text) for text in texts]
        answerable = [i for i, query in enumerate(queries) if query]
        if not answerable or not self.entry_ids:
            return None, []
        vectors = self.encoder.encode_queries([texts[i] for i in answerable])
        return self._scorer.score(vectors, [queries[i] for i in answerable]), answerable

    def _candidates(self, fused: Array, limit: int) -> tuple[Candidate, ...]:
        best = _top(fused[None, :], limit)[0]
        return tuple(Candidate(self.entry_ids[i], round(float(fused[i]), 4)) for i in best)


@dataclass(frozen=True)
class _Scores:
    fused: Array  # (queries, entries)
    head: Array
    nearest: Array  # best cosine per entry
    centroid: Array  # cosine to each entry's centroid
    # The off-topic phrasing nearer than every entry's (the query falls back), else -1.
    off_topic: Array


@dataclass(frozen=True)
class _Head:
    """The logistic-regression head: a weight row and a bias per entry."""

    weights: Array  # (entries, dim)
    bias: Array  # (entries,)

    @classmethod
    def fit(cls, vectors: Array, labels: Array, entries: int, config: MatcherConfig) -> _Head:
        # Imported here: a start on a stored fit never needs scikit-learn (0.8 s to import).
        from sklearn.linear_model import LogisticRegression

        weights = np.zeros((entries, vectors.shape[1]), dtype=np.float32)
        bias = np.full(entries, -1e4, dtype=np.float32)  # entries absent here never win
        head = LogisticRegression(C=config.head_c, max_iter=300, tol=1e-3)
        head.fit(vectors, labels)
        weights[head.classes_] = head.coef_.astype(np.float32)
        bias[head.classes_] = head.intercept_.astype(np.float32)
        return cls(weights, bias)


class _Scorer:
    """The three scores for a batch of queries, against phrasings grouped by entry; the head
    is fitted here unless given."""

    def __init__(
        self,
        vectors: Array,
        labels: Array,
        texts: Sequence[str],
        entries: int,
        config: MatcherConfig,
        head_weight: float,
        head: _Head | None = None,
        off_topic_vectors: Array | None = None,
    ) -> None:
        if np.any(labels[1:] < labels[:-1]):
            order = np.argsort(labels, kind="stable")
            vectors, labels, texts = vectors[order], labels[order], [texts[i] for i in order]
        # KBs come grouped by entry, so this is no copy (a 5,000-entry KB's is 77 MB).
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = labels
        self.texts = list(texts)
        self.entries = entries
        self.config = config
        self.head_weight = head_weight
        self.present = np.unique(self.labels)
        self.absent = np.setdiff1d(np.arange(entries), self.present)
        self.starts = np.searchsorted(self.labels, self.present)
        self.ends = np.append(self.starts[1:], len(self.labels))
        centroids = np.zeros((entries, vectors.shape[1]), dtype=np.float32)
        np.add.at(centroids, self.labels, self.vectors)
        self.centroids = centroids / np.maximum(
            np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12
        )
        self.off_topic_vectors = off_topic_vectors
        self.head: _Head | None = None
        if len(self.present) > 1 and len(self.labels) * entries <= HEAD_BUDGET:
            self.head = head or _Head.fit(self.vectors, self.labels, entries, config)

    def score(self, queries: Array, query_texts: Sequence[str]) -> _Scores:
        head, p_near, nearest = self.semantic(queries)
        fused = p_near if self.head is None else _fuse(head, p_near, self.head_weight)
        lexical_weight = self.config.lexical_weight
        fused = (1 - lexical_weight) * fused + lexical_weight * self._lexical(fused, query_texts)
        return _Scores(
            fused, head, nearest, queries @ self.centroids.T, self._off_topic(queries, nearest)
        )

    def _off_topic(self, queries: Array, nearest: Array) -> Array:
        """Per query, the off-topic phrasing nearer than every entry's phrasings, else -1."""
        found = np.full(len(queries), -1, dtype=np.int64)
        if self.off_topic_vectors is None or not len(self.off_topic_vectors):
            return found
        similarity = queries @ self.off_topic_vectors.T
        best = similarity.argmax(axis=1)
        margin = self.config.off_topic_margin
        caught = similarity[np.arange(len(queries)), best] > nearest.max(axis=1) + margin
        found[caught] = best[caught]
        return found

    def semantic(self, queries: Array) -> tuple[Array, Array, Array]:
        """`p_head` (`p_near` when there is no head), `p_near` and the best cosine per entry."""
        nearest = np.full((len(queries), self.entries), -1.0, dtype=np.float32)
        nearest[:, self.present] = np.maximum.reduceat(
            queries @ self.vectors.T, self.starts, axis=1
        )
        p_near = _softmax(self.config.near_scale * nearest)
        p_near[:, self.absent] = 0.0
        if self.head is None:
            return p_near, p_near, nearest
        return _softmax(queries @ self.head.weights.T + self.head.bias), p_near, nearest

    def _lexical(self, fused: Array, query_texts: Sequence[str]) -> Array:
        """Softmax of the best token-set ratio over each query's pool of best entries."""
        lexical = np.zeros_like(fused)
        pool_size = min(LEXICAL_POOL, self.entries)
        for row, query in enumerate(query_texts):
            pool = np.argpartition(-fused[row], pool_size - 1)[:pool_size]
            ratios = np.zeros(pool_size, dtype=np.float32)
            for position, entry in enumerate(pool):
                slot = np.searchsorted(self.present, entry)
                if slot < len(self.present) and self.present[slot] == entry:
                    best = process.extractOne(
                        query,
                        self.texts[self.starts[slot] : self.ends[slot]],
                        scorer=fuzz.token_set_ratio,
                    )
                    ratios[position] = best[1] / 100 if best else 0.0
            lexical[row, pool] = _softmax(self.config.lexical_scale * ratios)
        return lexical


def sentences(text: str) -> list[str]:
    """The sentences of a longer message that have words enough to ask something; empty for a
    one-sentence message."""
    parts = [part.strip() for part in _SENTENCE_END.split(text)]
    parts = [part for part in parts if word_count(part) >= MIN_SENTENCE_WORDS]
    return parts if len(parts) >= 2 else []


def question_sentence(text: str) -> str | None:
    """The sentence of a longer message that most likely asks its question: the last one
    ending in a question mark, else the last one. None for a one-sentence message."""
    parts = sentences(text)
    if not parts:
        return None
    questions = [part for part in parts if part.endswith(("?", "？"))]
    return (questions or parts)[-1]


def clauses(text: str) -> list[str]:
    """The clauses of a message (its sentences cut at commas, dashes and conjunctions) that
    have words enough to ask something; empty when there are fewer than two."""
    parts = [
        clause.strip(" ,:-–—，：")
        for sentence in _SENTENCE_END.split(text)
        for clause in _CLAUSE_END.split(sentence)
    ]
    parts = [part for part in parts if word_count(part) >= MIN_SENTENCE_WORDS]
    return parts if len(parts) >= 2 else []


def _fuse(head: Array, p_near: Array, head_weight: float) -> Array:
    """The semantic score: the head's and the nearest phrasing's probabilities, weighted."""
    result: Array = head_weight * head + (1 - head_weight) * p_near
    return result


def _softmax(logits: Array) -> Array:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    result: Array = shifted / shifted.sum(axis=-1, keepdims=True)
    return result


def _top(scores: Array, count: int) -> Array:
    """Column indices of each row's `count` best scores, best first (no full sort: a big KB
    has thousands of columns)."""
    count = min(count, scores.shape[1])
    best = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
    result: Array = np.take_along_axis(best, order, axis=1)
    return result


def _top_mass(fused: Array) -> Array:
    top = _top(fused, SUGGESTIONS)
    result: Array = np.take_along_axis(fused, top, axis=1).sum(axis=1)
    return result


def _features(scores: _Scores) -> Array:
    """What the confidence model looks at, one row per query."""
    fused = scores.fused
    rows = np.arange(len(fused))
    order = _top(fused, 2)
    first = fused[rows, order[:, 0]]
    second = fused[rows, order[:, 1]] if fused.shape[1] > 1 else np.zeros(len(fused))
    return np.stack(
        [
            first,
            first - second,
            scores.head[rows, order[:, 0]],
            scores.nearest.max(axis=1),
            scores.centroid[rows, order[:, 0]],
            _top_mass(fused),
        ],
        axis=1,
    )


class _Confidence:
    """P(the top entry is right) from `_features`, a logistic model fitted by simulation."""

    def __init__(self, weights: Array, bias: float) -> None:
        self.weights, self.bias = weights, bias

    def predict(self, scores: _Scores) -> Array:
        return self.of_features(_features(scores))

    def of_features(self, features: Array) -> Array:
        result: Array = 1 / (1 + np.exp(-(features @ self.weights + self.bias)))
        return result


def _choose_head_weight(
    vectors: Array, labels: Array, texts: Sequence[str], entries: int, config: MatcherConfig
) -> float:
    """The weight of `HEAD_WEIGHTS` whose fusion ranks the KB's own phrasings best when each
    is asked against a head fitted without it (5 folds within every entry)."""
    if config.head_weight is not None:
        return config.head_weight
    if len(labels) * entries > HEAD_BUDGET:  # no head: the weight weighs nothing
        return DEFAULT_HEAD_WEIGHT
    fold_of = _folds_within_entries(
        labels, entries, config.folds, np.random.default_rng(config.seed)
    )
    counts = np.bincount(labels, minlength=entries)
    right = dict.fromkeys(HEAD_WEIGHTS, 0)
    for fold in range(config.folds):
        # An entry's only phrasing cannot be asked: nothing would be left to find it by.
        asked = (fold_of == fold) & (counts[labels] > 1)
        training = ~asked
        if not asked.any() or len(np.unique(labels[training])) < 2:
            continue
        scorer = _Scorer(
            vectors[training],
            labels[training],
            [texts[i] for i in np.flatnonzero(training).tolist()],
            entries,
            config,
            DEFAULT_HEAD_WEIGHT,
        )
        if scorer.head is None:
            return DEFAULT_HEAD_WEIGHT
        rows = np.flatnonzero(asked)
        for start in range(0, len(rows), SIMULATION_BLOCK):
            block = rows[start : start + SIMULATION_BLOCK]
            head, p_near, _ = scorer.semantic(vectors[block])
            for weight in HEAD_WEIGHTS:
                best = _fuse(head, p_near, weight).argmax(axis=1)
                right[weight] += int((best == labels[block]).sum())
    # Most right wins; a tie goes to the weight nearest the default.
    return max(HEAD_WEIGHTS, key=lambda weight: (right[weight], -abs(weight - DEFAULT_HEAD_WEIGHT)))


def _folds_within_entries(
    labels: Array, entries: int, folds: int, rng: np.random.Generator
) -> Array:
    """A fold number per phrasing, dealt evenly among each entry's phrasings."""
    fold_of = np.empty(len(labels), dtype=np.int64)
    for entry in range(entries):
        rows = np.flatnonzero(labels == entry)
        fold_of[rows] = rng.permutation(len(rows)) % folds
    return fold_of


def _calibrate(kb_scorer: _Scorer) -> tuple[_Confidence, Thresholds]:
    """Fit the confidence model and the thresholds on simulated questions (docs/architecture.md,
    "Fitting by simulation"), from the phrasings, settings and off-topic phrasings of the
    KB's scorer."""
    from sklearn.linear_model import LogisticRegression

    config = kb_scorer.config
    if kb_scorer.entries < 3:
        # Too small to simulate unknown questions: answer only the clearest cases.
        return _Confidence(np.zeros(6), 0.0), Thresholds(answer=0.5, suggest=0.0)
    features, right, unknown, in_top3, caught = _simulate(kb_scorer)
    # A caught question falls back whatever its confidence: the model learns from the rest,
    # unless they are all right or all wrong (a small KB whose off-topic phrasings catch every
    # unknown question): then from all.
    learn = ~caught if len(np.unique(right[~caught])) == 2 else np.ones_like(caught)
    if len(np.unique(right[learn])) < 2:
        # Nothing to tell right from wrong by: answer only the clearest cases, as above.
        return _Confidence(np.zeros(6), 0.0), Thresholds(answer=0.5, suggest=0.0)
    mean, spread = features[learn].mean(axis=0), features[learn].std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit((features[learn] - mean) / spread, right[learn].astype(int))
    weights = model.coef_[0] / spread
    confidence = _Confidence(weights, float(model.intercept_[0] - (weights * mean).sum()))
    simulated = confidence.of_features(features)
    simulated[caught] = 0.0
    unknown_confidence = np.sort(simulated[unknown])
    if len(unknown_confidence):
        index = int(np.ceil(config.target_unanswered * len(unknown_confidence))) - 1
        answer = float(np.nextafter(unknown_confidence[index], np.inf))
    else:
        answer = 0.5
    answerable = ~unknown & in_top3
    suggest = (
        float(np.quantile(features[answerable, 5], config.fallback_quantile))
        if answerable.any()
        else 0.0
    )
    return confidence, Thresholds(answer=answer, suggest=suggest)


def _simulate(kb_scorer: _Scorer) -> tuple[Array, Array, Array, Array, Array]:
    """Score the KB's held-out phrasings as questions: features, top-1 right, unknown, right in
    top 3, caught as off-topic. Off-topic phrasings are never removed nor asked: they catch
    what they would catch live."""
    vectors, entries, config = kb_scorer.vectors, kb_scorer.entries, kb_scorer.config
    rng = np.random.default_rng(config.seed)
    kept = np.concatenate(
        [
            rng.permutation(np.flatnonzero(kb_scorer.labels == entry))[
                : config.max_simulated_per_entry
            ]
            for entry in range(entries)
        ]
    )
    # Indices into `vectors` rather than a copy of the kept rows: memory peaks here.
    labels = kb_scorer.labels[kept]
    texts = [kb_scorer.texts[i] for i in kept]
    entry_fold = rng.permutation(entries) % config.folds
    row_fold = _folds_within_entries(labels, entries, config.folds, rng)
    collected: list[tuple[Array, Array, Array, Array, Array]] = []
    for fold in range(config.folds):
        unknown = entry_fold[labels] == fold
        counts = np.bincount(labels[~unknown], minlength=entries)
        # An entry's only phrasing cannot be held out: it stays in training.
        held_out = ~unknown & (row_fold == fold) & (counts[labels] > 1)
        training = ~unknown & ~held_out
        if len(np.unique(labels[training])) < 2:
            continue
        scorer = _Scorer(
            vectors[kept[training]],
            labels[training],
            [texts[i] for i in np.flatnonzero(training)],
            entries,
            config,
            kb_scorer.head_weight,
            off_topic_vectors=kb_scorer.off_topic_vectors,
        )
        asked = np.flatnonzero(unknown | held_out)
        if len(asked) > config.max_simulated_per_fold:
            asked = np.sort(rng.choice(asked, config.max_simulated_per_fold, replace=False))
        for start in range(0, len(asked), SIMULATION_BLOCK):
            block = asked[start : start + SIMULATION_BLOCK]
            scores = scorer.score(vectors[kept[block]], [texts[i] for i in block])
            top3 = _top(scores.fused, SUGGESTIONS)
            truth, is_unknown = labels[block], unknown[block]
            collected.append(
                (
                    _features(scores),
                    ~is_unknown & (top3[:, 0] == truth),
                    is_unknown,
                    ~is_unknown & (top3 == truth[:, None]).any(axis=1),
                    scores.off_topic >= 0,
                )
            )
    features, right, unknown_rows, in_top3, caught = (
        np.concatenate(part) for part in zip(*collected, strict=True)
    )
    return features, right, unknown_rows, in_top3, caught


@dataclass(frozen=True)
class _Fit:
    """All that fitting learns from a KB (the rest is read off its vectors at load)."""

    head: _Head | None
    head_weight: float
    confidence: _Confidence
    thresholds: Thresholds


class _FitStore:
    """One fit per file in the cache folder, named by a hash of everything it depends on:
    the model, the hyper-parameters, the phrasings by entry and the off-topic ones, the code
    that scores and fits (this module and the text normalisation) and the versions of the
    libraries in it. An edited KB or an upgrade then never reuses a stale fit."""

    def __init__(
        self,
        folder: Path,
        model_id: str,
        config: MatcherConfig,
        phrasings: Mapping[str, list[str]],
        off_topic: Sequence[str],
    ) -> None:
        digest = hashlib.sha256(_fitting_code_version().encode())
        for part in (model_id, repr(config)):
            digest.update(part.encode())
        texts = [list(phrasings.items()), list(off_topic)]
        digest.update(json.dumps(texts, ensure_ascii=False).encode())
        self.folder = folder
        self.path = folder / f"fit-{digest.hexdigest()[:32]}.npz"

    def load(self, entries: int, dim: int) -> _Fit | None:
        """The stored fit, or None when there is none (or it cannot be used)."""
        if not self.path.is_file():
            return None
        try:
            with np.load(self.path) as stored:
                fit = _Fit(
                    _Head(stored["head_weights"], stored["head_bias"])
                    if stored["head_weights"].size
                    else None,
                    float(stored["head_weight"]),
                    _Confidence(stored["confidence_weights"], float(stored["confidence_bias"])),
                    Thresholds(float(stored["answer"]), float(stored["suggest"])),
                )
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("faq.fit_unreadable path=%s error=%s", self.path, exc)
            return None
        if fit.head is not None and fit.head.weights.shape != (entries, dim):
            logger.warning("faq.fit_unreadable path=%s error=shape", self.path)
            return None
        touch(self.path)
        return fit

    def save(self, fit: _Fit) -> None:
        """Write atomically (a reader never sees half a file), then drop the oldest fits."""
        head = fit.head or _Head(np.zeros((0, 0), np.float32), np.zeros(0, np.float32))
        try:
            save_npz(
                self.path,
                head_weights=head.weights,
                head_bias=head.bias,
                head_weight=fit.head_weight,
                confidence_weights=fit.confidence.weights,
                confidence_bias=fit.confidence.bias,
                answer=fit.thresholds.answer,
                suggest=fit.thresholds.suggest,
            )
            keep_recent(self.folder, "fit-*.npz", KEPT_FITS)
        except OSError as exc:
            # Only the next start's speed depends on it.
            logger.warning("faq.fit_not_saved path=%s error=%s", self.path, exc)


@functools.cache
def _fitting_code_version() -> str:
    """The code that scores and fits (this module, the text normalisation) and the libraries
    in it: read once per process, not at every reload."""
    digest = hashlib.sha256()
    for module in (__file__, faq.text.__file__):
        digest.update(Path(module).read_bytes())
    for library in ("scikit-learn", "rapidfuzz", "numpy"):
        digest.update(metadata.version(library).encode())
    return digest.hexdigest()
