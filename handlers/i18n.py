"""Interface texts are written in English inside `_()`; Russian and Chinese come from the
gettext catalogs in handlers/locales, made with Babel (`make i18n` extracts new texts and
merges them into every catalog; translators edit the .po files).

A text without a translation, or one marked fuzzy, is shown in English rather than wrong.
`_()` gives `Markup`: our texts may hold tags, and whatever `.format()` puts into them is
escaped unless it is markup too.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

from babel.dates import format_skeleton, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup

from domain.hours import BusinessHours, clock
from faq.schema import LANGUAGES

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = LANGUAGES
LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "minerdesk"
# Each language's own name, for the /language buttons.
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "zh": "中文"}
# The CLDR locale behind each language's dates (day before month in English, as our
# customers are worldwide; simplified script for Chinese).
_BABEL_LOCALES = {"en": "en_GB", "ru": "ru", "zh": "zh_Hans"}

Translate = Callable[[str], Markup]


def supported_language(code: str | None) -> str:
    """The supported language closest to a messenger's language code ("en-GB" -> "en")."""
    base = (code or "").replace("_", "-").split("-", 1)[0].lower()
    return base if base in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def translator(language: str) -> Translate:
    """The function that translates interface texts into `language`."""
    gettext = _catalog(language).gettext

    def translate(text: str) -> Markup:
        # Our own texts and their translations: the one place they become markup.
        return Markup(gettext(text))  # noqa: S704

    return translate


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def _catalog(language: str) -> gettext.NullTranslations:
    """The language's .po compiled in memory: no compiled .mo file to go stale in git."""
    path = catalog_path(language)
    if language == DEFAULT_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=_BABEL_LOCALES[language])
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def N_(text: str) -> str:
    """Marks a text for the catalogs where it is defined (in a table of questions, say);
    it is translated where it is shown, with the reader's `_`."""
    return text


def format_date(day: date, language: str) -> str:
    """A date as customers of `language` read it: "Tue, 24 Nov 2026", "вт, 24 нояб. 2026 г.",
    "2026年11月24日周二"."""
    return format_skeleton("yMMMEd", day, locale=_BABEL_LOCALES.get(language, "en_GB"))


def weekday_names(language: str) -> list[str]:
    """Short weekday names, Monday first: "Mon", "пн", "周一"."""
    names = get_day_names("abbreviated", locale=_BABEL_LOCALES.get(language, "en_GB"))
    return [names[day] for day in range(7)]


def describe_hours(hours: BusinessHours, language: str = "en") -> str:
    """The schedule in one line for customers of `language`, e.g. "Mon–Fri 09:00–18:00
    (UTC)", "пн–пт 09:00–18:00 (UTC)"."""
    zone = getattr(hours.zone, "key", None) or str(hours.zone)
    if not hours.days:
        _ = translator(language)
        return _("Closed ({zone})").format(zone=zone)
    runs: list[list[int]] = []
    for day in sorted(hours.days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    day_name = weekday_names(language)
    names = ", ".join(
        day_name[run[0]] if len(run) == 1 else f"{day_name[run[0]]}–{day_name[run[-1]]}"
        for run in runs
    )
    return f"{names} {clock(hours.opens)}–{clock(hours.closes)} ({zone})"
