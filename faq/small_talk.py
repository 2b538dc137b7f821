"""Small talk: a message that is only a greeting, thanks, a goodbye, an "ok" or "are you a
bot?" is not a question. It is recognised by its words before the matcher and gets the KB's
own reply for its kind (`small_talk:` in faq/kb); a question that opens with small talk
("hi, where is my order?") is matched without that opening.

Recognition is lexical and conservative, because a model reads "thanks" and "thanks, but the
PSU is still dead" as close: the whole message must be made of the KB's small-talk phrases and
filler words, each written as in the KB or, for a phrase of 4 letters or more, one typo away
(as faq/spelling.py counts them). Words of the KB's questions are never read as typos: "mine"
is not "fine".
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from rapidfuzz import process
from rapidfuzz.distance import OSA

from faq.schema import SmallTalkKind

# Phrases this long (letters, spaces aside) may be written with one typo: "thnaks", "helo".
TYPO_MIN_LETTERS = 4
TYPO_EDITS = 1

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A Chinese character (Chinese has no spaces: each is a token), a run of other word
# characters, or any other character (emoji are kept, punctuation dropped).
_TOKEN = re.compile(rf"(?P<han>[{_HAN}])|(?P<word>[^\W{_HAN}]+)|(?P<other>[^\w\s])")
_WORD = re.compile(rf"[^\W{_HAN}]+")
# "thanksss", "hiii", "okk": a letter repeated reads as one (digits are left alone).
_REPEATED = re.compile(r"([^\W\d])\1+")

# (index of the kind, index of the phrase in it), as the KB lists them.
PhraseRef = tuple[int, int]
_FILLER: PhraseRef = (-1, -1)


@dataclass(frozen=True)
class Reading:
    """What a message is: small talk of `kind` (the whole of it), or a question to match."""

    kind: SmallTalkKind | None
    # What to match as a question: the message without a small-talk opening, or all of it;
    # empty when the message is small talk.
    question: str
    # The KB's phrases read in the message (in the small talk, or in the opening left out).
    phrases: tuple[PhraseRef, ...] = ()


@dataclass(frozen=True)
class _Token:
    key: str
    start: int
    end: int
    han: bool = False
    word: bool = False


@dataclass(frozen=True)
class _Path:
    """A way to read the tokens up to some point as phrases and filler."""

    edits: int = 0
    phrases: tuple[PhraseRef, ...] = ()
    # Tokens in the last phrase or filler word read.
    last: int = 0

    def then(self, ref: PhraseRef, edits: int, length: int) -> _Path:
        phrases = self.phrases if ref == _FILLER else (*self.phrases, ref)
        return _Path(self.edits + edits, phrases, length)

    def rank(self) -> tuple[bool, int]:
        """Lower is better: a reading with a phrase, then with fewer typos."""
        return not self.phrases, self.edits


def _key(text: str) -> str:
    """A token as compared: Unicode-normalised, case-folded, ё as е, repeats as one."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return _REPEATED.sub(r"\1", folded)


def _tokens(text: str) -> Iterator[_Token]:
    """The words, Chinese characters and emoji of `text`, where they stand in it."""
    last: _Token | None = None
    for found in _TOKEN.finditer(text):
        raw = found.group()
        han, word = found.group("han") is not None, found.group("word") is not None
        # Punctuation, variation selectors, skin tones, "+" or "$": not what small talk says.
        if not (han or word or unicodedata.category(raw) == "So"):
            continue
        key = _key(raw)
        if last is not None and not word and not last.word and last.key == key:
            # "谢谢", "哈哈哈", "👍👍": a character repeated reads as one.
            last = replace(last, end=found.end())
            continue
        if last is not None:
            yield last
        last = _Token(key, found.start(), found.end(), han, word)
    if last is not None:
        yield last


class _Tokens:
    """A text's tokens, read only as far as they are asked for: a long question costs no
    more than a short one."""

    def __init__(self, text: str) -> None:
        self._upcoming = _tokens(text)
        self._read: list[_Token] = []

    def at(self, index: int) -> _Token | None:
        """The token at `index`; None past the last one."""
        while len(self._read) <= index:
            token = next(self._upcoming, None)
            if token is None:
                return None
            self._read.append(token)
        return self._read[index]


def phrase_key(text: str) -> str:
    """What a phrase is compared as ("" for one with no words or emoji, such as "?!")."""
    return " ".join(token.key for token in _tokens(text))


class SmallTalk:
    """Reads messages as small talk of the KB's kinds, or as questions.

    `kinds` in the KB's order: a message that mixes kinds ("ok thanks", "thanks, bye") is of
    the kind listed first. `filler` may go with any phrase. `questions` are the KB's
    phrasings and off-topic questions: their words are never read as typos.
    """

    def __init__(
        self,
        kinds: Sequence[SmallTalkKind] = (),
        filler: Iterable[str] = (),
        questions: Iterable[str] = (),
    ) -> None:
        self.kinds = tuple(kinds)
        self._exact: dict[str, PhraseRef] = {}
        for text in filler:
            self._add(text, _FILLER)
        for kind_index, kind in enumerate(self.kinds):
            for phrase_index, text in enumerate(kind.phrases):
                self._add(text, (kind_index, phrase_index))
        # Every key's first tokens: a span that is none of them starts no longer key.
        self._prefixes = {
            " ".join(words[:count])
            for words in (key.split(" ") for key in self._exact)
            for count in range(1, len(words))
        }
        # Phrases that may be written with a typo, by their first letter (typos rarely
        # touch it, and "mice" is not "nice").
        self._typos: dict[str, list[str]] = {}
        for key, ref in self._exact.items():
            if ref != _FILLER and _typo_prone(key):
                self._typos.setdefault(key[0], []).append(key)
        # A typo may also join or split words: "thankyou", "good bye".
        typo_prone = [key for keys in self._typos.values() for key in keys]
        self._typo_tokens = max((key.count(" ") + 1 for key in typo_prone), default=0) + 1
        self._longest = max((key.count(" ") + 1 for key in self._exact), default=0) + 1
        self._known = frozenset(word for text in questions for word in _WORD.findall(_key(text)))

    def _add(self, text: str, ref: PhraseRef) -> None:
        key = phrase_key(text)
        # The first wins: filler before phrases, kinds in order (the loader refuses both).
        if key:
            self._exact.setdefault(key, ref)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def read(self, text: str) -> Reading:
        """Small talk if the whole message is phrases and filler with at least one phrase;
        otherwise the question, without its small-talk opening ("hi, thanks, where is my
        order?" is matched as "where is my order?").

        The opening is the longest run of phrases and filler there is, and it is left out
        only where it clearly ends: at punctuation, or after a one-word phrase or filler
        ("hi where..."). "how are you shipping it" and "好用吗" stay whole."""
        if not self._exact:
            return Reading(None, text)
        tokens = _Tokens(text)
        paths = self._paths(tokens)
        end = max((end for end, path in paths.items() if path.phrases), default=0)
        if end == 0:
            return Reading(None, text)
        path, before, after = paths[end], tokens.at(end - 1), tokens.at(end)
        if after is None:
            kind = self.kinds[min(kind_index for kind_index, _ in path.phrases)]
            return Reading(kind, "", path.phrases)
        if before is not None and _opening_ends(text, before, after, path.last):
            return Reading(None, text[after.start :], path.phrases)
        return Reading(None, text)

    def _paths(self, tokens: _Tokens) -> dict[int, _Path]:
        """For each token count n, the best reading of the first n tokens (absent: none)."""
        paths: dict[int, _Path] = {0: _Path()}
        furthest = 0  # the end of the longest reading so far
        for start in itertools.count():
            if start > furthest:
                break
            path = paths.get(start)
            if path is None:
                continue
            for length, ref, edits in self._found_at(tokens, start):
                extended = path.then(ref, edits, length)
                current = paths.get(start + length)
                if current is None or extended.rank() < current.rank():
                    paths[start + length] = extended
                furthest = max(furthest, start + length)
        return paths

    def _found_at(self, tokens: _Tokens, start: int) -> Iterator[tuple[int, PhraseRef, int]]:
        """Each phrase or filler word that starts at `start`: its length in tokens, which it
        is, and the typos it took."""
        key = ""
        words = known = True  # all the span's tokens are words; all are known words
        for length in range(1, self._longest + 1):
            token = tokens.at(start + length - 1)
            if token is None:
                return
            key = f"{key} {token.key}" if key else token.key
            words = words and token.word
            known = known and token.key in self._known
            exact = self._exact.get(key)
            may_be_typo = words and not known and length <= self._typo_tokens
            if exact is not None:
                yield length, exact, 0
            elif may_be_typo and (typo := self._typo(key)) is not None:
                yield length, typo, TYPO_EDITS
            if key not in self._prefixes and not may_be_typo:
                return

    def _typo(self, key: str) -> PhraseRef | None:
        """The phrase `key` is with one typo, if any."""
        candidates = self._typos.get(key[0])
        if not candidates:
            return None
        best = process.extractOne(key, candidates, scorer=OSA.distance, score_cutoff=TYPO_EDITS)
        return None if best is None else self._exact[best[0]]


def _opening_ends(text: str, before: _Token, after: _Token, last: int) -> bool:
    """Whether a small-talk opening that ends with `before` (its last phrase or filler
    `last` tokens long) is apart from the question that starts with `after`."""
    gap = text[before.end : after.start]
    if gap.strip():
        return True  # punctuation: "good morning, how long..."
    if before.han and after.han:
        return bool(gap)  # Chinese separates with a space, or not at all: "你好我想问"
    return last == 1 and not before.han


def _typo_prone(key: str) -> bool:
    """Letters only, and enough of them that one typo still leaves the word recognisable."""
    letters = key.replace(" ", "")
    return (
        letters.isalpha()
        and len(letters) >= TYPO_MIN_LETTERS
        and not re.search(f"[{_HAN}]", letters)
    )
