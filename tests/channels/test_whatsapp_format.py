"""Telegram HTML as WhatsApp formatting: the rules by example, and properties over any input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from bot.channels.whatsapp_format import (
    LOOK_ALIKES,
    TEXT_LIMIT,
    escape_markers,
    shorten,
    template_parameter,
    to_whatsapp,
    utf16_length,
    whatsapp_chunks,
)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<b>Shipping</b>: 3-7 business days.", "*Shipping*: 3-7 business days."),
        ("<strong>a</strong> <i>b</i> <em>c</em> <s>d</s> <del>e</del>", "*a* _b_ _c_ ~d~ ~e~"),
        ("<b>Hello <i>world</i></b>!", "*Hello _world_*!"),
        ("Run <code>minerdesk chat</code>.", "Run `minerdesk chat`."),
        ("<pre>line 1\nline 2</pre>", "```line 1\nline 2```"),
        ("Before<pre>x</pre>after", "Before\n```x```\nafter"),
        ("<blockquote>first\nsecond</blockquote>after", "> first\n> second\nafter"),
        # Whitespace goes outside the markers; a span over lines is marked per line.
        ("<b> spaced </b>out", "*spaced* out"),
        ("<b>one\ntwo</b>", "*one*\n*two*"),
        # WhatsApp formats no span inside a word: such a span is left plain.
        ("foo<b>bar</b> and <b>x</b>y", "foobar and xy"),
        ("(<b>ok</b>)", "(*ok*)"),
        # Nothing left to mark: no markers.
        ("<b></b>x <i> </i>", "x"),
        ("<b><b>twice</b></b>", "*twice*"),
        # Underline, spoilers and unknown tags keep their text only.
        ("<u>under</u> <tg-spoiler>secret</tg-spoiler> <span>s</span>", "under secret s"),
        # Entities are unescaped; only those Telegram knows.
        (
            "Tom &amp; Jerry &lt;3 &quot;q&quot; &#39;s&#39; &#x1F600; &copy;",
            "Tom & Jerry <3 \"q\" 's' 😀 &copy;",
        ),
        ("1 < 2 and a stray </b> tag", "1 < 2 and a stray  tag"),
    ],
)
def test_formatting(html: str, expected: str) -> None:
    assert to_whatsapp(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<a href="https://example.com/repair">the portal</a>',
            "the portal (https://example.com/repair)",
        ),
        (
            '<a href="https://example.com/repair">https://example.com/repair</a>',
            "https://example.com/repair",
        ),
        ('<a href="https://example.com/">example.com</a>', "example.com"),
        ('<a href="mailto:support@example.com">support@example.com</a>', "support@example.com"),
        (
            '<a href="mailto:support@example.com">write to us</a>',
            "write to us (support@example.com)",
        ),
        ('<a href="tg://user?id=1">Alice</a>', "Alice"),
        ('<a href="https://x.io/?a=1&amp;b=2"><b>Check</b></a>', "*Check* (https://x.io/?a=1&b=2)"),
    ],
)
def test_links_become_plain_urls(html: str, expected: str) -> None:
    assert to_whatsapp(html) == expected


def test_markers_typed_by_people_are_not_read_as_formatting() -> None:
    # What a customer or rep wrote is escaped into the Markup; WhatsApp has no escape, so the
    # opening marker of what would be a span becomes a look-alike.
    text = Markup("Customer: {}").format("*urgent* _really_ ~no~ `x` 2*3*4 file_name_v2")
    assert to_whatsapp(text) == "Customer: ∗urgent* ˍreally_ ∼no~ ˋx` 2*3*4 file_name_v2"
    # Inside a span, that span's marker never closes it early.
    assert to_whatsapp(Markup("<b>{}</b>").format("A*B")) == "*A∗B*"
    # A masked e-mail address stays as the bot wrote it.
    assert to_whatsapp("b***r@e***e.com") == "b***r@e***e.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("*a* *b*", "∗a* ∗b*"), ("~~x~~", "∼∼x~~"), ("*a\nb*", "*a\nb*"), ("a * b *", "a * b *")],
)
def test_escaping_only_touches_would_be_spans(text: str, expected: str) -> None:
    assert escape_markers(text) == expected


def test_code_is_verbatim_but_cannot_close_early() -> None:
    assert to_whatsapp("<code>a*b_c</code>") == "`a*b_c`"
    assert to_whatsapp("<pre>x = `y`</pre>") == "```x = ˋyˋ```"


def test_a_long_answer_is_split_with_balanced_markers() -> None:
    paragraph = "<b>Shipping</b>: " + "a sentence about delivery times. " * 40
    html = "\n\n".join([paragraph] * 8)
    chunks = whatsapp_chunks(html)
    assert len(chunks) > 1
    assert all(utf16_length(chunk) <= TEXT_LIMIT for chunk in chunks)
    assert all(chunk.count("*") % 2 == 0 for chunk in chunks)
    assert chunks[0].startswith("*Shipping*: a sentence")


def test_links_that_make_a_chunk_too_long_split_it_finer() -> None:
    link = '<a href="https://example.com/a-rather-long-path/to/a/page">x</a> '
    chunks = whatsapp_chunks(link * 300, limit=1000)
    assert len(chunks) > 1
    assert all(utf16_length(chunk) <= 1000 for chunk in chunks)


def test_nothing_visible_gives_no_chunks() -> None:
    assert whatsapp_chunks("  <b> </b>\n ") == []


def test_template_parameters_are_one_line_and_bounded() -> None:
    html = "<b>Order A-1001</b>\n\nShipped   with DHL.\n\t<i>Track it</i>"
    assert template_parameter(html) == "*Order A-1001* · Shipped with DHL. · _Track it_"
    long = template_parameter("word " * 500, limit=100)
    assert len(long) <= 100
    assert long.endswith("word…")
    assert shorten("abc", 1) == "a"


# --- properties ---------------------------------------------------------------------------

ELEMENTS = ["b", "strong", "i", "em", "s", "del", "u", "code", "span"]
_TEXT = st.text(max_size=30).map(lambda text: str(escape(text)))


def _element(tag: str, inner: list[str]) -> str:
    return f"<{tag}>{''.join(inner)}</{tag}>"


_HTML = st.recursive(
    _TEXT,
    lambda inner: st.builds(_element, st.sampled_from(ELEMENTS), st.lists(inner, max_size=4)),
    max_leaves=15,
)
_DOCUMENT = st.lists(_HTML, max_size=8).map("".join)
_UNMARKED = re.compile("[" + re.escape("*_~`" + "".join(LOOK_ALIKES.values())) + r"\s]")


def _letters(text: str) -> str:
    return _UNMARKED.sub("", text)


@given(_DOCUMENT)
@settings(max_examples=200)
def test_formatting_keeps_every_character_in_order(html: str) -> None:
    visible = re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">")
    visible = visible.replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")
    assert _letters(to_whatsapp(html)) == _letters(visible)


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_any_string_converts_without_error(text: str) -> None:
    to_whatsapp(text)
    to_whatsapp(str(escape(text)))


@given(_DOCUMENT, st.one_of(st.just(TEXT_LIMIT), st.integers(8, 200)))
@settings(max_examples=150)
def test_chunks_fit_the_limit(html: str, limit: int) -> None:
    chunks = whatsapp_chunks(html, limit)
    assert all(0 < utf16_length(chunk) <= limit for chunk in chunks)
    assert _letters("".join(chunks)) == _letters(to_whatsapp(html))
