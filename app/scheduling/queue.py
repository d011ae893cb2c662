"""The run queue in the database: enqueue, claim with a lease, heartbeat, finish, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import Conflict, NotFound
from app.sync.models import ACTIVE_STATUSES, RunStatus, SyncRun


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
        stats={},
    )
    try:
        async with session.begin_nested():
            session.add(run)
    except IntegrityError:
        existing = await active_run(session, company_id)
        if existing is None:  # it finished in between: try once more
            async with session.begin_nested():
                session.add(run)
            return run, True
        if existing.status == RunStatus.running:
            raise Conflict(
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


async def get(session: AsyncSession, run_id: str) -> SyncRun:
    """One run by id, or NotFound."""
    run = await session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"sync run {run_id!r} does not exist")
    return run


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


def _claimable(now: datetime) -> Any:
    return or_(
        SyncRun.status == RunStatus.queued,
        (SyncRun.status == RunStatus.running) & (SyncRun.lease_expires_at < now),
    )


async def claim(
    session: AsyncSession,
    owner: str,
    lease_seconds: int,
    *,
    exclude: Sequence[int] = (),
    run_id: str | None = None,
) -> SyncRun | None:
    """Atomically takes the oldest claimable run (or `run_id`): queued, or with an expired lease.

    Runs that were attempted fewer times go first, so one installation that keeps crashing
    cannot starve the others.
    """
    now = utcnow()
    candidates = (
        select(SyncRun.id)
        .where(_claimable(now))
        .order_by(SyncRun.attempts, SyncRun.queued_at)
        .limit(10)
    )
    if exclude:
        candidates = candidates.where(SyncRun.company_id.not_in(list(exclude)))
    if run_id is not None:
        candidates = candidates.where(SyncRun.id == run_id)
    for candidate in list(await session.scalars(candidates)):
        # Compare-and-set: only one claimer's UPDATE matches, on SQLite and PostgreSQL alike.
        result = await session.execute(
            update(SyncRun)
            .where(SyncRun.id == candidate, _claimable(now))
            .values(
                status=RunStatus.running,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                heartbeat_at=now,
                started_at=func.coalesce(SyncRun.started_at, now),
                attempts=SyncRun.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return await session.get(SyncRun, candidate, populate_existing=True)
    return None


async def heartbeat(session: AsyncSession, run_id: str, owner: str, lease_seconds: int) -> bool:
    """Extends a lease; returns False when the lease was lost or a cancel was asked for."""
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
        return False
    cancel = await session.scalar(select(SyncRun.cancel_requested).where(SyncRun.id == run_id))
    return not cancel


async def finish(
    session: AsyncSession,
    run_id: str,
    owner: str,
    *,
    status: RunStatus,
    error: str | None,
    stats: dict[str, Any],
) -> bool:
    """Records the outcome of a run if this worker still holds its lease."""
    result = await session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id, SyncRun.lease_owner == owner, SyncRun.status == RunStatus.running
        )
        .values(
            status=status,
            error=error,
            stats=stats,
            finished_at=utcnow(),
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def save_stats(session: AsyncSession, run_id: str, stats: dict[str, Any]) -> None:
    """Stores the progress of a running run."""
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(stats=stats)
        .execution_options(synchronize_session=False)
    )


async def cancel(session: AsyncSession, run_id: str) -> SyncRun:
    """Cancels a queued run at once, or asks a running one to stop at its next page."""
    run = await get(session, run_id)
    if run.status == RunStatus.queued:
        run.status = RunStatus.cancelled
        run.finished_at = utcnow()
        run.error = "cancelled before it started"
    elif run.status == RunStatus.running:
        run.cancel_requested = True
    else:
        raise Conflict(f"sync run {run_id} already ended with status {run.status}")
    await session.flush()
    return run


async def cancel_for_company(session: AsyncSession, company_id: int, reason: str) -> None:
    """Cancels every queued or running run of a company (uninstall)."""
    run = await active_run(session, company_id)
    if run is None:
        return
    if run.status == RunStatus.queued:
        run.status, run.finished_at, run.error = RunStatus.cancelled, utcnow(), reason
    else:
        run.cancel_requested = True
    await session.flush()


async def release(session: AsyncSession, run_id: str, owner: str) -> None:
    """Gives a running run back to the queue (graceful shutdown); it resumes from checkpoints."""
    await session.execute(
        update(SyncRun)
        .where(
            SyncRun.id == run_id, SyncRun.lease_owner == owner, SyncRun.status == RunStatus.running
        )
        .values(lease_expires_at=utcnow(), lease_owner=None)
        .execution_options(synchronize_session=False)
    )
