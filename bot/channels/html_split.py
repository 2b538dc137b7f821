"""Split Telegram-HTML text into messages that fit Telegram's length limit.

Telegram rejects a message longer than 4096 characters, counted on the *visible* text
(tags removed, entities unescaped) in UTF-16 code units. Cutting the raw HTML instead
would cut through tags, entities and emoji and leave formatting unclosed, and Telegram
rejects such a message outright. So this module picks the most natural break in the
visible text and rebuilds well-formed HTML around each piece: elements open at a break
are closed at the end of one chunk and reopened, attributes and all, in the next.

Everything is linear in the input: the visible text is extracted once, break points are
searched with regular expressions within one chunk's window, and each tag is handled once.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from enum import Enum
from typing import NamedTuple

TELEGRAM_LIMIT = 4096

# A tag, or one of the entities Telegram understands (all numeric ones, four named ones).
# Anything else ("a < b", "&copy;") is literal text, which at worst overestimates length.
# A tag may not contain a bare "<", so a stray "<" costs a scan to the next "<", not to
# the end of the text.
_MARKUP = re.compile(
    r"""<(?P<close>/?)(?P<name>[A-Za-z][A-Za-z0-9-]*)(?:[^<>"']|"[^"]*"|'[^']*')*>"""
    r"|&(?:lt|gt|amp|quot|#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8});"
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 code units each

# Break points, best first. Each pattern is matched from the chunk's start with a greedy
# ".*", so the regex engine finds the *last* break of that kind in the window.
_PARAGRAPH = re.compile(r"(?s).*(\n[ \t\r\f\v]*\n)")
# Break after the punctuation (and any closing quotes), which stays with its sentence.
_SENTENCE = re.compile(r"""(?s).*[.!?…]["'”’»)\]]*(?=\s)""")
_CJK_SENTENCE = re.compile(r"(?s).*[。！？][」』”’）]*")
# Whitespace one may break at: not the no-break spaces.
_SPACE = re.compile(r"(?s).*[^\S\u00a0\u2007\u202f]")
_NON_SPACE = re.compile(r"\S")

_ZWJ = "\u200d"
# How far a hard break backs off to avoid splitting a grapheme cluster (an emoji with
# a skin tone, a ZWJ family, a letter with combining accents) before giving up.
_MAX_CLUSTER = 32


class _Kind(Enum):
    OPEN = "open"
    CLOSE = "close"
    VOID = "void"  # "<x/>"; Telegram has none, but keep it rather than break it


class _Tag(NamedTuple):
    pos: int  # number of visible characters before the tag
    start: int  # span in the raw text
    end: int
    raw: str
    name: str
    kind: _Kind


class _Document:
    """The visible text of a Telegram-HTML string, mapped back to the raw text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tags: list[_Tag] = []
        visible: list[str] = []
        # Segments of the visible text: a run of literal text maps to the raw text
        # character for character, an entity is one visible character for `length` raw
        # ones. `length` is 0 for a literal run.
        self._seg_pos: list[int] = []
        self._seg_raw: list[int] = []
        self._seg_length: list[int] = []
        pos = raw = 0
        for match in _MARKUP.finditer(text):
            start, end = match.span()
            if start > raw:
                self._segment(pos, raw, 0)
                visible.append(text[raw:start])
                pos += start - raw
            name = match.group("name")
            if name:
                self.tags.append(_tag(match, name, pos))
            else:
                self._segment(pos, start, end - start)
                visible.append(_unescape(match.group()))
                pos += 1
            raw = end
        if raw < len(text):
            self._segment(pos, raw, 0)
            visible.append(text[raw:])
        self.visible = "".join(visible)
        self._astral = [m.start() for m in _ASTRAL.finditer(self.visible)]

    def _segment(self, pos: int, raw: int, length: int) -> None:
        self._seg_pos.append(pos)
        self._seg_raw.append(raw)
        self._seg_length.append(length)

    def raw_start(self, pos: int) -> int:
        """Where visible character `pos` starts in the raw text."""
        i = bisect_right(self._seg_pos, pos) - 1
        return self._seg_raw[i] + (0 if self._seg_length[i] else pos - self._seg_pos[i])

    def raw_end(self, pos: int) -> int:
        """Where visible character `pos` ends in the raw text."""
        i = bisect_right(self._seg_pos, pos) - 1
        return self._seg_raw[i] + (self._seg_length[i] or pos - self._seg_pos[i] + 1)

    def units(self, start: int, end: int) -> int:
        """UTF-16 length of visible[start:end]."""
        astral = bisect_left(self._astral, end) - bisect_left(self._astral, start)
        return end - start + astral

    def fit(self, start: int, limit: int) -> int:
        """The largest `end` such that visible[start:end] is at most `limit` UTF-16 units."""
        low, high = start, min(len(self.visible), start + limit)
        if self.units(start, high) <= limit:  # no astral characters in the way
            return high
        while low < high:
            mid = (low + high + 1) // 2
            if self.units(start, mid) <= limit:
                low = mid
            else:
                high = mid - 1
        return low


def _unescape(entity: str) -> str:
    """The one character an entity stands for.

    Unlike html.unescape, which drops some code points altogether, this always gives
    one character, so each entity maps to one visible character; a code point Telegram
    might refuse counts as U+FFFD, which is the same length or more.
    """
    body = entity[1:-1]
    if not body.startswith("#"):
        return _NAMED_ENTITIES[body]
    code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
    valid = 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
    return chr(code) if valid else "\ufffd"


def _tag(match: re.Match[str], name: str, pos: int) -> _Tag:
    raw = match.group()
    if match.group("close"):
        kind = _Kind.CLOSE
    elif raw[-2] == "/":
        kind = _Kind.VOID
    else:
        kind = _Kind.OPEN
    return _Tag(pos, match.start(), match.end(), raw, name.lower(), kind)


class _ChunkWriter:
    """Writes consecutive chunks, carrying the open elements from one to the next."""

    def __init__(self, doc: _Document) -> None:
        self._doc = doc
        self._open: list[_Tag] = []  # open elements, outermost first
        self._next_tag = 0

    def chunk(self, start: int, stop: int) -> str:
        """Visible characters [start, stop) as well-formed HTML."""
        doc, tags = self._doc, self._doc.tags
        # Tags up to the first character (in the dropped whitespace of a break, or at
        # the very start) only change which elements are open; reopening those below
        # writes them out, while elements opened and closed in between vanish with the
        # whitespace they wrapped.
        while self._next_tag < len(tags) and tags[self._next_tag].pos <= start:
            self._apply(tags[self._next_tag])
            self._next_tag += 1
        out = [tag.raw for tag in self._open]
        raw = doc.raw_start(start)
        while self._next_tag < len(tags) and tags[self._next_tag].pos < stop:
            tag = tags[self._next_tag]
            out.append(doc.text[raw : tag.start])
            out.append(self._apply(tag))
            raw = tag.end
            self._next_tag += 1
        out.append(doc.text[raw : doc.raw_end(stop - 1)])
        # Tags right after the last character wait for the next chunk's gap; here we
        # close whatever is still open.
        out.extend(f"</{tag.name}>" for tag in reversed(self._open))
        return "".join(out)

    def _apply(self, tag: _Tag) -> str:
        """Track `tag` on the open-element stack; return the markup to write for it."""
        if tag.kind is _Kind.OPEN:
            self._open.append(tag)
            return tag.raw
        if tag.kind is _Kind.VOID:
            return tag.raw
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth].name == tag.name:
                # Close elements the input left open inside this one, so the output
                # stays well-formed even if the input was not.
                unclosed = self._open[depth + 1 :]
                del self._open[depth:]
                return "".join(f"</{t.name}>" for t in reversed(unclosed)) + tag.raw
        return ""  # a closing tag for nothing open would get the chunk rejected


def _joined(visible: str, pos: int) -> bool:
    """Whether a break before visible[pos] would split a grapheme cluster."""
    if visible[pos - 1] == _ZWJ or visible[pos] == _ZWJ:
        return True
    # Combining marks, variation selectors, keycaps (M*), skin tones (Sk), emoji tags (Cf).
    return unicodedata.category(visible[pos]) in ("Mn", "Mc", "Me", "Sk", "Cf")


def _is_flag_half(char: str) -> bool:
    # A flag is a pair of regional indicator letters; only their count tells the pairs.
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _hard_break(visible: str, start: int, end: int) -> int:
    """Break at `end`, or a little before it so as not to split a character cluster."""
    if _is_flag_half(visible[end]):
        run = 0
        while end - run > start and _is_flag_half(visible[end - run - 1]):
            run += 1
        if run % 2 and end - 1 > start:
            end -= 1
    for pos in range(end, max(start, end - _MAX_CLUSTER), -1):
        if not _joined(visible, pos):
            return pos
    return end  # a cluster longer than a whole chunk has to be split somewhere


def _break(visible: str, start: int, end: int) -> int:
    """Where to break visible[start:] so that the first part ends by `end`.

    The separator starting at the returned position is dropped, so it may reach past
    `end`. visible[start] is not whitespace, so every candidate leaves some text behind.
    """
    paragraph = _PARAGRAPH.match(visible, start, min(len(visible), end + 2))
    if paragraph:
        return paragraph.start(1)
    line = visible.rfind("\n", start + 1, end + 1)
    if line != -1:
        return line
    sentences = [
        _SENTENCE.match(visible, start, end + 1),  # + 1: the lookahead sees the space
        _CJK_SENTENCE.match(visible, start, end),
    ]
    sentence_ends = [m.end() for m in sentences if m]
    if sentence_ends:
        return max(sentence_ends)
    space = _SPACE.match(visible, start, end + 1)
    if space and space.end() - 1 > start:
        return space.end() - 1
    return _hard_break(visible, start, end)


def _skip_spaces(visible: str, pos: int) -> int:
    """The first non-whitespace position from `pos` on (the end if there is none)."""
    found = _NON_SPACE.search(visible, pos)
    return found.start() if found else len(visible)


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram-HTML `text` into chunks of at most `limit` visible UTF-16 units.

    Text that fits comes back unchanged as one chunk; text with nothing visible but
    whitespace gives no chunks. Otherwise each chunk is well-formed and breaks fall, in
    order of preference, at a paragraph break, a line break, a sentence end, whitespace,
    or anywhere, but never inside a tag, an entity or a character. The whitespace at a
    break, and at the very start and end, is dropped.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 (an emoji is 2 UTF-16 units)")
    doc = _Document(text)
    visible = doc.visible
    stop = len(visible.rstrip())
    start = _skip_spaces(visible, 0)
    if start >= stop:
        return []
    if doc.units(0, len(visible)) <= limit:
        return [text]
    writer = _ChunkWriter(doc)
    chunks = []
    while True:
        end = doc.fit(start, limit)
        if end >= stop:
            chunks.append(writer.chunk(start, stop))
            return chunks
        cut = _break(visible, start, end)
        chunks.append(writer.chunk(start, start + len(visible[start:cut].rstrip())))
        start = _skip_spaces(visible, cut)
