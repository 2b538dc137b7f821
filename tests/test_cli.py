"""The `minerdesk` command as operators script it: exit codes and exact JSON shapes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from storage.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from storage.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tests.factories import DEEP_ARRAY
from tests.pgserver import Databases

DATA = Path(__file__).resolve().parent / "data"
ASK_KEYS = {"decision", "language", "small_talk", "entry_id", "score", "answer", "suggestions"}
CHECK_KEYS = {
    "in_scope",
    "correct",
    "wrong",
    "suggested_right",
    "suggested_wrong",
    "fallback",
    "out_of_scope",
    "out_of_scope_answered",
}
BENCH_KEYS = {"n", "accuracy", "in_scope_accuracy", "oos_recall", "answer_rate", "p50_ms", "p99_ms"}


def minerdesk(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_validate_passes_on_the_shipped_kb(cli_env: dict[str, str]) -> None:
    result = minerdesk("faq", "validate", env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")


def test_validate_fails_with_located_messages(cli_env: dict[str, str]) -> None:
    result = minerdesk(
        "faq", "validate", str(DATA / "broken" / "duplicate_and_dangling.yaml"), env=cli_env
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.endswith(
            "duplicate_and_dangling.yaml:9: error: duplicate id 'refunds' "
            f"(first defined at {DATA / 'broken' / 'duplicate_and_dangling.yaml'}"
            ":2)"
        )
        for line in lines
    )


def test_a_wrong_setting_stops_with_one_line_naming_the_key(cli_env: dict[str, str]) -> None:
    result = minerdesk("faq", "validate", env={**cli_env, "MINERDESK_FAQ__THREADS": "lots"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "faq.threads" in line


def test_a_period_in_days_is_refused_beyond_a_century(cli_env: dict[str, str]) -> None:
    for command in (("stats",), ("faq", "gaps")):
        for days in ("0", "36501", "999999999"):
            result = minerdesk(*command, "--days", days, env=cli_env)
            assert result.returncode == 2
            assert result.stderr.splitlines()[-1].endswith(
                f"argument --days: expected 1 to 36500 days, got '{days}'"
            )


def test_run_without_a_token_says_how_to_set_it(cli_env: dict[str, str]) -> None:
    result = minerdesk("run", env=cli_env)
    assert result.returncode == 2
    assert "MINERDESK_TELEGRAM__TOKEN" in result.stderr


def test_run_says_in_one_line_that_whatsapp_is_not_configured(cli_env: dict[str, str]) -> None:
    # A Telegram token does not make WhatsApp configured: `--channel whatsapp` wants its own.
    env = {**cli_env, "MINERDESK_TELEGRAM__TOKEN": "123:secret"}
    result = minerdesk("run", "--channel", "whatsapp", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "whatsapp: not configured" in result.stderr
    assert "does not start" not in result.stderr


def test_run_telegram_alone_without_its_token_says_how_to_set_it(
    cli_env: dict[str, str],
) -> None:
    env = {
        **cli_env,
        "MINERDESK_WHATSAPP__PHONE_NUMBER_ID": "1234567890",
        "MINERDESK_WHATSAPP__ACCESS_TOKEN": "t",
        "MINERDESK_WHATSAPP__APP_SECRET": "s",
        "MINERDESK_WHATSAPP__VERIFY_TOKEN": "v",
    }
    result = minerdesk("run", "--channel", "telegram", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "MINERDESK_TELEGRAM__TOKEN" in result.stderr


def order_record(number: str, **changes: str) -> str:
    record = {
        "number": number,
        "email": "buyer@example.com",
        "status": "paid",
        "items": [{"brand": "Bitmain", "model": "Antminer S21"}],
    }
    return json.dumps(record | changes)


def test_orders_import_reports_deep_and_oversized_records_and_imports_the_rest(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    orders = tmp_path / "orders.json"
    records = [
        order_record("A-1"),
        DEEP_ARRAY,
        order_record("A-2", carrier="x" * 900_000),
        order_record("A-3"),
    ]
    orders.write_text("[\n" + ",\n".join(records) + "\n]\n", encoding="utf-8")

    result = minerdesk("orders", "import", str(orders), env=cli_env)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{orders}:3: nested deeper than 10 levels (an order has 5)",
        f"{orders}:4: order A-2: carrier: longer than 80 characters (900000)",
    ]
    assert result.stdout == f"{orders}: 2 created, 0 updated, 0 unchanged, 2 problem(s)\n"


def test_read_only_commands_refuse_a_storage_url_where_no_database_is(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    mistyped = Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdsk.db"
    in_no_folder = tmp_path / "nope" / "minerdesk.db"

    def using(path: Path) -> dict[str, str]:
        return cli_env | {"MINERDESK_STORAGE__URL": f"sqlite:///{path}"}

    for path, commands in (
        (mistyped, [("stats",), ("tickets", "export"), ("faq", "gaps")]),
        (in_no_folder, [("stats",)]),
    ):
        for command in commands:
            result = minerdesk(*command, env=using(path))
            assert result.returncode == 2
            assert result.stderr == (
                f"minerdesk: storage.url: no database at {path} (mistyped? `minerdesk run`, "
                "`chat` and `orders import` create it)\n"
            )
    assert not mistyped.exists()
    assert not in_no_folder.parent.exists()

    # A command that owns the database creates it, folder and all.
    orders = tmp_path / "orders.jsonl"
    orders.write_text(order_record("A-1") + "\n", encoding="utf-8")
    imported = minerdesk("orders", "import", str(orders), env=using(in_no_folder))
    assert imported.returncode == 0, imported.stderr
    assert minerdesk("stats", env=using(in_no_folder)).returncode == 0


@pytest.mark.model
def test_ask_json_shape_for_one_question_and_for_stdin(cli_env: dict[str, str]) -> None:
    single = minerdesk(
        "faq", "ask", "Can I pay for my order in instalments?", "--json", env=cli_env
    )
    assert single.returncode == 0, single.stderr
    answer = json.loads(single.stdout)
    assert set(answer) == ASK_KEYS
    assert answer["decision"] == "answer"
    assert answer["entry_id"] == "instalments"
    assert isinstance(answer["score"], float)
    assert "deposit" in answer["answer"]

    many = minerdesk(
        "faq",
        "ask",
        "--json",
        env=cli_env,
        stdin="how long does customs take\n\nwho won the world cup in 1998\nwarranty\n"
        "можно оплатить заказ в рассрочку?\nthanks!\n",
    )
    assert many.returncode == 0, many.stderr
    objects = [json.loads(line) for line in many.stdout.splitlines()]
    assert len(objects) == 5
    thanks = objects.pop()
    assert (thanks["decision"], thanks["small_talk"], thanks["entry_id"]) == (
        "small_talk",
        "thanks",
        None,
    )
    assert thanks["answer"].startswith("You're welcome!")
    assert all(obj["small_talk"] is None for obj in objects)
    russian = objects[3]
    assert (russian["language"], russian["entry_id"]) == ("ru", "instalments")
    assert "депозит" in russian["answer"]
    assert all(set(obj) == ASK_KEYS for obj in objects)
    assert objects[1]["decision"] != "answer"
    for obj in objects:
        if obj["decision"] == "suggest":
            assert obj["entry_id"] is None
            assert obj["answer"] is None
            assert 1 <= len(obj["suggestions"]) <= 3
            assert all(set(s) == {"entry_id", "question", "score"} for s in obj["suggestions"])


@pytest.mark.model
def test_ask_skips_a_stdin_line_that_is_not_utf8_and_answers_the_rest(
    cli_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "faq", "ask", "--json"],
        input=b"how long does customs take\r\n\xff\xfe garantie?\n\nwarranty\n",
        capture_output=True,
        env=cli_env,
        timeout=300,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.decode() == "minerdesk: stdin line 2: not UTF-8 text, skipped\n"
    customs, warranty = (json.loads(line) for line in result.stdout.splitlines())
    assert customs["entry_id"] == "customs_clearance_time"
    assert warranty["decision"]


def test_ask_refuses_a_question_argument_that_is_not_utf8(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "faq", "ask", b"\xff warranty"],
        capture_output=True,
        env=cli_env,
        timeout=300,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1].endswith("argument text: not UTF-8 text")


@pytest.mark.model
def test_ask_says_which_off_topic_question_stopped_an_answer(cli_env: dict[str, str]) -> None:
    result = minerdesk("faq", "ask", "how much is one bitcoin worth now", env=cli_env)
    assert result.returncode == 0, result.stderr
    decision, reason = result.stdout.splitlines()
    assert decision.startswith("fallback (score ")
    assert reason.startswith("off-topic: nearest to '")
    assert reason.endswith("' in the KB's off-topic questions")


@pytest.mark.model
@pytest.mark.parametrize("tuning", [(), ("--fine-tune",)], ids=["frozen", "fine-tuned"])
def test_bench_json_shape(cli_env: dict[str, str], tmp_path: Path, tuning: tuple[str, ...]) -> None:
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text(
        "text,category\n"
        "how long is shipping,shipping\nwhen will my miner arrive,shipping\n"
        "delivery time to europe,shipping\ncan i get my money back,refund\n"
        "refund please,refund\ni want to cancel and be refunded,refund\n"
        "is my miner under warranty,warranty\nwarranty period,warranty\n"
        "how many days of warranty,warranty\n",
        encoding="utf-8",
    )
    test.write_text(
        "text,category\nhow many days until it arrives,shipping\n"
        "money back?,refund\nwhat's a good pizza place,oos\n",
        encoding="utf-8",
    )
    result = minerdesk(
        "faq",
        "bench",
        "--train",
        str(train),
        "--test",
        str(test),
        "--shots",
        "2",
        "--oos-label",
        "oos",
        "--json",
        *tuning,
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr
    assert ("fine-tuned in" in result.stderr) == bool(tuning)
    figures = json.loads(result.stdout)
    assert set(figures) == BENCH_KEYS
    assert figures["n"] == 3
    assert 0 <= figures["accuracy"] <= 1
    assert figures["p99_ms"] >= figures["p50_ms"] > 0


CHECK_QUESTIONS = """
- {text: "how long does shipping take to europe", entry_id: delivery_time, style: plain}
- {text: "can i pay with usdt", entry_id: payment_methods}
- {text: "what is the capital of australia", entry_id: null}
- {text: "Какие способы оплаты вы принимаете?", entry_id: payment_methods}
- {text: "а гарантия на асик сколько?", entry_id: warranty_period, style: slang}
- {text: "какая столица австралии", entry_id: null}
"""


def tally(**counts: int) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in CHECK_KEYS}


@pytest.mark.model
def test_check_counts_outcomes_per_language(cli_env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(CHECK_QUESTIONS, encoding="utf-8")
    result = minerdesk(
        "faq", "check", str(questions), "--targets", "0.5,0.95", "--json", env=cli_env
    )
    assert result.returncode == 0, result.stderr
    rows = {
        (row.pop("target"), row.pop("language")): row
        for row in map(json.loads, result.stdout.splitlines())
    }
    assert list(rows) == [(0.5, "en"), (0.5, "ru"), (0.95, "en"), (0.95, "ru")]
    clear = tally(in_scope=2, correct=2, out_of_scope=1)
    assert rows[0.5, "en"] == rows[0.95, "en"] == rows[0.5, "ru"] == clear
    # The slangy Russian question is answered at 0.5 and only offered at 0.95.
    assert rows[0.95, "ru"] == tally(in_scope=2, correct=1, suggested_right=1, out_of_scope=1)


@pytest.mark.model
def test_check_compares_long_message_designs(cli_env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(CHECK_QUESTIONS, encoding="utf-8")
    designs = "whole,question_alone"
    result = minerdesk(
        "faq", "check", str(questions), "--long-messages", designs, "--json", env=cli_env
    )
    assert result.returncode == 0, result.stderr
    rows = {}
    for row in map(json.loads, result.stdout.splitlines()):
        assert row.pop("target") is None  # the configured caution
        rows[row.pop("long_messages"), row.pop("language")] = row
    assert list(rows) == [(d, language) for d in designs.split(",") for language in ("en", "ru")]
    # One-sentence questions: every design reads them as written.
    for language in ("en", "ru"):
        assert rows["whole", language] == rows["question_alone", language]
    assert rows["whole", "en"] == tally(in_scope=2, correct=2, out_of_scope=1)


def test_check_refuses_an_unknown_long_message_design(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = minerdesk(
        "faq", "check", str(tmp_path / "q.yaml"), "--long-messages", "whole,longest", env=cli_env
    )
    assert result.returncode == 2
    assert "expected some of whole, question_backs" in result.stderr


@pytest.mark.model
def test_check_lists_the_misses_under_each_row(cli_env: dict[str, str], tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    vague = "money options?"
    questions.write_text(
        CHECK_QUESTIONS + f'- {{text: "{vague}", entry_id: payment_methods}}\n', encoding="utf-8"
    )
    check = ("faq", "check", str(questions), "--targets", "0.95", "--misses")
    result = minerdesk(*check, "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    en, ru = map(json.loads, result.stdout.splitlines())
    assert set(ru) == CHECK_KEYS | {"target", "language", "misses"}
    # At 0.95 both are only offered, with the right entry among the choices.
    [en_miss], [ru_miss] = en["misses"], ru["misses"]
    assert {key: en_miss[key] for key in ("kind", "text", "expected", "got")} == {
        "kind": "suggested_right",
        "text": vague,
        "expected": "payment_methods",
        "got": "payment_methods",
    }
    assert {key: ru_miss[key] for key in ("kind", "text", "expected", "got")} == {
        "kind": "suggested_right",
        "text": "а гарантия на асик сколько?",
        "expected": "warranty_period",
        "got": "warranty_period",
    }
    assert 0 < en_miss["score"] < 1
    assert 0 < ru_miss["score"] < 1

    result = minerdesk(*check, env=cli_env)
    assert result.returncode == 0, result.stderr
    en_tally, en_line, ru_tally, ru_line = result.stdout.splitlines()
    assert en_tally.startswith("target 0.95, en: 3 in scope: correct 2")
    assert en_line == (
        f"  suggested_right       expected=payment_methods got=payment_methods "
        f"score={en_miss['score']:.3f}  {vague}"
    )
    assert ru_tally.startswith("target 0.95, ru: 2 in scope: correct 1")
    assert ru_line == (
        f"  suggested_right       expected=warranty_period got=warranty_period "
        f"score={ru_miss['score']:.3f}  а гарантия на асик сколько?"
    )


def test_check_refuses_a_target_outside_0_to_1(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = minerdesk(
        "faq", "check", str(tmp_path / "q.yaml"), "--targets", "0.8,1.5", env=cli_env
    )
    assert result.returncode == 2
    assert "each target must be between 0 and 1" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {text: hi}\n", "questions.yaml: line 1: expected `text` and `entry_id`"),
        ("- {text: hi, entry_id: null}\n- {text: yo, entry_id: 7}\n", "line 2: `entry_id` must be"),
        ("- {text: hi, entry_id: [x\n", "questions.yaml: line 2: expected ','"),
        ("- {text: hi, entry_id: no_such_entry}\n", "entry_id not in the KB: no_such_entry"),
        ("just words\n", "expected a YAML list of questions"),
    ],
)
def test_check_names_what_is_wrong_with_the_questions(
    cli_env: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(text, encoding="utf-8")
    result = minerdesk("faq", "check", str(questions), env=cli_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert result.stdout == ""


def test_db_upgrade_says_which_versions_it_went_through(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    env = cli_env | {"MINERDESK_STORAGE__URL": url}
    latest = len(SQLITE_MIGRATIONS)
    first = minerdesk("db", "upgrade", env=env)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == f"{url}: schema version 0 -> {latest} of {latest}\n"
    again = minerdesk("db", "upgrade", env=env)
    assert again.stdout == f"{url}: schema version {latest} of {latest}, nothing to do\n"


def test_an_unreachable_postgresql_is_one_line_without_the_password(
    cli_env: dict[str, str],
) -> None:
    env = cli_env | {"MINERDESK_STORAGE__URL": "postgresql://bot:s3cret@127.0.0.1:1/minerdesk"}
    result = minerdesk("stats", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "minerdesk: storage.url: cannot connect to postgresql://bot:***@127.0.0.1:1/minerdesk: "
    )
    assert len(result.stderr.splitlines()) == 1
    assert "s3cret" not in result.stderr


def test_db_copy_moves_a_shop_to_postgresql_that_every_command_then_uses(
    cli_env: dict[str, str], tmp_path: Path, postgres_databases: Databases
) -> None:
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    orders = tmp_path / "orders.jsonl"
    orders.write_text(order_record("A-1") + "\n" + order_record("A-2") + "\n", encoding="utf-8")
    imported = minerdesk(
        "orders", "import", str(orders), env=cli_env | {"MINERDESK_STORAGE__URL": shop}
    )
    assert imported.returncode == 0, imported.stderr
    empty = asyncio.run(postgres_databases.create(migrated=False))
    target = empty.replace("postgres@", "postgres:s3cret@")  # the test server trusts anyone
    masked = empty.replace("postgres@", "postgres:***@")
    try:
        copied = minerdesk("db", "copy", "--from", shop, "--to", target, env=cli_env)
        assert copied.returncode == 0, copied.stderr
        lines = copied.stdout.splitlines()
        assert "orders: 2" in lines
        assert lines[-1].endswith(f"copied from {shop} to {masked}; row counts match")

        again = minerdesk("db", "copy", "--from", shop, "--to", target, env=cli_env)
        assert again.returncode == 2
        assert again.stderr.startswith("minerdesk: db copy: the target is not empty (orders: 2,")
        on_postgres = cli_env | {"MINERDESK_STORAGE__URL": target}
        upgrade = minerdesk("db", "upgrade", env=on_postgres)
        latest = len(POSTGRES_MIGRATIONS)
        assert upgrade.stdout == f"{masked}: schema version {latest} of {latest}, nothing to do\n"
        reimported = minerdesk("orders", "import", str(orders), env=on_postgres)
        assert reimported.stdout.endswith(": 0 created, 0 updated, 2 unchanged, 0 problem(s)\n")
        for output in (copied, again, upgrade, reimported):
            assert "s3cret" not in output.stdout + output.stderr
    finally:
        asyncio.run(postgres_databases.drop(empty))
