"""Targets on the run ledger (folding into a queued run, never into one a worker took) and
settling the events of an ended run, on the real service database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.core.database import unit_of_work
from app.runs import leases, queue
from app.runs.models import RunStatus, SyncRun
from app.runs.progress import RunProgress, TargetOutcome
from app.runs.queue import RunAlreadyActive
from app.runs.targets import RunTargets, TargetUnit
from app.runtime import Runtime
from app.webhooks import applier, repository
from app.webhooks.models import WebhookEvent

COMPANY = 77
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rfis(project_id: int, *changed: int) -> RunTargets:
    return RunTargets(
        units=[TargetUnit(stream="rfis", project_id=project_id, changed=list(changed))]
    )


class TestFolding:
    async def test_events_fold_into_a_queued_run(self, rt: Runtime) -> None:
        async with unit_of_work(rt.sessions) as session:
            run, created = await queue.enqueue(
                session, COMPANY, trigger="webhook", targets=rfis(1, 5)
            )
            assert created and run.work == rfis(1, 5)
        async with unit_of_work(rt.sessions) as session:
            again, created = await queue.enqueue(
                session, COMPANY, trigger="webhook", targets=rfis(1, 6)
            )
            assert not created and again.id == run.id
            work = again.work
            assert work is not None and work.units[0].changed == [5, 6] and not work.whole

    async def test_a_scheduled_run_asked_for_a_queued_webhook_run_makes_it_whole(
        self, rt: Runtime
    ) -> None:
        async with unit_of_work(rt.sessions) as session:
            run, _ = await queue.enqueue(session, COMPANY, trigger="webhook", targets=rfis(1, 5))
        async with unit_of_work(rt.sessions) as session:
            again, created = await queue.enqueue(session, COMPANY, trigger="schedule")
        assert not created and again.id == run.id and again.trigger == "schedule"
        work = again.work
        assert work is not None and work.whole and work.units[0].changed == [5]

    async def test_events_wait_while_a_run_is_running(self, rt: Runtime) -> None:
        async with unit_of_work(rt.sessions) as session:
            await queue.enqueue(session, COMPANY, trigger="schedule")
        async with unit_of_work(rt.sessions) as session:
            assert await leases.claim(session, "worker-1", 60) is not None
        with pytest.raises(RunAlreadyActive):
            async with unit_of_work(rt.sessions) as session:
                await queue.enqueue(session, COMPANY, trigger="webhook", targets=rfis(1, 5))

    async def test_a_run_claimed_after_it_was_read_is_never_changed(self, rt: Runtime) -> None:
        async with unit_of_work(rt.sessions) as session:
            run, _ = await queue.enqueue(session, COMPANY, trigger="webhook", targets=rfis(1, 5))
        async with rt.sessions() as reader:
            seen = await reader.get(SyncRun, run.id)
            assert seen is not None and seen.status == RunStatus.queued
            async with unit_of_work(rt.sessions) as session:  # a worker takes it meanwhile
                assert await leases.claim(session, "worker-1", 60) is not None
            with pytest.raises(RunAlreadyActive):
                await queue._fold(
                    reader, seen, trigger="webhook", full_refresh=False, targets=rfis(1, 6)
                )
            await reader.rollback()
        async with unit_of_work(rt.sessions) as session:
            stored = await session.get(SyncRun, run.id)
            assert stored is not None and stored.work == rfis(1, 5)

    async def test_webhook_runs_are_claimed_before_older_ones(self, rt: Runtime) -> None:
        async with unit_of_work(rt.sessions) as session:
            await queue.enqueue(session, 1, trigger="schedule")
            hooked, _ = await queue.enqueue(session, 2, trigger="webhook", targets=rfis(1, 5))
        async with unit_of_work(rt.sessions) as session:
            claimed = await leases.claim(session, "worker-1", 60)
        assert claimed is not None and claimed.run.id == hooked.id


async def ended_run(rt: Runtime, outcome: TargetOutcome, status: RunStatus) -> SyncRun:
    async with unit_of_work(rt.sessions) as session:
        run = SyncRun(
            id=f"run-{status}",
            company_id=COMPANY,
            status=status,
            trigger="webhook",
            stats=RunProgress(targets=outcome).dump(),
            finished_at=NOW,
        )
        session.add(run)
    return run


async def add_events(rt: Runtime, run_id: str, rows: list[tuple[str, str, int, int]]) -> None:
    """(key, event type, resource id, attempts so far) on project 1's rfis."""
    async with unit_of_work(rt.sessions) as session:
        for key, kind, rid, attempts in rows:
            session.add(
                WebhookEvent(
                    dedupe_key=key,
                    company_id=COMPANY,
                    project_id=1,
                    stream="rfis",
                    resource_name="RFIs",
                    resource_id=rid,
                    event_type=kind,
                    occurred_at=NOW,
                    received_at=NOW,
                    run_id=run_id,
                    attempts=attempts,
                )
            )


async def outcomes(rt: Runtime) -> dict[str, tuple[str | None, int, str | None]]:
    async with unit_of_work(rt.sessions) as session:
        rows = list(await session.scalars(select(WebhookEvent)))
    return {row.dedupe_key: (row.run_id, row.attempts, row.outcome) for row in rows}


class TestSettling:
    async def test_events_of_a_read_unit_are_applied_or_read_once_more(self, rt: Runtime) -> None:
        outcome = TargetOutcome(read=["rfis:1"], deletes=["rfis:1"], unmatched={"rfis:1": [20, 21]})
        run = await ended_run(rt, outcome, RunStatus.succeeded)
        await add_events(
            rt,
            run.id,
            [
                ("seen", "update", 10, 0),
                ("gone-first", "update", 20, 0),
                ("gone-again", "create", 21, 1),
                ("deleted", "delete", 30, 0),
            ],
        )
        async with unit_of_work(rt.sessions) as session:
            assert [r.id for r in await repository.ended_runs_with_events(session, 10)] == [run.id]
            await applier.settle(session, run)
        assert await outcomes(rt) == {
            "seen": (run.id, 0, "applied"),
            "gone-first": (None, 1, None),  # read again by the next run
            "gone-again": (run.id, 1, "unmatched"),  # left to reconciliation
            "deleted": (run.id, 0, "applied"),
        }

    async def test_deferred_units_wait_and_failed_ones_retry_then_give_up(
        self, rt: Runtime
    ) -> None:
        run = await ended_run(rt, TargetOutcome(deferred=["rfis:1"]), RunStatus.succeeded)
        await add_events(rt, run.id, [("deferred", "update", 1, 0)])
        failed = await ended_run(rt, TargetOutcome(), RunStatus.failed)
        await add_events(rt, failed.id, [("retry", "update", 2, 1), ("last", "update", 3, 4)])
        async with unit_of_work(rt.sessions) as session:
            await applier.settle(session, run)
            await applier.settle(session, failed)
        assert await outcomes(rt) == {
            "deferred": (None, 0, None),  # budget or waiting events: no attempt counted
            "retry": (None, 2, None),
            "last": (failed.id, 4, "gave_up"),
        }
