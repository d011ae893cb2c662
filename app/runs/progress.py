"""Typed progress of a run: per-stream figures, checkpoints and found deletes.

What is stored as JSON (a run's `stats`, a stream unit's `checkpoint`) is written with
`model_dump(mode="json")` and read with `model_validate`, so the protocol between the engine
that writes it and the workers and API that read it is checked by mypy, not by hope.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, model_validator

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
    units_deferred: int = 0
    duration_seconds: float = 0.0
    error: str | None = None
    delete_guard: str | None = None
    note: str | None = None
    quarantined: list[QuarantinedNote] = Field(
        default_factory=list,
        description=f"the first {MAX_LISTED_QUARANTINED} records skipped by the destination",
    )
    _started: float | None = PrivateAttr(default=None)

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


class TargetOutcome(BaseModel):
    """What a run did with the units webhook events asked for (keys: `stream:project`)."""

    read: list[str] = Field(default_factory=list, description="units read: their changes landed")
    deletes: list[str] = Field(default_factory=list, description="units whose deletes landed")
    deferred: list[str] = Field(default_factory=list, description="units left for a later run")
    unmatched: dict[str, list[int]] = Field(
        default_factory=dict, description="changed ids a unit's read did not return"
    )
    written_at: dict[str, datetime] = Field(default_factory=dict)


class RunProgress(BaseModel):
    """What a run has done so far; stored on the run row after every checkpoint."""

    window_end: datetime | None = None
    requests: int = 0
    token_requests: int = 0
    records: int = 0
    streams: dict[str, StreamStats] = Field(default_factory=dict)
    missing_projects: list[int] = Field(default_factory=list)
    targets: TargetOutcome = Field(default_factory=TargetOutcome)
    # Units read beyond the targets of streams webhooks cover (the rolling reconciliation).
    reconciled_units: int = 0
    # Units left for a later run: the request budget was spent, or webhook events were waiting.
    deferred_units: int = 0
    deferred_reason: str | None = None

    def settle(self, run_status: str) -> RunProgress:
        """Gives every unfinished stream of an ended run a final status, so no stream of a
        failed, cancelled or paused run is ever shown as `running` (or `pending`)."""
        if run_status == "running":
            return self
        ended = {
            "failed": ("interrupted", "not_started"),
            "cancelled": ("cancelled", "not_started"),
            "queued": ("paused", "pending"),
            "succeeded": ("interrupted", "not_started"),
        }.get(run_status, ("interrupted", "not_started"))
        for stats in self.streams.values():
            if stats.status == "running":
                stats.status = ended[0]
                if ended[0] == "interrupted" and stats.error is None:
                    stats.error = "the run ended before this stream finished"
            elif stats.status == "pending" and run_status != "queued":
                stats.status = ended[1]
        return self

    @classmethod
    def load(cls, stored: dict[str, Any] | None) -> RunProgress:
        """Reads the stored JSON form (an empty or missing value is a fresh run)."""
        return cls.model_validate(stored or {})

    def dump(self) -> dict[str, Any]:
        """The JSON form stored on the run row."""
        return self.model_dump(mode="json")


class PendingDelete(BaseModel):
    """Ids found deleted in one unit; applied at the run's end if its stream did not fail."""

    stream: str
    project_id: int | None
    ids: list[int]
    previous_count: int
    new_known_ids: list[int] | None


class _RunCheckpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str


class ListingCheckpoint(_RunCheckpoint):
    """A listing read up to `next_page` with these exact parameters."""

    kind: Literal["listing"] = "listing"
    full: bool
    params: dict[str, Any]
    next_page: int
    path_index: int = 0  # which of the stream's listings (main, then extra ones)
    per_page: int | None = None  # the page size the listing was read with
    # A full listing's ids read so far (up to MAX_CARRIED_IDS), so a listing resumed after a
    # pause or a crash still decides deletes; None: the resumed listing decides none.
    seen: list[int] | None = None
    # The listing at path_index was read to its last page: a resume goes on after it (to the
    # next listing, or to deletes) instead of asking for a page past the end.
    path_done: bool = False


class DateWindowCheckpoint(_RunCheckpoint):
    """Date windows (daily logs) read up to the day before `window_start`."""

    kind: Literal["date_window"] = "date_window"
    window_start: date


class ChildrenCheckpoint(_RunCheckpoint):
    """A child stream whose listed parents in `parents_done` are read."""

    kind: Literal["children"] = "children"
    parents_done: list[int]


class DoneCheckpoint(_RunCheckpoint):
    """The unit finished in this run; deletes it found wait for the run's end."""

    kind: Literal["done"] = "done"
    pending: PendingDelete | None = None


Checkpoint = Annotated[
    ListingCheckpoint | DateWindowCheckpoint | ChildrenCheckpoint | DoneCheckpoint,
    Field(discriminator="kind"),
]


class _StoredCheckpoint(BaseModel):
    checkpoint: Checkpoint

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, value: Any) -> Any:
        """Checkpoints written before they were typed carry no `kind`: infer it."""
        inner = value.get("checkpoint") if isinstance(value, dict) else None
        if isinstance(inner, dict) and "kind" not in inner:
            if inner.get("done"):
                kind = "done"
            elif "window_start" in inner:
                kind = "date_window"
            elif "parents_done" in inner:
                kind = "children"
            else:
                kind = "listing"
            value = {"checkpoint": {**inner, "kind": kind}}
        return value


_STORED = TypeAdapter(_StoredCheckpoint)


def load_checkpoint(stored: dict[str, Any] | None) -> Checkpoint | None:
    """The typed checkpoint of a stored JSON value (None when there is none)."""
    if not stored:
        return None
    return _STORED.validate_python({"checkpoint": stored}).checkpoint


def dump_checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
    """The JSON form of a checkpoint."""
    return checkpoint.model_dump(mode="json")
