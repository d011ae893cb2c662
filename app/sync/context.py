"""What one sync run carries around: its plain inputs (RunSpec), clients and running figures.

The engine knows neither the run queue nor the installations table: the worker hands it a
RunSpec and a `save_progress` callable, and reads back what it found from the context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.destinations import Destination, WriteResult
from app.procore import ProcoreCredentials, RequestStats
from app.runs.progress import (
    MAX_LISTED_QUARANTINED,
    PendingDelete,
    QuarantinedNote,
    RunProgress,
    StreamStats,
    TargetOutcome,
)
from app.runs.targets import RunTargets, unit_key
from app.runtime import Runtime

# Stores a run's progress in the caller's transaction (the one that saves a checkpoint).
SaveProgress = Callable[[AsyncSession, RunProgress], Awaitable[None]]
# Raises RunFenced, in the caller's transaction, when the run may no longer save state.
Guard = Callable[[AsyncSession], Awaitable[None]]
# Whether webhook events wait for this run's company (a run reading beyond its targets then
# leaves the rest for later, so the events are applied at once).
EventsWaiting = Callable[[], Awaitable[bool]]


async def _no_fence(_session: AsyncSession) -> None:
    return None


async def _no_events() -> bool:
    return False


async def _no_account(_session: AsyncSession, _progress: RunProgress) -> None:
    return None


@dataclass(frozen=True)
class Coverage:
    """Streams webhooks keep fresh, and how their units are still read (reconciliation).

    A covered unit is read when it was never read, when it is known complete only up to a
    time before its stream became covered (or before `repair_from`: Procore discarded
    deliveries), or when it is older than `interval`; the last kind is limited to an even share
    per hour (see app/sync/plan.py), so reconciliation costs the same every hour.
    """

    since: dict[str, datetime]
    interval: timedelta
    repair_from: datetime | None = None
    reconciled_last_hour: int = 0


def count_write(stats: StreamStats, result: WriteResult) -> None:
    """Adds a destination write to a stream's figures: records written, and the quarantined
    ones as skipped (the first few listed with their id and reason)."""
    stats.records_written += result.written
    stats.records_skipped += len(result.quarantined)
    room = max(0, MAX_LISTED_QUARANTINED - len(stats.quarantined))
    stats.quarantined.extend(
        QuarantinedNote(id=item.id, reason=item.reason) for item in result.quarantined[:room]
    )
    if result.notes and stats.note is None:
        stats.note = result.notes[0][:200]


class RunCancelled(Exception):
    """The run was asked to stop (cancel, lease lost, shutdown); checkpoints are kept."""


class RunFenced(RunCancelled):
    """The installation's destination changed under the run: it must save nothing more."""


@dataclass(frozen=True)
class RunSpec:
    """Everything a run needs to know about itself, as plain values."""

    run_id: str
    company_id: int
    creds: ProcoreCredentials
    destination_url: str
    signing_secret: str | None
    streams: list[str]
    full_refresh: bool
    window_end: datetime
    previous: RunProgress = field(default_factory=RunProgress)
    destination_generation: int = 0
    # Replaced signing secrets still in their grace period: each push is signed with them too.
    previous_signing_secrets: tuple[str, ...] = ()
    # Units webhook events asked for (None: a normal run).
    targets: RunTargets | None = None
    # Streams webhooks cover (None: every unit of every stream is read as usual).
    coverage: Coverage | None = None
    # Procore requests this run may make before it leaves the rest for later (None: no limit).
    request_allowance: int | None = None
    # A run reading beyond its targets yields to waiting events after this many seconds.
    yield_after_seconds: float = 2.0


@dataclass
class RunContext:
    """One run of one installation."""

    rt: Runtime
    spec: RunSpec
    destination: Destination
    save_progress: SaveProgress
    guard: Guard = _no_fence
    events_waiting: EventsWaiting = _no_events
    # Counts the requests made so far against the installation's budget (at the run's end).
    account: SaveProgress = _no_account
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stats: dict[str, StreamStats] = field(default_factory=dict)
    requests: RequestStats = field(default_factory=RequestStats)
    pending_deletes: list[PendingDelete] = field(default_factory=list)
    project_ids: list[int] = field(default_factory=list)
    projects_listed: bool = False  # the permitted project list was read in full this attempt
    # Ids of full listings completed in this attempt, by (stream, project): a child stream
    # reuses its parent's instead of listing the parent again.
    listed_ids: dict[tuple[str, int | None], list[int]] = field(default_factory=dict)
    missing_projects: list[int] = field(default_factory=list)
    targets_outcome: TargetOutcome = field(default_factory=TargetOutcome)
    reconciled_units: int = 0
    deferred_units: int = 0
    deferred_reason: str | None = None
    # Changed ids each target unit must show, and those its read returned.
    watched: dict[str, set[int]] = field(default_factory=dict)
    seen: dict[str, set[int]] = field(default_factory=dict)
    target_keys: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # A resumed run carries the figures of its earlier attempts.
        previous = self.spec.previous
        self.requests.requests = previous.requests
        self.requests.token_requests = previous.token_requests
        self.stats.update(previous.streams)
        self.targets_outcome = previous.targets.model_copy(deep=True)
        self.reconciled_units = previous.reconciled_units
        for unit in self.spec.targets.units if self.spec.targets else []:
            self.target_keys.add(unit.key)
            if unit.changed:
                self.watched[unit.key] = set(unit.changed)
                self.seen[unit.key] = set()

    def written(self, stream: str, project_id: int | None, ids: list[int]) -> None:
        """Notes ids a unit wrote (only for target units whose changed ids are checked)."""
        key = unit_key(stream, project_id)
        if key in self.seen:
            self.seen[key].update(ids)

    def is_target(self, stream: str, project_id: int | None) -> bool:
        """Whether events asked for this unit in this run."""
        return unit_key(stream, project_id) in self.target_keys

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.spec.run_id

    @property
    def company_id(self) -> int:
        """The company being synced."""
        return self.spec.company_id

    @property
    def creds(self) -> ProcoreCredentials:
        """The DMSA credentials to call Procore with."""
        return self.spec.creds

    @property
    def window_end(self) -> datetime:
        """Upper end of every `updated_at` window of this run (kept across resumes)."""
        return self.spec.window_end

    @property
    def full_refresh(self) -> bool:
        """Whether every stream is read in full."""
        return self.spec.full_refresh

    @property
    def streams(self) -> list[str]:
        """Selected stream names, in catalog order."""
        return self.spec.streams

    def check(self) -> None:
        """Raises RunCancelled when the run must stop (called between pages)."""
        if self.stop.is_set():
            raise RunCancelled("the run was asked to stop")

    def stream_stats(self, name: str) -> StreamStats:
        """The statistics entry of a stream, created on first use."""
        return self.stats.setdefault(name, StreamStats())

    def snapshot(self) -> RunProgress:
        """The run's progress so far."""
        return RunProgress(
            window_end=self.window_end,
            requests=self.requests.requests,
            token_requests=self.requests.token_requests,
            records=sum(s.records_written for s in self.stats.values()),
            streams=dict(self.stats),
            missing_projects=list(self.missing_projects),
            targets=self.targets_outcome,
            reconciled_units=self.reconciled_units,
            deferred_units=self.deferred_units,
            deferred_reason=self.deferred_reason,
        )
