"""The service's one settings object, read once from the environment (and an optional .env)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.core.admin_tokens import AdminToken, parse_admin_tokens

ENV_PREFIX = "CONNECTOR_"
DEFAULT_DATA_DIR = Path("data")


class ProcoreEnvironment(StrEnum):
    """Procore deployment a company lives in; picks the login and API hosts."""

    production = "production"
    sandbox = "sandbox"
    monthly_sandbox = "monthly_sandbox"
    federal = "federal"


PROCORE_HOSTS: dict[ProcoreEnvironment, tuple[str, str]] = {
    # environment: (login base URL, API base URL)
    ProcoreEnvironment.production: ("https://login.procore.com", "https://api.procore.com"),
    ProcoreEnvironment.sandbox: (
        "https://login-sandbox.procore.com",
        "https://sandbox.procore.com",
    ),
    ProcoreEnvironment.monthly_sandbox: (
        "https://login-sandbox-monthly.procore.com",
        "https://api-monthly.procore.com",
    ),
    ProcoreEnvironment.federal: ("https://login.procoregov.com", "https://api.procoregov.com"),
}

# Which app credentials an environment takes: Procore issues a production pair (customers'
# monthly and on-demand sandboxes use it too), a developer-sandbox pair, and federal apps have
# their own (procore/documentation: oauth/oauth_keys.md, platform_concepts/
# development_environments.md, federal_zone_overview.md).
CREDENTIAL_FAMILY: dict[ProcoreEnvironment, str] = {
    ProcoreEnvironment.production: "production",
    ProcoreEnvironment.monthly_sandbox: "production",
    ProcoreEnvironment.sandbox: "sandbox",
    ProcoreEnvironment.federal: "federal",
}

KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class EncryptionKey:
    """One named 256-bit key of the keyring; the bytes never appear in repr()."""

    __slots__ = ("key", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        self.key_id = key_id
        self.key = key

    def __repr__(self) -> str:
        return f"EncryptionKey(key_id={self.key_id!r})"


def parse_encryption_keys(raw: str) -> list[EncryptionKey]:
    """Parses `key_id:base64url(32 bytes)[,...]`; raises ValueError without echoing key material."""
    keys: list[EncryptionKey] = []
    for position, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise ValueError(f"entry {position + 1} must look like key_id:base64url(32 bytes)")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not valid base64url") from None
        if len(key) != 32:
            raise ValueError(f"key {key_id!r} must decode to 32 bytes, got {len(key)}")
        if any(k.key_id == key_id for k in keys):
            raise ValueError(f"key id {key_id!r} appears twice")
        keys.append(EncryptionKey(key_id, key))
    return keys


def _check_whsec(value: SecretStr | None) -> SecretStr | None:
    """A Standard Webhooks secret: `whsec_` + base64 of at least 16 bytes (None when empty)."""
    if value is None or not value.get_secret_value():
        return None
    body = value.get_secret_value().removeprefix("whsec_")
    try:
        decoded = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by base64") from None
    if len(decoded) < 16:
        raise ValueError("must decode to at least 16 bytes")
    return value


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service; nothing else reads os.environ."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DATA_DIR}/connector.db")
    procore_env: ProcoreEnvironment = ProcoreEnvironment.production
    procore_api_url: str | None = None
    procore_login_url: str | None = None
    encryption_keys: SecretStr | None = None
    callback_secret: SecretStr | None = None
    admin_tokens: Annotated[list[AdminToken], NoDecode] = Field(default_factory=list)
    client_id: str | None = None
    client_secret: SecretStr | None = None
    destination_url: SecretStr = SecretStr(f"sqlite:///{DEFAULT_DATA_DIR}/destination.db")
    schedule: str = "every 1h"
    streams: str = "all"

    # Operational knobs beyond the SPEC's table; all have production defaults.
    mode: Literal["production", "demo", "test"] = "production"
    per_page: int = Field(default=1000, ge=1, le=10_000)
    # Longest the client waits in place for a rate-limit reset or retries; beyond it a run pauses
    # (checkpoints kept) and resumes from the queue after the reset.
    procore_max_wait_seconds: float = Field(default=300, ge=1, le=3600)
    discovery_interval_seconds: int = Field(default=60, ge=0)
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    project_concurrency: int = Field(default=4, ge=1, le=64)
    lease_seconds: int = Field(default=120, ge=2)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    max_run_attempts: int = Field(default=5, ge=1)
    shutdown_grace_seconds: float = Field(default=60.0, ge=0)
    run_slice_seconds: float = Field(default=1800.0, ge=0)
    lookback_seconds: int = Field(default=300, ge=0)
    history_days: int = Field(default=365, ge=1, le=36500)
    daily_log_lookback_days: int = Field(default=7, ge=0, le=365)
    full_listing_interval_seconds: int = Field(default=86_400, ge=0)
    delete_guard_ratio: float = Field(default=0.5, ge=0, le=1)
    # Run history: finished runs older than the days are deleted, but never the newest `keep`
    # of an installation (0 days = keep every run forever).
    run_retention_days: int = Field(default=90, ge=0, le=36500)
    run_retention_keep: int = Field(default=100, ge=1, le=1_000_000)
    run_retention_interval_seconds: int = Field(default=3600, ge=10)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Where destinations may reach (SPEC sections 2 and 6); app.config checks the default
    # destination against them.
    destination_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list
    )
    destination_root: Path = DEFAULT_DATA_DIR
    # App credentials per credential family (docs/decisions/0013-discovery.md): Procore issues
    # one pair for production (also used by monthly sandboxes), one for the developer sandbox,
    # and federal apps have their own. CONNECTOR_CLIENT_ID/SECRET fill the family of
    # CONNECTOR_PROCORE_ENV; these serve installations in the other environments.
    production_client_id: str | None = None
    production_client_secret: SecretStr | None = None
    sandbox_client_id: str | None = None
    sandbox_client_secret: SecretStr | None = None
    federal_client_id: str | None = None
    federal_client_secret: SecretStr | None = None
    # The console's sessions: signed-in for at most this long, and idle for at most this long.
    console_session_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 86_400)
    console_idle_seconds: int = Field(default=1800, ge=60, le=7 * 86_400)
    # Alerts (app/alerts): a Standard Webhooks-signed JSON webhook and/or a Slack-compatible
    # incoming webhook; each incident is sent once. Off when no target is set.
    alert_webhook_url: SecretStr | None = None
    alert_webhook_secret: SecretStr | None = None
    alert_slack_webhook_url: SecretStr | None = None
    alert_failure_threshold: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _check_credential_pairs(self) -> Settings:
        for prefix in ("", "production_", "sandbox_", "federal_"):
            has_id = bool(getattr(self, f"{prefix}client_id"))
            secret = getattr(self, f"{prefix}client_secret")
            has_secret = secret is not None and bool(secret.get_secret_value())
            if has_id != has_secret:
                missing = "client_secret" if has_id else "client_id"
                raise ValueError(
                    f"{ENV_PREFIX}{prefix.upper()}{missing.upper()} is not set: set both "
                    "halves of the pair, or neither"
                )
        return self

    # Webhooks and the request budget (SPEC section 8; docs/decisions/0019-webhooks.md).
    public_url: str | None = None
    webhook_namespace: str = Field(default="procore-dmsa-connector", pattern=r"^[a-z0-9-]{1,64}$")
    webhook_coalesce_seconds: float = Field(default=2.0, ge=0, le=300)
    webhook_check_seconds: float = Field(default=30.0, ge=0.1, le=86_400)
    webhook_resubscribe_seconds: int = Field(default=3600, ge=1)
    webhook_max_body_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    webhook_secret_grace_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)
    webhook_inbox_retention_seconds: int = Field(default=7 * 86_400, ge=86_400)
    webhook_yield_after_seconds: float = Field(default=2.0, ge=0)
    # Every covered unit is read in full once per interval: 48 h keeps a quiet hour of a
    # 300-project company near 6% of its budget (docs/decisions/0019-webhooks.md).
    reconcile_interval_seconds: int = Field(default=172_800, ge=60)
    request_budget_share: float = Field(default=0.8, gt=0, le=1)
    procore_hourly_limit: int = Field(default=3600, ge=1)
    metrics_company_labels: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("admin_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        entries = _csv(value)
        if isinstance(entries, list) and all(isinstance(e, str | SecretStr) for e in entries):
            raw = [e.get_secret_value() if isinstance(e, SecretStr) else e for e in entries]
            return parse_admin_tokens([e.strip() for e in raw if e.strip()])
        return entries

    @field_validator("alert_webhook_url", "alert_slack_webhook_url")
    @classmethod
    def _check_alert_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not re.match(r"^https?://[^/\s]+", value.get_secret_value()):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("alert_webhook_secret")
    @classmethod
    def _check_alert_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            return _check_whsec(value)
        if info.data.get("alert_webhook_url") is not None:
            raise ValueError("is needed to sign what CONNECTOR_ALERT_WEBHOOK_URL receives")
        return None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a valid SQLAlchemy URL (e.g. sqlite:///data/connector.db)"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:// and postgresql:// databases are supported")
        return value

    @field_validator("procore_api_url", "procore_login_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.procore.com")
        return value.rstrip("/")

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_encryption_keys(value.get_secret_value())
            return value
        return None

    @field_validator("callback_secret")
    @classmethod
    def _check_callback_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_whsec(value)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", text):
            raise ValueError(
                "must be the service's public base URL, e.g. https://connector.example.com "
                "(no query or fragment)"
            )
        if info.data.get("mode") == "production" and not text.startswith("https://"):
            raise ValueError(
                "must be https:// in production: Procore sends the webhook secret in a header"
            )
        return text

    @field_validator("destination_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        return _csv(value)

    @cached_property
    def keyring(self) -> list[EncryptionKey]:
        """Parsed encryption keys, primary first (empty when none are configured)."""
        if self.encryption_keys is None:
            return []
        return parse_encryption_keys(self.encryption_keys.get_secret_value())

    def hosts_for(self, environment: ProcoreEnvironment) -> tuple[str, str]:
        """Login and API base URLs of one Procore environment (the URL overrides win)."""
        login, api = PROCORE_HOSTS[environment]
        return self.procore_login_url or login, self.procore_api_url or api

    def app_credentials_for(self, environment: ProcoreEnvironment) -> tuple[str, SecretStr] | None:
        """The app's own client id and secret valid in an environment, or None if not given."""
        family = CREDENTIAL_FAMILY[environment]
        client_id = getattr(self, f"{family}_client_id")
        secret = getattr(self, f"{family}_client_secret")
        if client_id and secret is not None:
            return client_id, secret
        if CREDENTIAL_FAMILY[self.procore_env] == family and self.client_id and self.client_secret:
            return self.client_id, self.client_secret
        return None

    @property
    def login_url(self) -> str:
        """Base URL of Procore's OAuth server for this environment."""
        return self.procore_login_url or PROCORE_HOSTS[self.procore_env][0]

    @property
    def api_url(self) -> str:
        """Base URL of Procore's REST API for this environment."""
        return self.procore_api_url or PROCORE_HOSTS[self.procore_env][1]

    def history_start_date(self, today: date) -> date:
        """First day a backfill of date-windowed streams (daily logs) reads."""
        return today - timedelta(days=self.history_days)

    @property
    def is_production(self) -> bool:
        """True outside demo and test mode."""
        return self.mode == "production"


def sqlite_paths(database_url: str) -> list[Path]:
    """The file of a SQLite database URL (none for PostgreSQL), which no destination may be."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return [Path(url.database)]
    return []


class SettingsError(Exception):
    """Start-up configuration problem, rendered as one line that names the variable."""


def read_settings(**overrides: Any) -> Settings:
    """Reads the settings once; turns a validation failure into a one-line SettingsError.

    Values written in a domain's own grammar (schedule, streams, destination URL) are checked
    by the composition root (`app/config.py`), which knows those domains; core does not.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a check across fields names its variables itself
            raise SettingsError(message) from None
        field = str(first["loc"][0])
        raise SettingsError(f"{ENV_PREFIX}{field.upper()}: {message}") from None
