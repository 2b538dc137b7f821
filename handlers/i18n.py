"""Interface texts are written in English inside `_()`; other languages come from catalogs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = ("en",)

Translate = Callable[[str], str]


def supported_language(code: str | None) -> str:
    """The supported language closest to a messenger's language code ("en-GB" -> "en")."""
    base = (code or "").split("-", 1)[0].lower()
    return base if base in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def translator(language: str) -> Translate:
    """The function that translates interface texts into `language`."""
    return _identity


def _identity(text: str) -> str:
    return text


def N_(text: str) -> str:
    """Marks a text for the catalogs where it is defined (in a table of questions, say);
    it is translated where it is shown, with the reader's `_`."""
    return text


def format_date(day: date, language: str) -> str:
    """A date as customers read it, e.g. "Mon 24 Nov 2026"."""
    return f"{day:%a} {day.day} {day:%b %Y}"
