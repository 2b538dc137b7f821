"""Validation of KB files: every problem reported with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faq.loader import KbInvalid, Problem, check_kb, load_kb

BROKEN = Path(__file__).resolve().parent.parent / "data" / "broken"


def problems_of(name: str, placeholders: dict[str, str]) -> list[Problem]:
    """The errors of a broken file (its untranslated entries' warnings left out)."""
    kb, problems = check_kb(BROKEN / name, placeholders)
    assert kb is None
    return [p for p in problems if p.severity == "error"]


def test_the_bundled_kb_is_valid(placeholders: dict[str, str]) -> None:
    from bot.settings import bundled_kb_path

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


TRANSLATED = """\
entries:
  - id: warranty
    category: warranty
    question: How long is the warranty?
    alternates: [warranty please, guarantee, how long warranty, warranty period, days, cover]
    answer: 180 days. Write to {support_email}.
    translations:
      ru:
        question: Какая гарантия?
        alternates: [гарантия, сколько гарантия]
        answer: 180 дней.
      zh:
        question: 保修多久？
        alternates: [保修, 保修期, 保修多长时间, 有保修吗, 质保, 保修几天]
        answr: 180天。
"""


def test_translation_errors_are_located(tmp_path: Path, placeholders: dict[str, str]) -> None:
    (tmp_path / "warranty.yaml").write_text(TRANSLATED, encoding="utf-8")
    kb, problems = check_kb(tmp_path, placeholders)
    assert kb is None
    errors = {p.line: p.message for p in problems if p.severity == "error"}
    assert errors[12] == "entries.0.translations.zh.answer: Field required"
    assert (
        "translations.zh.answr: unknown key (allowed: question, alternates, answer)" in (errors[15])
    )


def test_translation_warnings(tmp_path: Path, placeholders: dict[str, str]) -> None:
    text = TRANSLATED.replace("answr", "answer").replace("180 дней.", "180 дней. <b>x")
    (tmp_path / "warranty.yaml").write_text(text, encoding="utf-8")
    kb, problems = check_kb(tmp_path, placeholders)
    assert kb is None
    by_line = {(p.line, p.severity): p.message for p in problems}
    assert "translations.ru.answer: unclosed <b>" in by_line[(11, "error")]
    text = text.replace(" <b>x", "")
    (tmp_path / "warranty.yaml").write_text(text, encoding="utf-8")
    kb, problems = check_kb(tmp_path, placeholders)
    assert kb is not None
    warnings = {p.line: p.message for p in problems if p.severity == "warning"}
    assert "translations.ru: 2 alternates" in warnings[8]
    assert (
        "translations.ru.answer: {support_email} of the English answer is missing" in (warnings[11])
    )
    assert "translations.zh.answer: {support_email}" in warnings[15]
    assert kb.by_id["warranty"].answer_in("zh") == "180天。"
    assert kb.by_id["warranty"].question_in("ru") == "Какая гарантия?"
    assert kb.phrasings("ru") == {"warranty": ["Какая гарантия?", "гарантия", "сколько гарантия"]}


def test_an_untranslated_entry_is_a_warning(tmp_path: Path, placeholders: dict[str, str]) -> None:
    shutil.copy(BROKEN.parent / "broken" / "empty_answer.yaml", tmp_path / "x.yaml")
    text = TRANSLATED.split("    translations:")[0]
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    kb, [problem] = check_kb(tmp_path, placeholders)
    assert kb is not None
    assert (problem.line, problem.severity) == (2, "warning")
    assert "warranty: no translation for ru, zh" in problem.message
    assert kb.by_id["warranty"].answer_in("ru") == kb.by_id["warranty"].answer


def test_near_identical_phrasings_conflict_within_a_language(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    (tmp_path / "a.yaml").write_text(TRANSLATED.replace("answr", "answer"), encoding="utf-8")
    other = (
        TRANSLATED.replace("answr", "answer")
        .replace("id: warranty", "id: guarantee")
        .replace("How long is the warranty?", "Is there a guarantee on fans?")
        .replace(
            "warranty please, guarantee, how long warranty, warranty period, days",
            "f1, f2, f3, f4, f5",
        )
        .replace("Какая гарантия?", "Гарантия на вентиляторы?")
        .replace("[гарантия, сколько гарантия]", "[к1, к2]")
        .replace("[保修, 保修期,", "[风扇保修, 保修期,")
    )
    (tmp_path / "b.yaml").write_text(other, encoding="utf-8")
    _, problems = check_kb(tmp_path, placeholders)
    conflicts = [
        (p.path.name, p.line, p.message) for p in problems if "near-identical" in p.message
    ]
    assert any(
        "'保修期' of 'guarantee' is near-identical to '保修期' of 'warranty'" in message
        for name, line, message in conflicts
        if (name, line) == ("b.yaml", 14)
    )
    assert any("'cover' of 'guarantee'" in message for _, line, message in conflicts if line == 5)
    assert not any("Гарантия" in message for _, _, message in conflicts)


OFF_TOPIC = """\
# What the bot must not answer.
off_topic:
  - what is the bitcoin price today
  - which pool has the lowest fees
  - How long is the warranty??
  - какой пул лучше
  - 比特币现在多少钱
"""


def test_off_topic_questions_load_from_any_file_and_go_to_their_languages_matchers(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    (tmp_path / "entries.yaml").write_text(TRANSLATED.replace("answr", "answer"), "utf-8")
    (tmp_path / "off_topic.yaml").write_text(
        OFF_TOPIC.replace("  - How long is the warranty??\n", ""), "utf-8"
    )
    kb = load_kb(tmp_path, placeholders)
    english = ["what is the bitcoin price today", "which pool has the lowest fees"]
    assert kb.off_topic_in("en") == english
    assert kb.off_topic_in("ru") == [*english, "какой пул лучше"]
    assert kb.off_topic_in("zh") == [*english, "比特币现在多少钱"]
    assert [entry.id for entry in kb.entries] == ["warranty"]


def test_an_off_topic_question_near_identical_to_a_phrasing_is_refused(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    (tmp_path / "entries.yaml").write_text(TRANSLATED.replace("answr", "answer"), "utf-8")
    (tmp_path / "off_topic.yaml").write_text(OFF_TOPIC, "utf-8")
    kb, problems = check_kb(tmp_path, placeholders)
    [problem] = [p for p in problems if p.severity == "error"]
    assert kb is None
    assert (problem.path.name, problem.line) == ("off_topic.yaml", 5)
    assert (
        "off-topic phrasing 'How long is the warranty??' is near-identical to "
        "'How long is the warranty?' of 'warranty' (" in problem.message
    )
    assert f"{tmp_path / 'entries.yaml'}:4)" in problem.message


def test_an_unknown_top_level_key_names_the_allowed_ones(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    (tmp_path / "off_topic.yaml").write_text(OFF_TOPIC.replace("off_topic:", "offtopic:"), "utf-8")
    _, problems = check_kb(tmp_path, placeholders)
    [problem] = problems
    assert problem.line == 2
    assert problem.message == (
        "offtopic: unknown key (allowed: entries, off_topic, small_talk, small_talk_filler)"
    )


SMALL_TALK = """\
small_talk:
  - kind: thanks
    phrases: [thanks, thank you, 🙏]
    reply:
      en: You're welcome! Write to {support_email} any time.
      ru: Пожалуйста!
      zh: 不客气！
  - kind: greeting
    phrases: [hi, "hello {company_name}"]
    reply:
      en: Hello from <b>{company_name}</b>!
      ru: Здравствуйте!
      zh: 您好！
    show_menu: true
small_talk_filler: ["{company_name}", a lot]
"""


def small_talk_problems(
    tmp_path: Path, placeholders: dict[str, str], text: str, *more: tuple[str, str]
) -> list[Problem]:
    (tmp_path / "small_talk.yaml").write_text(text, "utf-8")
    for name, other in more:
        (tmp_path / name).write_text(other, "utf-8")
    return check_kb(tmp_path, placeholders)[1]


def test_small_talk_loads_from_any_file_with_placeholders_filled(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    (tmp_path / "entries.yaml").write_text(TRANSLATED.replace("answr", "answer"), "utf-8")
    (tmp_path / "chat.yaml").write_text(SMALL_TALK, "utf-8")
    small_talk = load_kb(tmp_path, {**placeholders, "company_name": "Tom & Co"}).small_talk
    thanks, greeting = small_talk.kinds
    assert thanks.reply_in("en") == "You're welcome! Write to support@example.com any time."
    assert greeting.reply_in("zh") == "您好！"
    # Shown as HTML: the value escaped; matched as written.
    assert greeting.reply_in("en") == "Hello from <b>Tom &amp; Co</b>!"
    assert (greeting.show_menu, thanks.show_menu) == (True, False)
    assert small_talk.read("Hello Tom & Co!").kind == greeting
    assert small_talk.read("thanks a lot, Tom & Co").kind == thanks


SCHEMA_ERRORS = """\
small_talk:
  - kind: thanks
    phrases: [thanks]
    buttons: [menu]
    reply:
      en: You're welcome!
      de: Bitte!
  - kind: greeting
"""

CONTENT_ERRORS = """\
small_talk:
  - kind: thanks
    phrases: [thanks, thank you]
    reply:
      en: You're welcome!
      ru: Пожалуйста!
      zh: 不客气！
  - kind: greeting
    phrases: ["?!", hi, Thanks!]
    reply:
      en: Hello from <blink>{company}</blink>!
  - kind: thanks
    phrases: [ty]
    reply:
      en: Welcome!
small_talk_filler: [there, "...", thank you]
"""


def test_small_talk_keys_are_located(tmp_path: Path, placeholders: dict[str, str]) -> None:
    problems = small_talk_problems(tmp_path, placeholders, SCHEMA_ERRORS)
    assert {(p.line, p.message) for p in problems} == {
        (4, "small_talk.0.buttons: unknown key (allowed: kind, phrases, reply, show_menu, action)"),
        (7, "small_talk.0.reply.de: unknown key (allowed: en, ru, zh)"),
        (8, "small_talk.1.phrases: Field required"),
        (8, "small_talk.1.reply: Field required"),
    }


def test_small_talk_problems_are_located(tmp_path: Path, placeholders: dict[str, str]) -> None:
    problems = small_talk_problems(tmp_path, placeholders, CONTENT_ERRORS)
    here = tmp_path / "small_talk.yaml"
    known = ", ".join(f"{{{key}}}" for key in sorted(placeholders))
    assert [(p.line, p.message) for p in problems if p.severity == "error"] == [
        (16, "small_talk_filler: '...' has no words or emoji to recognise"),
        (3, f"small talk 'thanks': 'thank you' is also filler ({here}:16)"),
        (9, "small talk 'greeting': '?!' has no words or emoji to recognise"),
        (9, f"small talk 'greeting': 'Thanks!' is also a phrase of 'thanks' ({here}:3)"),
        (11, f"small talk 'greeting': unknown placeholder {{company}} (known: {known})"),
        (
            11,
            "small talk 'greeting': Telegram does not support <blink> (use b, i, u, s, a, code, "
            "pre, blockquote; write a literal '<' as &lt;)",
        ),
        (12, f"small talk 'thanks' is defined twice (first at {here}:2)"),
    ]
    warnings = [(p.line, p.message) for p in problems if p.severity == "warning"]
    assert (
        10,
        "small talk 'greeting': no reply in ru, zh (customers writing in it get the English reply)",
    ) in warnings


def test_a_small_talk_phrase_that_makes_a_question_small_talk_is_refused(
    tmp_path: Path, placeholders: dict[str, str]
) -> None:
    entries = TRANSLATED.replace("answr", "answer").replace("guarantee,", "ok thanks,")
    problems = small_talk_problems(
        tmp_path,
        placeholders,
        SMALL_TALK.replace("[hi,", "[hi, ok, Какой пул лучше?!,"),
        ("entries.yaml", entries),
        ("off_topic.yaml", OFF_TOPIC.replace("  - How long is the warranty??\n", "")),
    )
    there = tmp_path / "entries.yaml"
    assert [(p.path.name, p.line, p.message) for p in problems if p.severity == "error"] == [
        (
            "small_talk.yaml",
            9,
            f"small talk 'greeting': 'ok' makes 'ok thanks' of 'warranty' ({there}:5) small "
            "talk, so it would never be answered as a question",
        ),
        (
            "small_talk.yaml",
            9,
            "small talk 'greeting': 'Какой пул лучше?!' makes the off-topic question "
            f"'какой пул лучше' ({tmp_path / 'off_topic.yaml'}:5) small talk, so it would never "
            "be answered as a question",
        ),
    ]
