"""The knowledge base's data model: what staff write in faq/kb/*.yaml."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MIN_ALTERNATES = 6

# The languages customers are served in. English is the KB's own language; every entry
# carries the others as translations (`faq validate` warns where one is missing).
TranslatedLanguage = Literal["ru", "zh"]
TRANSLATED_LANGUAGES: tuple[str, ...] = get_args(TranslatedLanguage)
Language = Literal["en", TranslatedLanguage]
LANGUAGES: tuple[str, ...] = get_args(Language)

# Ids travel in button payloads, which Telegram caps at 64 bytes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=40)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
QuestionText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
]


class Action(StrEnum):
    """A conversation flow an entry can start, offered as a button under its answer."""

    TRACK_ORDER = "track_order"
    WARRANTY_CHECK = "warranty_check"
    REPAIR_TICKET = "repair_ticket"
    HANDOFF = "handoff"


class Translation(BaseModel):
    """An entry in another language: what its customers ask, and the answer they read.

    Alternates here are phrasings written in that language, not translations of the
    English ones one by one: they teach the matcher how those customers ask."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: QuestionText
    alternates: list[NonEmpty] = Field(default_factory=list)
    answer: NonEmpty


class Entry(BaseModel):
    """One question and its answer, with the phrasings customers use for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    category: Identifier
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=120)]
    alternates: Annotated[list[NonEmpty], Field(min_length=MIN_ALTERNATES)]
    answer: NonEmpty
    related: list[Identifier] = Field(default_factory=list)
    action: Action | None = None
    translations: dict[TranslatedLanguage, Translation] = Field(default_factory=dict)

    @property
    def phrasings(self) -> list[str]:
        """The canonical question first, then every alternate."""
        return [self.question, *self.alternates]

    def phrasings_in(self, language: str) -> list[str]:
        """The phrasings written in `language` (none where it has no translation)."""
        if language == "en":
            return self.phrasings
        translation = self._translation(language)
        return [translation.question, *translation.alternates] if translation else []

    def matched_phrasings(self, language: str) -> list[str]:
        """What the matcher of `language` learns this entry from: its phrasings in that
        language and, for a translated language, the English ones too (an entry not yet
        translated is still found)."""
        if language == "en":
            return self.phrasings
        return self.phrasings_in(language) + self.phrasings

    def question_in(self, language: str) -> str:
        """The question as a reader of `language` sees it; English where untranslated."""
        translation = self._translation(language)
        return translation.question if translation else self.question

    def answer_in(self, language: str) -> str:
        """The answer in `language`; English where untranslated."""
        translation = self._translation(language)
        return translation.answer if translation else self.answer

    def _translation(self, language: str) -> Translation | None:
        # Any language code may be asked for; only TranslatedLanguage ones are ever stored.
        return self.translations.get(language)  # type: ignore[call-overload, no-any-return]


class SmallTalkReply(BaseModel):
    """A small-talk reply in each language; English is what the others fall back to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: NonEmpty
    ru: NonEmpty | None = None
    zh: NonEmpty | None = None


class SmallTalkKind(BaseModel):
    """One kind of small talk ("hi", "thanks", "ok"): what customers write, and the bot's
    own short reply to it, never an entry's answer (faq/small_talk.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Identifier
    # As customers write them, in any language, emoji too; matched as whole messages.
    phrases: Annotated[list[NonEmpty], Field(min_length=1)]
    reply: SmallTalkReply
    # The main menu under the reply (a greeting).
    show_menu: bool = False
    # A flow offered as a button under the reply, as under an entry's answer.
    action: Action | None = None

    def reply_in(self, language: str) -> str:
        """The reply in `language`; English where there is none."""
        reply: str | None = getattr(self.reply, language, None) if language in LANGUAGES else None
        return reply or self.reply.en


class KbFile(BaseModel):
    """The top level of one YAML file."""

    model_config = ConfigDict(extra="forbid")

    entries: list[Entry] = Field(default_factory=list)
    # Questions no entry answers, which the bot must not answer (faq/matcher.py), in any of
    # the KB's languages.
    off_topic: list[NonEmpty] = Field(default_factory=list)
    # Greetings, thanks, goodbyes...: answered with their own reply, before the matcher.
    small_talk: list[SmallTalkKind] = Field(default_factory=list)
    # Words that may go with small talk and say nothing by themselves ("there" in "hi there",
    # "a lot" in "thanks a lot"); a message of these alone is not small talk.
    small_talk_filler: list[NonEmpty] = Field(default_factory=list)
