"""The run queue in the database: claims with leases, heartbeats, cancel, reaping, coalescing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from app.core.database import unit_of_work, utcnow
from app.core.errors import Conflict
from app.installations.models import Installation
from app.runs import leases, queue
from app.runs.leases import Lease
from app.runs.models import RunStatus, SyncRun
from app.runtime import Runtime
from app.scheduling.scheduler import enqueue_due


async def make_installation(
    rt: Runtime,
    company_id: int,
    *,
    schedule: str = "every 15m",
    next_run_at: datetime | None = None,
    paused: bool = False,
) -> None:
    """Adds an active installation row (no credentials: these tests never call Procore)."""
    async with unit_of_work(rt.sessions) as session:
        session.add(
            Installation(
                company_id=company_id,
                schedule=schedule,
                streams="all",
                paused=paused,
                next_run_at=next_run_at,
                missing_projects=[],
                health={},
            )
        )


async def make_run(rt: Runtime, company_id: int, **values: object) -> str:
    """Queues a run and optionally sets columns directly (to age it, expire its lease, ...)."""
    async with unit_of_work(rt.sessions) as session:
        run, _ = await queue.enqueue(session, company_id, trigger="manual")
    if values:
        async with unit_of_work(rt.sessions) as session:
            await session.execute(update(SyncRun).where(SyncRun.id == run.id).values(**values))
    return run.id


async def load(rt: Runtime, run_id: str) -> SyncRun:
    async with rt.sessions() as session:
        return await queue.get(session, run_id)


async def claim(rt: Runtime, owner: str, **kwargs: object) -> leases.Claimed | None:
    async with unit_of_work(rt.sessions) as session:
        return await leases.claim(session, owner, 30, **kwargs)  # type: ignore[arg-type]


async def expire_lease(rt: Runtime, run_id: str) -> None:
    async with unit_of_work(rt.sessions) as session:
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


class TestEnqueue:
    async def test_one_active_run_per_company(self, rt: Runtime) -> None:
        first = await make_run(rt, 1)
        assert await make_run(rt, 1) == first
        await claim(rt, "w1")
        with pytest.raises(Conflict, match="already running"):
            await make_run(rt, 1)

    async def test_a_finished_run_lets_the_next_one_queue(self, rt: Runtime) -> None:
        first = await make_run(rt, 1)
        await claim(rt, "w1")
        async with unit_of_work(rt.sessions) as session:
            assert await queue.finish(
                session, first, "w1", status=RunStatus.succeeded, error=None, progress=None
            )
        assert await make_run(rt, 1) != first


class TestClaim:
    async def test_concurrent_claimers_never_share_a_run(self, rt: Runtime) -> None:
        runs = {await make_run(rt, company_id) for company_id in range(1, 6)}
        owners = [f"w{i}" for i in range(6)]
        claims = await asyncio.gather(*(claim(rt, owner) for owner in owners))
        taken = [c.run.id for c in claims if c is not None]
        assert sorted(taken) == sorted(runs)  # each run once, one claimer left empty-handed
        for c in claims:
            if c is not None:
                assert (await load(rt, c.run.id)).lease_owner in owners

    async def test_fewest_attempts_first_then_oldest(self, rt: Runtime) -> None:
        now = utcnow()
        crashy = await make_run(rt, 1, attempts=3, queued_at=now - timedelta(hours=1))
        older = await make_run(rt, 2, queued_at=now - timedelta(minutes=5))
        newer = await make_run(rt, 3, queued_at=now - timedelta(minutes=1))
        order = [(await claim(rt, "w")).run.id for _ in range(3)]  # type: ignore[union-attr]
        assert order == [older, newer, crashy]

    async def test_a_run_whose_worker_crashed_once_resumes_ahead_of_the_backlog(
        self, rt: Runtime
    ) -> None:
        now = utcnow()
        fresh = await make_run(rt, 1, queued_at=now - timedelta(minutes=1))
        orphan = await make_run(rt, 2, queued_at=now - timedelta(hours=1))
        async with unit_of_work(rt.sessions) as session:
            held = await leases.claim(session, "crashed", 30, run_id=orphan)
        assert held is not None
        await expire_lease(rt, orphan)
        first, second = await claim(rt, "w"), await claim(rt, "w")
        assert first is not None and first.run.id == orphan and first.recovered
        assert second is not None and second.run.id == fresh

    async def test_an_expired_lease_is_taken_over_and_the_old_owner_fenced(
        self, rt: Runtime
    ) -> None:
        run_id = await make_run(rt, 1)
        first = await claim(rt, "dead")
        assert first is not None and not first.recovered
        assert await claim(rt, "alive") is None  # lease still valid
        await expire_lease(rt, run_id)
        second = await claim(rt, "alive")
        assert second is not None and second.recovered and second.run.attempts == 2
        async with unit_of_work(rt.sessions) as session:
            assert await leases.heartbeat(session, run_id, "dead", 30) == Lease.lost
            assert not await queue.finish(
                session, run_id, "dead", status=RunStatus.failed, error="x", progress=None
            )
            assert await leases.heartbeat(session, run_id, "alive", 30) == Lease.held
        assert (await load(rt, run_id)).status == RunStatus.running


class TestCancel:
    async def test_queued_run_is_cancelled_at_once(self, rt: Runtime) -> None:
        run_id = await make_run(rt, 1)
        async with unit_of_work(rt.sessions) as session:
            await queue.cancel(session, run_id)
        assert (await load(rt, run_id)).status == RunStatus.cancelled
        assert await claim(rt, "w") is None

    async def test_running_run_hears_it_on_its_next_heartbeat(self, rt: Runtime) -> None:
        run_id = await make_run(rt, 1)
        await claim(rt, "w")
        async with unit_of_work(rt.sessions) as session:
            run = await queue.cancel(session, run_id)
            assert run.status == RunStatus.running and run.cancel_requested
        async with unit_of_work(rt.sessions) as session:
            assert await leases.heartbeat(session, run_id, "w", 30) == Lease.cancel
            assert not await leases.release(session, run_id, "w")  # cancelled runs stay put

    async def test_a_cancel_racing_a_hand_back_never_strands_the_company(self, rt: Runtime) -> None:
        # The state an unconditional cancel used to leave: queued, with a cancel nobody hears.
        stranded = await make_run(rt, 1, cancel_requested=True)
        assert await claim(rt, "w") is None
        async with unit_of_work(rt.sessions) as session:
            fresh, created = await queue.enqueue(session, 1, trigger="manual")
        assert created and fresh.id != stranded
        assert (await load(rt, stranded)).status == RunStatus.cancelled
        other = await make_run(rt, 2, cancel_requested=True)
        async with unit_of_work(rt.sessions) as session:
            assert await leases.reap(session, max_attempts=5) == 1
        assert (await load(rt, other)).status == RunStatus.cancelled

    async def test_an_ended_run_cannot_be_cancelled(self, rt: Runtime) -> None:
        run_id = await make_run(rt, 1, status=RunStatus.succeeded)
        async with unit_of_work(rt.sessions) as session:
            with pytest.raises(Conflict):
                await queue.cancel(session, run_id)


class TestReleaseAndReap:
    async def test_release_requeues_without_counting_an_attempt(self, rt: Runtime) -> None:
        run_id = await make_run(rt, 1)
        await make_run(rt, 2)
        await claim(rt, "w", run_id=run_id)
        before = (await load(rt, run_id)).queued_at
        async with unit_of_work(rt.sessions) as session:
            assert await leases.release(session, run_id, "w", to_back=True)
        run = await load(rt, run_id)
        assert (run.status, run.attempts, run.lease_owner) == (RunStatus.queued, 0, None)
        assert run.started_at is not None and run.queued_at > before
        nxt = await claim(rt, "w2")
        assert nxt is not None and nxt.run.company_id == 2  # it went to the back

    async def test_reap_ends_abandoned_cancelled_and_poison_runs(self, rt: Runtime) -> None:
        cancelled = await make_run(rt, 1)
        poison = await make_run(rt, 2, attempts=4)
        resumable = await make_run(rt, 3)
        for run_id in (cancelled, poison, resumable):
            await claim(rt, "dead", run_id=run_id)
            await expire_lease(rt, run_id)
        async with unit_of_work(rt.sessions) as session:
            await queue.cancel(session, cancelled)
            assert await leases.reap(session, max_attempts=5) == 2
        assert (await load(rt, cancelled)).status == RunStatus.cancelled
        assert (await load(rt, poison)).status == RunStatus.failed
        assert (await load(rt, resumable)).status == RunStatus.running
        taken = await claim(rt, "alive")
        assert taken is not None and taken.run.id == resumable


class TestEnqueueDue:
    async def test_missed_periods_coalesce_into_one_run(self, rt: Runtime) -> None:
        await make_installation(rt, 1, next_run_at=utcnow() - timedelta(days=2))
        result = await enqueue_due(rt)
        assert (result.due, result.queued) == (1, 1)
        assert (await enqueue_due(rt)).due == 0
        async with rt.sessions() as session:
            inst = await session.get(Installation, 1)
            runs = await queue.history(session, company_id=1, status=None, limit=10)
        assert inst is not None and inst.next_run_at is not None
        assert utcnow() < inst.next_run_at <= utcnow() + timedelta(minutes=15)
        assert [r.trigger for r in runs] == ["schedule"]

    async def test_a_running_installation_is_skipped_not_queued_twice(self, rt: Runtime) -> None:
        await make_installation(rt, 1, next_run_at=utcnow() - timedelta(minutes=1))
        await make_run(rt, 1)
        await claim(rt, "w")
        result = await enqueue_due(rt)
        assert (result.due, result.queued, result.skipped_running) == (1, 0, 1)

    async def test_paused_installations_wait(self, rt: Runtime) -> None:
        await make_installation(rt, 1, next_run_at=utcnow() - timedelta(minutes=1), paused=True)
        assert (await enqueue_due(rt)).due == 0

    async def test_batches_cover_every_due_installation(self, rt: Runtime) -> None:
        past = utcnow() - timedelta(minutes=1)
        for company_id in range(1, 8):
            await make_installation(rt, company_id, next_run_at=past)
        assert (await enqueue_due(rt, batch=5)).queued == 5
        assert (await enqueue_due(rt, batch=5)).queued == 2
        async with rt.sessions() as session:
            assert await queue.queue_depth(session) == 7
