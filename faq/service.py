"""The knowledge base and its matcher as one service that can be reloaded while serving."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from faq.encoder import TextEncoder
from faq.loader import KbInvalid, KnowledgeBase, kb_files, load_kb
from faq.matcher import Decision, Match, Matcher
from faq.schema import TRANSLATED_LANGUAGES, Entry
from faq.text import script_language

logger = logging.getLogger(__name__)

# The encoder reads at most 256 tokens; longer texts only slow the lexical scorer down.
MAX_QUERY_CHARS = 1000
# Past about 32 queries a batch costs as much per query as it saves (2-core CPU).
MAX_BATCH = 32


@dataclass(frozen=True)
class FaqResult:
    """A matched question: the decision, the entry to answer with, the entries to offer."""

    match: Match
    entry: Entry | None
    suggestions: tuple[Entry, ...]
    # The language the question was matched in: "ru" or "zh" when written in that script.
    language: str = "en"

    @property
    def decision(self) -> Decision:
        return self.match.decision

    def as_json(self) -> dict[str, object]:
        """The object `minerdesk faq ask --json` prints."""
        best = self.match.best
        return {
            "decision": self.decision.value,
            "language": self.language,
            "entry_id": self.entry.id if self.entry else None,
            "score": best.score if best else 0.0,
            "answer": self.entry.answer_in(self.language) if self.entry else None,
            "suggestions": [
                {
                    "entry_id": entry.id,
                    "question": entry.question_in(self.language),
                    "score": candidate.score,
                }
                for entry, candidate in zip(self.suggestions, self.match.candidates, strict=False)
            ],
        }


class FaqService:
    """Answers questions from the KB at `kb_path`; `reload` swaps in a re-read KB atomically.

    English questions go to a matcher on the English phrasings with `encoder`. Questions
    written in Russian or Chinese go to a matcher of their own on that language's phrasings
    plus the English ones, with `multilingual` (one vector space for all three languages:
    an entry not yet translated is still found). Without a multilingual model, the English
    model and the lexical scorer carry the translated phrasings alone.
    """

    def __init__(
        self,
        kb_path: Path,
        placeholders: Mapping[str, str],
        encoder: TextEncoder,
        multilingual: TextEncoder | None = None,
    ) -> None:
        self.kb_path = kb_path
        self.placeholders = dict(placeholders)
        self.encoder = encoder
        self.multilingual = multilingual
        # Swapped as one tuple, so a query never sees a new KB with an old matcher.
        self._current = self._build()
        self._fingerprint = self._files_fingerprint()
        # One worker: inference off the event loop, one batch at a time on the model.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq")
        # Questions that arrive while the model is busy wait here and go in the next batch.
        self._waiting: list[tuple[str, asyncio.Future[FaqResult]]] = []
        self._batcher: asyncio.Task[None] | None = None

    def _build(self) -> tuple[KnowledgeBase, dict[str, Matcher]]:
        kb = load_kb(self.kb_path, self.placeholders)
        english = kb.phrasings("en")
        matchers = {"en": Matcher(self.encoder, english)}
        for language in TRANSLATED_LANGUAGES:
            own = kb.phrasings(language)
            phrasings = {
                entry_id: own.get(entry_id, []) + texts for entry_id, texts in english.items()
            }
            matchers[language] = Matcher(self.multilingual or self.encoder, phrasings)
        for language, matcher in matchers.items():
            logger.info(
                "faq.loaded language=%s entries=%d path=%s answer_threshold=%.3f "
                "suggest_threshold=%.3f",
                language,
                len(matcher.entry_ids),
                self.kb_path,
                matcher.thresholds.answer,
                matcher.thresholds.suggest,
            )
        return kb, matchers

    def ask(self, text: str) -> FaqResult:
        """Match `text` against the KB (blocking: call `ask_async` from the event loop)."""
        return self.ask_many([text])[0]

    def ask_many(self, texts: Sequence[str]) -> list[FaqResult]:
        """`ask` for several questions, one model call per language among them (blocking)."""
        kb, matchers = self._current
        by_language: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            by_language.setdefault(script_language(text) or "en", []).append(index)
        results: list[FaqResult | None] = [None] * len(texts)
        for language, indexes in by_language.items():
            matches = matchers[language].match_many([texts[i][:MAX_QUERY_CHARS] for i in indexes])
            for index, match in zip(indexes, matches, strict=True):
                results[index] = _result(kb, match, language)
        return [result for result in results if result is not None]

    async def ask_async(self, text: str) -> FaqResult:
        """`ask` off the event loop. A question that arrives while the model is busy joins
        the next batch: one model call for many chats costs a fraction of one call each,
        and an idle bot still answers a lone question at once."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FaqResult] = loop.create_future()
        self._waiting.append((text, future))
        if self._batcher is None or self._batcher.done() or self._batcher.get_loop() is not loop:
            self._batcher = loop.create_task(self._answer_waiting())
        return await future

    async def _answer_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            texts = [text for text, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self.ask_many, texts)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its asker may have been cancelled meanwhile
                    future.set_result(result)

    @property
    def kb(self) -> KnowledgeBase:
        return self._current[0]

    @property
    def matcher(self) -> Matcher:
        """The English matcher."""
        return self._current[1]["en"]

    def matcher_for(self, language: str) -> Matcher:
        """The matcher of questions written in `language`."""
        return self._current[1].get(language, self.matcher)

    def entry(self, entry_id: str) -> Entry | None:
        return self.kb.by_id.get(entry_id)

    def changed_on_disk(self) -> bool:
        return self._files_fingerprint() != self._fingerprint

    def reload(self) -> None:
        """Re-read the KB; raise KbInvalid and keep serving the old one if it has errors.

        A rejected version is not retried until the files change again.
        """
        self._fingerprint = self._files_fingerprint()
        self._current = self._build()

    def _files_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        files = kb_files(self.kb_path) if self.kb_path.exists() else []
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _result(kb: KnowledgeBase, match: Match, language: str) -> FaqResult:
    entry = None
    suggestions: tuple[Entry, ...] = ()
    if match.decision is Decision.ANSWER and match.best:
        entry = kb.by_id[match.best.entry_id]
    elif match.decision is Decision.SUGGEST:
        suggestions = tuple(kb.by_id[c.entry_id] for c in match.candidates)
    return FaqResult(match, entry, suggestions, language)


async def watch_kb(service: FaqService, interval: float) -> None:
    """Reload the KB whenever its files change; an invalid edit keeps the last good KB serving."""
    while True:
        await asyncio.sleep(interval)
        if not service.changed_on_disk():
            continue
        started = time.perf_counter()
        try:
            await asyncio.to_thread(service.reload)
        except KbInvalid as exc:
            logger.error(
                "faq.reload_rejected path=%s problems=%d\n%s",
                service.kb_path,
                len(exc.problems),
                exc,
            )
            continue
        logger.info(
            "faq.reloaded entries=%d seconds=%.2f",
            len(service.kb.entries),
            time.perf_counter() - started,
        )
