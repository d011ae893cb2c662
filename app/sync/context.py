"""What one sync run carries around: its identity, clients, window and running statistics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from app.core.runtime import Runtime
from app.destinations import Destination, WriteResult
from app.procore import ProcoreCredentials, RequestStats


class RunCancelled(Exception):
    """The run was asked to stop (cancel, lease lost, shutdown); checkpoints are kept."""


MAX_LISTED_QUARANTINED = 20


class QuarantinedNote(BaseModel):
    """A record the destination kept aside (quarantined) instead of storing it, and why."""

    id: int
    reason: str


class StreamStats(BaseModel):
    """Per-stream figures of a run: kept with the run record and shown by the admin API."""

    status: str = "pending"
    records_read: int = 0
    records_written: int = 0
    records_deleted: int = 0
    records_skipped: int = 0
    requests: int = 0
    units_done: int = 0
    units_total: int = 0
    duration_seconds: float = 0.0
    error: str | None = None
    delete_guard: str | None = None
    note: str | None = None
    quarantined: list[QuarantinedNote] = Field(
        default_factory=list, description=f"the first {MAX_LISTED_QUARANTINED} skipped records"
    )
    _started: float | None = PrivateAttr(default=None)

    def count_write(self, result: WriteResult) -> None:
        """Adds a destination write: records written, and quarantined ones as skipped."""
        self.records_written += result.written
        self.records_skipped += len(result.quarantined)
        room = MAX_LISTED_QUARANTINED - len(self.quarantined)
        self.quarantined.extend(
            QuarantinedNote(id=item.id, reason=item.reason) for item in result.quarantined[:room]
        )

    def start(self) -> None:
        """Marks the stream as running."""
        self.status = "running"
        self._started = time.monotonic()

    def stop(self, status: str, error: str | None = None) -> None:
        """Marks the stream as finished."""
        self.status = status
        self.error = error
        if self._started is not None:
            self.duration_seconds = round(time.monotonic() - self._started, 3)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the run record."""
        return self.model_dump()


@dataclass
class PendingDelete:
    """Ids found deleted in one unit; applied only when the whole run succeeds."""

    stream: str
    project_id: int | None
    ids: list[int]
    previous_count: int
    new_known_ids: list[int] | None


@dataclass
class RunContext:
    """One run of one installation."""

    rt: Runtime
    run_id: str
    company_id: int
    creds: ProcoreCredentials
    destination: Destination
    window_end: datetime
    full_refresh: bool
    streams: list[str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stats: dict[str, StreamStats] = field(default_factory=dict)
    requests: RequestStats = field(default_factory=RequestStats)
    pending_deletes: list[PendingDelete] = field(default_factory=list)
    project_ids: list[int] = field(default_factory=list)
    missing_projects: list[int] = field(default_factory=list)

    def restore(self, previous: dict[str, Any]) -> None:
        """Carries the figures of earlier attempts of this run into a resumed attempt."""
        self.requests.requests = int(previous.get("requests", 0))
        self.requests.token_requests = int(previous.get("token_requests", 0))
        for name, values in (previous.get("streams") or {}).items():
            if isinstance(values, dict):
                self.stats[name] = StreamStats.model_validate(values)

    def check(self) -> None:
        """Raises RunCancelled when the run must stop (called between pages)."""
        if self.stop.is_set():
            raise RunCancelled("the run was asked to stop")

    def stream_stats(self, name: str) -> StreamStats:
        """The statistics entry of a stream, created on first use."""
        return self.stats.setdefault(name, StreamStats())

    def snapshot(self) -> dict[str, Any]:
        """JSON form of the run's progress."""
        return {
            "window_end": self.window_end.isoformat(),
            "requests": self.requests.requests,
            "token_requests": self.requests.token_requests,
            "records": sum(s.records_written for s in self.stats.values()),
            "streams": {name: stats.as_dict() for name, stats in self.stats.items()},
            "missing_projects": self.missing_projects,
        }
