"""Pydantic shapes of sync runs in the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.runs.models import SyncRun
from app.runs.progress import RunProgress, StreamStats


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


class SyncRunSummary(BaseModel):
    """One run in a list (`GET /admin/v1/syncs`): outcome and totals, no per-stream detail."""

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
    error: str | None
    requests: int = Field(description="Procore API requests made by this run")
    records: int = Field(description="records written to the destination by this run")
    failed_streams: list[str] = Field(
        default_factory=list, description="streams that failed or were interrupted"
    )

    @classmethod
    def of(cls, run: SyncRun) -> SyncRunSummary:
        """Builds the summary from a run row."""
        return cls(**_common(run, run.progress.settle(run.status)))


class SyncRunView(SyncRunSummary):
    """One run with its per-stream figures (`GET /admin/v1/syncs/{run_id}`)."""

    cancel_requested: bool
    not_before: datetime | None = None
    streams: dict[str, StreamRunStats]
    missing_projects: list[int]

    @classmethod
    def of(cls, run: SyncRun) -> SyncRunView:
        """Builds the view from a run row."""
        progress = run.progress.settle(run.status)
        return cls(
            **_common(run, progress),
            cancel_requested=run.cancel_requested,
            not_before=run.not_before,
            streams={
                name: StreamRunStats(**value.model_dump(), records=value.records_written)
                for name, value in progress.streams.items()
            },
            missing_projects=progress.missing_projects,
        )


def _common(run: SyncRun, progress: RunProgress) -> dict[str, Any]:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "run_id": run.id,
        "company_id": run.company_id,
        "status": run.status,
        "trigger": run.trigger,
        "full_refresh": run.full_refresh,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": duration,
        "attempts": run.attempts,
        "error": run.error,
        "requests": progress.requests,
        "records": progress.records,
        "failed_streams": [
            name
            for name, stats in progress.streams.items()
            if stats.status in ("failed", "interrupted")
        ],
    }
