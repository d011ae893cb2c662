"""Tables of the webhooks domain: subscriptions, the event inbox, and request budgets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

# An autoincrementing 64-bit key that SQLite also numbers by itself.
EventKey = BigInteger().with_variant(Integer(), "sqlite")


class SubscriptionStatus(StrEnum):
    """Where an installation's webhook subscription stands."""

    pending = "pending"  # not reconciled with Procore yet
    active = "active"  # the hook and its triggers exist: events arrive
    no_permission = "no_permission"  # the app lacks the Webhooks API permission: polling only
    error = "error"  # the last reconcile failed; retried, polling meanwhile
    removed = "removed"  # uninstalled, or webhooks switched off: the hook is gone


class WebhookSubscription(Base):
    """One installation's company-scoped hook in Procore and what it covers."""

    __tablename__ = "webhook_subscriptions"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(32), default=SubscriptionStatus.pending)
    note: Mapped[str | None] = mapped_column(Text)
    hook_id: Mapped[int | None] = mapped_column(BigInteger)
    namespace: Mapped[str | None] = mapped_column(String(64))
    destination_url: Mapped[str | None] = mapped_column(Text)
    # The installation's stream selection when last reconciled (a change reconciles again).
    streams: Mapped[str | None] = mapped_column(Text)
    # stream -> since when its create/update/delete triggers exist (ISO 8601 UTC).
    covered: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    uncovered: Mapped[list[str]] = mapped_column(JSON, default=list)
    triggers: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    # The secret was replaced and Procore's copy of the hook not yet updated.
    secret_changed: Mapped[bool] = mapped_column(default=False)
    previous_secret_until: Mapped[datetime | None]
    reconcile_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    # Discarded deliveries found (Procore gave up on them): units older than this are re-read.
    repair_from: Mapped[datetime | None]
    last_discarded_id: Mapped[int | None] = mapped_column(BigInteger)
    # One process reconciles a company at a time: it holds this lease meanwhile.
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """One delivered event, stored before it is acknowledged; applied by a run later.

    Pending: no run and not applied; assigned: a run reads its unit; done: `applied_at` set.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(
            "ix_webhook_events_open",
            "company_id",
            "run_id",
            sqlite_where=text("applied_at IS NULL"),
            postgresql_where=text("applied_at IS NULL"),
        ),
        Index("ix_webhook_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(EventKey, primary_key=True, autoincrement=True)
    # The event's ulid (Procore's dedupe key), or `id:<id>` when it has none.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    company_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    stream: Mapped[str] = mapped_column(String(64))
    resource_name: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))


class RequestBudget(Base):
    """The hourly Procore request limit of an installation, as learned or assumed."""

    __tablename__ = "request_budgets"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hourly_limit: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))  # X-Rate-Limit-Limit, or assumed
    learned_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last run deferred units: a continuation is queued once the budget allows.
    deferred_run_id: Mapped[str | None] = mapped_column(String(36))


class RequestUsage(Base):
    """Procore requests (and reconciled units) of an installation, per minute."""

    __tablename__ = "request_usage"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    reconciled: Mapped[int] = mapped_column(Integer, default=0)
