"""The interface catalogs: complete, current with the code, and faithful to its placeholders."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from handlers.i18n import (
    LOCALES_DIR,
    SUPPORTED_LANGUAGES,
    catalog_path,
    format_date,
    supported_language,
    translator,
)

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = [language for language in SUPPORTED_LANGUAGES if language != "en"]
PLACEHOLDER = re.compile(r"\{[a-z_]*(?::[^{}]*)?\}")
TAG = re.compile(r"</?[a-z-]+")
COMMAND = re.compile(r"(?<![\w/])/[a-z_]+")


def texts_in_code() -> set[str]:
    found = set()
    for folder in ("bot", "handlers"):
        for _, _, message, _, _ in extract_from_dir(ROOT / folder):
            found.add(message if isinstance(message, str) else message[0])
    return found


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po)


def test_the_template_is_current_with_the_code() -> None:
    template = {message.id for message in read_catalog(LOCALES_DIR / "minerdesk.pot") if message.id}
    code = texts_in_code()
    assert code - template == set(), "new texts: run `make i18n` and translate them"
    assert template - code == set(), "texts no longer in the code: run `make i18n`"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_faithfully(language: str) -> None:
    catalog = read_catalog(catalog_path(language))
    problems = []
    for message in catalog:
        if not message.id:
            continue
        english, translated = str(message.id), str(message.string or "")
        if not translated or message.fuzzy:
            problems.append(f"untranslated: {english!r}")
            continue
        for pattern, what in ((PLACEHOLDER, "placeholders"), (TAG, "tags"), (COMMAND, "commands")):
            if Counter(pattern.findall(english)) != Counter(pattern.findall(translated)):
                problems.append(f"{what} differ: {english!r} -> {translated!r}")
        if (
            not english[0].isalnum()
            and english[0] not in "<{/(«\"'"
            and (translated[0] != english[0])
        ):
            problems.append(f"the leading symbol is lost: {english!r} -> {translated!r}")
    template = {m.id for m in read_catalog(LOCALES_DIR / "minerdesk.pot") if m.id}
    missing = template - {m.id for m in catalog if m.id}
    assert problems == []
    assert missing == set()


def test_texts_are_shown_in_the_chat_language() -> None:
    assert translator("en")("How can I help?") == "How can I help?"
    for language in TRANSLATED:
        assert translator(language)("How can I help?") != "How can I help?"
    # A text the catalogs do not know stays English rather than vanishing.
    assert translator("ru")("no such text") == "no such text"


def test_messenger_language_codes() -> None:
    assert supported_language("ru-RU") == "ru"
    assert supported_language("zh-hans") == "zh"
    assert supported_language("de") == "en"
    assert supported_language(None) == "en"


def test_dates_in_each_language() -> None:
    day = date(2026, 11, 24)
    assert format_date(day, "en") == "Tue, 24 Nov 2026"
    assert format_date(day, "ru") == "вт, 24 нояб. 2026\u202fг."
    assert format_date(day, "zh") == "2026年11月24日周二"
