"""Small talk read from its words, before the matcher: no model, the shipped phrases."""

from __future__ import annotations

import pytest

from bot.settings import CompanySettings, bundled_kb_path
from faq.loader import load_kb
from faq.schema import SmallTalkKind, SmallTalkReply
from faq.small_talk import SmallTalk
from faq.text import script_language
from handlers.handoff import asks_for_human

SHIPPED = load_kb(bundled_kb_path(), CompanySettings().placeholders()).small_talk


def kind_of(text: str, small_talk: SmallTalk = SHIPPED) -> str | None:
    kind = small_talk.read(text).kind
    return None if kind is None else kind.kind


def kinds(**phrases: list[str]) -> list[SmallTalkKind]:
    return [
        SmallTalkKind(kind=name, phrases=texts, reply=SmallTalkReply(en=name))
        for name, texts in phrases.items()
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("hi", "greeting"),
        ("Hi!", "greeting"),
        ("hiii there", "greeting"),
        ("Hello?", "greeting"),
        ("good morning!", "greeting"),
        ("hello Apexto team", "greeting"),
        ("👋", "greeting"),
        ("helo", "greeting"),
        ("thanks!", "thanks"),
        ("Thanksss", "thanks"),
        ("thnaks", "thanks"),
        ("thx", "thanks"),
        ("ty", "thanks"),
        ("thank you so much", "thanks"),
        ("thanks a lot!!", "thanks"),
        ("🙏", "thanks"),
        ("ok thanks", "thanks"),
        ("ok", "acknowledgement"),
        ("OK", "acknowledgement"),
        ("okk", "acknowledgement"),
        ("got it", "acknowledgement"),
        ("👍", "acknowledgement"),
        ("👍🏻👍🏻", "acknowledgement"),
        ("👌", "acknowledgement"),
        ("ok bye", "goodbye"),
        ("thanks, bye!", "goodbye"),
        ("have a nice day", "goodbye"),
        ("are you a bot?", "are_you_a_bot"),
        ("Are you a bot??", "are_you_a_bot"),
        ("hi, are you a robot?", "are_you_a_bot"),
        ("how are you?", "how_are_you"),
        ("sorry", "apology"),
        ("lol", "laughter"),
        ("hahaha 😂", "laughter"),
        ("привет", "greeting"),
        ("Привееет!", "greeting"),
        ("здраствуйте", "greeting"),
        ("добрый день", "greeting"),
        ("спасибо", "thanks"),
        ("спасибо большое!", "thanks"),
        ("спс", "thanks"),
        ("спосибо", "thanks"),
        ("ок", "acknowledgement"),
        ("понял", "acknowledgement"),
        ("всё понятно", "acknowledgement"),
        ("ок, спасибо", "thanks"),
        ("пока", "goodbye"),
        ("до свидания", "goodbye"),
        ("ты бот?", "are_you_a_bot"),
        ("как дела?", "how_are_you"),
        ("извините", "apology"),
        ("ахаха", "laughter"),
        ("你好", "greeting"),
        ("您好！", "greeting"),
        ("在吗", "greeting"),
        ("你好，在吗？", "greeting"),
        ("谢谢", "thanks"),
        ("谢谢谢谢", "thanks"),
        ("谢啦", "thanks"),
        ("谢谢啦", "thanks"),
        ("好的", "acknowledgement"),
        ("收到", "acknowledgement"),
        ("嗯嗯", "acknowledgement"),
        ("好的，谢谢", "thanks"),
        ("再见", "goodbye"),
        ("拜拜", "goodbye"),
        ("你是机器人吗", "are_you_a_bot"),
        ("你是机器人吗？", "are_you_a_bot"),
        ("哈哈哈", "laughter"),
        ("不好意思", "apology"),
    ],
)
def test_small_talk_in_three_languages_is_read_as_its_kind(text: str, kind: str) -> None:
    reading = SHIPPED.read(text)
    assert reading.kind is not None, text
    assert (reading.kind.kind, reading.question) == (kind, "")


@pytest.mark.parametrize(
    "text",
    [
        "hi, where is my order?",
        "thanks, but the PSU is still dead",
        "ok so how do I pay",
        "bot price?",
        "is there a human?",
        "can I talk to a human",
        "hello, how long does delivery take?",
        "how are you shipping the miners",
        "thanks a lot how do i pay",
        "there",
        "so much",
        "mine",
        "water",
        "ok?? my miner is still not hashing",
        "привет, где мой заказ?",
        "спасибо, но блок питания всё ещё не работает",
        "как дела с моим заказом",
        "ок а когда доставка",
        "你好，我的订单到哪了",
        "谢谢，但是电源还是坏的",
        "好用吗",
        "你好我想问一下保修",
        "可以分期吗",
        "??",
        "",
    ],
)
def test_questions_are_not_small_talk(text: str) -> None:
    assert kind_of(text) is None


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("hi, where is my order?", "where is my order?"),
        ("Hi there, how long does delivery take?", "how long does delivery take?"),
        ("hi where is my order", "where is my order"),
        ("thanks, but the PSU is still dead", "but the PSU is still dead"),
        ("ok so how do I pay", "how do I pay"),
        ("good morning, can I pay with USDT?", "can I pay with USDT?"),
        ("👋 where is my order", "where is my order"),
        ("привет, где мой заказ?", "где мой заказ?"),
        ("ок а когда доставка", "когда доставка"),
        ("你好，我的订单到哪了", "我的订单到哪了"),
        ("你好 我想问一下保修", "我想问一下保修"),
    ],
)
def test_a_small_talk_opening_is_left_out_of_the_question(text: str, question: str) -> None:
    reading = SHIPPED.read(text)
    assert (reading.kind, reading.question) == (None, question)


@pytest.mark.parametrize(
    "text",
    [
        # The opening does not clearly end: a word of the question may be in it.
        "how are you shipping the miners",
        "thanks a lot how do i pay",
        "как дела с моим заказом",
        "你好我想问一下保修",
        "好用吗",
        "谢谢你们的帮助我想问一下",
        # No opening at all.
        "bot price?",
        "is there a human?",
    ],
)
def test_a_question_stays_whole_where_no_opening_clearly_ends(text: str) -> None:
    assert SHIPPED.read(text).question == text


def test_mixed_kinds_get_the_kind_listed_first() -> None:
    small_talk = SmallTalk(kinds(goodbye=["bye"], thanks=["thanks"], ok=["ok"]))
    assert kind_of("ok thanks", small_talk) == "thanks"
    assert kind_of("thanks, ok", small_talk) == "thanks"
    assert kind_of("ok thanks bye", small_talk) == "goodbye"


def test_filler_goes_with_a_phrase_and_is_nothing_alone() -> None:
    small_talk = SmallTalk(kinds(thanks=["thanks"]), filler=["a lot", "Apexto"])
    assert kind_of("thanks a lot", small_talk) == "thanks"
    assert kind_of("apexto, thanks", small_talk) == "thanks"
    assert kind_of("a lot", small_talk) is None
    assert kind_of("thanks a bunch", small_talk) is None


def test_one_typo_in_a_phrase_of_four_letters_or_more() -> None:
    small_talk = SmallTalk(kinds(thanks=["thanks", "thank you"], greeting=["hey"]))
    assert kind_of("thnaks", small_talk) == "thanks"  # letters swapped
    assert kind_of("thaks", small_talk) == "thanks"  # one left out
    assert kind_of("thank yuo", small_talk) == "thanks"
    assert kind_of("thankyou", small_talk) == "thanks"  # words run together
    assert kind_of("thnkas", small_talk) is None  # two typos
    assert kind_of("hye", small_talk) is None  # "hey" is too short to guess
    assert kind_of("hanks", small_talk) is None  # the first letter is never the typo


def test_a_word_of_the_kbs_questions_is_never_read_as_a_typo() -> None:
    phrases = kinds(ok=["noted"], goodbye=["later"])
    questions = ["Release notes of the firmware?", "a layer of dust on the hashboard"]
    guarded = SmallTalk(phrases, questions=questions)
    assert kind_of("notes", guarded) is None
    assert kind_of("layer", guarded) is None
    assert kind_of("notde", guarded) == "ok"
    assert kind_of("notes", SmallTalk(phrases)) == "ok"
    assert kind_of("mine", SHIPPED) is None


def test_every_shipped_phrase_is_read_as_its_own_kind() -> None:
    for kind in SHIPPED.kinds:
        for phrase in kind.phrases:
            assert kind_of(phrase) == kind.kind, phrase


def test_the_shipped_small_talk_in_each_language() -> None:
    """Every kind has phrases in Latin script, Cyrillic and Chinese characters, and its
    reply in every language."""
    for kind in SHIPPED.kinds:
        scripts = {script_language(phrase) for phrase in kind.phrases}
        assert {None, "ru", "zh"} <= scripts, kind.kind
        assert kind.reply.ru, kind.kind
        assert kind.reply.zh, kind.kind


def test_no_shipped_small_talk_asks_for_a_person() -> None:
    """Those hand the customer over before small talk is read ("can I talk to a human",
    «оператор», 人工): a phrase of that kind here would be dead, or worse, edited out."""
    for kind in SHIPPED.kinds:
        for phrase in kind.phrases:
            assert not asks_for_human(phrase), phrase
