"""Settings: defaults, config.yaml, environment overrides, and one clear line when wrong."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("MINERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_defaults_without_a_file() -> None:
    settings = load_settings()
    assert settings.telegram.token is None
    assert settings.storage_url == "sqlite:///data/minerdesk.db"
    assert settings.faq.kb_path is None
    assert settings.faq.model == ""


def test_the_shipped_config_loads_and_anchors_paths_to_its_folder() -> None:
    settings = load_settings(ROOT / "config.yaml")
    assert settings.faq.kb_path == ROOT / "faq" / "kb"
    assert settings.data_dir == ROOT / "data"
    assert settings.company.placeholders()["support_email"]


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(tmp_path, "faq:\n  threads: 1\ntelegram:\n  api_base_url: http://a.test\n")
    monkeypatch.setenv("MINERDESK_TELEGRAM__TOKEN", "123:secret")
    monkeypatch.setenv("MINERDESK_FAQ__THREADS", "2")
    settings = load_settings(path)
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:secret"
    assert "123:secret" not in repr(settings)
    assert settings.faq.threads == 2
    assert str(settings.telegram.api_base_url) == "http://a.test/"


def test_storage_url_picks_the_database_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"storage:\n  url: sqlite:///{tmp_path}/x.db\n")
    assert load_settings(path).storage_url == f"sqlite:///{tmp_path}/x.db"


def test_storage_url_takes_postgresql_and_never_shows_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://bot:s3cret@db.internal:5432/minerdesk"
    monkeypatch.setenv("MINERDESK_STORAGE__URL", url)
    assert load_settings().storage_url == url
    monkeypatch.setenv("MINERDESK_STORAGE__URL", "postgresql://bot:s3cret@db.internal:5432/")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == (
        "storage.url: Value error, expected sqlite:///PATH of a file or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE; the database name is missing "
        "(got 'postgresql://bot:***@db.internal:5432/')"
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("faq:\n  threads: many\n", "faq.threads"),
        ("faq:\n  modle: x\n", "faq.modle"),
        ("storage:\n  url: postgres://db\n", "storage.url"),
        ("storage:\n  url: mysql://db/minerdesk\n", "storage.url"),
        ("storage:\n  url: postgresql://db:port/minerdesk\n", "storage.url"),
        ("storage:\n  url: sqlite:///\n", "storage.url"),
        ("storage:\n  url: sqlite:///data/\n", "storage.url"),
        ("telegram:\n  api_base_url: not a url\n", "telegram.api_base_url"),
        ("company:\n  support_email: nobody\n", "company.support_email"),
        ("telegram:\n  token: '1:abc'\n", "telegram.token"),
        ("faq:\n  target_unanswered: {ru: 1.5}\n", "faq.target_unanswered.ru"),
        ("faq:\n  target_unanswered: {fr: 0.8}\n", "faq.target_unanswered.fr"),
        ("telegram:\n  inbound_burst: 0\n", "telegram.inbound_burst"),
        ("telegram:\n  inbound_per_minute: 0\n", "telegram.inbound_per_minute"),
    ],
)
def test_a_wrong_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, text))
    message = str(raised.value)
    assert message.startswith(f"{key}:")
    assert "\n" not in message
    assert "1:abc" not in message


def test_a_language_s_caution_is_set_alone(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "faq:\n  target_unanswered: {ru: 0.9}\n"))
    # Only Russian's is overridden; FaqService keeps the shipped values for the others.
    assert settings.faq.target_unanswered == {"ru": 0.9}


def test_a_wrong_environment_value_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINERDESK_FAQ__THREADS", "-1")
    with pytest.raises(SettingsError, match=r"^faq\.threads:"):
        load_settings()


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(write_config(tmp_path, "faq: [\n"))


def test_the_webhook_secret_comes_from_the_environment_only(tmp_path: Path) -> None:
    path = write_config(tmp_path, "telegram:\n  webhook:\n    secret: abc\n")
    with pytest.raises(SettingsError, match="MINERDESK_TELEGRAM__WEBHOOK__SECRET"):
        load_settings(path)


def test_media_copies_are_off_until_a_folder_is_set(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.media.store_path is None
    assert settings.media.max_store_mb == 50
    assert settings.telegram.local_bot_api is False
    assert load_settings(ROOT / "config.yaml").media.store_path is None
    path = write_config(tmp_path, 'media:\n  store_path: ""\n')
    assert load_settings(path).media.store_path is None


def test_the_media_folder_is_anchored_to_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path,
        "media:\n  store_path: media\n  max_store_mb: 5\ntelegram:\n  local_bot_api: true\n",
    )
    settings = load_settings(path)
    assert settings.media.store_path == tmp_path / "conf" / "media"
    assert settings.media.max_store_mb == 5
    assert settings.telegram.local_bot_api is True
    monkeypatch.setenv("MINERDESK_MEDIA__STORE_PATH", "from-env")
    assert load_settings(path).media.store_path == Path("from-env")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("media:\n  max_store_mb: 0\n", "media.max_store_mb"),
        ("media:\n  store_dir: x\n", "media.store_dir"),
        ("telegram:\n  local_bot_api: maybe\n", "telegram.local_bot_api"),
    ],
)
def test_a_wrong_media_setting_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{key}:"):
        load_settings(write_config(tmp_path, text))


def test_the_digest_time_is_a_time_of_day(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(ROOT / "config.yaml").handoff.digest_time is None
    monkeypatch.setenv("MINERDESK_HANDOFF__DIGEST_TIME", "09:30")
    assert load_settings().handoff.digest_time == time(9, 30)
    monkeypatch.setenv("MINERDESK_HANDOFF__DIGEST_TIME", "25:00")
    with pytest.raises(SettingsError, match=r"^handoff\.digest_time: "):
        load_settings()


@pytest.mark.parametrize(
    "secret",
    ["", "short-secret", "x" * 31, "a" * 40 + " spaces " + "b" * 10, "ü" * 40, "x" * 257],
    ids=["empty", "short", "31 characters", "spaces", "not ASCII", "257 characters"],
)
def test_a_weak_or_malformed_webhook_secret_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("MINERDESK_TELEGRAM__WEBHOOK__SECRET", secret)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("telegram.webhook.secret: ")
    assert "\n" not in message
    assert "32 to 256 characters" in message
    if secret:
        assert secret not in message


def test_a_strong_webhook_secret_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Ab0_-" * 7
    monkeypatch.setenv("MINERDESK_TELEGRAM__WEBHOOK__SECRET", secret)
    configured = load_settings().telegram.webhook.secret
    assert configured is not None
    assert configured.get_secret_value() == secret
    monkeypatch.delenv("MINERDESK_TELEGRAM__WEBHOOK__SECRET")
    assert load_settings().telegram.webhook.secret is None  # derived from the token
