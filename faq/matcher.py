"""Find the entry a customer means, and decide whether to answer, suggest or admit not knowing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from faq.encoder import Encoder, Vectors
from faq.text import normalize

SUGGESTIONS = 3
# Lexical scores are computed for the best semantic entries only: enough to rescue typos
# and identifiers, and cheap on a 5,000-entry KB.
LEXICAL_POOL = 10
LEXICAL_WEIGHT = 0.2


class Decision(StrEnum):
    ANSWER = "answer"
    SUGGEST = "suggest"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    score: float


@dataclass(frozen=True)
class Match:
    """The matcher's verdict: the decision and the best candidates, best first."""

    decision: Decision
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above `answer` are answered; at or above `suggest`, offered as choices."""

    answer: float
    suggest: float


class Matcher:
    """Scores a query against every entry's phrasings: semantic similarity fused with lexical.

    Takes the encoder and entry id -> phrasings; the decision thresholds are fitted on the
    phrasings themselves (see `calibrate`) unless given.
    """

    def __init__(
        self,
        encoder: Encoder,
        phrasings: Mapping[str, list[str]],
        thresholds: Thresholds | None = None,
    ) -> None:
        self.encoder = encoder
        self.entry_ids = list(phrasings)
        texts = [text for entry_id in self.entry_ids for text in phrasings[entry_id]]
        self._owner = np.array(
            [index for index, entry_id in enumerate(self.entry_ids) for _ in phrasings[entry_id]]
        )
        self._texts = [normalize(text) for text in texts]
        self._vectors = encoder.encode(texts)
        self.thresholds = thresholds or self.calibrate()

    def match(self, text: str) -> Match:
        """Rank the entries for `text` and decide what to do with the best one."""
        candidates = self.rank(text, SUGGESTIONS)
        best = candidates[0].score if candidates else 0.0
        if best >= self.thresholds.answer:
            decision = Decision.ANSWER
        elif best >= self.thresholds.suggest:
            decision = Decision.SUGGEST
        else:
            decision = Decision.FALLBACK
        return Match(decision, tuple(candidates))

    def rank(self, text: str, limit: int) -> list[Candidate]:
        """The `limit` best entries for `text`, best first."""
        query = normalize(text)
        if not query or not self.entry_ids:
            return []
        scores = self._entry_scores(self.encoder.encode_query(text), query)
        order = np.argsort(-scores)[:limit]
        return [Candidate(self.entry_ids[i], round(float(scores[i]), 4)) for i in order]

    def _entry_scores(self, query_vector: Vectors, query: str, exclude: int = -1) -> Vectors:
        similarities = self._vectors @ query_vector
        if exclude >= 0:
            similarities[exclude] = -1.0
        semantic = np.full(len(self.entry_ids), -1.0, dtype=np.float32)
        np.maximum.at(semantic, self._owner, similarities)
        pool = np.argsort(-semantic)[:LEXICAL_POOL]
        fused = semantic.copy()
        for entry in pool:
            phrasing_rows = np.flatnonzero(self._owner == entry)
            if exclude >= 0:
                phrasing_rows = phrasing_rows[phrasing_rows != exclude]
            lexical = process.extractOne(
                query, [self._texts[row] for row in phrasing_rows], scorer=fuzz.token_set_ratio
            )
            if lexical is not None:
                fused[entry] = (1 - LEXICAL_WEIGHT) * semantic[entry] + LEXICAL_WEIGHT * lexical[
                    1
                ] / 100
        return fused

    def calibrate(self) -> Thresholds:
        """Fit thresholds on the KB by leave-one-out: each phrasing is asked as a query.

        `answer` is the lowest score at which at least 95 % of the left-out phrasings that
        score that high find their own entry; `suggest` is where that share falls to 50 %.
        """
        if len(self._texts) < 2:
            return Thresholds(answer=0.8, suggest=0.5)
        scores, correct = [], []
        for row, vector in enumerate(self._vectors):
            entry_scores = self._entry_scores(vector, self._texts[row], exclude=row)
            best = int(np.argmax(entry_scores))
            scores.append(float(entry_scores[best]))
            correct.append(best == self._owner[row])
        order = np.argsort(scores)[::-1]
        precision = np.cumsum(np.array(correct)[order]) / np.arange(1, len(order) + 1)
        ranked = np.array(scores)[order]
        return Thresholds(
            answer=_lowest_score_with_precision(ranked, precision, 0.95),
            suggest=_lowest_score_with_precision(ranked, precision, 0.5),
        )


def _lowest_score_with_precision(
    scores: np.ndarray[Any, Any], precision: np.ndarray[Any, Any], target: float
) -> float:
    good = np.flatnonzero(precision >= target)
    return float(scores[good[-1]]) if len(good) else float(scores[0])
