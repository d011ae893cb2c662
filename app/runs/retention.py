"""Retention of the run history: old finished runs go, in small batches, newest ones stay.

A finished run (succeeded, failed, cancelled) is deleted once it finished more than
`CONNECTOR_RUN_RETENTION_DAYS` ago, unless it is among the newest
`CONNECTOR_RUN_RETENTION_KEEP` runs of its installation. Queued and running runs are never
touched. Each batch is its own short transaction, so the queue is never locked for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import unit_of_work
from app.core.logging import get_logger
from app.core.metrics import REGISTRY
from app.runs.models import RunStatus, SyncRun

log = get_logger(__name__)

FINISHED = (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)
BATCH = 500
MAX_BATCHES = 40

RUNS_PRUNED = Counter(
    "connector_sync_runs_pruned",
    "Finished sync runs deleted from the run history by the retention job",
    registry=REGISTRY,
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How much run history to keep."""

    days: int
    keep: int

    @property
    def enabled(self) -> bool:
        """False when every run is kept forever (`days` is 0)."""
        return self.days > 0

    def cutoff(self, now: datetime) -> datetime:
        """Runs that finished before this time may go."""
        return now - timedelta(days=self.days)


async def expired_run_ids(
    session: AsyncSession, policy: RetentionPolicy, now: datetime, limit: int
) -> list[str]:
    """Up to `limit` ids of finished runs past the policy, oldest first."""
    rank = (
        func.row_number()
        .over(
            partition_by=SyncRun.company_id,
            order_by=(SyncRun.queued_at.desc(), SyncRun.id.desc()),
        )
        .label("rank")
    )
    ranked = select(SyncRun.id, SyncRun.status, SyncRun.finished_at, rank).subquery()
    query = (
        select(ranked.c.id)
        .where(
            ranked.c.rank > policy.keep,
            ranked.c.status.in_([str(status) for status in FINISHED]),
            ranked.c.finished_at < policy.cutoff(now),
        )
        .order_by(ranked.c.finished_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def delete_runs(session: AsyncSession, run_ids: list[str]) -> int:
    """Deletes those runs if they are (still) finished; returns how many went."""
    if not run_ids:
        return 0
    result = await session.execute(
        delete(SyncRun)
        .where(SyncRun.id.in_(run_ids), SyncRun.status.in_([str(s) for s in FINISHED]))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def apply_retention(
    sessions: async_sessionmaker[AsyncSession],
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Deletes expired runs in batches of `batch` (at most `max_batches` per call; the next
    call goes on); logs and counts what went. Returns the number of runs deleted."""
    if not policy.enabled:
        return 0
    deleted = 0
    for _ in range(max_batches):
        async with unit_of_work(sessions) as session:
            ids = await expired_run_ids(session, policy, now, batch)
            deleted += await delete_runs(session, ids)
        if len(ids) < batch:
            break
    if deleted:
        RUNS_PRUNED.inc(deleted)
        log.info(
            "old runs deleted from the run history",
            deleted=deleted,
            older_than_days=policy.days,
            kept_per_installation=policy.keep,
        )
    return deleted
