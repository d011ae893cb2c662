"""Tables of the run ledger: run records (the queue) and per-stream cursors and checkpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow
from app.runs.progress import Checkpoint, RunProgress, dump_checkpoint, load_checkpoint


class RunStatus(StrEnum):
    """Lifecycle of a sync run (SPEC section 4)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE_STATUSES = (RunStatus.queued, RunStatus.running)


class SyncRun(Base):
    """One sync of one installation; also the queue entry workers claim with a lease."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_company_status", "company_id", "status"),
        Index("ix_sync_runs_status_queued_at", "status", "queued_at"),
        # At most one queued-or-running run per installation, enforced by the database itself.
        Index(
            "uq_sync_runs_active_company",
            "company_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.queued)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    full_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # A run paused by a spent Procore rate-limit window is not claimed before this time.
    not_before: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # RunProgress in its JSON form; read and written through `progress`.
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    @property
    def progress(self) -> RunProgress:
        """The run's typed progress."""
        return RunProgress.load(self.stats)


class StreamState(Base):
    """Cursor and checkpoint of one stream of one installation (project 0 = company scope)."""

    __tablename__ = "stream_states"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cursor: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_full_at: Mapped[datetime | None]
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    # A Checkpoint in its JSON form; read and written through `saved_checkpoint`.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    known_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # The unit answered 403/404 (a tool disabled in that project): not asked again before this.
    skip_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def saved_checkpoint(self) -> Checkpoint | None:
        """The unit's typed checkpoint, if any."""
        return load_checkpoint(self.checkpoint)

    @saved_checkpoint.setter
    def saved_checkpoint(self, value: Checkpoint | None) -> None:
        self.checkpoint = None if value is None else dump_checkpoint(value)
