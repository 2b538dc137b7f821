"""Splitting Telegram-HTML into messages: where it breaks, and what every chunk guarantees."""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser

import pytest

from bot.channels.html_split import split_html

TAG = re.compile(r"""<[^<>"']*(?:(?:"[^"]*"|'[^']*')[^<>"']*)*>""")
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-f]+);", re.IGNORECASE)


class Markup(HTMLParser):
    """Visible text and element balance of a piece of HTML."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.errors: list[str] = []
        self.data: list[str] = []
        self.feed(text)
        self.close()
        if self.open:
            self.errors.append(f"left open: {self.open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.data)


def visible(text: str) -> str:
    return Markup(text).visible


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def squeeze(text: str) -> str:
    return "".join(text.split())


def check(text: str, chunks: list[str], limit: int) -> None:
    """Everything split_html promises about the chunks of a well-formed `text`."""
    assert chunks, "visible text must give at least one chunk"
    for chunk in chunks:
        markup = Markup(chunk)
        assert not markup.errors, (chunk, markup.errors)
        shown = markup.visible
        assert shown.strip(), f"empty chunk {chunk!r}"
        assert shown == shown.strip(), f"chunk starts or ends with whitespace: {chunk!r}"
        assert utf16(shown) <= limit, (utf16(shown), limit, chunk)
        # Tags and entities were not cut: what is left outside tags is text and whole
        # entities, with no stray "<", ">" or "&".
        bare = ENTITY.sub("", TAG.sub("", chunk))
        assert not set("<>&") & set(bare), chunk
        # Tags are copies of the original's, so reopened ones keep their attributes.
        for tag in TAG.findall(chunk):
            assert tag in text, tag
    # Nothing but the whitespace at the breaks went missing, and the order is kept.
    assert squeeze("".join(visible(c) for c in chunks)) == squeeze(visible(text))


def split(text: str, limit: int) -> list[str]:
    chunks = split_html(text, limit)
    check(text, chunks, limit)
    return chunks


# --- text that fits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("<b>Hello</b>, <i>world</i> &amp; friends 😀", 4096),
        ("&amp;" * 10, 10),  # an entity counts as one character
        ("<b>" + "x" * 10 + "</b>", 10),  # tags count for nothing
        ("😀" * 5, 10),  # an emoji counts as two
        ("  \n text with its own spacing \n", 4096),
    ],
)
def test_text_that_fits_comes_back_unchanged(text: str, limit: int) -> None:
    assert split_html(text, limit) == [text]


@pytest.mark.parametrize("text", ["", "   \n\n ", "<b></b>", "<b> \n </b>"])
def test_text_with_nothing_to_show_gives_no_chunks(text: str) -> None:
    assert split_html(text, 4096) == []


def test_a_limit_too_small_for_an_emoji_is_refused() -> None:
    with pytest.raises(ValueError):
        split_html("abc", 1)


def test_the_default_limit_is_telegrams() -> None:
    text = ("word " * 800 + "\n\n") * 3  # ~12,000 characters in three paragraphs
    chunks = split(text, 4096)
    assert len(chunks) == 3
    assert split_html("x" * 4096) == ["x" * 4096]
    assert split_html("x" * 4097) == ["x" * 4096, "x"]


# --- where it breaks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param(
            "Alpha beta.\n\nGamma delta.\nEpsilon zeta eta",
            30,
            ["Alpha beta.", "Gamma delta.\nEpsilon zeta eta"],
            id="paragraph before a later line break",
        ),
        pytest.param(
            "Alpha.\n \t\nBeta gamma delta epsilon zeta",
            20,
            ["Alpha.", "Beta gamma delta", "epsilon zeta"],
            id="a blank line with spaces is a paragraph break",
        ),
        pytest.param(
            "Alpha beta. Gamma\nDelta epsilon. Zeta eta theta",
            30,
            ["Alpha beta. Gamma", "Delta epsilon. Zeta eta theta"],
            id="line break before a later sentence end",
        ),
        pytest.param(
            "Alpha beta. Gamma delta epsilon zeta",
            25,
            ["Alpha beta.", "Gamma delta epsilon zeta"],
            id="sentence end before a later space",
        ),
        pytest.param(
            'He said "stop!" and left the room',
            20,
            ['He said "stop!"', "and left the room"],
            id="sentence end with a closing quote",
        ),
        pytest.param(
            "Is it? Yes it is indeed",
            12,
            ["Is it?", "Yes it is", "indeed"],
            id="question mark",
        ),
        pytest.param(
            "これは文です。これも文です。まだ続きます",
            10,
            ["これは文です。", "これも文です。", "まだ続きます"],
            id="ideographic full stop",
        ),
        pytest.param(
            "Alpha beta gamma delta epsilon",
            12,
            ["Alpha beta", "gamma delta", "epsilon"],
            id="space",
        ),
        pytest.param(
            "Total 100\u00a0USD",
            12,
            ["Total", "100\u00a0USD"],
            id="never at a no-break space",
        ),
        pytest.param(
            "abcdefghijklmnopqrstuvwxyz",
            10,
            ["abcdefghij", "klmnopqrst", "uvwxyz"],
            id="hard",
        ),
        pytest.param("aaaaa bbbbb", 5, ["aaaaa", "bbbbb"], id="whitespace right after the limit"),
        pytest.param(
            "one two\n\n\n\n   three",
            8,
            ["one two", "three"],
            id="the whole whitespace run at a break is dropped",
        ),
    ],
)
def test_breaks_fall_at_the_most_natural_place(text: str, limit: int, expected: list[str]) -> None:
    assert split(text, limit) == expected


def test_visible_text_survives_with_only_break_whitespace_dropped() -> None:
    text = "Alpha beta.\n\nGamma <b>delta</b> epsilon. Zeta\neta theta iota"
    chunks = split(text, 16)
    shown = " ".join(visible(chunk) for chunk in chunks)
    assert " ".join(shown.split()) == " ".join(visible(text).split())


# --- markup ----------------------------------------------------------------------------


def test_an_element_spanning_a_break_is_closed_and_reopened() -> None:
    assert split("<b>bold text here. more bold</b> plain", 20) == [
        "<b>bold text here.</b>",
        "<b>more bold</b> plain",
    ]


def test_a_link_is_reopened_with_its_attributes() -> None:
    href = '<a href="https://example.com/?a=1&amp;b=2">'
    assert split(f"See {href}the link text that is long</a> now", 15) == [
        f"See {href}the link</a>",
        f"{href}text that is</a>",
        f"{href}long</a> now",
    ]


def test_nested_elements_are_reopened_in_order() -> None:
    text = '<b>x <i>y <span class="tg-spoiler">z w</span></i></b>'
    assert split(text, 2) == [
        "<b>x</b>",
        "<b><i>y</i></b>",
        '<b><i><span class="tg-spoiler">z</span></i></b>',
        '<b><i><span class="tg-spoiler">w</span></i></b>',
    ]


def test_a_code_block_is_reopened_with_its_language() -> None:
    text = '<pre><code class="language-python">a = 1\nb = 2\nc = 3</code></pre>'
    assert split(text, 12) == [
        '<pre><code class="language-python">a = 1\nb = 2</code></pre>',
        '<pre><code class="language-python">c = 3</code></pre>',
    ]


def test_tags_at_a_break_go_with_the_text_they_wrap() -> None:
    # A closing tag stays with the text before the break, an opening one moves on.
    assert split("<b>first para.</b>\n\n<i>second</i> para", 15) == [
        "<b>first para.</b>",
        "<i>second</i> para",
    ]
    # An element that wraps only the dropped whitespace disappears with it.
    assert split("one.\n\n<i> </i>\n\ntwo", 4) == ["one.", "two"]


@pytest.mark.parametrize("limit", range(4, 42))
def test_malformed_input_that_needs_splitting_gives_well_formed_chunks(limit: int) -> None:
    text = "<b>unclosed <i>tags here</b> and a stray</u> closing tag"  # 42 visible
    chunks = split_html(text, limit)
    for chunk in chunks:
        assert not Markup(chunk).errors, chunk
    assert squeeze("".join(map(visible, chunks))) == "unclosedtagshereandastrayclosingtag"


# --- entities and characters -----------------------------------------------------------


def test_entities_are_never_split() -> None:
    assert split("&amp;" * 7, 3) == ["&amp;&amp;&amp;", "&amp;&amp;&amp;", "&amp;"]
    assert split("a&lt;b&gt;c &#128512;&#x1F600; &quot;q&quot;", 4) == [
        "a&lt;b&gt;",  # visible "a<b>", which is text, not a tag
        "c",
        "&#128512;&#x1F600;",  # two emoji, four UTF-16 units
        "&quot;q&quot;",
    ]


def test_every_numeric_entity_counts_as_one_character() -> None:
    # html.unescape would turn some of these into nothing, and so lose count of them.
    assert split_html("&#1;&#xFFFE;&#0;&#128;x", 2) == ["&#1;&#xFFFE;", "&#0;&#128;", "x"]


def test_emoji_are_never_split_and_count_as_two() -> None:
    assert split("😀" * 6, 5) == ["😀😀", "😀😀", "😀😀"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("👍🏽" * 3, 6, ["👍🏽"] * 3, id="skin tone"),
        pytest.param("abcd👨\u200d👩\u200d👧", 9, ["abcd", "👨\u200d👩\u200d👧"], id="ZWJ family"),
        pytest.param("🇺🇦🇯🇵🇫🇷", 6, ["🇺🇦", "🇯🇵", "🇫🇷"], id="flags"),
        pytest.param("a🇺🇦🇯🇵🇫🇷", 9, ["a🇺🇦🇯🇵", "🇫🇷"], id="flags after a letter"),
        pytest.param("cafe\u0301s", 4, ["caf", "e\u0301s"], id="combining accent"),
    ],
)
def test_a_hard_break_keeps_grapheme_clusters_together(
    text: str, limit: int, expected: list[str]
) -> None:
    assert split(text, limit) == expected


# --- invariants on random input --------------------------------------------------------

WORDS = [
    "alpha", "Beta", "gamma", "дельта", "ε", "数据", "😀", "👍🏽", "👨\u200d👩\u200d👧",
    "&amp;", "&lt;tag&gt;", "&#128512;", "&quot;quoted&quot;", "x" * 37, "café",
]  # fmt: skip
SEPARATORS = [" "] * 6 + ["\n", "\n\n", ". ", "! ", "? ", "。", "\n \n", "\t", "\u00a0", ""]
ELEMENTS = [
    "<b>", "<strong>", "<i>", "<em>", "<u>", "<ins>", "<s>", "<strike>", "<del>",
    '<span class="tg-spoiler">', "<tg-spoiler>", '<a href="https://example.com/?a=1&amp;b=2">',
    "<code>", '<pre><code class="language-python">', "<blockquote>",
    "<blockquote expandable>", '<tg-emoji emoji-id="5368324170671202286">',
]  # fmt: skip


def random_html(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 40 if depth == 0 else 8)):
        roll = rng.random()
        if roll < 0.15 and depth < 3:
            opening = rng.choice(ELEMENTS)
            closing = "".join(f"</{name}>" for name in reversed(re.findall(r"<([\w-]+)", opening)))
            parts.append(opening + random_html(rng, depth + 1) + closing)
        elif roll < 0.6:
            parts.append(rng.choice(WORDS))
        else:
            parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


def test_invariants_hold_on_random_input() -> None:
    rng = random.Random(0)
    split_cases = 0
    for _ in range(400):
        text = random_html(rng)
        limit = rng.randint(20, 200)
        chunks = split_html(text, limit)
        shown = visible(text)
        if not shown.strip():
            assert chunks == []
        elif utf16(shown) <= limit:
            assert chunks == [text]
        else:
            check(text, chunks, limit)
            split_cases += 1
    assert split_cases > 200  # the generator really exercises splitting
