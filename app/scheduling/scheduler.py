"""The scheduler: periodic ticks (APScheduler) that queue due runs and feed the worker."""

from __future__ import annotations

import asyncio
import contextlib
import time

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.core.runtime import Runtime
from app.installations import discovery, repository
from app.scheduling import queue
from app.scheduling.schedules import parse_schedule
from app.scheduling.worker import Worker

log = get_logger(__name__)
DUE_BATCH = 500


async def enqueue_due(rt: Runtime) -> int:
    """Queues a run for every installation whose time has come; missed periods coalesce into one."""
    now = utcnow()
    queued = 0
    async with unit_of_work(rt.sessions) as session:
        for inst in await repository.due(session, now, DUE_BATCH):
            _, created = await queue.enqueue(session, inst.company_id, trigger="schedule")
            queued += int(created)
            # Computed from now, not from the missed slot: downtime yields one run, not a burst.
            inst.next_run_at = parse_schedule(inst.schedule).next_run(now, inst.company_id)
    return queued


class Scheduler:
    """Owns the APScheduler jobs and the loop that wakes the worker."""

    def __init__(self, rt: Runtime, worker: Worker | None) -> None:
        self.rt = rt
        self.worker = worker
        self.aps = AsyncIOScheduler(timezone="UTC")
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the tick and discovery jobs and the wake-up loop."""
        settings = self.rt.settings
        self.aps.add_job(
            self.tick,
            "interval",
            seconds=settings.scheduler_tick_seconds,
            max_instances=1,
            coalesce=True,
            id="tick",
            next_run_time=None,
        )
        if settings.discovery_interval_seconds and settings.client_id and settings.client_secret:
            self.aps.add_job(
                self.discover,
                "interval",
                seconds=settings.discovery_interval_seconds,
                max_instances=1,
                coalesce=True,
                id="discovery",
                next_run_time=None if settings.mode == "test" else utcnow(),
            )
        self.aps.start()
        self.aps.get_job("tick").modify(next_run_time=utcnow())
        self._loop_task = asyncio.create_task(self._wake_loop(), name="scheduler-wake")

    async def tick(self) -> None:
        """One scheduler tick: queue due runs, then let the worker claim what it can."""
        try:
            await enqueue_due(self.rt)
            if self.worker is not None:
                await self.worker.poll()
        except Exception:
            log.exception("scheduler tick failed")
            return
        self.rt.last_tick_at = time.monotonic()

    async def discover(self) -> None:
        """Runs discovery, logging (not raising) failures."""
        try:
            await discovery.discover(self.rt)
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
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self.worker is not None:
            await self.worker.shutdown()
