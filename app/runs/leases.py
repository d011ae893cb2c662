"""Leases on runs: a worker claims a run, keeps it by heartbeats, hands it back or loses it;
runs whose worker died are resumed by the next claimer or ended (reap)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.runs.models import RunStatus, SyncRun
from app.runs.queue import WEBHOOK_TRIGGER

CLAIM_CANDIDATES = 10
REPEATED_CRASHES = 2  # attempts from which a run waits behind every other


def _claimable(now: datetime) -> Any:
    return or_(
        (SyncRun.status == RunStatus.queued)
        & (SyncRun.not_before.is_(None) | (SyncRun.not_before <= now)),
        (SyncRun.status == RunStatus.running) & (SyncRun.lease_expires_at < now),
    )


class Claimed(NamedTuple):
    """A run this worker now holds, and whether it was taken over from a worker that died."""

    run: SyncRun
    recovered: bool


async def claim(
    session: AsyncSession,
    owner: str,
    lease_seconds: int,
    *,
    exclude: Sequence[int] = (),
    run_id: str | None = None,
) -> Claimed | None:
    """Atomically takes the next claimable run (or `run_id`): queued, or with an expired lease.

    Order: oldest queue time first (a run that yielded its slot went to the back), so a run
    whose worker crashed once resumes in its place, ahead of the backlog; a run that killed
    two workers or more waits behind every other (it cannot starve them).
    """
    now = utcnow()
    # PostgreSQL: a claimer skips the row another one is taking (SKIP LOCKED) instead of
    # queueing behind its lock, so the first candidate is ours. SQLite has one writer.
    postgres = session.get_bind().dialect.name == "postgresql"
    candidates = (
        select(SyncRun.id, SyncRun.status)
        .where(_claimable(now), SyncRun.cancel_requested.is_(False))
        # A run that crashed its worker twice waits behind every other; among the rest, runs
        # webhook events asked for are small and someone waits for them: they go first.
        .order_by(
            SyncRun.attempts >= REPEATED_CRASHES,
            case((SyncRun.trigger == WEBHOOK_TRIGGER, 0), else_=1),
            SyncRun.queued_at,
            SyncRun.id,
        )
        .limit(1 if postgres else CLAIM_CANDIDATES)
    )
    if exclude:
        candidates = candidates.where(SyncRun.company_id.not_in(list(exclude)))
    if run_id is not None:
        candidates = candidates.where(SyncRun.id == run_id)
    if postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    for candidate, status in list(await session.execute(candidates)):
        # Compare-and-set all the same: only one claimer's UPDATE matches (PostgreSQL re-checks
        # the WHERE clause on the row version a concurrent claimer left).
        run = await session.scalar(
            update(SyncRun)
            .where(SyncRun.id == candidate, _claimable(now), SyncRun.cancel_requested.is_(False))
            .values(
                status=RunStatus.running,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                heartbeat_at=now,
                started_at=func.coalesce(SyncRun.started_at, now),
                attempts=SyncRun.attempts + 1,
            )
            .returning(SyncRun)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        if run is not None:
            return Claimed(run, recovered=status == RunStatus.running)
    return None


async def end_dead_leases(
    session: AsyncSession, is_dead: Callable[[str], bool]
) -> list[tuple[str, str]]:
    """Ends the leases of holders known to be dead now; returns the (run id, owner) freed."""
    now = utcnow()
    held = await session.execute(
        select(SyncRun.id, SyncRun.lease_owner).where(
            SyncRun.status == RunStatus.running, SyncRun.lease_expires_at >= now
        )
    )
    verdicts: dict[str, bool] = {}
    ended = []
    for run_id, owner in list(held):
        if owner is None:
            continue
        if owner not in verdicts:
            verdicts[owner] = is_dead(owner)
        if not verdicts[owner]:
            continue
        result = await session.execute(
            update(SyncRun)
            .where(
                SyncRun.id == run_id,
                SyncRun.lease_owner == owner,
                SyncRun.status == RunStatus.running,
            )
            .values(lease_expires_at=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            ended.append((run_id, owner))
    return ended


class Lease(StrEnum):
    """What a heartbeat found."""

    held = "held"  # lease extended, keep going
    cancel = "cancel"  # lease extended, but a cancel was asked for
    lost = "lost"  # another worker owns the run now, or it ended: stop without writing


async def heartbeat(session: AsyncSession, run_id: str, owner: str, lease_seconds: int) -> Lease:
    """Extends a lease; tells whether it is still held and whether a cancel was asked for."""
    now = utcnow()
    result = await session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id, SyncRun.lease_owner == owner, SyncRun.status == RunStatus.running
        )
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Lease.lost
    cancel = await session.scalar(select(SyncRun.cancel_requested).where(SyncRun.id == run_id))
    return Lease.cancel if cancel else Lease.held


async def release(
    session: AsyncSession,
    run_id: str,
    owner: str,
    *,
    to_back: bool = False,
    not_before: datetime | None = None,
) -> bool:
    """Gives a running run back to the queue; the next claimer resumes it from its checkpoints.

    A clean hand-over (shutdown, taking turns) does not count as an attempt. `to_back`
    re-queues it behind the runs waiting now, so a long run takes turns with the others.
    Returns False when the lease is gone or a cancel was asked for (the caller ends the run).
    """
    values: dict[str, Any] = {
        "status": RunStatus.queued,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": SyncRun.attempts - 1,
        "not_before": not_before,
    }
    if to_back:
        values["queued_at"] = utcnow()
    result = await session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.lease_owner == owner,
            SyncRun.status == RunStatus.running,
            SyncRun.cancel_requested.is_(False),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def reap(session: AsyncSession, max_attempts: int) -> int:
    """Ends runs whose worker died that must not be resumed: cancel asked, or too many attempts.

    Returns how many runs were ended. Everything else with an expired lease is claimable.
    """
    now = utcnow()
    expired = (SyncRun.status == RunStatus.running) & (SyncRun.lease_expires_at < now)
    cancelled = await session.execute(
        update(SyncRun)
        .where(expired, SyncRun.cancel_requested.is_(True))
        .values(
            status=RunStatus.cancelled,
            error="cancelled; checkpoints kept",
            finished_at=now,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    # A queued run whose cancel raced with its hand-back to the queue.
    handed_back = await session.execute(
        update(SyncRun)
        .where(SyncRun.status == RunStatus.queued, SyncRun.cancel_requested.is_(True))
        .values(status=RunStatus.cancelled, error="cancelled; checkpoints kept", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    failed = await session.execute(
        update(SyncRun)
        .where(expired, SyncRun.attempts >= max_attempts)
        .values(
            status=RunStatus.failed,
            error=f"abandoned after {max_attempts} attempts whose worker stopped heartbeating",
            finished_at=now,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(cancelled.rowcount + handed_back.rowcount + failed.rowcount)  # type: ignore[attr-defined]
