"""The `whatsapp` settings: off by default, secrets from the environment only, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent.parent
SECRETS = {
    "MINERDESK_WHATSAPP__ACCESS_TOKEN": "EAAG-secret-token",
    "MINERDESK_WHATSAPP__APP_SECRET": "app-secret-value",
    "MINERDESK_WHATSAPP__VERIFY_TOKEN": "verify-token-value",
}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_whatsapp_is_off_by_default_and_in_the_shipped_config() -> None:
    for settings in (load_settings(), load_settings(ROOT / "config.yaml")):
        whatsapp = settings.whatsapp
        assert not whatsapp.enabled
        assert str(whatsapp.api_base_url) == "https://graph.facebook.com/"
        assert whatsapp.api_version == "v23.0"
        assert whatsapp.webhook.path == "/whatsapp/webhook"
        assert whatsapp.templates == {}


def test_the_channel_is_on_with_a_phone_number_id_and_the_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = write_config(
        tmp_path,
        "whatsapp:\n  phone_number_id: 106540352242922\n  api_version: v21.0\n"
        "  templates:\n    order_update: {name: order_update, language: en}\n"
        "    staff_reply: {name: support_reply}\n",
    )
    whatsapp = load_settings(path).whatsapp
    assert whatsapp.enabled
    assert whatsapp.phone_number_id == "106540352242922"  # YAML's number kept as digits
    assert whatsapp.access_token is not None
    assert whatsapp.access_token.get_secret_value() == "EAAG-secret-token"
    assert whatsapp.templates["order_update"].language == "en"
    assert whatsapp.templates["staff_reply"].language == "en_US"


@pytest.mark.parametrize("key", ["access_token", "app_secret", "verify_token"])
def test_secrets_are_refused_in_the_file(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, f"whatsapp:\n  {key}: leaked-value\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message == (
        f"whatsapp.{key}: must not be in the config file; set MINERDESK_WHATSAPP__{key.upper()}"
    )


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_each_secret_is_required_once_the_channel_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    for name, value in SECRETS.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    path = write_config(tmp_path, "whatsapp:\n  phone_number_id: '106540352242922'\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    key = missing.removeprefix("MINERDESK_WHATSAPP__").lower()
    assert message.startswith(f"whatsapp.{key}: ")
    assert missing in message
    assert "\n" not in message
    for value in SECRETS.values():
        assert value not in message


def test_an_empty_secret_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MINERDESK_WHATSAPP__PHONE_NUMBER_ID", "106540352242922")
    monkeypatch.setenv("MINERDESK_WHATSAPP__APP_SECRET", " ")
    with pytest.raises(SettingsError, match=r"^whatsapp\.app_secret: .*required"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("whatsapp:\n  phone_number_id: '+1 555 0100'\n", "whatsapp.phone_number_id"),
        ("whatsapp:\n  api_version: '21.0'\n", "whatsapp.api_version"),
        ("whatsapp:\n  api_base_url: not a url\n", "whatsapp.api_base_url"),
        ("whatsapp:\n  webhook: {path: whatsapp}\n", "whatsapp.webhook.path"),
        ("whatsapp:\n  webhook: {listen_port: 0}\n", "whatsapp.webhook.listen_port"),
        ("whatsapp:\n  templates: {order: {name: x}}\n", "whatsapp.templates.order"),
        (
            "whatsapp:\n  templates: {order_update: {name: Order-Update}}\n",
            "whatsapp.templates.order_update.name",
        ),
        (
            "whatsapp:\n  templates: {staff_reply: {name: x, language: english}}\n",
            "whatsapp.templates.staff_reply.language",
        ),
        (
            "whatsapp:\n  templates: {staff_reply: {language: en}}\n",
            "whatsapp.templates.staff_reply.name",
        ),
        ("whatsapp:\n  phone_id: '1'\n", "whatsapp.phone_id"),
    ],
)
def test_a_wrong_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write_config(tmp_path, text))
    assert str(caught.value).startswith(f"{key}: ")
