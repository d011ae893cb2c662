"""Tables of the installations domain: one row per Procore company, and seen callback ids."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class InstallationStatus(StrEnum):
    """Lifecycle of an installation."""

    active = "active"
    # Still listed by /companies, but answers 403 "App is not connected to this company":
    # credentials kept, no syncs, probed at a growing interval until it answers again.
    disconnected = "disconnected"
    uninstalled = "uninstalled"
    credentials_invalid = "credentials_invalid"


class Installation(Base):
    """A Procore company that installed the app, with its schedule, streams and destination."""

    __tablename__ = "installations"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    company_name: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(32), default="production")
    status: Mapped[str] = mapped_column(String(32), default=InstallationStatus.active, index=True)
    source: Mapped[str] = mapped_column(String(32), default="callback")
    client_id: Mapped[str | None] = mapped_column(String(255))
    schedule: Mapped[str] = mapped_column(String(128))
    streams: Mapped[str] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    missing_projects: Mapped[list[int]] = mapped_column(JSON, default=list)
    health: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    credentials_error: Mapped[str | None] = mapped_column(Text)
    # Why the status last changed to uninstalled (callback, left /companies, not connected).
    status_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    uninstalled_at: Mapped[datetime | None]
    # Disconnected: when to probe next, and the current probe interval (doubles up to hourly).
    probe_at: Mapped[datetime | None]
    probe_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    # Complete discovery listings in a row that did not list the company (uninstall at two).
    absent_listings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # webhook-timestamp of the last install callback applied; older ones are ignored.
    last_event_at: Mapped[datetime | None]
    # A (re-)install whose first full sync could not be queued yet (the old run was stopping).
    pending_full_sync: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped when the destination changes; a run started before fences itself at its next
    # checkpoint, so it can never advance cursors that belong to the old destination.
    destination_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def health_add(self, counts: dict[str, int]) -> None:
        """Adds Integration Health counts (401/403/404/429/missing header) to the running totals."""
        merged: dict[str, Any] = dict(self.health or {})
        for name, count in counts.items():
            merged[name] = int(merged.get(name, 0)) + count
        self.health = merged


class CallbackEvent(Base):
    """A processed install callback, so a repeated webhook-id is answered the same way."""

    __tablename__ = "callback_events"

    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    company_id: Mapped[int] = mapped_column(BigInteger)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class DiscoveryState(Base):
    """The one row describing discovery: the pass in progress and the last listing's verdict.

    Shared by every process, so only one of them lists `/companies` per interval and `/readyz`
    of any process shows a held listing.
    """

    __tablename__ = "discovery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pass_started_at: Mapped[datetime | None]
    pass_finished_at: Mapped[datetime | None]
    listed: Mapped[int] = mapped_column(Integer, default=0)
    # Why the last complete listing uninstalled nobody (empty, or dropped too many); None when
    # the last listing was normal.
    held_reason: Mapped[str | None] = mapped_column(String(255))
    held_since: Mapped[datetime | None]
