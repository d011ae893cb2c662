"""The scheduler: periodic ticks (APScheduler) that queue due runs and feed the worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.core.errors import Conflict
from app.core.logging import get_logger
from app.core.metrics import SCHEDULER_TICK
from app.installations import discovery, due
from app.installations import service as installations
from app.runs import leases, queue
from app.runs.retention import RetentionPolicy, apply_retention
from app.runtime import Runtime
from app.scheduling import events
from app.scheduling.worker import Worker

log = get_logger(__name__)
DUE_BATCH = 500
MAX_BATCHES_PER_TICK = 20


@dataclass
class TickResult:
    """What one pass over the due installations did."""

    due: int = 0
    queued: int = 0
    skipped_running: int = 0


async def enqueue_due(rt: Runtime, *, batch: int = DUE_BATCH) -> TickResult:
    """Queues a run for every installation whose time has come; missed periods coalesce into one.

    An installation whose previous run is still going gets no second run: its next time is
    simply moved on (the running sync will pick up everything changed until it ends).
    """
    result = TickResult()
    now = utcnow()
    async with unit_of_work(rt.sessions) as session:
        for inst in await installations.take_due(session, now, batch):
            result.due += 1
            try:
                _, created = await queue.enqueue(session, inst.company_id, trigger="schedule")
                result.queued += int(created)
            except Conflict:
                result.skipped_running += 1
                if await _only_targets_running(session, inst.company_id):
                    continue  # a short run for webhook events: queue this one at a next tick
            due.schedule_next(inst, now)
    return result


async def _only_targets_running(session: AsyncSession, company_id: int) -> bool:
    """Whether the company's running run only reads units webhook events asked for."""
    run = await queue.active_run(session, company_id)
    work = run.work if run is not None else None
    return work is not None and not work.whole


class Scheduler:
    """Owns the APScheduler jobs and the loop that wakes the worker."""

    def __init__(self, rt: Runtime, worker: Worker | None) -> None:
        self.rt = rt
        self.worker = worker
        self.aps = AsyncIOScheduler(timezone="UTC")
        self._loop_task: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the tick and discovery jobs and the wake-up loop."""
        settings = self.rt.settings
        self.aps.add_job(
            self.tick,
            "interval",
            seconds=settings.scheduler_tick_seconds,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="tick",
            next_run_time=utcnow(),
        )
        if settings.discovery_interval_seconds:
            # First pass at once (tests: one interval after start; an explicit None would
            # add the job paused).
            first: dict[str, Any] = {} if settings.mode == "test" else {"next_run_time": utcnow()}
            self.aps.add_job(
                self.discover,
                "interval",
                seconds=settings.discovery_interval_seconds,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id="discovery",
                **first,
            )
        if settings.run_retention_days:
            # Hourly by default; the first pass a minute after start, out of the way of start-up.
            interval = settings.run_retention_interval_seconds
            self.aps.add_job(
                self.prune_history,
                "interval",
                seconds=interval,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id="retention",
                next_run_time=utcnow() + timedelta(seconds=min(60, interval)),
            )
        self.aps.add_job(
            events.subscribe_due,
            "interval",
            args=[self.rt],
            seconds=settings.webhook_check_seconds,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="webhook-subscriptions",
            next_run_time=utcnow(),
        )
        self.aps.start()
        self._loop_task = asyncio.create_task(self._wake_loop(), name="scheduler-wake")
        self._events_task = asyncio.create_task(
            events.EventLoop(self.rt).run(), name="webhook-events"
        )

    async def tick(self) -> None:
        """One tick: end abandoned runs, queue due runs, then let the worker claim what it can."""
        started = time.perf_counter()
        try:
            async with unit_of_work(self.rt.sessions) as session:
                reaped = await leases.reap(session, self.rt.settings.max_run_attempts)
            if reaped:
                log.warning("ended runs abandoned by their workers", runs=reaped)
            for _ in range(MAX_BATCHES_PER_TICK):
                if (await enqueue_due(self.rt)).due < DUE_BATCH:
                    break
            if self.worker is not None:
                await self.worker.poll()
        except Exception:
            log.exception("scheduler tick failed")
            return
        finally:
            SCHEDULER_TICK.observe(time.perf_counter() - started)
        self.rt.last_tick_at = time.monotonic()

    async def prune_history(self) -> int:
        """Applies the run-history retention; logs (not raises) failures."""
        settings = self.rt.settings
        policy = RetentionPolicy(settings.run_retention_days, settings.run_retention_keep)
        try:
            return await apply_retention(self.rt.sessions, policy, utcnow())
        except Exception as exc:
            log.warning("run history retention failed", error=str(exc)[:300])
            return 0

    async def discover(self) -> None:
        """Runs discovery, logging (not raising) failures."""
        try:
            # Every process runs the job; the first to begin a pass in an interval lists.
            await discovery.discover(
                self.rt, min_gap_seconds=self.rt.settings.discovery_interval_seconds / 2
            )
        except Exception as exc:
            log.warning("discovery failed", error=str(exc)[:300])

    async def _wake_loop(self) -> None:
        while True:
            await self.rt.wake_event.wait()
            self.rt.wake_event.clear()
            if self.worker is not None:
                try:
                    await self.worker.poll()
                except Exception:
                    log.exception("worker poll failed")

    async def shutdown(self) -> None:
        """Stops the jobs and the wake-up loop, then lets running syncs checkpoint and stop."""
        self.aps.shutdown(wait=False)
        for task in (self._loop_task, self._events_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.worker is not None:
            await self.worker.shutdown()
