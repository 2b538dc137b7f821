"""Text normalisation shared by the matcher and the validator."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Lower-case, accents folded, punctuation turned into single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def script_language(text: str) -> str | None:
    """ "ru" for a text in Cyrillic, "zh" for one in Chinese characters, None otherwise.

    The script is a sure sign for these two; Latin text is left to the chat's language
    (a Russian customer may well write "S19 warranty")."""
    han, cyrillic = len(_HAN.findall(text)), len(_CYRILLIC.findall(text))
    if not han and not cyrillic:
        return None
    return "zh" if han >= cyrillic else "ru"


def word_count(text: str) -> int:
    """Words in `text`, reckoning two Chinese characters a word (Chinese has no spaces)."""
    han = len(_HAN.findall(text))
    return (han + 1) // 2 + len(_HAN.sub(" ", normalize(text)).split())
