"""Validation of KB files: every problem reported with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faq.loader import KbInvalid, Problem, check_kb, load_kb

BROKEN = Path(__file__).resolve().parent.parent / "data" / "broken"


def problems_of(name: str, placeholders: dict[str, str]) -> list[Problem]:
    kb, problems = check_kb(BROKEN / name, placeholders)
    assert kb is None
    return problems


def test_the_bundled_kb_is_valid(placeholders: dict[str, str]) -> None:
    from bot.app import bundled_kb_path

    kb, problems = check_kb(bundled_kb_path(), placeholders)
    assert kb is not None
    assert [p for p in problems if p.severity == "error"] == []
    assert len(kb.entries) >= 50


def test_unknown_key_is_located(placeholders: dict[str, str]) -> None:
    [problem] = problems_of("unknown_key.yaml", placeholders)
    assert problem.line == 7
    assert "entries.0.answr" in problem.message
    assert "unknown key" in problem.message


def test_duplicate_id_and_dangling_related(placeholders: dict[str, str]) -> None:
    problems = problems_of("duplicate_and_dangling.yaml", placeholders)
    messages = {p.line: p.message for p in problems}
    assert "duplicate id 'refunds'" in messages[9]
    assert "duplicate_and_dangling.yaml:2" in messages[9]
    assert "no entry has the id 'shipping_time'" in messages[7]


def test_empty_answer(placeholders: dict[str, str]) -> None:
    [problem] = problems_of("empty_answer.yaml", placeholders)
    assert problem.line == 6
    assert "entries.0.answer" in problem.message


def test_near_identical_phrasings_of_two_entries_conflict(placeholders: dict[str, str]) -> None:
    [problem] = problems_of("conflict.yaml", placeholders)
    assert problem.line == 12
    assert (
        "'Refund!' of 'cancellation' is near-identical to 'refund?' of 'refunds'" in problem.message
    )


def test_html_telegram_cannot_send_and_unknown_placeholder(placeholders: dict[str, str]) -> None:
    problems = problems_of("bad_html_and_placeholder.yaml", placeholders)
    text = "\n".join(p.message for p in problems)
    assert all(p.line == 6 for p in problems)
    assert "unknown placeholder {support_mail}" in text
    assert "does not support <blink>" in text
    assert "bare '&'" in text


def test_too_few_alternates_and_unknown_action(placeholders: dict[str, str]) -> None:
    problems = problems_of("too_few_alternates.yaml", placeholders)
    assert next((p.line, "alternates" in p.message) for p in problems) == (5, True)
    assert any(p.line == 7 and "action" in p.message for p in problems)


def test_invalid_yaml_is_located(placeholders: dict[str, str]) -> None:
    [problem] = problems_of("not_yaml.yaml", placeholders)
    assert problem.line >= 3
    assert "not valid YAML" in problem.message


def test_a_folder_reports_problems_of_every_file(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    for name in ("unknown_key.yaml", "empty_answer.yaml"):
        shutil.copy(BROKEN / name, tmp_path / name)
    with pytest.raises(KbInvalid) as raised:
        load_kb(tmp_path, placeholders)
    files = {p.path.name for p in raised.value.problems}
    assert files == {"unknown_key.yaml", "empty_answer.yaml"}


def test_placeholders_are_filled_from_settings(tmp_path: Path) -> None:
    (tmp_path / "contact.yaml").write_text(
        "entries:\n"
        "  - id: contact\n"
        "    category: contact\n"
        "    question: How do I contact you?\n"
        "    alternates: [contact, email you, your email, reach support, write to you, mail]\n"
        '    answer: Write to <a href="mailto:{support_email}">{support_email}</a>.\n',
        encoding="utf-8",
    )
    kb = load_kb(tmp_path, {"support_email": "help@shop.test"})
    assert (
        kb.by_id["contact"].answer == 'Write to <a href="mailto:help@shop.test">help@shop.test</a>.'
    )
