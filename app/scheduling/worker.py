"""Claims queued runs from the database and executes them, with leases, heartbeats and cancel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import structlog

from app.core.database import unit_of_work
from app.core.logging import get_logger
from app.core.runtime import Runtime
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.procore import AppNotConnectedError, InvalidClientError
from app.scheduling import queue
from app.sync import engine
from app.sync.context import RunCancelled, RunContext
from app.sync.models import RunStatus, SyncRun

log = get_logger(__name__)


class Worker:
    """Runs up to `concurrency` syncs at once in this process, fairly across installations."""

    def __init__(self, rt: Runtime, *, concurrency: int | None = None) -> None:
        self.rt = rt
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.running: dict[str, tuple[int, asyncio.Event, asyncio.Task[RunStatus]]] = {}
        self._closing = False

    @property
    def busy_companies(self) -> list[int]:
        """Companies this worker is syncing right now."""
        return [company_id for company_id, _, _ in self.running.values()]

    async def poll(self) -> int:
        """Claims and starts as many runs as there are free slots; returns how many started."""
        started = 0
        while not self._closing and len(self.running) < self.concurrency:
            async with unit_of_work(self.rt.sessions) as session:
                run = await queue.claim(
                    session,
                    self.rt.worker_id,
                    self.rt.settings.lease_seconds,
                    exclude=self.busy_companies,
                )
            if run is None:
                break
            stop = asyncio.Event()
            task = asyncio.create_task(self._execute(run, stop), name=f"sync-{run.id}")
            self.running[run.id] = (run.company_id, stop, task)
            task.add_done_callback(functools.partial(self._finished, run.id))
            started += 1
        return started

    def _finished(self, run_id: str, _task: object = None) -> None:
        self.running.pop(run_id, None)
        self.rt.wake_scheduler()

    async def shutdown(self, grace_seconds: float = 30.0) -> None:
        """Asks every running sync to checkpoint and stop, waiting at most `grace_seconds`."""
        self._closing = True
        for _, stop, _ in self.running.values():
            stop.set()
        tasks = [task for _, _, task in self.running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()

    async def run_one(self, run: SyncRun, stop: asyncio.Event | None = None) -> RunStatus:
        """Executes one claimed run in the foreground (used by `connector sync`)."""
        return await self._execute(run, stop or asyncio.Event())

    async def _execute(self, run: SyncRun, stop: asyncio.Event) -> RunStatus:
        structlog.contextvars.bind_contextvars(run_id=run.id, company_id=run.company_id)
        log.info("sync started", attempt=run.attempts, full_refresh=run.full_refresh)
        ctx: RunContext | None = None
        status, error = RunStatus.failed, None
        beat = asyncio.create_task(self._heartbeat(run, stop, lambda: ctx))
        try:
            ctx = await engine.prepare(self.rt, run, stop)
            status, error = await engine.execute(ctx)
        except RunCancelled:
            status, error = RunStatus.cancelled, "cancelled; checkpoints kept"
        except AppNotConnectedError as exc:
            error = f"app is not connected to this company: {exc.message}"
            await self._uninstall(run.company_id)
        except InvalidClientError as exc:
            error = f"credentials rejected by Procore: {exc.message}"
            await self._mark_credentials_invalid(run.company_id, error)
        except engine.FatalRunError as exc:
            error = str(exc)
        except Exception as exc:  # a run must always end with a recorded status
            log.exception("sync crashed")
            error = engine.describe(exc)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        if stop.is_set() and status != RunStatus.succeeded and self._closing:
            # Shutting down: leave the run claimable so another worker resumes it.
            await self._release(run)
            log.info("sync paused for shutdown; it will resume from its checkpoints")
            structlog.contextvars.unbind_contextvars("run_id", "company_id")
            return RunStatus.running
        stats = ctx.snapshot() if ctx else dict(run.stats or {})
        async with unit_of_work(self.rt.sessions) as session:
            await queue.finish(
                session, run.id, self.rt.worker_id, status=status, error=error, stats=stats
            )
            inst = await installations.get_or_404(session, run.company_id)
            inst.last_run_id = run.id
            inst.health_add(self.rt.health.drain(run.company_id))
        log.info("sync finished", status=str(status), error=error, requests=stats.get("requests"))
        structlog.contextvars.unbind_contextvars("run_id", "company_id")
        return status

    async def _heartbeat(self, run: SyncRun, stop: asyncio.Event, ctx: Any) -> None:
        interval = max(1.0, self.rt.settings.lease_seconds / 4)
        while True:
            await asyncio.sleep(min(interval, 2.0))
            current = ctx()
            async with unit_of_work(self.rt.sessions) as session:
                keep = await queue.heartbeat(
                    session, run.id, self.rt.worker_id, self.rt.settings.lease_seconds
                )
                if current is not None:
                    await queue.save_stats(session, run.id, current.snapshot())
            if not keep:
                stop.set()

    async def _release(self, run: SyncRun) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            await queue.release(session, run.id, self.rt.worker_id)

    async def _uninstall(self, company_id: int) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            await installations.uninstall(session, company_id, reason="app not connected")

    async def _mark_credentials_invalid(self, company_id: int, error: str) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            inst = await installations.get_or_404(session, company_id)
            inst.status = InstallationStatus.credentials_invalid
            inst.credentials_error = error
