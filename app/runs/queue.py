"""The run queue in the database: enqueue, finish, cancel, and the run history.

Claims, heartbeats and hand-backs are in app/runs/leases.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import Conflict, NotFound
from app.runs.models import ACTIVE_STATUSES, RunStatus, SyncRun
from app.runs.progress import RunProgress
from app.runs.targets import RunTargets

# The trigger of runs queued for webhook events.
WEBHOOK_TRIGGER = "webhook"


class RunNotFound(NotFound):
    """No run has this id."""


class RunAlreadyActive(Conflict):
    """The installation has a running sync; a second one may not start beside it."""


class RunAlreadyEnded(Conflict):
    """The run already ended; it cannot be cancelled."""


async def enqueue(
    session: AsyncSession,
    company_id: int,
    *,
    trigger: str,
    full_refresh: bool = False,
    targets: RunTargets | None = None,
) -> tuple[SyncRun, bool]:
    """Queues a run; returns (run, created). A queued run is reused; a running one is a 409.

    `targets` are units webhook events ask to be read. Reusing a queued run folds them in: a
    normal run keeps reading everything and reads the targets first; a targeted run asked for
    again as a normal one becomes whole. The fold is a compare-and-set on the queued status,
    so a run a worker claimed in between is never changed after it read its inputs.
    """
    run = SyncRun(
        id=str(uuid.uuid4()),
        company_id=company_id,
        trigger=trigger,
        full_refresh=full_refresh,
        status=RunStatus.queued,
        stats=RunProgress().dump(),
        targets=None if targets is None else targets.dump(),
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
        await _fold(session, existing, trigger=trigger, full_refresh=full_refresh, targets=targets)
        return existing, False
    return run, True


def folded_targets(existing: RunTargets | None, new: RunTargets | None) -> RunTargets | None:
    """The targets of a queued run asked for again (None stays a normal run)."""
    if existing is None:
        return None if new is None else RunTargets(units=new.units, whole=True)
    if new is None:
        return existing.model_copy(update={"whole": True, "only_staler_than": None})
    return existing.merge(new)


async def _fold(
    session: AsyncSession,
    existing: SyncRun,
    *,
    trigger: str,
    full_refresh: bool,
    targets: RunTargets | None,
) -> None:
    """Folds a new request into a queued run, only while it is still queued."""
    merged = folded_targets(existing.work, targets)
    values: dict[str, Any] = {"full_refresh": existing.full_refresh or full_refresh}
    if merged is not None:
        values["targets"] = merged.dump()
    work = existing.work
    if targets is None and work is not None and not work.whole:
        values["trigger"] = trigger  # a targeted run asked for as a normal one
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == existing.id, SyncRun.status == RunStatus.queued)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RunAlreadyActive(
            f"a sync is already running for company {existing.company_id}",
            details=[{"run_id": existing.id}],
        )
    await session.refresh(existing)


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
        values["stats"] = progress.model_copy(deep=True).settle(status).dump()
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
