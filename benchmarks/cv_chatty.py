"""Long, chatty messages: which long-message design? On training and development data only.

Usage: python benchmarks/cv_chatty.py DATASETS_DIR [--seeds N] [--designs a,b] [--skip-cv]
    [--skip-dev] [--only-kb NAME,...] [--plain NAME,...]

1. Cross-validation on the KBs' own phrasings: the shipped KB in English (the English model),
Russian and Chinese (the multilingual model, each entry's phrasings in the language plus its
English ones, as the bot matches them), and BANKING77's 10-shot KB (English). In each of 5
folds a fifth of the entries is removed and a fifth of every other entry's phrasings in the
language is held out. Held-out phrasings are asked as written, wrapped in chatter (a greeting
and a sign-off) and set in context (one or two sentences of context before or after them);
removed entries' phrasings are asked as written and in context (questions no entry answers).
Printed per design: answered right and wrong, unknown answered, and the score the design is
chosen by (missed + 2 x wrong + unknown answered, shares).

2. The development questions (tests/data/dev_questions.yaml), per language, all of them and
the long ones: right, wrong, out of scope answered, the same score, and the extra encoder
calls per message.

`--plain`: KBs asked their phrasings as written only (no chatter, no context): what the
rule's third part, plain questions, needs of them; wrapping BANKING77's costs ten thousand
model calls. No test file or held-out customer question is read. Query vectors are cached on
disk under data/cache (labelled benchmark texts, not customers'), so a second design costs no
encoding.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cv_typos import in_chatter  # noqa: E402
from faq.bench import QueriesCached, phrasings_by_category, read_examples  # noqa: E402
from faq.encoder import Encoder, TextEncoder, UniversalEncoder  # noqa: E402
from faq.loader import KnowledgeBase  # noqa: E402
from faq.matcher import Decision, LongMessages, Matcher, MatcherConfig  # noqa: E402
from faq.service import TARGET_UNANSWERED  # noqa: E402

FOLDS = 5
DEV_QUESTIONS = ROOT / "tests" / "data" / "dev_questions.yaml"
# Context customers put around a question, in each language: about themselves, their
# machines, earlier contact. Written for this harness, apart from any test file.
CONTEXT = {
    "en": (
        "I bought two units from your shop in March and they ran fine until now.",
        "We are a small hosting company with about 200 machines in two containers.",
        "A friend of mine recommended your store, he ordered from you last year.",
        "I already wrote to your support email twice this week.",
        "Our farm is next to a hydro plant, power is cheap but the internet is slow.",
        "I have been mining since 2018, mostly with Antminers and a few Whatsminers.",
        "The machines are in a warehouse right now and my technician is away.",
        "Sorry for my english, I am using a translator.",
        "My partner handles the payments but he is travelling this month.",
        "We are planning to expand the farm before the next halving.",
        "Last time the delivery went well, so we want to order again.",
        "I am not very technical, my nephew set everything up for me.",
    ),
    "ru": (
        "Я купил у вас две машины в марте, до сих пор всё работало нормально.",
        "Мы небольшая хостинг-компания, около 200 асиков в двух контейнерах.",
        "Мне вас посоветовал знакомый, он заказывал у вас в прошлом году.",
        "Я уже дважды писал на вашу почту на этой неделе.",
        "Ферма стоит рядом с ГЭС, электричество дешёвое, но интернет медленный.",
        "Майню с 2018 года, в основном на антмайнерах.",
        "Машины сейчас на складе, а мой техник в отъезде.",
        "Извините, пишу через переводчик, могу ошибаться.",
        "Оплатой занимается мой партнёр, но он сейчас в командировке.",
        "Планируем расширять ферму до следующего халвинга.",
        "В прошлый раз доставка прошла хорошо, хотим заказать ещё.",
        "Я не очень разбираюсь в технике, всё настраивал племянник.",
    ),
    "zh": (
        "我三月份在你们店买了两台机器，一直用得挺好。",
        "我们是一家小型托管公司，两个集装箱里大概有两百台矿机。",
        "朋友推荐的你们店，他去年在你们这里下过单。",
        "这周我已经给你们客服邮箱发了两次邮件了。",
        "我们的矿场在水电站旁边，电费便宜但是网络很慢。",
        "我从2018年开始挖矿，主要用蚂蚁矿机。",
        "机器现在放在仓库里，我们的技术员出差了。",
        "不好意思，我对这些不太懂。",
        "付款是我合伙人负责的，他这个月在外地。",
        "我们打算在下次减半之前扩大矿场。",
        "上次发货很顺利，所以想再订一批。",
        "机器都是我侄子帮忙设置的。",
    ),
}
SIGN_OFFS = {
    "en": ("thanks in advance!", "please reply asap.", "thank you.", "let me know please"),
    "ru": ("заранее спасибо!", "ответьте побыстрее пожалуйста.", "спасибо.", "жду ответа"),
    "zh": ("先谢谢了！", "请尽快回复。", "谢谢。", "麻烦回复一下"),
}
GREETINGS = {
    "ru": ("здравствуйте,", "добрый день.", "привет, есть вопрос:", "извините за беспокойство,"),
    "zh": ("你好，", "您好。", "打扰一下，", "你好，有个问题："),
}
Variant = Callable[[str, str, random.Random], str]


def as_written(text: str, language: str, rng: random.Random) -> str:
    return text


def chatter(text: str, language: str, rng: random.Random) -> str:
    if language == "en":
        return in_chatter(text, rng)
    separator = "" if language == "zh" else " "
    parts = (rng.choice(GREETINGS[language]), text, rng.choice(SIGN_OFFS[language]))
    return separator.join(parts)


def in_context(text: str, language: str, rng: random.Random) -> str:
    """One or two context sentences, before the question (two in three) or after it."""
    context = rng.sample(CONTEXT[language], rng.choice((1, 2)))
    separator = "" if language == "zh" else " "
    question = text if language == "zh" else f"{text[:1].upper()}{text[1:]}"
    if question[-1:] not in ("?", "？", ".", "。", "!", "！"):
        question += "？" if language == "zh" else "?"
    parts = [*context, question] if rng.random() < 2 / 3 else [question, *context]
    if rng.random() < 0.5:
        parts.append(rng.choice(SIGN_OFFS[language]))
    return separator.join(parts)


IN_SCOPE: dict[str, Variant] = {"as written": as_written, "chatter": chatter, "context": in_context}
UNKNOWN: dict[str, Variant] = {"unknown": as_written, "unknown in context": in_context}


@dataclasses.dataclass
class Tally:
    asked: int = 0
    right: int = 0
    wrong: int = 0

    def score(self, unknown: bool) -> float:
        if unknown:
            return (self.right + self.wrong) / self.asked
        return 1 - self.right / self.asked + 2 * self.wrong / self.asked


def chatty_score(figures: dict[str, Tally]) -> float:
    """The rule's score on the wrapped questions: in chatter and in context (in scope), and
    removed entries' phrasings in context (out of scope)."""
    return (
        figures["chatter"].score(False)
        + figures["context"].score(False)
        + figures["unknown in context"].score(True)
    )


def cross_validate(
    encoder: TextEncoder,
    phrasings: dict[str, list[str]],
    asked_in: dict[str, list[str]],
    language: str,
    configs: dict[str, MatcherConfig],
    off_topic: Sequence[str],
    seed: int,
    plain: bool = False,
) -> dict[str, dict[str, Tally]]:
    """Tallies per design and kind of question. `asked_in`: each entry's phrasings in the
    questions' language (a subset of its `phrasings`, which the matcher learns from). The
    designs differ only in how a message is read, so one fit per fold serves them all, and
    all are asked the same wrapped questions."""
    rng, entry_rng = random.Random(seed), np.random.default_rng(seed)
    entry_fold = dict(zip(phrasings, entry_rng.permutation(len(phrasings)) % FOLDS, strict=True))
    tallies = {design: {name: Tally() for name in [*IN_SCOPE, *UNKNOWN]} for design in configs}
    first = next(iter(configs.values()))
    for fold in range(FOLDS):
        held_out = {
            entry: set(texts[fold::FOLDS])
            for entry, texts in asked_in.items()
            if entry_fold[entry] != fold
        }
        training = {
            entry: [text for text in texts if text not in held_out[entry]]
            for entry, texts in phrasings.items()
            if entry_fold[entry] != fold
        }
        matcher = Matcher(encoder, training, first, off_topic=off_topic)
        questions = [(entry, text) for entry, texts in held_out.items() for text in sorted(texts)]
        unknown = [
            text for entry, texts in asked_in.items() if entry_fold[entry] == fold for text in texts
        ]
        asked = {
            name: [variant(text, language, rng) for _, text in questions]
            for name, variant in IN_SCOPE.items()
            if not plain or variant is as_written
        } | {
            name: [variant(text, language, rng) for text in unknown]
            for name, variant in UNKNOWN.items()
            if not plain or variant is as_written
        }
        for design, config in configs.items():
            matcher.config = config
            for name, texts in asked.items():
                tally = tallies[design][name]
                matches = matcher.match_many(texts)
                tally.asked += len(texts)
                if name in UNKNOWN:
                    tally.wrong += sum(match.decision is Decision.ANSWER for match in matches)
                    continue
                for (entry, _), match in zip(questions, matches, strict=True):
                    if match.decision is Decision.ANSWER and match.best:
                        tally.right += match.best.entry_id == entry
                        tally.wrong += match.best.entry_id != entry
    return tallies


def development(
    encoders: dict[str, QueriesCached], kb: KnowledgeBase, config: MatcherConfig
) -> dict[str, dict[str, float]]:
    """Per language: figures on all development questions and on the long ones."""
    questions = yaml.safe_load(DEV_QUESTIONS.read_text(encoding="utf-8"))
    figures = {}
    for language, encoder in encoders.items():
        matcher = Matcher(
            encoder,
            kb.matched_phrasings(language),
            dataclasses.replace(config, target_unanswered=TARGET_UNANSWERED[language]),
            cache_dir=ROOT / "data" / "cache",
            off_topic=kb.off_topic_in(language),
        )
        rows = [row for row in questions if row["language"] == language]
        for subset, chosen in (("all", rows), ("long", [r for r in rows if r["style"] == "long"])):
            before = encoder.texts
            matches = matcher.match_many([row["text"] for row in chosen])
            calls = encoder.texts - before - len(chosen)
            in_scope = [row for row in chosen if row["entry_id"]]
            right = wrong = oos = 0
            for row, match in zip(chosen, matches, strict=True):
                if match.decision is not Decision.ANSWER or match.best is None:
                    continue
                if row["entry_id"] is None:
                    oos += 1
                elif match.best.entry_id == row["entry_id"]:
                    right += 1
                else:
                    wrong += 1
            out = len(chosen) - len(in_scope)
            figures[f"{language} {subset}"] = {
                "right": right,
                "wrong": wrong,
                "in": len(in_scope),
                "oos": oos,
                "out": out,
                "score": 1 - right / len(in_scope) + 2 * wrong / len(in_scope) + oos / out,
                "calls": calls / len(chosen),
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--designs", default=",".join(LongMessages))
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-dev", action="store_true")
    parser.add_argument("--only-kb", default="", help="comma-separated KB names for part 1")
    parser.add_argument("--plain", default="", help="KBs asked as written only (part 1)")
    args = parser.parse_args()
    from bot.settings import CompanySettings, bundled_kb_path
    from faq.loader import load_kb

    cache = ROOT / "data" / "cache"
    english = QueriesCached(Encoder(cache_dir=cache))
    multilingual = QueriesCached(UniversalEncoder(cache))
    kb = load_kb(bundled_kb_path(), CompanySettings().placeholders())
    designs = [LongMessages(name) for name in args.designs.split(",")]
    # name: encoder, phrasings learnt, phrasings asked, language, off-topic phrasings
    kbs = {
        "shipped KB en": (english, kb.phrasings(), kb.phrasings(), "en", kb.off_topic_in("en")),
        "shipped KB ru": (
            multilingual,
            kb.matched_phrasings("ru"),
            kb.phrasings("ru"),
            "ru",
            kb.off_topic_in("ru"),
        ),
        "shipped KB zh": (
            multilingual,
            kb.matched_phrasings("zh"),
            kb.phrasings("zh"),
            "zh",
            kb.off_topic_in("zh"),
        ),
    }
    banking = phrasings_by_category(read_examples(args.datasets / "banking77_train.csv"), shots=10)
    kbs["BANKING77 10-shot"] = (english, banking, banking, "en", [])
    if args.only_kb:
        kbs = {name: kbs[name] for name in args.only_kb.split(",")}
    if not args.skip_cv:
        print("| KB | design | " + " | ".join(f"{v} right / wrong" for v in IN_SCOPE), end="")
        print(" | " + " | ".join(f"{v} answered" for v in UNKNOWN) + " | score chatty |")
        print("| --- | --- | " + " | ".join("---" for _ in [*IN_SCOPE, *UNKNOWN]) + " | --- |")
        for name, (encoder, learnt, asked, language, off_topic) in kbs.items():
            configs = {
                design: dataclasses.replace(
                    MatcherConfig(),
                    long_messages=design,
                    target_unanswered=TARGET_UNANSWERED[language],  # type: ignore[index]
                )
                for design in designs
            }
            total = {design: {key: Tally() for key in [*IN_SCOPE, *UNKNOWN]} for design in designs}
            for seed in range(args.seeds):
                plain = name in args.plain.split(",")
                run = cross_validate(
                    encoder, learnt, asked, language, configs, off_topic, seed, plain
                )
                for design in designs:
                    for key, tally in run[design].items():
                        total[design][key].asked += tally.asked
                        total[design][key].right += tally.right
                        total[design][key].wrong += tally.wrong
            for design in designs:
                figures = total[design]
                cells = [
                    f"{t.right / t.asked:.3f} / {t.wrong / t.asked:.3f}" if t.asked else "–"
                    for t in (figures[v] for v in IN_SCOPE)
                ] + [
                    f"{figures[v].wrong / figures[v].asked:.3f}" if figures[v].asked else "–"
                    for v in UNKNOWN
                ]
                chatty = f"{chatty_score(figures):.3f}" if figures["chatter"].asked else "–"
                print(
                    f"| {name} | {design} | " + " | ".join(cells) + f" | {chatty} |",
                    f"(as written {figures['as written'].score(False):.3f})",
                    flush=True,
                )
    if args.skip_dev:
        return
    print(f"\nDevelopment questions ({DEV_QUESTIONS.name}):")
    encoders = {"en": english, "ru": multilingual, "zh": multilingual}
    print("| design | subset | right / in scope | wrong | oos answered | score | extra calls |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for design in designs:
        figures = development(
            encoders, kb, dataclasses.replace(MatcherConfig(), long_messages=design)
        )
        for subset, f in figures.items():
            print(
                f"| {design} | {subset} | {f['right']}/{f['in']} | {f['wrong']} | "
                f"{f['oos']}/{f['out']} | {f['score']:.3f} | {f['calls']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
