"""The run queue in the database: enqueue, claim with a lease, heartbeat, finish, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import Conflict, NotFound
from app.runs.models import ACTIVE_STATUSES, RunStatus, SyncRun
from app.runs.progress import RunProgress

CLAIM_CANDIDATES = 10
REPEATED_CRASHES = 2  # attempts from which a run waits behind every other


class RunNotFound(NotFound):
    """No run has this id."""


class RunAlreadyActive(Conflict):
    """The installation has a running sync; a second one may not start beside it."""


class RunAlreadyEnded(Conflict):
    """The run already ended; it cannot be cancelled."""


async def enqueue(
    session: AsyncSession, company_id: int, *, trigger: str, full_refresh: bool = False
) -> tuple[SyncRun, bool]:
    """Queues a run; returns (run, created). A queued run is reused; a running one is a 409."""
    run = SyncRun(
        id=str(uuid.uuid4()),
        company_id=company_id,
        trigger=trigger,
        full_refresh=full_refresh,
        status=RunStatus.queued,
        stats=RunProgress().dump(),
    )
    try:
        async with session.begin_nested():
            session.add(run)
    except IntegrityError:
        existing = await active_run(session, company_id)
        if (
            existing is not None
            and existing.status == RunStatus.queued
            and existing.cancel_requested
        ):
            # A cancel that raced with a hand-back: end that run now and queue the new one.
            existing.status, existing.finished_at = RunStatus.cancelled, utcnow()
            existing.error = "cancelled; checkpoints kept"
            await session.flush()
            existing = None
        if existing is None:  # it finished in between: try once more
            async with session.begin_nested():
                session.add(run)
            return run, True
        if existing.status == RunStatus.running:
            raise RunAlreadyActive(
                f"a sync is already running for company {company_id}",
                details=[{"run_id": existing.id}],
            ) from None
        existing.full_refresh = existing.full_refresh or full_refresh
        return existing, False
    return run, True


async def active_run(session: AsyncSession, company_id: int) -> SyncRun | None:
    """The queued or running run of a company, if any."""
    return await session.scalar(
        select(SyncRun).where(SyncRun.company_id == company_id, SyncRun.status.in_(ACTIVE_STATUSES))
    )


async def get(session: AsyncSession, run_id: str) -> SyncRun | None:
    """One run by id, or None."""
    return await session.get(SyncRun, run_id)


async def history(
    session: AsyncSession,
    *,
    company_id: int | None,
    status: str | None,
    limit: int,
    before: datetime | None = None,
) -> Sequence[SyncRun]:
    """Runs newest first, optionally filtered."""
    query = select(SyncRun).order_by(SyncRun.queued_at.desc(), SyncRun.id.desc()).limit(limit)
    if company_id is not None:
        query = query.where(SyncRun.company_id == company_id)
    if status:
        query = query.where(SyncRun.status == status)
    if before is not None:
        query = query.where(SyncRun.queued_at < before)
    return (await session.scalars(query)).all()


async def queue_depth(session: AsyncSession) -> int:
    """How many runs wait to be claimed."""
    return int(
        await session.scalar(select(func.count()).where(SyncRun.status == RunStatus.queued)) or 0
    )


async def longest_wait_seconds(session: AsyncSession) -> float:
    """How long the oldest queued run has been waiting (0 when none waits)."""
    oldest = await session.scalar(
        select(func.min(SyncRun.queued_at)).where(SyncRun.status == RunStatus.queued)
    )
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # func.min() skips the column type on SQLite
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (utcnow() - oldest).total_seconds())


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
        .order_by(SyncRun.attempts >= REPEATED_CRASHES, SyncRun.queued_at, SyncRun.id)
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


async def finish(
    session: AsyncSession,
    run_id: str,
    owner: str,
    *,
    status: RunStatus,
    error: str | None,
    progress: RunProgress | None,
) -> bool:
    """Records the outcome of a run if this worker still holds its lease."""
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": utcnow(),
        "lease_expires_at": None,
    }
    if progress is not None:
        values["stats"] = progress.dump()
    result = await session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id, SyncRun.lease_owner == owner, SyncRun.status == RunStatus.running
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def save_progress(session: AsyncSession, run_id: str, progress: RunProgress) -> None:
    """Stores the progress of a running run."""
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(stats=progress.dump())
        .execution_options(synchronize_session=False)
    )


async def _cancel_row(session: AsyncSession, run_id: str, reason: str) -> None:
    """Conditional updates, so a worker handing the run back at the same moment cannot leave
    it queued with a cancel nobody acts on: queued → cancelled; running → asked to stop."""
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == RunStatus.queued)
        .values(status=RunStatus.cancelled, finished_at=utcnow(), error=reason)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == RunStatus.running)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )


async def cancel(session: AsyncSession, run_id: str) -> SyncRun:
    """Cancels a queued run at once, or asks a running one to stop at its next page."""
    run = await get(session, run_id)
    if run is None:
        raise RunNotFound(f"sync run {run_id!r} does not exist")
    if run.status not in ACTIVE_STATUSES:
        raise RunAlreadyEnded(f"sync run {run_id} already ended with status {run.status}")
    await _cancel_row(session, run_id, "cancelled before it started")
    return await session.get(SyncRun, run_id, populate_existing=True) or run


async def cancel_for_company(session: AsyncSession, company_id: int, reason: str) -> None:
    """Cancels every queued or running run of a company (uninstall)."""
    run = await active_run(session, company_id)
    if run is not None:
        await _cancel_row(session, run.id, reason)


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
