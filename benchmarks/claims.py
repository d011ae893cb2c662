"""Claims per second on PostgreSQL: compare-and-set alone against SKIP LOCKED, interleaved.

    python -m benchmarks.claims [--runs 3000] [--claimers 1,4,16] [--rounds 2] [--postgres URL]

`--claimers` concurrent claimers in one process take queued runs and finish them at once
(claim, then finish: what a worker's slot does around a sync). "cas" is the claim before
issue 17 (read 10 candidates, compare-and-set UPDATE each until one matches, read the row
back); "skip locked" is `leases.claim` now. Rounds alternate so both see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import create_engine, make_sessionmaker, unit_of_work, utcnow
from app.core.migrations import upgrade_to_head
from app.runs import leases, queue
from app.runs.models import RunStatus, SyncRun
from benchmarks.harness import DEFAULT_POSTGRES, drop_postgres_database, make_postgres_database


async def cas_claim(session: AsyncSession, owner: str, lease: int) -> SyncRun | None:
    """The claim as it was: compare-and-set over up to 10 candidates, no row locks read."""
    now = utcnow()
    candidates = (
        select(SyncRun.id)
        .where(leases._claimable(now), SyncRun.cancel_requested.is_(False))
        .order_by(SyncRun.attempts, SyncRun.queued_at, SyncRun.id)
        .limit(leases.CLAIM_CANDIDATES)
    )
    for (candidate,) in list(await session.execute(candidates)):
        result: Any = await session.execute(
            update(SyncRun)
            .where(SyncRun.id == candidate, leases._claimable(now))
            .values(
                status=RunStatus.running,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease),
                heartbeat_at=now,
                started_at=func.coalesce(SyncRun.started_at, now),
                attempts=SyncRun.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            return await session.get(SyncRun, candidate, populate_existing=True)
    return None


async def skip_locked_claim(session: AsyncSession, owner: str, lease: int) -> SyncRun | None:
    claimed = await leases.claim(session, owner, lease)
    return claimed.run if claimed else None


async def round_(url: str, strategy: Any, claimers: int, seconds: float) -> float:
    engine = create_engine(url, pool_size=claimers, max_overflow=0)
    sessions = make_sessionmaker(engine)
    done = 0
    stop = time.monotonic() + seconds

    async def slot(index: int) -> None:
        nonlocal done
        owner = f"bench-{index}"
        while time.monotonic() < stop:
            async with unit_of_work(sessions) as session:
                run = await strategy(session, owner, 60)
            if run is None:
                return
            async with unit_of_work(sessions) as session:
                await queue.finish(
                    session, run.id, owner, status=RunStatus.succeeded, error=None, progress=None
                )
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(slot(i) for i in range(claimers)))
    elapsed = time.monotonic() - started
    await engine.dispose()
    return done / elapsed


async def refill(url: str, count: int) -> None:
    engine = create_engine(url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await session.execute(
                update(SyncRun)
                .where(SyncRun.status == RunStatus.succeeded)
                .values(status=RunStatus.queued, lease_owner=None, attempts=0, finished_at=None)
            )
            have = await session.scalar(select(func.count()).select_from(SyncRun))
            for company_id in range(int(have or 0) + 1, count + 1):
                await queue.enqueue(session, company_id, trigger="bench")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--claimers", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    url = make_postgres_database(args.postgres, "claims")
    try:
        upgrade_to_head(url)
        for claimers in (int(c) for c in args.claimers.split(",")):
            rates: dict[str, list[float]] = {"cas": [], "skip locked": []}
            for _ in range(args.rounds):
                for name, strategy in (("cas", cas_claim), ("skip locked", skip_locked_claim)):
                    asyncio.run(refill(url, args.runs))
                    rates[name].append(asyncio.run(round_(url, strategy, claimers, args.seconds)))
            print(
                f"{claimers:2d} claimers: "
                + "  ".join(
                    f"{name} {statistics.median(values):6.1f} claims/s "
                    f"({', '.join(f'{v:.1f}' for v in values)})"
                    for name, values in rates.items()
                )
            )
    finally:
        drop_postgres_database(url)


if __name__ == "__main__":
    main()
