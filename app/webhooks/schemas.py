"""Pydantic shapes of the webhooks domain: Procore's delivery payload and the admin views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

Id = Annotated[StrictInt, Field(gt=0, lt=2**63)]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Delivery(BaseModel):
    """A webhook delivery in Procore's v2.0 payload format (procore-api.md section 8).

    Only what the connector uses is checked; `user_id`, `api_version` and `metadata` may be
    anything (metadata values may be null).
    """

    model_config = ConfigDict(extra="ignore")

    id: Id | None = None
    ulid: Annotated[StrictStr, Field(pattern=r"^[0-9A-Za-z]{26}$")] | None = None
    timestamp: Annotated[datetime, AfterValidator(_utc)]
    company_id: Id
    project_id: Id | None = None
    event_type: Literal["create", "update", "delete"]
    resource_name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    resource_id: Id

    @model_validator(mode="after")
    def _has_key(self) -> Delivery:
        if self.id is None and self.ulid is None:
            raise ValueError("an event needs its ulid or its id")
        return self

    @property
    def dedupe_key(self) -> str:
        """The key a redelivery repeats: the ulid, else the id."""
        return self.ulid.upper() if self.ulid else f"id:{self.id}"


class DeliveryAnswer(BaseModel):
    """What a delivery is answered with (always 200 once it is safe to forget)."""

    status: Literal["stored", "duplicate", "dropped"]
    reason: str | None = None


class WebhooksView(BaseModel):
    """An installation's webhook subscription."""

    enabled: bool = Field(description="CONNECTOR_PUBLIC_URL is set")
    status: str
    note: str | None
    hook_id: int | None
    destination_url: str | None
    covered_streams: dict[str, datetime] = Field(
        description="streams whose create/update/delete triggers exist, and since when"
    )
    uncovered_streams: list[str]
    checked_at: datetime | None
    next_check_at: datetime | None
    reconcile_interval_seconds: int
    repair_from: datetime | None = Field(
        description="discarded deliveries were found: units known complete only before this "
        "time are read again"
    )
    open_events: int
    oldest_open_event_at: datetime | None


class BudgetView(BaseModel):
    """An installation's Procore request budget this hour."""

    hourly_limit: int
    limit_source: str = Field(description="X-Rate-Limit-Limit, or assumed")
    share: float
    planned: int = Field(description="requests the service plans to use per hour")
    used_last_hour: int
    remaining: int
    reconciled_units_last_hour: int


class StreamFreshness(BaseModel):
    """How fresh one stream of an installation is."""

    complete_until: datetime | None = Field(
        description="every unit is known complete up to this time (its stalest unit's read); "
        "null while a unit was never read"
    )
    age_seconds: float | None
    units: int
    units_never_read: int
    covered_by_webhooks: bool
    open_events: int
    oldest_open_event_at: datetime | None


class FreshnessView(BaseModel):
    """`GET /admin/v1/installations/{id}/freshness`."""

    company_id: int
    streams: dict[str, StreamFreshness]
    webhooks: WebhooksView
    budget: BudgetView
    last_deferred_units: int = Field(description="units the latest run left for later")
    last_deferred_reason: str | None


class WebhookSettingsIn(BaseModel):
    """Per-installation webhook settings an operator may change."""

    model_config = ConfigDict(extra="forbid")

    reconcile_interval_seconds: StrictInt | None = Field(
        default=None,
        ge=60,
        le=90 * 86_400,
        description="how often units of webhook-covered streams are read in full "
        "(null: CONNECTOR_RECONCILE_INTERVAL_SECONDS)",
    )


class SecretRotated(BaseModel):
    """A rotated webhook secret (never shown: only Procore needs it)."""

    company_id: int
    previous_valid_until: datetime
    status: Literal["queued"] = "queued"


Outcome = Literal["applied", "unmatched", "gave_up", "closed"]
