"""Telegram HTML (how replies and KB answers are written) as WhatsApp formatting.

WhatsApp marks `*bold*`, `_italic_`, `~strikethrough~`, `` `inline code` ``, monospace blocks
(three backticks) and `> ` quotes in the text itself, and has no escape character. So:
formatting is written per line (a marked span never crosses a line), whitespace moves outside
the markers, a span that would touch a letter or digit (`foo*bar*`, which WhatsApp does not
format) is left plain, and a marker character in the text that would pair up with another one
(`*note*` typed by a customer) is swapped for a look-alike that WhatsApp does not read as a
marker. Links become "text (url)", or just the url when that is their text; entities are
unescaped.

Long texts are split as HTML first (`split_html`, which closes and reopens elements at a
break) and each chunk converted, so no chunk carries half a marked span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import escape

from bot.channels.html_split import split_html

TEXT_LIMIT = 4096
# Template body parameters: one line (no newlines or tabs, at most four spaces in a row), and
# room left for the template's own words within the body's 1,024 characters.
TEMPLATE_PARAMETER_LIMIT = 900

_TAG = re.compile(
    r"""<(?P<close>/?)(?P<name>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>(?:[^<>"']|"[^"]*"|'[^']*')*)>"""
)
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_MARKERS = {
    "b": "*",
    "strong": "*",
    "i": "_",
    "em": "_",
    "s": "~",
    "strike": "~",
    "del": "~",
    "code": "`",
}
# What a marker character in the text becomes when it would otherwise start a span.
LOOK_ALIKES = {"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"}
_SHOWN_SCHEMES = ("http://", "https://", "mailto:", "tel:")


def unescape(text: str) -> str:
    """The entities Telegram understands (the four named ones and numeric ones); any other
    `&` is literal text, as Telegram shows it."""
    return _ENTITY.sub(lambda match: _entity(match.group()), text)


def _entity(entity: str) -> str:
    body = entity[1:-1]
    if not body.startswith("#"):
        return _NAMED[body]
    code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
    valid = 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
    return chr(code) if valid else "\ufffd"


@dataclass
class _Piece:
    """A run of the output: literal text, fixed text of ours, or one side of a marked span."""

    kind: str  # "text" (escaped later), "code" (verbatim), "fixed", "open" or "close"
    text: str
    pair: int = -1


@dataclass
class _Element:
    name: str
    marker: str | None = None
    pair: int = -1
    href: str | None = None
    start: int = 0  # where its pieces start (links compare their text with the href)


@dataclass
class _Writer:
    pieces: list[_Piece] = field(default_factory=list)
    stack: list[_Element] = field(default_factory=list)
    pairs: int = 0
    # A block (quote, pre) just ended: what follows starts on a new line.
    pending_break: bool = False

    @property
    def in_pre(self) -> bool:
        return any(element.name == "pre" for element in self.stack)

    @property
    def in_code(self) -> bool:
        return any(element.name in ("pre", "code") for element in self.stack)

    @property
    def in_quote(self) -> bool:
        return any(element.name == "blockquote" for element in self.stack)

    def _markers(self) -> list[_Element]:
        return [element for element in self.stack if element.marker is not None]

    def _emit(self, kind: str, text: str, pair: int = -1) -> None:
        self.pieces.append(_Piece(kind, text, pair))

    def _suspend(self) -> None:
        for element in reversed(self._markers()):
            self._emit("close", element.marker or "", element.pair)

    def _resume(self) -> None:
        for element in self._markers():
            self.pairs += 1
            element.pair = self.pairs
            self._emit("open", element.marker or "", element.pair)

    def _newline(self) -> None:
        """A line break: spans close before it and reopen after, quotes continue."""
        if self.in_pre:
            self._emit("fixed", "\n")
            return
        self._suspend()
        self._emit("fixed", "\n")
        if self.in_quote:
            self._emit("fixed", "> ")
        self._resume()

    def _at_line_start(self) -> bool:
        for piece in reversed(self.pieces):
            if piece.kind in ("text", "code", "fixed") and piece.text:
                return piece.text.endswith("\n")
        return True

    def _break_if_pending(self, text: str = "") -> None:
        if self.pending_break:
            self.pending_break = False
            if not text.startswith("\n") and not self._at_line_start():
                self._newline()

    def text(self, text: str) -> None:
        if not text:
            return
        self._break_if_pending(text)
        kind = "code" if self.in_code else "text"
        for number, line in enumerate(text.split("\n")):
            if number:
                self._newline()
            if line:
                self._emit(kind, line)

    def open(self, name: str, attrs: str) -> None:
        if self.in_code:  # nothing is formatted inside code
            self.stack.append(_Element(name))
            return
        self._break_if_pending()
        if name == "pre":
            if not self._at_line_start():
                self._newline()
            self._suspend()
            self.stack.append(_Element(name))
            self._emit("fixed", "```")
            return
        if name == "blockquote":
            if not self._at_line_start():
                self._newline()
            self.stack.append(_Element(name))
            self._emit("fixed", "> ")
            return
        if name == "a":
            match = _HREF.search(attrs)
            href = unescape(next(g for g in match.groups() if g is not None)) if match else None
            self.stack.append(_Element(name, href=href, start=len(self.pieces)))
            return
        marker = _MARKERS.get(name)
        if marker is None or any(element.marker == marker for element in self.stack):
            self.stack.append(_Element(name))  # <u>, <span>, <tg-spoiler>; or nested <b><b>
            return
        self.pairs += 1
        self.stack.append(_Element(name, marker, self.pairs))
        self._emit("open", marker, self.pairs)

    def close(self, name: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth].name == name:
                while len(self.stack) > depth:
                    self._end(self.stack.pop())
                return
        # A closing tag for nothing open is dropped.

    def close_all(self) -> None:
        while self.stack:
            self._end(self.stack.pop())

    def _end(self, element: _Element) -> None:
        if element.marker is not None:
            self._emit("close", element.marker, element.pair)
        elif element.name == "pre" and not self.in_pre:
            self._emit("fixed", "```")
            self._resume()
            self.pending_break = True
        elif element.name == "blockquote" and not self.in_code:
            self.pending_break = True
        elif element.name == "a" and element.href is not None and not self.in_code:
            shown = link_suffix(self._visible(element.start), element.href)
            if shown:
                self._emit("fixed", shown)

    def _visible(self, start: int) -> str:
        return "".join(p.text for p in self.pieces[start:] if p.kind in ("text", "code", "fixed"))


def link_suffix(text: str, href: str) -> str:
    """What follows a link's text: " (url)", or nothing when the text already says it (or the
    target is not one a customer can open)."""
    href = href.strip()
    if not href.lower().startswith(_SHOWN_SCHEMES):
        return ""
    target = href.split(":", 1)[1] if href.lower().startswith(("mailto:", "tel:")) else href
    bare = re.sub(r"^https?://", "", target, flags=re.IGNORECASE).rstrip("/")
    if text.strip() in (href, target, bare, bare + "/"):
        return ""
    return f" ({target})" if text.strip() else target


def to_whatsapp(html: str) -> str:
    """Telegram HTML as WhatsApp text (see the module's docstring)."""
    writer = _Writer()
    position = 0
    for match in _TAG.finditer(html):
        writer.text(unescape(html[position : match.start()]))
        name = match.group("name").lower()
        if match.group("close"):
            writer.close(name)
        elif not match.group("attrs").rstrip().endswith("/"):
            writer.open(name, match.group("attrs"))
        position = match.end()
    writer.text(unescape(html[position:]))
    writer.close_all()
    pieces = _settle(writer.pieces)
    return _join(pieces).strip()


def _settle(pieces: list[_Piece]) -> list[_Piece]:
    """Whitespace outside markers, no empty spans, no span touching a letter or digit.

    Each pass is linear; passes repeat only while one changed something, which nesting
    bounds (an emptied inner span can leave its outer one empty or spaced)."""
    while True:
        before = len(pieces)
        pieces = _drop_empty_spans(_spaces_after_closes(_spaces_before_opens(pieces)))
        if len(pieces) == before:
            bad = _touching(pieces)
            if not bad:
                return pieces
            pieces = [p for p in pieces if p.kind not in ("open", "close") or p.pair not in bad]


def _spaces_before_opens(pieces: list[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    run: list[_Piece] = []  # opening markers waiting for what follows them
    for piece in pieces:
        if piece.kind == "open":
            run.append(piece)
            continue
        if run and piece.kind == "text":
            rest = piece.text.lstrip()
            if rest != piece.text:
                out.append(_Piece("text", piece.text[: len(piece.text) - len(rest)]))
                piece = _Piece("text", rest)
        out += run
        run = []
        if piece.text:
            out.append(piece)
    return out + run


def _spaces_after_closes(pieces: list[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    run: list[_Piece] = []  # closing markers, in reverse, waiting for what precedes them
    for piece in reversed(pieces):
        if piece.kind == "close":
            run.append(piece)
            continue
        if run and piece.kind == "text":
            rest = piece.text.rstrip()
            if rest != piece.text:
                out.append(_Piece("text", piece.text[len(rest) :]))
                piece = _Piece("text", rest)
        out += run
        run = []
        if piece.text:
            out.append(piece)
    out += run
    out.reverse()
    return out


def _drop_empty_spans(pieces: list[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    for piece in pieces:
        if piece.kind == "close" and out and out[-1].kind == "open" and out[-1].pair == piece.pair:
            out.pop()
        elif piece.text:
            out.append(piece)
    return out


def _touching(pieces: list[_Piece]) -> set[int]:
    """Pairs whose opening marker follows, or closing marker precedes, a letter or digit."""
    bad: set[int] = set()
    for i, piece in enumerate(pieces):
        if piece.kind == "open" and i > 0:
            neighbour, char = pieces[i - 1], -1
        elif piece.kind == "close" and i + 1 < len(pieces):
            neighbour, char = pieces[i + 1], 0
        else:
            continue
        if neighbour.kind not in ("open", "close") and neighbour.text[char].isalnum():
            bad.add(piece.pair)
    return bad


def _join(pieces: list[_Piece]) -> str:
    out: list[str] = []
    active: list[str] = []
    for piece in pieces:
        if piece.kind == "open":
            active.append(piece.text)
            out.append(piece.text)
        elif piece.kind == "close":
            if piece.text in active:
                active.remove(piece.text)
            out.append(piece.text)
        elif piece.kind == "code":
            out.append(piece.text.replace("`", LOOK_ALIKES["`"]))
        elif piece.kind == "text":
            out.append(escape_markers(piece.text, frozenset(active)))
        else:
            out.append(piece.text)
    return "".join(out)


def escape_markers(text: str, inside: frozenset[str] = frozenset()) -> str:
    """Swap marker characters that WhatsApp would read as formatting for look-alikes: inside
    a span every one of that span's marker; elsewhere the opening one of a would-be span (a
    marker after a non-letter, before a non-space, with a closing one later on its line)."""
    chars = list(text)
    for marker, look_alike in LOOK_ALIKES.items():
        if marker not in text:
            continue
        if marker in inside:
            chars = [look_alike if c == marker else c for c in chars]
            continue
        closer = _next_closers(chars, marker)
        # Right to left, so that in "~~x~" the first marker sees the second one swapped.
        for start in range(len(chars) - 1, -1, -1):
            if (
                chars[start] == marker
                and not _beside_word(chars, start, -1, marker)
                and start + 2 < len(chars)
                and not chars[start + 1].isspace()
                and chars[start + 1] != marker
                and closer[start + 2] is not None
            ):
                chars[start] = look_alike
    return "".join(chars)


def _next_closers(chars: list[str], marker: str) -> list[int | None]:
    """For each position, the first marker at or after it on the same line that could close
    a span (after a non-space, not touching a letter after it); None if there is none."""
    found: list[int | None] = [None] * (len(chars) + 1)
    following: int | None = None
    for end in range(len(chars) - 1, -1, -1):
        if chars[end] == "\n":
            following = None
        elif (
            chars[end] == marker
            and end > 0
            and not chars[end - 1].isspace()
            and not _beside_word(chars, end, 1, marker)
        ):
            following = end
        found[end] = following
    return found


def _beside_word(chars: list[str], position: int, step: int, marker: str) -> bool:
    """Whether the run of `marker` at `position` touches a letter or digit on that side
    (so "b***r" or "e***e" of a masked address never opens or closes a span)."""
    position += step
    while 0 <= position < len(chars) and chars[position] == marker:
        position += step
    return 0 <= position < len(chars) and chars[position].isalnum()


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def whatsapp_chunks(html: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The HTML as WhatsApp texts of at most `limit` UTF-16 units each (what Meta counts is
    not documented; UTF-16 is never less than characters), broken where `split_html` breaks:
    paragraphs, lines, sentences, spaces. Nothing visible gives no texts."""
    return [text for _, text in converted_chunks(html, limit)]


def converted_chunks(html: str, limit: int = TEXT_LIMIT) -> list[tuple[str, str]]:
    """(HTML, WhatsApp text) of each chunk, so that a chunk can be split again."""
    return [pair for chunk in split_html(html, limit) for pair in _fit(chunk, limit, 0)]


def _fit(chunk: str, limit: int, depth: int) -> list[tuple[str, str]]:
    text = to_whatsapp(chunk)
    length = utf16_length(text)
    if length <= limit:
        return [(chunk, text)] if text else []
    if depth < 6:
        # Markers, quote signs and link addresses made it longer: split the HTML finer.
        smaller = max(2, min(limit - 1, limit * limit // length - 16))
        return [
            pair for part in split_html(chunk, smaller) for pair in _fit(part, limit, depth + 1)
        ]
    return [(str(escape(piece)), piece) for piece in _hard_split(text, limit)]


def _hard_split(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    while text:
        end = min(len(text), limit)
        while utf16_length(text[:end]) > limit:
            end -= 1
        parts.append(text[:end])
        text = text[end:]
    return parts


def template_parameter(html: str, limit: int = TEMPLATE_PARAMETER_LIMIT) -> str:
    """The HTML as one template body parameter: WhatsApp formatting on one line (lines joined
    with " · "), spaces collapsed, cut at a word with "…" past `limit` characters."""
    lines = [re.sub(r"\s+", " ", line).strip() for line in to_whatsapp(html).split("\n")]
    text = " · ".join(line for line in lines if line)
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    """`text`, or its start cut at a space (if one is near) with "…", in `limit` characters."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
