"""Pydantic shapes of the installations domain (callback body, admin views and patches)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictInt

from app.core.settings import ProcoreEnvironment


def _printable(value: Any) -> Any:
    """Refuses control characters (NUL cannot even be stored in PostgreSQL text)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(text, str) and any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError("must not contain control characters")
    return value


Printable = AfterValidator(_printable)


class CallbackData(BaseModel):
    """The `data` object of an install callback."""

    model_config = ConfigDict(extra="ignore")

    company_id: StrictInt = Field(gt=0, lt=2**63, examples=[123])
    company_name: Annotated[str | None, Printable] = Field(
        default=None, max_length=255, examples=["Acme Builders"]
    )
    environment: ProcoreEnvironment | None = None
    client_id: Annotated[str | None, Printable] = Field(default=None, min_length=1, max_length=255)
    client_secret: Annotated[SecretStr | None, Printable] = Field(
        default=None, min_length=1, max_length=1024
    )


class CallbackEventIn(BaseModel):
    """A signed install callback (SPEC section 3)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "type": "installation.created",
                    "data": {
                        "company_id": 123,
                        "company_name": "Acme Builders",
                        "environment": "production",
                    },
                }
            ]
        },
    )

    type: Literal["installation.created", "installation.updated", "installation.deleted"]
    data: CallbackData


class CallbackAnswer(BaseModel):
    """What a callback is answered with."""

    company_id: int
    status: str


class RunSummary(BaseModel):
    """The short form of a run, shown with an installation."""

    run_id: str
    status: str
    trigger: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class CredentialsView(BaseModel):
    """Which credentials an installation uses; the secret is never shown."""

    source: Literal["installation", "app", "none"]
    client_id: str | None
    client_secret_set: bool


class InstallationView(BaseModel):
    """One installation as the admin API shows it (secrets redacted)."""

    company_id: int
    company_name: str | None
    status: str
    status_reason: str | None
    environment: str
    source: str
    schedule: str
    time_zone: str = Field(description="IANA time zone a cron schedule is read in")
    streams: list[str]
    paused: bool
    destination: str
    credentials: CredentialsView
    next_run_at: datetime | None
    missing_projects: list[int]
    health: dict[str, int]
    credentials_error: str | None
    created_at: datetime
    updated_at: datetime
    uninstalled_at: datetime | None
    last_run: RunSummary | None


class InstallationPatchAnswer(InstallationView):
    """The installation after a PATCH, with a new signing secret if the change made one."""

    signing_secret: str | None = Field(
        default=None,
        description="set only when this change gave an https:// destination a new signing "
        "secret; shown once, stored encrypted, never shown again",
    )


ROWS_IN_DESTINATION = (
    "live (not deleted) rows the destination holds for this stream, as the connector knows "
    "them: the ids of the last full listing plus those added since; null until a full listing "
    "of every unit has been recorded"
)
WRITTEN_TOTAL = (
    "record writes ever made for this stream: every insert or update counts, so a record "
    "updated three times counts three times; not a row count"
)


class StreamUnitState(BaseModel):
    """One unit of a stream: the company scope (`project_id` null) or one project."""

    project_id: int | None
    cursor: datetime | None
    last_success_at: datetime | None
    rows_in_destination: int | None = Field(description=ROWS_IN_DESTINATION)
    records_written_total: int = Field(description=WRITTEN_TOTAL)
    checkpoint: dict[str, Any] | None


class StreamStateView(BaseModel):
    """One stream of an installation over all its units, and each unit."""

    cursor: datetime | None = Field(description="the oldest cursor of its units")
    last_success_at: datetime | None = Field(description="the oldest last success of its units")
    records: int = Field(
        description="the stream's records as SPEC section 4 names them: its rows in the "
        "destination (rows_in_destination) once known, else records_written_total"
    )
    rows_in_destination: int | None = Field(description=ROWS_IN_DESTINATION)
    records_written_total: int = Field(description=WRITTEN_TOTAL)
    records_written_last_run: int | None = Field(
        description="records written by the installation's last run (null if it had none)"
    )
    projects: int = Field(description="project units (0 for a company-scoped stream)")
    units: list[StreamUnitState]


class InstallationDetail(InstallationView):
    """One installation with its per-stream state."""

    stream_state: dict[str, StreamStateView]


class InstallationPatch(BaseModel):
    """Fields an operator may change."""

    model_config = ConfigDict(extra="forbid")

    schedule: Annotated[str | None, Printable] = Field(
        default=None,
        max_length=128,
        examples=["every 15m", "0 2 * * *"],
        description="`every <n>m|h|d` (spread per company) or a 5-field cron line (fires at "
        "its slot in `time_zone`)",
    )
    time_zone: Annotated[str | None, Printable] = Field(
        default=None,
        max_length=64,
        examples=["UTC", "Europe/Berlin"],
        description="IANA time zone the cron line is read in (default UTC)",
    )
    streams: str | list[str] | None = Field(default=None, examples=["all", ["projects", "rfis"]])
    destination_url: Annotated[SecretStr | None, Printable] = Field(
        default=None, max_length=2048, description="write-only; answers show it redacted"
    )
    paused: StrictBool | None = None


class InstallationCreate(BaseModel):
    """An installation an operator asks for; the company must be in `/companies`."""

    model_config = ConfigDict(extra="forbid")

    company_id: StrictInt = Field(gt=0, lt=2**63, examples=[123])
    environment: ProcoreEnvironment | None = Field(
        default=None,
        description="Procore environment of the company (default: CONNECTOR_PROCORE_ENV)",
    )


class CredentialsIn(BaseModel):
    """Replacement DMSA credentials of an installation."""

    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[str, Printable] = Field(min_length=1, max_length=255)
    client_secret: Annotated[SecretStr, Printable] = Field(
        min_length=1, max_length=1024, description="write-only; never shown again"
    )


class UninstallAnswer(BaseModel):
    """What an admin uninstall did."""

    company_id: int
    status: str
    purged: bool
    deleted_rows: dict[str, int] = Field(
        default_factory=dict, description="rows deleted per destination table (purge only)"
    )


class SigningSecretIn(BaseModel):
    """An operator's known signing secret and how long the replaced one keeps signing."""

    model_config = ConfigDict(extra="forbid")

    signing_secret: Annotated[SecretStr | None, Printable] = Field(
        default=None,
        max_length=200,
        description="write-only: `whsec_` + base64 of 24 to 64 bytes; omitted, one is made",
    )
    grace_seconds: StrictInt = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="how long the replaced secret still signs beside the new one",
    )


class SigningSecretAnswer(BaseModel):
    """A new destination signing secret: shown once, stored encrypted, never shown again."""

    company_id: int
    signing_secret: str | None = Field(
        description="the secret made by the service, shown only here; null when the operator "
        "gave it"
    )
    previous_valid_until: datetime | None = Field(
        default=None, description="until when the replaced secret is sent as a second signature"
    )
