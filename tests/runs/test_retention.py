"""Run-history retention: old finished runs go in batches; the newest per installation stay."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select

from app.core.database import unit_of_work, utcnow
from app.core.logging import configure_logging
from app.core.metrics import REGISTRY
from app.runs.models import RunStatus, SyncRun
from app.runs.progress import RunProgress
from app.runs.retention import RetentionPolicy, apply_retention
from app.runtime import Runtime
from app.scheduling.scheduler import Scheduler

NOW = utcnow()
OLD = NOW - timedelta(days=200)


async def add_runs(
    rt: Runtime,
    company_id: int,
    count: int,
    *,
    finished: datetime | None,
    status: RunStatus = RunStatus.succeeded,
    start: datetime | None = None,
) -> list[str]:
    """`count` runs of one company, one minute apart from `start` (default: `finished`)."""
    first = start or finished or OLD
    ids = []
    async with unit_of_work(rt.sessions) as session:
        for n in range(count):
            run_id = str(uuid.uuid4())
            ids.append(run_id)
            session.add(
                SyncRun(
                    id=run_id,
                    company_id=company_id,
                    status=status,
                    trigger="schedule",
                    queued_at=first + timedelta(minutes=n),
                    finished_at=None if finished is None else finished + timedelta(minutes=n),
                    stats=RunProgress().dump(),
                )
            )
    return ids


async def run_ids(rt: Runtime, company_id: int) -> set[str]:
    async with rt.sessions() as session:
        query = select(SyncRun.id).where(SyncRun.company_id == company_id)
        return set(await session.scalars(query))


def pruned_total() -> float:
    return REGISTRY.get_sample_value("connector_sync_runs_pruned_total") or 0.0


class TestRetention:
    async def test_old_runs_go_but_the_newest_hundred_stay(self, rt: Runtime) -> None:
        old = await add_runs(rt, 1, 130, finished=OLD)
        few = await add_runs(rt, 2, 5, finished=OLD)  # fewer than 100: all stay however old
        recent = await add_runs(rt, 3, 120, finished=NOW - timedelta(days=10))
        before = pruned_total()

        deleted = await apply_retention(rt.sessions, RetentionPolicy(90, 100), NOW, batch=7)

        assert deleted == 30
        assert await run_ids(rt, 1) == set(old[30:])  # the 100 newest
        assert await run_ids(rt, 2) == set(few)
        assert await run_ids(rt, 3) == set(recent)  # younger than 90 days
        assert pruned_total() - before == 30

    async def test_unfinished_runs_are_never_deleted(self, rt: Runtime) -> None:
        await add_runs(rt, 1, 100, finished=NOW - timedelta(days=1), start=OLD + timedelta(days=1))
        queued = await add_runs(rt, 1, 1, finished=None, status=RunStatus.queued, start=OLD)
        failed = await add_runs(rt, 4, 101, finished=OLD, status=RunStatus.failed)
        assert await apply_retention(rt.sessions, RetentionPolicy(90, 100), NOW) == 1
        assert set(queued) <= await run_ids(rt, 1)
        assert await run_ids(rt, 4) == set(failed[1:])

    async def test_one_call_deletes_at_most_its_batches(self, rt: Runtime) -> None:
        await add_runs(rt, 1, 60, finished=OLD)
        policy = RetentionPolicy(90, 10)
        first = await apply_retention(rt.sessions, policy, NOW, batch=10, max_batches=2)
        second = await apply_retention(rt.sessions, policy, NOW, batch=10, max_batches=10)
        assert (first, second) == (20, 30)
        assert len(await run_ids(rt, 1)) == 10

    async def test_zero_days_keeps_everything(self, rt: Runtime) -> None:
        await add_runs(rt, 1, 150, finished=OLD)
        assert await apply_retention(rt.sessions, RetentionPolicy(0, 100), NOW) == 0
        assert len(await run_ids(rt, 1)) == 150

    async def test_the_scheduler_applies_the_settings_and_logs_the_count(self, rt: Runtime) -> None:
        buffer = io.StringIO()
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        configure_logging("INFO", "json")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
        try:
            rt.settings.run_retention_days = 30
            rt.settings.run_retention_keep = 3
            await add_runs(rt, 9, 8, finished=NOW - timedelta(days=40))
            assert await Scheduler(rt, None).prune_history() == 5
        finally:
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            structlog.reset_defaults()
        async with rt.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(SyncRun))
        assert left == 3
        line = next(line for line in buffer.getvalue().splitlines() if "run history" in line)
        assert json.loads(line)["deleted"] == 5
