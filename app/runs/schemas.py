"""Pydantic shapes of sync runs in the admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.runs.models import SyncRun
from app.runs.progress import StreamStats


class SyncRequest(BaseModel):
    """Body of `POST .../syncs` (optional)."""

    model_config = ConfigDict(extra="forbid")

    full_refresh: bool = False


class SyncQueued(BaseModel):
    """Answer to a queued sync."""

    run_id: str
    status: str


class StreamRunStats(StreamStats):
    """Per-stream figures of one run (`records` is `records_written`, for short)."""

    records: int = 0


class SyncRunView(BaseModel):
    """One run as the admin API shows it."""

    run_id: str
    company_id: int
    status: str
    trigger: str
    full_refresh: bool
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    attempts: int
    cancel_requested: bool
    not_before: datetime | None = None
    error: str | None
    requests: int
    records: int
    streams: dict[str, StreamRunStats]
    missing_projects: list[int]

    @classmethod
    def of(cls, run: SyncRun) -> SyncRunView:
        """Builds the view from a run row."""
        progress = run.progress
        duration = None
        if run.started_at and run.finished_at:
            duration = round((run.finished_at - run.started_at).total_seconds(), 3)
        return cls(
            run_id=run.id,
            company_id=run.company_id,
            status=run.status,
            trigger=run.trigger,
            full_refresh=run.full_refresh,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=duration,
            attempts=run.attempts,
            cancel_requested=run.cancel_requested,
            not_before=run.not_before,
            error=run.error,
            requests=progress.requests,
            records=progress.records,
            streams={
                name: StreamRunStats(**value.model_dump(), records=value.records_written)
                for name, value in progress.streams.items()
            },
            missing_projects=progress.missing_projects,
        )
