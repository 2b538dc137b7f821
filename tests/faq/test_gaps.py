"""`faq gaps` on a log with known clusters: a topic an entry covers, topics none covers,
and questions asked once; the YAML it prints, pasted into the KB, validates."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.settings import bundled_kb_path
from domain.chats import ChatKey
from faq.gaps import (
    ANSWER_PLACEHOLDER,
    Asked,
    NewAlternates,
    NewEntry,
    calibrated_threshold,
    entry_files,
    find_gaps,
    gaps_yaml,
)
from faq.loader import check_kb
from faq.service import FaqService
from storage.sqlite import SqliteStorage
from tests.factories import Turns, create_database
from tests.test_cli import minerdesk

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# Asked as questions the bot was not sure about; warranty_period covers them.
WARRANTY = [
    "what is the warranty length on antminers",
    "warranty duration for a new s21",
    "how long am i covered by the warranty",
    "how long does the warranty last",
]
ALREADY_AN_ALTERNATE = "Warranty duration?"  # "warranty duration" is in the KB
# Answered with warranty_period, and the customer said it did not help.
VOTED_DOWN = "how long is the guarantee for my machine"
# No entry covers hosting, nor profitability.
HOSTING = [
    "do you offer hosting for miners",
    "can you host my machines in your farm",
    "hosting service price per kwh",
    "do you have a mining farm where i can host my asic",
    "is hosting available for the miners i buy from you",
]
PROFIT = [
    "is mining profitable right now",
    "how much profit does a miner make per day",
    "what is the daily profit of this miner",
    "how long until the miner pays for itself",
]
ONCE = ["what is the weather in paris", "my cat is sick", "who won the football game yesterday"]


def chat(number: int) -> ChatKey:
    return ChatKey("telegram", str(number))


async def seed_known_clusters(turn: Turns) -> None:
    """20 questions in 19 chats (numbers: see the test)."""
    for number, text in enumerate(WARRANTY):
        await turn.asked(chat(10 + number), text, "suggested", at=AT)
    # The same question twice: a suggestion then rejected is one question, two misses.
    await turn.asked(chat(10), WARRANTY[0], "suggested", "none_of_these", at=AT)
    await turn.asked(chat(14), ALREADY_AN_ALTERNATE, "suggested", at=AT)
    await turn.asked(chat(15), VOTED_DOWN, "not_helpful", at=AT, entry_id="warranty_period")
    for number, text in enumerate(HOSTING):
        await turn.asked(chat(20 + number), text, "fallback", at=AT)
    await turn.asked(chat(25), HOSTING[0].upper(), "fallback", at=AT)
    await turn.asked(chat(20), HOSTING[2], "fallback", at=AT)
    for number, text in enumerate(PROFIT):
        await turn.asked(chat(30 + number), text, "fallback", at=AT)
    for number, text in enumerate(ONCE):
        await turn.asked(chat(40 + number), text, "fallback", at=AT)
    # The hosting question in Russian is grouped with Russian questions only: alone.
    await turn.asked(
        chat(50), "вы предлагаете хостинг для майнеров", "fallback", at=AT, language="ru"
    )


@pytest.mark.model
async def test_gaps_in_a_log_with_known_clusters(
    storage: SqliteStorage, turn: Turns, faq_service: FaqService, tmp_path: Path
) -> None:
    await seed_known_clusters(turn)
    misses = await storage.misses()

    gaps = find_gaps(misses, faq_service, min_count=2)

    hosting, warranty, profit = gaps
    assert isinstance(warranty, NewAlternates)
    assert warranty.entry.id == "warranty_period"
    # Already in the entry (normalised), or voted down on it: not proposed.
    assert sorted(warranty.alternates) == sorted(WARRANTY)
    assert warranty.asked.times == 7
    assert len(warranty.asked.chats) == 6
    assert warranty.asked.reasons == Counter(suggested=6, none_of_these=1, not_helpful=1)
    assert warranty.asked.voted_down == Counter(warranty_period=1)

    assert isinstance(hosting, NewEntry)
    assert {hosting.question, *hosting.alternates} == set(HOSTING)
    assert (hosting.asked.times, len(hosting.asked.chats)) == (7, 6)
    assert hosting.asked.languages == Counter(en=7)
    assert hosting.alternates_needed == 2
    assert hosting.id not in faq_service.kb.by_id
    assert hosting.category in {entry.category for entry in faq_service.kb.entries}

    assert isinstance(profit, NewEntry)
    assert {profit.question, *profit.alternates} == set(PROFIT)
    assert profit.asked.times == 4
    assert profit.id != hosting.id

    # Questions asked once are left out; with --min-count 1 they are drafts too.
    asked_once = find_gaps(misses, faq_service, min_count=1)
    once = [gap for gap in asked_once if gap.asked.times == 1]
    assert {gap.question for gap in once if isinstance(gap, NewEntry)} >= set(ONCE)
    assert [gap.asked.languages for gap in once].count(Counter(ru=1)) == 1

    kb_folder = tmp_path / "kb"
    shutil.copytree(bundled_kb_path(), kb_folder)
    draft = yaml.safe_load(gaps_yaml(gaps, ["a header"], entry_files(kb_folder)))
    assert draft["alternates"] == {"warranty_period": list(warranty.alternates)}
    assert [entry["id"] for entry in draft["entries"]] == [hosting.id, profit.id]
    assert_pasted_draft_validates(draft, kb_folder, faq_service.placeholders)


def assert_pasted_draft_validates(
    draft: dict[str, object], kb_folder: Path, placeholders: dict[str, str]
) -> None:
    """Do what staff do with the draft, and check the KB validates only once they have:
    the alternates the comments ask for, then the answers."""
    entries = draft["entries"]
    alternates = draft["alternates"]
    assert isinstance(entries, list)
    assert isinstance(alternates, dict)
    new_file = kb_folder / "gaps.yaml"

    def errors_in_new_file() -> list[str]:
        new_file.write_text(yaml.safe_dump({"entries": entries}), encoding="utf-8")
        _, problems = check_kb(kb_folder, placeholders)
        return [p.message for p in problems if p.severity == "error" and p.path == new_file]

    assert [error.split(",")[0] for error in errors_in_new_file()] == [
        f"entries.{index}.alternates: List should have at least 6 items after validation"
        for index in range(len(entries))
    ]
    for entry in entries:
        missing = 6 - len(entry["alternates"])
        entry["alternates"] += [f"{entry['id']} phrasing number {n}" for n in range(missing)]
    assert [error.split(" (")[0] for error in errors_in_new_file()] == [
        "answer: unknown placeholder {TODO: write the answer}"
    ] * len(entries)
    for entry in entries:
        entry["answer"] = f"What we say about {entry['question']}."
    assert errors_in_new_file() == []
    shipped, _ = check_kb(kb_folder, placeholders)
    assert shipped is not None
    known = len(shipped.by_id["warranty_period"].alternates)
    for path in kb_folder.glob("*.yaml"):
        kb_file = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in kb_file.get("entries", []):
            entry["alternates"] += alternates.get(entry["id"], [])
        path.write_text(yaml.safe_dump(kb_file, allow_unicode=True), encoding="utf-8")
    kb, problems = check_kb(kb_folder, placeholders)
    assert [p for p in problems if p.severity == "error"] == []
    assert kb is not None
    assert len(kb.by_id["warranty_period"].alternates) == known + len(alternates["warranty_period"])


def test_the_threshold_keeps_each_entry_whole_and_entries_apart() -> None:
    rng = np.random.default_rng(1)
    # Four entries, five phrasings each, spread around their own direction.
    vectors = np.repeat(np.eye(8)[:4], 5, axis=0) + 0.25 * rng.normal(size=(20, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(np.arange(4), 5)
    distances = 1 - vectors @ vectors.T

    def mean_distance(a: int, b: int) -> float:
        block = distances[np.ix_(labels == a, labels == b)]
        pairs = block.size - (5 if a == b else 0)  # not a phrasing with itself
        return float((block.sum() - (np.trace(block) if a == b else 0)) / pairs)

    loosest_entry = max(mean_distance(e, e) for e in range(4))
    closest_pair = min(mean_distance(a, b) for a in range(4) for b in range(a + 1, 4))
    assert loosest_entry < closest_pair
    # The first distance that splits no entry and merges no pair.
    threshold = calibrated_threshold(vectors.astype(np.float32), labels)
    assert threshold == pytest.approx(loosest_entry, abs=1e-5)


def test_a_single_entry_kb_keeps_questions_as_close_as_its_phrasings() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
    threshold = calibrated_threshold(vectors, np.zeros(3, dtype=np.int64))
    assert threshold == pytest.approx(1 - (0.6 + 0.8 + 0.96) / 3, abs=1e-6)


def test_the_yaml_keeps_every_text_as_written() -> None:
    tricky = ["yes", "[phone] call me", "what? # not a comment", "- dash", "a: b", "ok 👍"]
    asked = Asked(
        frozenset({"q1", "q2"}), frozenset(), Counter(fallback=2), Counter(en=2), Counter()
    )
    draft = NewEntry("new_one", "payment", "no?", tuple(tricky), ("payment_methods",), asked)
    text = gaps_yaml([draft], ["first line", "second"], {})
    assert text.startswith("# first line\n# second\nalternates: {}\ntranslations: {}\nentries:\n")
    assert "# asked 2 times in 0 chats; fallback 2; languages: en 2" in text
    [entry] = yaml.safe_load(text)["entries"]
    assert entry == {
        "id": "new_one",
        "category": "payment",
        "question": "no?",
        "alternates": tricky,
        "answer": ANSWER_PLACEHOLDER,
    }


def test_the_command_on_an_empty_log_prints_an_empty_draft(cli_env: dict[str, str]) -> None:
    create_database(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db")
    result = minerdesk("faq", "gaps", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# minerdesk faq gaps: 0 misses from ")
    assert yaml.safe_load(result.stdout) == {"alternates": {}, "translations": {}, "entries": []}
    assert minerdesk("faq", "gaps", "--min-count", "0", env=cli_env).returncode == 2


@pytest.mark.model
def test_the_command_drafts_the_period_asked_for(cli_env: dict[str, str], tmp_path: Path) -> None:
    now = datetime.now(UTC)

    async def seed() -> None:
        async with SqliteStorage(Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.db") as db:
            turn = Turns(db)
            for number, text in enumerate(HOSTING):
                await turn.asked(chat(number), text, "fallback", at=now - timedelta(hours=1))
            for number, text in enumerate(PROFIT):
                await turn.asked(chat(number), text, "fallback", at=now - timedelta(days=40))

    asyncio.run(seed())
    output = tmp_path / "gaps.yaml"
    result = minerdesk(
        "faq", "gaps", "--days", "7", "--min-count", "3", "--output", str(output), env=cli_env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == f"{output}: 0 entries with new alternates, 1 new"
    draft = yaml.safe_load(output.read_text(encoding="utf-8"))
    [entry] = draft["entries"]
    assert {entry["question"], *entry["alternates"]} == set(HOSTING)
    assert "# asked 5 times in 5 chats; fallback 5; languages: en 5" in output.read_text()


RU_WARRANTY = [
    "какой срок гарантии на асики",
    "сколько длится гарантия на майнер",
    "гарантия на новый s21 сколько месяцев",
    "на сколько дней гарантия",
]
RU_HOSTING = [
    "вы предлагаете хостинг для майнеров",
    "можно разместить мои асики у вас на ферме",
    "есть ли у вас хостинг для асиков",
    "сколько стоит хостинг майнера за квт",
]


@pytest.mark.model
async def test_questions_in_russian_become_translation_alternates_and_drafts(
    storage: SqliteStorage, turn: Turns, faq_service: FaqService
) -> None:
    for number, text in enumerate(RU_WARRANTY):
        await turn.asked(chat(60 + number), text, "suggested", at=AT, language="ru")
    for number, text in enumerate(RU_HOSTING):
        await turn.asked(chat(70 + number), text, "fallback", at=AT, language="ru")

    gaps = find_gaps(await storage.misses(), faq_service, min_count=2)

    [warranty] = [gap for gap in gaps if isinstance(gap, NewAlternates)]
    assert (warranty.entry.id, warranty.language) == ("warranty_period", "ru")
    assert set(warranty.alternates) <= set(RU_WARRANTY)
    [hosting] = [gap for gap in gaps if isinstance(gap, NewEntry)]
    assert hosting.language == "ru"
    assert {hosting.question, *hosting.alternates} == set(RU_HOSTING)

    draft = yaml.safe_load(gaps_yaml(gaps, ["a header"], {}))
    assert draft["alternates"] == {}
    assert draft["translations"] == {"ru": {"warranty_period": list(warranty.alternates)}}
    [entry] = draft["entries"]
    assert entry["question"].startswith("{TODO")
    assert entry["translations"]["ru"]["question"] == hosting.question
    assert entry["translations"]["ru"]["answer"] == ANSWER_PLACEHOLDER
